// flash v7 (interleaved output columns, per-thread row sums; BENCHMARKS.md issue 10): its source, and flash and
// block-sparse built from it checked against the float64 reference (outputs poisoned, sizes
// that are not multiples of the tiles, causal and not) with counted == modeled bytes.
//
// CI runs kernels/flash/ on llvmpipe (portable path) and on lavapipe (subgroups of 8 lanes):
// v7 uses no subgroup operation, so both must agree with the reference alike.
import { assert, assertEquals, assertThrows } from "@std/assert";
import type { AttentionShape, Tiles } from "../../core/shapes.ts";
import { countRun } from "../check.ts";
import { tileProblem } from "../tiles.ts";
import { assertClose, getKernels, runChecked } from "../testing.ts";
import { flashKey, flashLayout, flashSource, flashV7Body, flashWorkgroupBytes } from "./mod.ts";

// RD4 = d / 16 > 1 at every head dim below, so v5's and v7's columns differ everywhere.
const V7: Tiles = { br: 8, bc: 8, rm: 2, tx: 4, variant: "v7" };
const V5: Tiles = { br: 8, bc: 8, rm: 2, tx: 4 };

Deno.test("flash v7: its own key and source, v5's workgroup memory", () => {
  const knobs = { d: 64, sparse: false };
  assertEquals(flashLayout(64, V7), "v7");
  assertEquals(flashLayout(64, V5), "v5");
  assert(flashKey({ ...knobs, tiles: V7 }).endsWith("/v7"));
  assert(flashKey({ ...knobs, tiles: V5 }).endsWith("/v5"));
  const v7 = flashSource({ ...knobs, tiles: V7 });
  const v5 = flashSource({ ...knobs, tiles: V5 });
  // Both column uses (the V read and the O write) are v7's, none is left v5's.
  assert(!v7.includes("tx * RD4"), "v7 keeps a v5 column");
  assertEquals(v7.split("c * TX + tx").length, v5.split("tx * RD4 + c").length);
  assert(v5.split("tx * RD4 + c").length >= 3);
  // The row sums: v5 adds the whole row's p in the P·V loop, v7 each thread its own p.
  assert(v5.includes("l[i] += p4[i].x") && !v7.includes("l[i] += p4[i].x"));
  assert(v7.includes("l[i] += p;") && v7.includes("l[i] = sum;"));
  assertEquals(flashWorkgroupBytes(64, "f32", V7), flashWorkgroupBytes(64, "f32", V5));
  assertThrows(() => flashV7Body("no flash body"), Error, "flash.wgsl no longer has");
});

Deno.test("tiles: a variant not in TILE_VARIANTS is a tile problem", () => {
  const limits = { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupStorageSize: 49152 };
  assertEquals(tileProblem("flash", 64, "f32", V7, limits), null);
  const bad = { ...V5, variant: "v9" } as unknown as Tiles;
  assertEquals(
    tileProblem("flash", 64, "f32", bad, limits),
    'tile variant "v9" is not one of v7, v8, v8k, v8v, v8e',
  );
});

const kernels = await getKernels();

Deno.test({
  name: "flash v7: right against the float64 reference and counted as modeled",
  ignore: kernels === null,
  async fn() {
    const cases = [["flash", 37, 32], ["flash", 19, 128], ["block-sparse", 70, 64]] as const;
    for (const [kernel, n, d] of cases) {
      for (const causal of [false, true]) {
        const shape: AttentionShape = { batch: 1, heads: 2, n, d, dtype: "f32", causal };
        const problem = { kernel, shape, tiles: V7 };
        assertClose(await runChecked(kernels!, problem, 300 + n + d));
        const r = await countRun(kernels!, problem, 9 + n, { check: false });
        assertEquals(r.counted, r.modeled);
      }
    }
  },
});
