// flash v8 (v7 with the next key block's K and/or V prefetched into registers; issue 10,
// docs/analysis/v8_prefetch.md): its sources, and flash and block-sparse built from each v8
// layout checked against the float64 reference (fresh inputs, outputs poisoned, sizes that are
// not multiples of the tiles, causal and not) with counted == modeled bytes, which an extra or
// out-of-range prefetch would break. A mutant that stores each block one iteration late must
// fail the reference check.
import { assert, assertEquals, assertThrows } from "@std/assert";
import type { AttentionShape, Tiles } from "../../core/shapes.ts";
import type { AttentionKernels, AttentionProblem } from "../attention.ts";
import { countRun } from "../check.ts";
import { BlockMask, makeMask } from "../masks.ts";
import { tileProblem } from "../tiles.ts";
import { assertClose, getKernels, mutantKernels, runChecked } from "../testing.ts";
import {
  flashKey,
  flashLayout,
  flashSource,
  flashV7Body,
  flashV8Body,
  flashWorkgroupBytes,
} from "./mod.ts";
import { tileVec4sPerThread } from "../program.ts";

// 16 threads; a K/V tile of 8 rows is 8·D4 vec4s: 4, 8 and 16 a thread at d = 32, 64, 128.
const T8: Tiles = { br: 8, bc: 8, rm: 2, tx: 4 };
// 12 threads, 32 vec4s a tile at d = 32: 3 a thread, the last one only for threads 0–7.
const RAGGED: Tiles = { br: 6, bc: 4, rm: 2, tx: 4 };
const LAYOUTS = ["v8", "v8k", "v8v", "v8e"] as const;
const count = (s: string, part: string) => s.split(part).length - 1;

Deno.test("flash v8: its own keys and sources, v7's workgroup memory", () => {
  const v7 = flashSource({ d: 64, sparse: false, tiles: { ...T8, variant: "v7" } });
  for (const variant of LAYOUTS) {
    const tiles = { ...T8, variant };
    assertEquals(flashLayout(64, tiles), variant);
    assert(flashKey({ d: 64, sparse: false, tiles }).endsWith(`/${variant}`));
    assertEquals(flashWorkgroupBytes(64, "f32", tiles), flashWorkgroupBytes(64, "f32", T8));
    const src = flashSource({ d: 64, sparse: false, tiles });
    assert(src.includes("const PF: u32 = 8u;"), variant);
    // v7's arithmetic is all there: only the staging differs.
    assertEquals(count(src, "c * TX + tx"), count(v7, "c * TX + tx"));
    assert(src.includes("l[i] = sum;"));
    // K and V each staged once a block: from registers where prefetched, as v7 where not.
    const k = variant !== "v8v";
    const v = variant === "v8" || variant === "v8v";
    const early = variant === "v8e";
    assertEquals(count(src, "put_kv_tile(k_pf, t);"), k ? 1 : 0, variant);
    assertEquals(count(src, "put_kv_tile(v_pf, t);"), v ? 1 : 0, variant);
    assertEquals(count(src, "put_kv_tile(v_cur, t);"), early ? 1 : 0, variant);
    assertEquals(count(src, "load_kv_tile(false,"), k ? 0 : 1, variant);
    assertEquals(count(src, "load_kv_tile(true,"), v || early ? 0 : 1, variant);
    // The first block fetched before the loop, each next one inside it (V also on the skip
    // path of a block past the diagonal); v8e's V at the start of its own block.
    assertEquals(count(src, "k_pf = fetch_kv(false, base, k_next, n, t);"), k ? 2 : 0);
    assertEquals(count(src, "v_pf = fetch_kv(true, base, k_next, n, t);"), v ? 3 : 0);
    assertEquals(count(src, "let v_cur = fetch_kv(true, base, k0, n, t);"), early ? 1 : 0);
  }
  // The guard on the element index only where BC·D4 is not a multiple of the threads.
  assertEquals(tileVec4sPerThread(32, RAGGED), 3);
  const ragged = flashSource({ d: 32, sparse: false, tiles: { ...RAGGED, variant: "v8" } });
  assert(ragged.includes("idx < BC * D4 && row0 + r < n"));
  const even = flashSource({ d: 64, sparse: false, tiles: { ...T8, variant: "v8" } });
  assert(!even.includes("if idx < BC * D4"));
  assertThrows(() => flashV8Body("no flash body", "v8"), Error, "must have");
  assertThrows(() => flashV8Body(flashV7Body("no v7"), "v8"), Error);
});

Deno.test("tiles: the v8 layouts are tile variants", () => {
  const limits = { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupStorageSize: 49152 };
  for (const variant of LAYOUTS) {
    assertEquals(tileProblem("flash", 64, "f32", { ...T8, variant }, limits), null);
    assertEquals(tileProblem("block-sparse", 64, "f32", { ...T8, variant }, limits), null);
  }
});

/** A mask whose CSR rows list their key blocks last to first: blocks past the diagonal first. */
class Reversed extends BlockMask {
  override csr(): { rowptr: Uint32Array; colidx: Uint32Array } {
    const { rowptr, colidx } = super.csr();
    for (let i = 0; i + 1 < rowptr.length; i++) {
      colidx.subarray(rowptr[i]!, rowptr[i + 1]!).reverse();
    }
    return { rowptr, colidx };
  }
}

const kernels = await getKernels();

/** Right against the reference (poisoned outputs) and counted as modeled, or throws. */
async function checkBoth(k: AttentionKernels, problem: AttentionProblem, seed: number) {
  assertClose(await runChecked(k, problem, seed));
  const r = await countRun(k, problem, seed + 1, { check: true });
  assertClose(r.check!);
  assertEquals(r.counted, r.modeled, `${JSON.stringify(problem.shape)} ${problem.tiles?.variant}`);
}

Deno.test({
  name: "flash v8: right against the float64 reference and counted as modeled (d 32, 64, 128)",
  ignore: kernels === null,
  async fn() {
    for (const d of [32, 64, 128]) {
      for (const n of [1, 2, 37, 77, 130]) {
        for (const causal of [false, true]) {
          const shape: AttentionShape = { batch: 1, heads: 2, n, d, dtype: "f32", causal };
          await checkBoth(kernels!, { kernel: "flash", shape, tiles: { ...T8, variant: "v8" } }, n);
        }
      }
    }
  },
});

Deno.test({
  name: "flash v8k, v8v, v8e and a ragged v8 tile: right and counted as modeled",
  ignore: kernels === null,
  async fn() {
    const cases: [Tiles, number, number][] = [
      [{ ...T8, variant: "v8k" }, 64, 37],
      [{ ...T8, variant: "v8k" }, 64, 130],
      [{ ...T8, variant: "v8v" }, 64, 37],
      [{ ...T8, variant: "v8v" }, 64, 130],
      [{ ...T8, variant: "v8e" }, 64, 37],
      [{ ...T8, variant: "v8e" }, 64, 130],
      [{ ...RAGGED, variant: "v8" }, 32, 37],
      [{ ...RAGGED, variant: "v8" }, 32, 77],
    ];
    for (const [tiles, d, n] of cases) {
      for (const causal of [false, true]) {
        const shape: AttentionShape = { batch: 1, heads: 2, n, d, dtype: "f32", causal };
        await checkBoth(kernels!, { kernel: "flash", shape, tiles }, 7 * n + d);
      }
    }
  },
});

Deno.test({
  name: "block-sparse v8: right and counted as modeled (list refill, blocks past the diagonal)",
  ignore: kernels === null,
  async fn() {
    for (const variant of LAYOUTS) {
      const tiles = { ...T8, variant };
      for (const causal of [false, true]) {
        const shape: AttentionShape = { batch: 1, heads: 2, n: 77, d: 32, dtype: "f32", causal };
        await checkBoth(kernels!, { kernel: "block-sparse", shape, tiles }, 11);
        // Rows listed backwards: under causal the skipped blocks come before the kept ones.
        const m = makeMask({ kind: "random", n: 77, br: 8, bc: 8, density: 0.5, seed: 3 });
        const mask = new Reversed(m.kind, 77, 8, 8, m.bits);
        await checkBoth(kernels!, { kernel: "block-sparse", shape, tiles, mask }, 13);
      }
    }
    // 75 key blocks a row: block_list (64 indices) is refilled while the next block is fetched.
    const shape: AttentionShape = {
      batch: 1,
      heads: 1,
      n: 597,
      d: 32,
      dtype: "f32",
      causal: false,
    };
    const mask = { kind: "random" as const, density: 1, seed: 1 };
    const tiles = { ...T8, variant: "v8" as const };
    await checkBoth(kernels!, { kernel: "block-sparse", shape, tiles, mask }, 17);
  },
});

Deno.test({
  // f16 storage (f32 arithmetic): the registers hold vec4<f16>. Needs shader-f16: lavapipe
  // through Vulkan (CI's lavapipe section runs kernels/flash/), not llvmpipe through GL.
  name: "flash and block-sparse v8 at f16 storage: right and counted as modeled (shader-f16)",
  ignore: kernels === null || !kernels.gpu.f16,
  async fn() {
    for (const variant of LAYOUTS) {
      for (
        const [kernel, n, causal] of [["flash", 77, true], ["block-sparse", 37, false]] as const
      ) {
        const shape: AttentionShape = { batch: 1, heads: 2, n, d: 64, dtype: "f16", causal };
        await checkBoth(kernels!, { kernel, shape, tiles: { ...T8, variant } }, 19 + n);
      }
    }
  },
});

Deno.test({
  name: "flash v8: a block stored one iteration late fails the reference check",
  ignore: kernels === null,
  async fn() {
    // Inside the loop, fetch the current block again instead of the next: block bi then
    // computes with block bi - 1's K (the first block right), and the last is never read.
    const from = "      k_pf = fetch_kv(false, base, k_next, n, t);";
    const mutant = mutantKernels(kernels!, from, from.replace("k_next", "k0"));
    const shape: AttentionShape = { batch: 1, heads: 2, n: 37, d: 32, dtype: "f32", causal: false };
    const r = await runChecked(
      mutant,
      { kernel: "flash", shape, tiles: { ...T8, variant: "v8" } },
      5,
    );
    assertEquals(mutant.cache.mutated, 1);
    assert(r.error > 1e-2, `the late mutant passed: error ${r.error}`);
  },
});
