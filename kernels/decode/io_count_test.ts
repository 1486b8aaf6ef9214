import { assert, assertEquals } from "@std/assert";
import { mulberry32 } from "../../core/rng.ts";
import { totalBytes } from "../kernel.ts";
import { getKernels, mutantKernels, trafficDifferences } from "../testing.ts";
import { compulsoryDecodeBytes } from "./modeled.ts";
import { DECODE_KERNELS, type DecodeKernelName } from "./program.ts";
import {
  assertDecodeClose,
  checkDecode,
  type DecodeProblem,
  describeDecode,
  prepareDecode,
} from "./testing.ts";
import { BLOCK_SIZES, contextLengths, type DecodeShape } from "./workload.ts";
import type { Tiles } from "../../core/shapes.ts";

// The counting variant of each decode kernel adds up, per binding and direction, the bytes it
// reads and writes; modeled.ts predicts them from the plan. They must agree exactly, on seeded
// random workloads (set ATTNBENCH_TEST_SEED to draw others; failures name the seed and case).

const kernels = await getKernels();
const noGpu = kernels === null;
const SEED = Number(Deno.env.get("ATTNBENCH_TEST_SEED") ?? 20260514);
const CASES = 52;

interface CountCase {
  shape: DecodeShape;
  splitTokens?: number;
  blockSize: number;
  tableSeed: number;
  tiles?: Tiles;
  label: string;
}

/** Split-pass tiles a third of the cases draw instead of the default: lanes 4–8, 1–3 tokens a
 * round, segments of one round (a table stage every 8 tokens) to two; little unrolled code, since
 * llvmpipe compiles every (tiles, d, group) anew. decode_test.ts checks lanes 1–16. */
const TILE_SETS: readonly Tiles[] = [
  { br: 32, bc: 16, rm: 1, tx: 4 },
  { br: 32, bc: 24, rm: 3, tx: 8 },
  { br: 64, bc: 8, rm: 1, tx: 8 },
];

/** Random batches (1–6 sequences, lengths 1–300 from the three distributions), MHA and GQA,
 * d of 32/64/128, block sizes 8–256, default or random split sizes. */
function countCases(seed: number): CountCase[] {
  const rand = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]) => xs[int(0, xs.length - 1)]!;
  const trace = [1, 2, 17, 31, 64, 65, 128, 199, 300];
  return Array.from({ length: CASES }, (_, i) => {
    const count = int(1, 6);
    const lens = i % 3 === 0
      ? contextLengths({ kind: "uniform", min: 1, max: 300, count, seed: int(1, 2 ** 30) })
      : i % 3 === 1
      ? contextLengths({ kind: "trace", values: trace, count, seed: int(1, 2 ** 30) })
      : contextLengths({ kind: "fixed", len: int(1, 300), count });
    const [heads, kvHeads] = pick([[1, 1], [2, 2], [4, 1], [4, 2], [8, 2], [6, 3]] as const);
    return {
      shape: { lens, heads, kvHeads, d: pick([32, 64, 128]), dtype: "f32" },
      splitTokens: rand() < 0.3 ? undefined : int(1, 200),
      blockSize: rand() < 0.3 ? BLOCK_SIZES.default : int(BLOCK_SIZES.min, BLOCK_SIZES.max),
      tableSeed: int(1, 2 ** 30),
      tiles: rand() < 2 / 3 ? undefined : pick(TILE_SETS),
      label: `ATTNBENCH_TEST_SEED=${seed} case ${i}`,
    };
  });
}

function problemOf(kernel: DecodeKernelName, c: CountCase): DecodeProblem {
  return {
    kernel,
    shape: c.shape,
    splitTokens: c.splitTokens,
    blockSize: kernel === "paged-decode" ? c.blockSize : undefined,
    tableSeed: c.tableSeed,
    tiles: c.tiles,
    count: true,
  };
}

Deno.test("the random decode cases cover lengths, heads, head dims, blocks and splits", () => {
  const cases = countCases(SEED);
  assert(cases.length >= 50);
  const lens = cases.flatMap((c) => c.shape.lens);
  assert(lens.includes(1) && lens.some((n) => n > 256) && new Set(lens).size >= 30);
  for (const d of [32, 64, 128]) assert(cases.some((c) => c.shape.d === d), `d=${d}`);
  assert(cases.some((c) => c.shape.heads > c.shape.kvHeads), "GQA");
  assert(
    cases.some((c) => c.shape.lens.length > 1) && cases.some((c) => c.splitTokens === undefined),
  );
  assert(new Set(cases.map((c) => c.blockSize)).size >= 10, "block sizes spread");
  for (const t of [undefined, ...TILE_SETS]) assert(cases.some((c) => c.tiles === t), "tiles");
  assertEquals(countCases(SEED), cases, "reproducible");
});

for (const kernel of DECODE_KERNELS) {
  Deno.test({
    name: `${kernel}: counted bytes equal modeled bytes, per binding, on ${CASES} workloads`,
    ignore: noGpu,
    async fn() {
      const failures: string[] = [];
      for (const c of countCases(SEED)) {
        const p = await prepareDecode(kernels!, problemOf(kernel, c));
        try {
          p.resetCounters();
          const r = await checkDecode(p, c.tableSeed);
          const counted = await p.readCounters();
          const modeled = p.plan.modeledTraffic();
          const where = `${c.label}: ${describeDecode(p, c.tableSeed)}`;
          failures.push(...trafficDifferences(counted, modeled).map((d) => `${where}: ${d}`));
          try {
            assertDecodeClose(r); // the counting variant computes the same O
          } catch (e) {
            failures.push(`${where}: ${(e as Error).message}`);
          }
          // K and V are the compulsory ones: every live row once; the rest is overhead.
          const kv = compulsoryDecodeBytes(c.shape) - 2 * c.shape.lens.length * c.shape.heads *
              c.shape.d * 4;
          const kvRead = counted.k!.read + counted.v!.read;
          if (kvRead !== kv) failures.push(`${where}: K+V read ${kvRead}, compulsory ${kv}`);
          assert(totalBytes(modeled) >= compulsoryDecodeBytes(c.shape));
        } finally {
          p.destroy();
        }
      }
      assertEquals(failures, [], `${failures.length} counted ≠ modeled (or wrong O) for ${kernel}`);
    },
  });
}

Deno.test({
  name: "a kernel that counts K's bytes under V fails the comparison (same total)",
  ignore: noGpu,
  async fn() {
    const shape: DecodeShape = { lens: [29, 70], heads: 4, kvHeads: 2, d: 32, dtype: "f32" };
    for (const kernel of DECODE_KERNELS) {
      const mutant = mutantKernels(
        kernels!,
        "count_read(SLOT_K, 4u * T_BYTES);",
        "count_read(SLOT_V, 4u * T_BYTES);",
      );
      const p = await prepareDecode(mutant, { kernel, shape, count: true });
      try {
        assertEquals(mutant.cache.mutated, 1, `${kernel}: K's count not found`);
        p.resetCounters();
        await p.run();
        const counted = await p.readCounters();
        const modeled = p.plan.modeledTraffic();
        assertEquals(totalBytes(counted), totalBytes(modeled), kernel);
        assertEquals(trafficDifferences(counted, modeled).map((d) => d.split(":")[0]), [
          "k.read",
          "v.read",
        ]);
      } finally {
        p.destroy();
      }
    }
  },
});

Deno.test({
  name: "a paged kernel that skips the last partial block reads fewer K bytes than modeled",
  ignore: noGpu,
  async fn() {
    const shape: DecodeShape = { lens: [40, 100], heads: 2, kvHeads: 1, d: 32, dtype: "f32" };
    const mutant = mutantKernels(
      kernels!,
      "let end = min(start + params.chunk, len);",
      "let end = min(start + params.chunk, max(len / params.block * params.block, 1u));",
    );
    const p = await prepareDecode(mutant, {
      kernel: "paged-decode",
      shape,
      blockSize: 16,
      splitTokens: 64,
      count: true,
    });
    try {
      assertEquals(mutant.cache.mutated, 1);
      p.resetCounters();
      await p.run();
      const counted = await p.readCounters();
      const modeled = p.plan.modeledTraffic();
      // 40 = 2·16 + 8 and 100 = 6·16 + 4: 12 rows of K (and V) left unread, 128 bytes each.
      assertEquals(modeled.k!.read - counted.k!.read, 12 * 128);
      assertEquals(modeled.v!.read - counted.v!.read, 12 * 128);
    } finally {
      p.destroy();
    }
  },
});
