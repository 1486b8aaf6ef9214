import { assert, assertEquals, assertRejects } from "@std/assert";
import { UsageError } from "../../core/errors.ts";
import type { PreparedAttention } from "../attention.ts";
import { countingBuffers, getKernels, mutantKernels } from "../testing.ts";
import { tolerance } from "../../core/tolerances.ts";
import type { DecodeKernelName } from "./program.ts";
import { maxRelError } from "../reference.ts";
import {
  assertDecodeClose,
  checkDecode,
  type DecodeProblem,
  prepareDecode,
  setupOf,
} from "./testing.ts";
import { BlockTableError, buildBlockTables, type DecodeShape } from "./workload.ts";

// Every decode kernel against the float64 reference on the adapter at hand (llvmpipe in CI):
// context lengths 1, primes and lengths that are not multiples of the block size or of the
// tile, grouped-query attention, several block and split sizes, outputs and partial results
// poisoned with NaN before each run, and NaN in every cache slot no live token fills.

const kernels = await getKernels();
const noGpu = kernels === null;
const f16 = kernels?.gpu.f16 ?? false;

/** 1, primes, block-size ± 1, a tile + 1: none of the larger ones a multiple of 8, 16 or 64. */
const LENS = [1, 2, 3, 5, 7, 13, 15, 17, 31, 61, 67, 127, 131, 257];

function prepared(problem: DecodeProblem): Promise<PreparedAttention> {
  return prepareDecode(kernels!, problem);
}

async function checked(problem: DecodeProblem, seed: number): Promise<void> {
  const p = await prepared(problem);
  try {
    const r = await checkDecode(p, seed);
    assertDecodeClose(r);
  } finally {
    p.destroy();
  }
}

interface Variant {
  heads: number;
  kvHeads: number;
  splitTokens?: number;
  blockSize?: number;
}

// MHA and GQA; the default split (one per tile here) and odd splits that cut tiles and blocks.
const VARIANTS: Variant[] = [
  { heads: 2, kvHeads: 2 },
  { heads: 4, kvHeads: 1, splitTokens: 37, blockSize: 8 },
  { heads: 8, kvHeads: 2, splitTokens: 100, blockSize: 32 },
  { heads: 2, kvHeads: 1, splitTokens: 300, blockSize: 256 },
];

for (const kernel of ["decode", "paged-decode"] as DecodeKernelName[]) {
  for (const d of [64, 128]) {
    Deno.test({
      name: `${kernel} d=${d} f32 matches the float64 reference (lengths 1, primes; MHA, GQA)`,
      ignore: noGpu,
      async fn() {
        for (const [i, v] of VARIANTS.entries()) {
          const shape: DecodeShape = {
            lens: LENS,
            heads: v.heads,
            kvHeads: v.kvHeads,
            d,
            dtype: "f32",
          };
          await checked({
            kernel,
            shape,
            splitTokens: v.splitTokens,
            blockSize: kernel === "paged-decode" ? v.blockSize : undefined,
            tableSeed: i + 1,
          }, 100 * d + i);
        }
      },
    });
  }
}

// The split pass's knobs: one lane a token (no lane sum) up to 16 (past lavapipe's 8-lane
// subgroups: the portable sum), 1–3 tokens a round, 32–128 threads, segments of one round to
// several; rounds and segments cut by every length, GQA.
const TILE_SETS = [
  { br: 32, bc: 32, rm: 1, tx: 1 },
  { br: 32, bc: 48, rm: 3, tx: 2 },
  { br: 64, bc: 16, rm: 1, tx: 4 },
  { br: 128, bc: 32, rm: 2, tx: 8 },
  { br: 128, bc: 8, rm: 1, tx: 16 },
];

for (const dtype of ["f32", "f16"] as const) {
  Deno.test({
    name:
      `decode and paged-decode ${dtype} every split-pass tile knob (threads, lanes, tokens a round)`,
    ignore: noGpu || (dtype === "f16" && !f16),
    async fn() {
      const shape: DecodeShape = { lens: [1, 37, 131, 257], heads: 4, kvHeads: 2, d: 64, dtype };
      for (const [i, tiles] of TILE_SETS.entries()) {
        for (const kernel of ["decode", "paged-decode"] as const) {
          await checked({ kernel, shape, tiles, splitTokens: i % 2 ? 100 : undefined }, 31 + i);
        }
      }
    },
  });
}

Deno.test({
  name: "decode: a reservation longer than the contexts (cap) changes nothing",
  ignore: noGpu,
  fn: () =>
    checked({
      kernel: "decode",
      shape: { lens: [3, 70], heads: 2, kvHeads: 1, d: 64, dtype: "f32" },
      cap: 200,
    }, 5),
});

Deno.test({
  name: "d=32 and every block size from 8 to 256 (paged)",
  ignore: noGpu,
  async fn() {
    const shape: DecodeShape = { lens: [1, 9, 33, 200], heads: 2, kvHeads: 1, d: 32, dtype: "f32" };
    for (const blockSize of [8, 9, 16, 24, 64, 100, 256]) {
      await checked({ kernel: "paged-decode", shape, blockSize, splitTokens: 90 }, blockSize);
    }
  },
});

Deno.test({
  name: "paged-decode gives exactly the contiguous decode's output on the same data",
  ignore: noGpu,
  async fn() {
    const shape: DecodeShape = {
      lens: [1, 5, 16, 17, 130, 61],
      heads: 4,
      kvHeads: 2,
      d: 64,
      dtype: "f32",
    };
    for (const splitTokens of [undefined, 23]) {
      const outs: Float32Array[] = [];
      for (const kernel of ["decode", "paged-decode"] as const) {
        const p = await prepared({ kernel, shape, splitTokens, tableSeed: 9 });
        try {
          // The same seed draws the same contiguous values; the paged plan pages them.
          const r = await checkDecode(p, 77);
          assertDecodeClose(r);
          outs.push(r.out);
        } finally {
          p.destroy();
        }
      }
      // The same splits, tiles and arithmetic in the same order: only the addressing differs.
      assertEquals(outs[1], outs[0], `split ${splitTokens}`);
    }
  },
});

Deno.test({
  name: "a malformed block table is refused before any buffer exists",
  ignore: noGpu,
  async fn() {
    const shape: DecodeShape = { lens: [20, 40], heads: 2, kvHeads: 1, d: 64, dtype: "f32" };
    const outOfPool = buildBlockTables(shape.lens, 16, { seed: 1 });
    outOfPool.table[outOfPool.stride + 2] = outOfPool.poolBlocks;
    const tooShort = buildBlockTables([20, 20], 16, { seed: 1 });
    for (
      const [tables, why] of [[outOfPool, "outside the pool"], [
        tooShort,
        "its table holds 2",
      ]] as const
    ) {
      const made = await countingBuffers(kernels!.gpu.device, async () => {
        await assertRejects(
          () => prepared({ kernel: "paged-decode", shape, tables }),
          BlockTableError,
          why,
        );
      });
      assertEquals(made, 0, why);
    }
  },
});

Deno.test({
  name: f16
    ? "decode and paged-decode f16 match the reference"
    : "f16 decode (skipped: this adapter has no shader-f16)",
  ignore: noGpu || !f16,
  async fn() {
    for (const kernel of ["decode", "paged-decode"] as const) {
      for (const d of [64, 128]) {
        const shape: DecodeShape = { lens: LENS, heads: 4, kvHeads: 2, d, dtype: "f16" };
        await checked({ kernel, shape, splitTokens: 100 }, d);
      }
    }
  },
});

Deno.test({
  name: "f16 is refused with a clear error on an adapter without shader-f16",
  ignore: noGpu || f16,
  async fn() {
    const shape: DecodeShape = { lens: [4], heads: 1, kvHeads: 1, d: 64, dtype: "f16" };
    await assertRejects(
      () => prepared({ kernel: "paged-decode", shape }),
      UsageError,
      "shader-f16",
    );
  },
});

// Mutants: a kernel with a deliberate bug must fail its check. Each mutation must find its
// target, and the unmutated kernel must pass on the same case.
async function mutantError(
  kernel: DecodeKernelName,
  from: string,
  to: string,
  problem: Omit<DecodeProblem, "kernel">,
): Promise<number> {
  const mutant = mutantKernels(kernels!, from, to);
  const p = await prepareDecode(mutant, { ...problem, kernel });
  try {
    assertEquals(mutant.cache.mutated, 1, `${kernel}: "${from}" not found`);
    return (await checkDecode(p, 3)).error;
  } finally {
    p.destroy();
  }
}

Deno.test({
  name:
    "mutants are caught: a paged kernel that skips the last partial block, a segment short by one",
  ignore: noGpu,
  async fn() {
    const shape: DecodeShape = { lens: [7, 40, 100], heads: 2, kvHeads: 1, d: 64, dtype: "f32" };
    const problem = { shape, splitTokens: 64, blockSize: 16 };
    await checked({ kernel: "paged-decode", ...problem }, 3);
    const skipPartial = await mutantError(
      "paged-decode",
      "let end = min(start + params.chunk, len);",
      "let end = min(start + params.chunk, max(len / params.block * params.block, 1u));",
      problem,
    );
    assert(skipPartial > tolerance("f32"), `skipping the partial block: error ${skipPartial}`);
    // The last token of every segment left unread (its K and V rows stay zero).
    const shortSegment = await mutantError("decode", "if j < ns {", "if j + 1u < ns {", {
      shape,
      splitTokens: 64,
    });
    assert(shortSegment > tolerance("f32"), `a segment short by one: error ${shortSegment}`);
  },
});

Deno.test({
  name: "poisoning leaves every element of O NaN: an element the kernel does not write fails",
  ignore: noGpu,
  async fn() {
    const shape: DecodeShape = { lens: [5, 9], heads: 2, kvHeads: 1, d: 64, dtype: "f32" };
    const p = await prepared({ kernel: "paged-decode", shape });
    try {
      const r = await checkDecode(p, 1); // a real run leaves a finite O behind
      assertDecodeClose(r);
      assertEquals(setupOf(p).tables?.blockSize, 16);
      p.upload(r.inputs);
      p.poisonOutput();
      const out = await p.readOutput();
      assert(out.every(Number.isNaN), "poisoned");
      assertEquals(maxRelError(out, p.plan.reference(r.inputs).o!), Infinity);
    } finally {
      p.destroy();
    }
  },
});
