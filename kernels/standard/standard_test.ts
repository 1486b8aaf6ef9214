import { assert, assertEquals } from "@std/assert";
import type { AttentionShape } from "../../core/shapes.ts";
import { countRun } from "../check.ts";
import {
  type CountedBytes,
  emptyTraffic,
  type Kernel,
  passTrafficOf,
  totalBytes,
} from "../kernel.ts";
import { countEachPass } from "../backward/testing.ts";
import { assertClose, getKernels, runChecked } from "../testing.ts";
import {
  pvSplits,
  softmaxShape,
  standard,
  standardChunks,
  type StandardKnobs,
  standardTraffic,
  standardWith,
} from "./mod.ts";

// Hand-worked traffic, so the model itself is pinned down (not only its agreement with the
// counters): one head, n = 10, d = 32, f32 (128 bytes a row), tiles 8 × 8, so two query blocks
// (8 + 2 rows) and two key blocks (8 + 2 rows).
const TILES8 = { br: 8, bc: 8, rm: 2, tx: 4 };
const TILES16 = { br: 16, bc: 8, rm: 2, tx: 4 };
const ROW = 32 * 4;

function shape10(causal: boolean): AttentionShape {
  return { batch: 1, heads: 1, n: 10, d: 32, dtype: "f32", causal };
}

function knobs10(splits: number, softmax = softmaxShape(10, {}, 0)): StandardKnobs {
  return { d: 32, tiles: TILES8, scoresTiles: TILES8, splits, softmax };
}

Deno.test("modeled traffic of standard, worked by hand", () => {
  const t = standardTraffic(shape10(true), knobs10(1));
  // Scores: a 2 × 2 grid of tiles; each reads its Q rows and K rows: Q and K twice over.
  assertEquals(t.q!.read, 2 * 10 * ROW);
  assertEquals(t.k!.read, 2 * 10 * ROW);
  // S: written in full (100 f32); the softmax reads each row up to its causal end, once (rows
  // fit its register cache): 1 + 2 + … + 10 = 55 elements.
  assertEquals(t.s!, { read: 55 * 4, write: 400 });
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

Deno.test("modeled traffic of standard with P·V split and rows past the softmax cache, by hand", () => {
  // Two P·V splits: each writes a partial of every row (10 × 32 f32), the sum pass reads both
  // back and writes O; 2 more P·V workgroups, 2 sum workgroups (8 rows each).
  // Softmax of 2 threads a row caching 2 elements each: 4 elements of a row cached, the rest up
  // to the causal end read twice: rows 0..3 read 1..4, row i ≥ 4 reads 4 + 2·(i + 1 - 4).
  const softmax = softmaxShape(10, { softmaxThreads: 2, softmaxCache: 2 }, 0);
  assertEquals(softmax, { tpr: 2, rows: 128, cache: 2, sg: 0 });
  const t = standardTraffic(shape10(true), knobs10(2, softmax));
  assertEquals(t.part_o!, { read: 2 * 10 * ROW, write: 2 * 10 * ROW });
  assertEquals(t.o!.write, 10 * ROW);
  assertEquals(t.v!.read, 2 * 10 * ROW);
  assertEquals(t.s!.read, (1 + 2 + 3 + 4 + 6 * 4 + 2 * (1 + 2 + 3 + 4 + 5 + 6)) * 4);
  // 4 score tiles + 1 softmax workgroup (128 rows) + 2 × 2 P·V + 2 sum workgroups.
  assertEquals(t.uniform!.read, 11 * 16);
});

/** The target shape at its largest N: one head of S is 1 GiB, so one head a 2 GiB chunk. */
const SHAPE_16K: AttentionShape = {
  batch: 1,
  heads: 16,
  n: 16384,
  d: 64,
  dtype: "f32",
  causal: false,
};

Deno.test("pvSplits: enough workgroups at one head a chunk, none empty, within one binding", () => {
  const shape = SHAPE_16K;
  const tiles = { br: 128, bc: 32, rm: 8, tx: 4 };
  // 128 row blocks: 8 splits of 2048 keys make 1024 workgroups.
  assertEquals(pvSplits(shape, tiles, 1, 0, 2 ** 31), 8);
  // Every head in one dispatch: 2048 workgroups already.
  assertEquals(pvSplits(shape, tiles, 16, 0, 2 ** 31), 1);
  // 7 requested on 512 key blocks: 74 blocks a split, so 7 splits (none empty).
  assertEquals(pvSplits(shape, tiles, 1, 7, 2 ** 31), 7);
  // 5 requested on 3 key blocks: 3; the partials (B·H·N·d f32 = 64 MiB a split) capped.
  assertEquals(pvSplits({ ...shape, n: 77 }, { ...tiles, bc: 32 }, 1, 5, 2 ** 31), 3);
  assertEquals(pvSplits(shape, tiles, 1, 8, 3 * 2 ** 26), 3);
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
        const softmax = softmaxShape(37, {}, 0);
        const knobs = { d: 32, tiles, scoresTiles: tiles, splits: 1, softmax };
        assertEquals(r.modeled, standardTraffic(shape, knobs));
        // Each dispatch alone counts the bytes its pass models (per-pass GB/s of a chunk).
        const passes = await countEachPass(kernels, { kernel, shape, tiles });
        assertEquals(passes.length, 3 * expected!);
        for (const { name, counted, modeled } of passes) assertEquals(counted, modeled, name);
      }
    }
  },
});

/** Adds per-pass traffic up, slot by slot. */
function sumOf(passes: readonly CountedBytes[], slots: readonly string[]): CountedBytes {
  const sum = emptyTraffic(slots);
  for (const t of passes) {
    for (const [slot, x] of Object.entries(t)) {
      sum[slot]!.read += x.read;
      sum[slot]!.write += x.write;
    }
  }
  return sum;
}

Deno.test("standard's passes, split or not, each carry their bytes and add up to the whole", () => {
  // n = 200, f32: a head's S is 200 · 800 bytes. Limits: all of S, a head a chunk, 64 rows a
  // chunk (the last chunk of a head 8 rows); P·V unsplit and split (its sum pass; a binding
  // limit caps the splits: none left at 64 rows), scores tiles other than P·V's (16 query rows),
  // causal or not.
  const row = 200 * 4;
  const variants: [string, Kernel][] = [
    ["base", standardWith("s", { pvSplits: 1 })],
    ["ks3", standardWith("s-ks3", { pvSplits: 3 })],
    ["scores16-ks2", standardWith("s-sc", { scoresTiles: TILES16, pvSplits: 2 })],
  ];
  let chunkedWithSum = 0;
  for (const [name, kernel] of variants) {
    for (const causal of [false, true]) {
      const shape: AttentionShape = { batch: 1, heads: 2, n: 200, d: 32, dtype: "f32", causal };
      for (const [limit, chunks] of [[Infinity, 1], [200 * row, 2], [64 * row, 8]] as const) {
        const what = `${name} causal ${causal} limit ${limit}`;
        const plan = kernel.plan({ shape, tiles: TILES8, maxBindingBytes: limit });
        const passes = plan.passes();
        const perPass = passTrafficOf(plan);
        assertEquals(perPass.length, passes.length, what);
        assertEquals(passes.filter((p) => p.name.startsWith("scores")).length, chunks, what);
        assertEquals(sumOf(perPass, plan.slots), plan.modeledTraffic(), what);
        if (chunks > 1 && passes.some((p) => p.name === "pvsum")) chunkedWithSum++;
        for (const [i, t] of perPass.entries()) {
          // Every pass moves bytes beyond its uniform, and only of the slots its moves name.
          const { uniform, ...rest } = t;
          assert(uniform!.read > 0 && totalBytes(rest) > 0, `${what}: ${passes[i]!.name}`);
          for (const [slot, x] of Object.entries(rest)) {
            for (const dir of ["read", "write"] as const) {
              const named = passes[i]!.moves.some(([s, d]) => s === slot && d === dir);
              assert(x[dir] === 0 || named, `${what}: ${passes[i]!.name} ${slot} ${dir}`);
            }
          }
        }
      }
    }
  }
  // ks3 and scores16-ks2 keep their splits in head chunks, causal or not.
  assertEquals(chunkedWithSum, 4);
});

Deno.test("standardChunks: whole heads while a head fits, rows of a head after", () => {
  const shape = SHAPE_16K;
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

// The knobs the lead compares on the GPU, each checked here on small odd shapes: P·V split over
// key ranges (with the sum pass), rows longer than the softmax's register cache (the online
// (max, sum) path), a softmax row of 8 threads (whole subgroups on lavapipe's 8 lanes: the
// subgroup path there; the tree on llvmpipe), 4 threads (below a subgroup: always the tree), and
// scores tiles other than P·V's. Outputs poisoned, fresh inputs, counted == modeled.
Deno.test({
  name:
    "standard variants (P·V splits, long softmax rows, scores tiles): right, counted as modeled",
  ignore: chunkKernels === null,
  async fn() {
    const kernels = chunkKernels!;
    const variants: [string, Parameters<typeof standardWith>[1]][] = [
      ["ks3", { pvSplits: 3 }],
      ["sm8x4", { softmaxThreads: 8, softmaxCache: 4 }],
      ["sm4x8-ks2", { softmaxThreads: 4, softmaxCache: 8, pvSplits: 2 }],
      ["scores16", { scoresTiles: { br: 16, bc: 8, rm: 2, tx: 4 }, pvSplits: 2 }],
    ];
    for (const [name, o] of variants) {
      const kernel = standardWith(`standard-${name}`, o);
      for (const [n, causal] of [[37, false], [77, true]] as const) {
        const shape: AttentionShape = { batch: 1, heads: 2, n, d: 32, dtype: "f32", causal };
        const tiles = kernels.defaultTiles("standard", shape);
        const plan = kernel.plan({ shape, tiles, subgroupSize: kernels.gpu.subgroupSize });
        const size = kernels.gpu.subgroupSize;
        const softmax = plan.passes().find((p) => p.name === "softmax")!.key;
        // Where the device has subgroups (lavapipe: 8 lanes), rows of 8 or more threads use them.
        const tpr = softmaxShape(n, o, size).tpr;
        const sg = size > 0 && tpr % size === 0 ? size : 0;
        assert(softmax.endsWith(`-sg${sg}`), `${softmax}: expected subgroup size ${sg}`);
        if (Deno.env.get("ATTNBENCH_EXPECT_SUBGROUPS") === "1") assert(size > 0, "no subgroups");
        const ks = plan.passes().some((p) => p.name === "pvsum");
        assertEquals(ks, (o.pvSplits ?? 1) > 1, name);
        assertClose(await runChecked(kernels, { kernel, shape, tiles }, 7 + n));
        const r = await countRun(kernels, { kernel, shape, tiles }, 5, { check: false });
        assertEquals(r.counted, r.modeled, `${name} n=${n}`);
      }
    }
  },
});
