import { assert, assertEquals } from "@std/assert";
import type { AttentionShape } from "../../core/shapes.ts";
import { countRun } from "../check.ts";
import type { Kernel } from "../kernel.ts";
import { assertClose, getKernels, runChecked } from "../testing.ts";
import { standard, standardChunks, standardTraffic } from "./mod.ts";

// Hand-worked traffic, so the model itself is pinned down (not only its agreement with the
// counters): one head, n = 10, d = 32, f32 (128 bytes a row), tiles 8 × 8, so two query blocks
// (8 + 2 rows) and two key blocks (8 + 2 rows).
const TILES8 = { br: 8, bc: 8, rm: 2, tx: 4 };
const ROW = 32 * 4;

function shape10(causal: boolean): AttentionShape {
  return { batch: 1, heads: 1, n: 10, d: 32, dtype: "f32", causal };
}

Deno.test("modeled traffic of standard, worked by hand", () => {
  const t = standardTraffic(shape10(true), TILES8);
  // Scores: a 2 × 2 grid of tiles; each reads its Q rows and K rows: Q and K twice over.
  assertEquals(t.q!.read, 2 * 10 * ROW);
  assertEquals(t.k!.read, 2 * 10 * ROW);
  // S: written in full (100 f32), read once by the softmax (rows fit its register cache).
  assertEquals(t.s!, { read: 400, write: 400 });
  // P: written in full by the softmax, read in full by P·V, causal or not.
  assertEquals(t.p!, { read: 400, write: 400 });
  // P·V: each of the 2 row blocks reads all of V.
  assertEquals(t.v!.read, 2 * 10 * ROW);
  assertEquals(t.o!.write, 10 * ROW);
  // Uniforms: 4 score tiles + 2 softmax workgroups (8 rows each) + 2 P·V blocks, 16 bytes each.
  assertEquals(t.uniform!.read, 8 * 16);
  // No log-sum-exp, no mask: standard has no such slots.
  assertEquals(Object.keys(t).sort(), ["k", "o", "p", "q", "s", "uniform", "v"]);
});

// S and P split into chunks (standard/mod.ts, standardChunks): a binding limit far below the
// device's forces whole-head chunks and row chunks of one head; every chunking must compute the
// same O as the float64 reference (outputs poisoned) and count exactly the modeled bytes, which
// are those of the unsplit kernel.
const chunkKernels = await getKernels();

function chunked(maxBindingBytes: number): Kernel {
  return {
    ...standard,
    name: `standard-chunked-${maxBindingBytes}`,
    plan: (r) => standard.plan({ ...r, maxBindingBytes }),
  };
}

Deno.test({
  name: "standard split into head chunks and row chunks: right, counted as modeled",
  ignore: chunkKernels === null,
  async fn() {
    const kernels = chunkKernels!;
    for (const causal of [false, true]) {
      const shape: AttentionShape = { batch: 1, heads: 3, n: 37, d: 32, dtype: "f32", causal };
      const tiles = kernels.defaultTiles("standard", shape);
      const row = 37 * 4;
      // All of S (one chunk), two heads a chunk, and 16 rows (two of the 8-row tiles) a chunk.
      for (const [limit, expected] of [[3 * 37 * row, 1], [2 * 37 * row, 2], [20 * row, 9]]) {
        const kernel = chunked(limit!);
        const plan = kernel.plan({ shape, tiles });
        assertEquals(plan.passes().length, 3 * expected!);
        for (const b of plan.buffers.filter((b) => b.role === "scratch")) {
          assert(b.bytes <= limit!, `${b.name} ${b.bytes} > ${limit}`);
        }
        assertClose(await runChecked(kernels, { kernel, shape, tiles }, 31 + limit!));
        const r = await countRun(kernels, { kernel, shape, tiles }, 5, { check: false });
        assertEquals(r.counted, r.modeled);
        assertEquals(r.modeled, standardTraffic(shape, tiles));
      }
    }
  },
});

Deno.test("standardChunks: whole heads while a head fits, rows of a head after", () => {
  const shape: AttentionShape = {
    batch: 1,
    heads: 16,
    n: 16384,
    d: 64,
    dtype: "f32",
    causal: false,
  };
  const tiles = { br: 64, bc: 32, rm: 4, tx: 16 };
  const limit = 2 ** 31 - 4;
  assertEquals(standardChunks(shape, tiles, Infinity), [{ first: 0, heads: 16, rows: 16384 }]);
  const heads = standardChunks(shape, tiles, limit);
  assertEquals(heads.length, 16);
  assertEquals(heads[3], { first: 3 * 16384, heads: 1, rows: 16384 });
  const rows = standardChunks({ ...shape, n: 32768 }, tiles, limit);
  // 16383 rows fit in 2 GiB; a chunk takes a multiple of 64 (the query tile; 8 softmax rows).
  assertEquals(rows.slice(0, 3).map((c) => c.rows), [16320, 16320, 128]);
  assertEquals(rows.length, 48);
  assertEquals(rows[4], { first: 32768 + 16320, heads: 1, rows: 16320 });
  assertEquals(standardChunks(shape, tiles, 1000), []);
});
