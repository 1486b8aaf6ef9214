import { assert, assertEquals } from "@std/assert";
import type { AttentionShape, Tiles } from "../../core/shapes.ts";
import { HEAD_DIMS, MASK_KINDS } from "../../core/shapes.ts";
import { mulberry32 } from "../../core/rng.ts";
import { tolerance } from "../../core/tolerances.ts";
import { prepareAttention } from "../attention.ts";
import { totalBytes } from "../kernel.ts";
import { BlockMask, makeMask } from "../masks.ts";
import { getKernels, mutantKernels, trafficDifferences } from "../testing.ts";
import { modeledBackward } from "./modeled.ts";
import { type BackwardFamily, DS_CACHE, DS_THREADS } from "./program.ts";
import { countEachPass, runBackward } from "./testing.ts";

// The counting variant of every backward pass adds up, per binding and direction, the bytes it
// reads and writes; modeled.ts predicts them from the loop structure. They must agree exactly.
// The registry's generic sweep (`../io_count_test.ts`) holds every backward kernel to it on 59
// seeded random shapes with the gradients checked; here: tilings with br ≠ bc, a mutant that
// miscounts, the standard dS pass's long rows, and the model worked by hand.
//
// Shapes are drawn from a seeded PRNG; set ATTNBENCH_TEST_SEED to draw other ones. Every
// failure message names the seed, the case and the shape, so it can be replayed.

const kernels = await getKernels();
const noGpu = kernels === null;
const SEED = Number(Deno.env.get("ATTNBENCH_TEST_SEED") ?? 20240917);
const TILES: Tiles = { br: 8, bc: 8, rm: 2, tx: 4 };

interface CountCase {
  shape: AttentionShape;
  mask: { kind: (typeof MASK_KINDS)[number]; density: number; seed: number };
  label: string;
}

/** Random n in [1, 160], d in {32, 64, 128}, B and H in 1..3, causal alternating. */
function countCases(seed: number, count: number): CountCase[] {
  const rand = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  return Array.from({ length: count }, (_, i) => ({
    shape: {
      batch: int(1, 3),
      heads: int(1, 3),
      n: int(1, 160),
      d: HEAD_DIMS[int(0, HEAD_DIMS.length - 1)]!,
      dtype: "f32",
      causal: i % 2 === 1,
    },
    mask: {
      kind: MASK_KINDS[i % MASK_KINDS.length]!,
      density: [0.1, 0.3, 0.6, 1][int(0, 3)]!,
      seed: int(1, 2 ** 30),
    },
    label: `ATTNBENCH_TEST_SEED=${seed} case ${i}`,
  }));
}

/** One counted, checked run; its failures. */
async function countOnce(kernel: BackwardFamily, c: CountCase, tiles: Tiles): Promise<string[]> {
  const mask = kernel === "block-sparse"
    ? makeMask({ ...c.mask, n: c.shape.n, br: tiles.br, bc: tiles.bc })
    : undefined;
  const r = await runBackward(kernels!, { kernel, shape: c.shape, tiles, mask, count: true });
  return [
    ...trafficDifferences(r.counted!, r.modeled).map((d) => `${c.label}: ${r.check.label}: ${d}`),
    ...r.failures,
  ];
}

Deno.test({
  name: "backward: counted bytes equal modeled bytes with br ≠ bc",
  ignore: noGpu,
  async fn() {
    const failures: string[] = [];
    const cases = countCases(SEED + 1, 6).map((c) => ({ ...c, shape: { ...c.shape, d: 32 } }));
    for (const tiles of [{ br: 16, bc: 8, rm: 2, tx: 4 }, { br: 8, bc: 16, rm: 1, tx: 4 }]) {
      for (const kernel of ["flash", "block-sparse", "standard"] as const) {
        for (const c of cases) failures.push(...await countOnce(kernel, c, tiles));
      }
    }
    assertEquals(failures, []);
  },
});

Deno.test({
  name: "backward: a pass that counts K's bytes under Q fails the comparison (same total)",
  ignore: noGpu,
  async fn() {
    const shape: AttentionShape = { batch: 1, heads: 2, n: 21, d: 32, dtype: "f32", causal: true };
    for (const kernel of ["flash", "standard"] as const) {
      const from = kernel === "flash"
        ? "count_read(SLOT_K, 4u * T_BYTES);"
        : "const SLOT_B: u32 = SLOT_K;";
      const to = kernel === "flash"
        ? "count_read(SLOT_Q, 4u * T_BYTES);"
        : "const SLOT_B: u32 = SLOT_Q;";
      const mutant = mutantKernels(kernels!, from, to);
      const prepared = await prepareAttention(mutant, {
        kernel: `${kernel}-bwd`,
        shape,
        tiles: TILES,
        count: true,
      });
      try {
        assert(mutant.cache.mutated > 0, `${kernel}: K's count not found`);
        prepared.resetCounters();
        prepared.upload(prepared.plan.randomInputs(1));
        await prepared.run();
        const counted = await prepared.readCounters();
        const modeled = modeledBackward(kernel, shape, TILES, null);
        assertEquals(totalBytes(counted), totalBytes(modeled), kernel);
        assertEquals(trafficDifferences(counted, modeled).map((d) => d.split(":")[0]), [
          "q.read",
          "k.read",
        ]);
      } finally {
        prepared.destroy();
      }
    }
  },
});

Deno.test({
  name: "standard backward dS: rows longer than its register cache are right and counted",
  ignore: noGpu,
  async fn() {
    // A mutant dS pass of 4 threads a row caches 4 × 32 = 128 elements a row; at n = 150 the
    // tail is read twice (for D, then for dS).
    const threads = 4;
    const mutant = mutantKernels(
      kernels!,
      `const TPR: u32 = ${DS_THREADS}u;`,
      `const TPR: u32 = ${threads}u;`,
    );
    const n = 150;
    assert(n > threads * DS_CACHE);
    for (const causal of [false, true]) {
      const shape: AttentionShape = { batch: 1, heads: 2, n, d: 32, dtype: "f32", causal };
      const r = await runBackward(mutant, {
        kernel: "standard",
        shape,
        tiles: TILES,
        count: true,
      });
      assertEquals(mutant.cache.mutated, causal ? 2 : 1, "only the dS pass is mutated");
      assertEquals(r.failures, []);
      for (const e of Object.values(r.check.errors)) assert(e <= tolerance("f32"));
      const counted = r.counted!;
      const reads = 2 * n * (n + (n - threads * DS_CACHE)) * 4;
      assertEquals(counted.dp!.read, reads);
      const modeled = modeledBackward("standard", shape, TILES, null);
      assertEquals(modeled.dp!.read, 2 * n * n * 4, "the model assumes 64 threads a row");
      assertEquals({ ...counted, p: modeled.p!, dp: modeled.dp! }, modeled);
      assertEquals(counted.p!.read - modeled.p!.read, reads - modeled.dp!.read);
    }
  },
});

Deno.test({
  name: "backward: each pass alone counts its own modeled bytes (per-pass GB/s in bench)",
  ignore: noGpu,
  async fn() {
    const shape: AttentionShape = { batch: 2, heads: 1, n: 45, d: 32, dtype: "f32", causal: true };
    const mask = makeMask({ kind: "random", n: 45, br: 8, bc: 8, density: 0.5, seed: 3 });
    for (const kernel of ["flash", "block-sparse", "standard"] as const) {
      const passes = await countEachPass(kernels!, {
        kernel: `${kernel}-bwd`,
        shape,
        tiles: TILES,
        mask: kernel === "block-sparse" ? mask : undefined,
      });
      for (const { name, counted, modeled } of passes) {
        assertEquals(counted, modeled, `${kernel} ${name}`);
      }
    }
  },
});

// Hand-worked traffic, so the model itself is pinned down: one head, n = 10, d = 32, f32
// (128 bytes a row), tiles 8 × 8: two query blocks (8 + 2 rows), two key blocks (8 + 2 rows).
const ROW = 32 * 4;
const shape10 = (causal: boolean): AttentionShape => ({
  batch: 1,
  heads: 1,
  n: 10,
  d: 32,
  dtype: "f32",
  causal,
});

Deno.test("modeled backward traffic of flash, worked by hand", () => {
  const t = modeledBackward("flash", shape10(false), TILES, null);
  // delta reads O and dO once, writes 10 f32. dkdv: each of 2 key blocks reads all 10 rows of
  // Q and dO (+ 10 lse, 10 D); dq: Q, dO, lse, D once more, and each of 2 query blocks reads all
  // of K and V; dkdv reads K, V once.
  assertEquals(t.o!, { read: 10 * ROW, write: 0 });
  assertEquals(t.q!, { read: 3 * 10 * ROW, write: 0 });
  assertEquals(t.dout!, { read: 4 * 10 * ROW, write: 0 });
  assertEquals(t.k!, { read: 3 * 10 * ROW, write: 0 });
  assertEquals(t.v!, { read: 3 * 10 * ROW, write: 0 });
  assertEquals(t.lse!, { read: 3 * 40, write: 0 });
  assertEquals(t.delta!, { read: 3 * 40, write: 40 });
  for (const g of ["dq", "dk", "dv"] as const) assertEquals(t[g]!, { read: 0, write: 10 * ROW });
  // Uniforms: 1 delta workgroup, 2 dkdv, 2 dq.
  assertEquals(t.uniform!.read, 5 * 16);
  // Only the flash backward's slots: no P, dP, dS, mask.
  assertEquals(Object.keys(t), [
    "q",
    "k",
    "v",
    "o",
    "dout",
    "lse",
    "delta",
    "dq",
    "dk",
    "dv",
    "uniform",
  ]);
  // Causal: pairs (0,0), (1,0), (1,1): key block 0 reads both query blocks (10 rows), key
  // block 1 only query block 1 (2 rows); query block 0 reads key block 0 (8 rows), block 1 both.
  const c = modeledBackward("flash", shape10(true), TILES, null);
  assertEquals(c.q!.read, (10 + 12) * ROW);
  assertEquals(c.k!.read, (10 + 18) * ROW);
});

Deno.test("modeled backward traffic of block-sparse, worked by hand", () => {
  // Row block 0 keeps key block 1 only, row block 1 keeps both.
  const mask = new BlockMask("random", 10, 8, 8, new Uint8Array([0, 1, 1, 1]));
  const t = modeledBackward("block-sparse", shape10(false), TILES, mask);
  // Pairs (0,1), (1,0), (1,1): dkdv reads Q rows 2 + (8 + 2); dq reads K rows 2 + (8 + 2).
  assertEquals(t.q!.read, (10 + 12) * ROW);
  assertEquals(t.k!.read, (10 + 12) * ROW);
  // Mask: 2 CSC pointer pairs + 3 entries, 2 CSR pointer pairs + 3 entries.
  assertEquals(t.mask!.read, 2 * (16 + 12));
  // Causal: (0,1) is wholly above the diagonal and skipped, its list entries still read.
  const c = modeledBackward("block-sparse", shape10(true), TILES, mask);
  assertEquals(c.q!.read, (10 + 4) * ROW);
  assertEquals(c.mask!.read, 56);
});

Deno.test("modeled backward traffic of standard, worked by hand", () => {
  const t = modeledBackward("standard", shape10(true), TILES, null);
  // P: read by dV (100) and by dS (100); dP written once, read once; dS written once, read by
  // dQ and by dK. All in full, causal or not.
  assertEquals(t.p!, { read: 800, write: 0 });
  assertEquals(t.dp!, { read: 400, write: 400 });
  assertEquals(t.ds!, { read: 800, write: 400 });
  // dO: dV's 2 key blocks and dP's 2 column blocks each read all of it; V: dP's 2 row blocks.
  assertEquals(t.dout!.read, 4 * 10 * ROW);
  assertEquals(t.v!.read, 2 * 10 * ROW);
  assertEquals(t.k!.read, 2 * 10 * ROW);
  assertEquals(t.q!.read, 2 * 10 * ROW);
  // Uniforms: 2 (dV) + 4 (dP) + 3 (dS, 4 rows a workgroup) + 2 (dQ) + 2 (dK) workgroups.
  assertEquals(t.uniform!.read, 13 * 16);
  // Only the standard backward's slots: no O, LSE, D.
  assertEquals(Object.keys(t), [
    "q",
    "k",
    "v",
    "dout",
    "p",
    "dp",
    "ds",
    "dq",
    "dk",
    "dv",
    "uniform",
  ]);
});
