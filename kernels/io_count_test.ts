import { assert, assertEquals, assertRejects } from "@std/assert";
import { prepareAttention, type PreparedAttention } from "./attention.ts";
import { totalBytes } from "./kernel.ts";
import { mulberry32 } from "../core/rng.ts";
import { standardWith } from "./standard/mod.ts";
import {
  assertClose,
  checkPrepared,
  describeCase,
  getKernels,
  mutantKernels,
  trafficDifferences,
} from "./testing.ts";
import { type AttentionShape, HEAD_DIMS, MASK_KINDS, type Tiles } from "../core/shapes.ts";
import {
  BUILTIN_KERNEL_NAMES as KERNELS,
  findKernel,
  type KernelName,
  modeledTraffic,
  problemOf,
} from "./registry.ts";

const FORWARD = KERNELS.filter((k) => findKernel(k)!.mode === "fwd");

// The counting variant of every kernel adds up, per binding and direction, the bytes it reads
// and writes; its plan's modeledTraffic predicts them from the loop structure. They must agree
// exactly, for every kernel of the registry.
//
// Shapes are drawn from a seeded PRNG; set ATTNBENCH_TEST_SEED to draw other ones. Every
// failure message names the seed, the case and the shape, so it can be replayed.

const kernels = await getKernels();
const noGpu = kernels === null;
const SEED = Number(Deno.env.get("ATTNBENCH_TEST_SEED") ?? 20240917);
const RANDOM_SHAPES = 54;
const DENSITIES = [0.05, 0.25, 0.5, 1];

interface CountCase {
  shape: AttentionShape;
  mask: { kind: (typeof MASK_KINDS)[number]; density: number; seed: number };
  label: string;
}

/** A few fixed edge sizes, then random n in [1, 300], d in {32, 64, 128}, B and H in 1..3. */
function countCases(seed: number): CountCase[] {
  const rand = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const ns = [1, 2, 8, 9, 300, ...Array.from({ length: RANDOM_SHAPES }, () => int(1, 300))];
  return ns.map((n, i) => {
    const shape: AttentionShape = {
      batch: int(1, 3),
      heads: int(1, 3),
      n,
      d: HEAD_DIMS[int(0, HEAD_DIMS.length - 1)]!,
      dtype: "f32",
      causal: i % 2 === 1,
    };
    const mask = {
      kind: MASK_KINDS[i % MASK_KINDS.length]!,
      density: DENSITIES[int(0, DENSITIES.length - 1)]!,
      seed: int(1, 2 ** 30),
    };
    return { shape, mask, label: `ATTNBENCH_TEST_SEED=${seed} case ${i}` };
  });
}

/** One counted run: fresh inputs, poisoned O, output checked, counters compared. */
async function countOnce(p: PreparedAttention, seed: number, label: string): Promise<string[]> {
  p.resetCounters();
  const r = await checkPrepared(p, seed);
  const counted = await p.readCounters();
  const modeled = modeledTraffic(p.kernel, p.shape, p.tiles, p.mask);
  const where = `${label}: ${describeCase(p, seed)}`;
  const failures = trafficDifferences(counted, modeled).map((d) => `${where}: ${d}`);
  try {
    assertClose(r); // the counting variant computes the same O
  } catch (e) {
    failures.push(`${where}: ${(e as Error).message}`);
  }
  return failures;
}

async function countSweep(kernel: KernelName, cases: CountCase[], tiles?: Tiles): Promise<void> {
  const failures: string[] = [];
  let causal = 0;
  for (const c of cases) {
    const p = await prepareAttention(kernels!, {
      kernel,
      shape: c.shape,
      tiles,
      mask: c.mask,
      count: true,
    });
    try {
      failures.push(...await countOnce(p, c.mask.seed, c.label));
      if (c.shape.causal) causal++;
    } finally {
      p.destroy();
    }
  }
  assert(causal > 0 && causal < cases.length, "both causal and not");
  assertEquals(failures, [], `${failures.length} counted ≠ modeled (or wrong O) for ${kernel}`);
}

Deno.test("the random cases cover the sizes, head dims, masks and densities asked for", () => {
  const cases = countCases(SEED);
  assert(cases.length >= 50 + 5);
  const random = cases.slice(5);
  assert(random.every((c) => c.shape.n >= 1 && c.shape.n <= 300));
  for (const d of HEAD_DIMS) assert(random.some((c) => c.shape.d === d), `d=${d}`);
  for (const kind of MASK_KINDS) {
    assert(new Set(cases.filter((c) => c.mask.kind === kind).map((c) => c.mask.density)).size >= 3);
  }
  assert(random.some((c) => c.shape.batch > 1) && random.some((c) => c.shape.heads > 1));
  assert(new Set(random.map((c) => c.shape.n)).size >= 40, "n is spread");
  // Reproducible: the same seed draws the same cases.
  assertEquals(countCases(SEED), cases);
});

for (const kernel of KERNELS) {
  Deno.test({
    name: `${kernel}: counted bytes equal modeled bytes, per binding, on ${
      RANDOM_SHAPES + 5
    } shapes`,
    ignore: noGpu,
    fn: () => countSweep(kernel, countCases(SEED)),
  });
}

Deno.test({
  name: "counted bytes equal modeled bytes with non-default tiles",
  ignore: noGpu,
  async fn() {
    const cases = countCases(SEED + 1).slice(0, 8).map((c) => ({
      ...c,
      shape: { ...c.shape, d: 32 },
    }));
    // The backward kernels' br ≠ bc counts: backward/io_count_test.ts (the same idea, its tiles).
    for (const tiles of [{ br: 16, bc: 8, rm: 2, tx: 2 }, { br: 8, bc: 16, rm: 1, tx: 4 }]) {
      // The decode kernels' tiles are other knobs: decode/io_count_test.ts draws them.
      for (const kernel of FORWARD.filter((k) => problemOf(k) === "attention")) {
        await countSweep(kernel, cases, tiles);
      }
    }
  },
});

Deno.test({
  name: "counters add up over runs until reset, and need the counting variant",
  ignore: noGpu,
  async fn() {
    const shape = { batch: 2, heads: 1, n: 45, d: 64, dtype: "f32", causal: true } as const;
    for (const kernel of KERNELS) {
      const p = await prepareAttention(kernels!, { kernel, shape, count: true });
      try {
        const once = modeledTraffic(kernel, shape, p.tiles, p.mask);
        p.resetCounters();
        await p.run();
        await p.run();
        const twice = await p.readCounters();
        for (const [slot, v] of Object.entries(once)) {
          const t = twice[slot]!;
          assertEquals([t.read, t.write], [2 * v.read, 2 * v.write], `${kernel} ${slot}`);
        }
        p.resetCounters();
        assertEquals(totalBytes(await p.readCounters()), 0, `${kernel}: reset`);
      } finally {
        p.destroy();
      }
      const plain = await prepareAttention(kernels!, { kernel, shape });
      try {
        await assertRejects(() => plain.readCounters(), Error, "count");
      } finally {
        plain.destroy();
      }
    }
  },
});

Deno.test({
  name: "a kernel that counts K's bytes under Q fails the comparison (same total)",
  ignore: noGpu,
  async fn() {
    const from = "count_read(SLOT_K, 4u * T_BYTES);";
    const shape = { batch: 1, heads: 2, n: 29, d: 32, dtype: "f32", causal: false } as const;
    // The forward kernels count K in one place; the backward's version of this test is in
    // backward/io_count_test.ts.
    for (const kernel of FORWARD) {
      const mutant = mutantKernels(kernels!, from, "count_read(SLOT_Q, 4u * T_BYTES);");
      const p = await prepareAttention(mutant, { kernel, shape, count: true });
      try {
        assertEquals(mutant.cache.mutated, 1, `${kernel}: K's count not found`);
        p.resetCounters();
        await p.run();
        const counted = await p.readCounters();
        const modeled = modeledTraffic(kernel, shape, p.tiles, p.mask);
        assertEquals(totalBytes(counted), totalBytes(modeled), kernel);
        assertEquals(trafficDifferences(counted, modeled).map((d) => d.split(":")[0]), [
          "q.read",
          "k.read",
        ]);
      } finally {
        p.destroy();
      }
    }
  },
});

Deno.test({
  name: "counters carry into their high word past 2³² bytes",
  ignore: noGpu,
  async fn() {
    // A mutant that counts each K read 65536 times over: K's total passes 2³² while every
    // thread's private sum stays below it, so the 64-bit carry in add64 must be right.
    const from = "count_read(SLOT_K, 4u * T_BYTES);";
    const mutant = mutantKernels(kernels!, from, "count_read(SLOT_K, 4u * T_BYTES * 65536u);");
    const shape = { batch: 1, heads: 1, n: 97, d: 32, dtype: "f32", causal: false } as const;
    const p = await prepareAttention(mutant, { kernel: "flash", shape, count: true });
    try {
      assertEquals(mutant.cache.mutated, 1);
      p.resetCounters();
      await p.run();
      const counted = await p.readCounters();
      const modeled = modeledTraffic("flash", shape, p.tiles, null);
      assert(counted.k!.read > 2 ** 32, `${counted.k!.read}`);
      assertEquals(counted.k!.read, modeled.k!.read * 65536);
      assertEquals({ ...counted, k: modeled.k }, modeled);
    } finally {
      p.destroy();
    }
  },
});

Deno.test({
  name: "standard softmax: rows longer than its register cache are right and counted",
  ignore: noGpu,
  async fn() {
    // The softmax keeps up to 64 elements a thread in registers (rows up to 256 × 64 = 16384);
    // longer rows take a second path. Knobs of 4 threads a row caching 32 elements each (rows
    // up to 128 cached) take it at n = 300 and 520 without a large S. The tail past the cache
    // is read twice (online max and sum, normalisation), both only up to the causal end of the
    // row; the cached part only up to it too.
    const cached = 4 * 32;
    const kernel = standardWith("standard-long-rows", { softmaxThreads: 4, softmaxCache: 32 });
    for (const n of [300, 520]) {
      for (const causal of [false, true]) {
        const shape = { batch: 1, heads: 2, n, d: 32, dtype: "f32", causal } as const;
        // Small tiles, so the other two passes have fewer threads.
        const p = await prepareAttention(kernels!, { kernel, shape, tiles: TILES8, count: true });
        try {
          assert(n > cached);
          p.resetCounters();
          const r = await checkPrepared(p, n);
          assertClose(r);
          const counted = await p.readCounters();
          let sReads = 0;
          for (let row = 0; row < n; row++) {
            const end = causal ? row + 1 : n;
            sReads += Math.min(end, cached) + 2 * Math.max(0, end - cached);
          }
          assertEquals(counted.s!.read, 2 * 4 * sReads, r.label);
          assertEquals(counted, p.plan.modeledTraffic(), r.label);
        } finally {
          p.destroy();
        }
      }
    }
  },
});

/** Small tiles, so a mutant's other passes have few threads. */
const TILES8 = { br: 8, bc: 8, rm: 2, tx: 4 };
