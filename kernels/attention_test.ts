import { assert, assertEquals, assertGreater, assertRejects, assertThrows } from "@std/assert";
import { UsageError } from "../core/errors.ts";
import {
  type AttentionKernels,
  type AttentionProblem,
  DoesNotFitError,
  planFitsDevice,
  prepareAttention,
} from "./attention.ts";
import { BlockMask, makeMask } from "./masks.ts";
import { maxRelError } from "./reference.ts";
import {
  assertClose,
  checkPrepared,
  countingBuffers,
  describeShape,
  getKernels,
  mutantKernels,
  runChecked,
  seedFor,
} from "./testing.ts";
import { tolerance } from "../core/tolerances.ts";
import { type AttentionShape, type Dtype, HEAD_DIMS, MASK_KINDS } from "../core/shapes.ts";
import {
  BUILTIN_KERNEL_NAMES as KERNELS,
  findKernel,
  type KernelName,
  planFor,
  problemOf,
} from "./registry.ts";

/** Kernels of the forward attention problem (the decode kernels' WGSL has other statements). */
const ATTENTION_KERNELS = KERNELS.filter((k) => problemOf(k) === "attention");

// GPU tests: they need a WebGPU adapter (Mesa's llvmpipe will do) and are ignored without one.
// f16 tests also need the adapter's shader-f16 feature (llvmpipe has none: they show as ignored).
const kernels = await getKernels();
const noGpu = kernels === null;
const f16 = kernels?.gpu.f16 ?? false;

/**
 * The sweep every kernel runs: [batch, heads, n]. n = 1; n = 2 (less than a tile); 9 (one past
 * the fallback tile); 16 (whole tiles only); 97 (prime, many tiles); 130 (even, yet a multiple
 * of no tile size). Batch and heads above 1 in several. Each at every head dim, causal or not.
 */
const SIZES: [batch: number, heads: number, n: number][] = [
  [1, 1, 1],
  [1, 1, 2],
  [1, 2, 9],
  [2, 1, 16],
  [2, 3, 97],
  [3, 1, 130],
];

function sweep(dtype: Dtype): AttentionShape[] {
  const shapes: AttentionShape[] = [];
  for (const d of HEAD_DIMS) {
    for (const causal of [false, true]) {
      for (const [batch, heads, n] of SIZES) shapes.push({ batch, heads, n, d, dtype, causal });
    }
  }
  return shapes;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let p = 2; p * p <= n; p++) if (n % p === 0) return false;
  return true;
}

/** Runs every shape of the sweep, collecting every failure before failing. */
async function checkSweep(k: AttentionKernels, kernel: KernelName, dtype: Dtype): Promise<void> {
  const failures: string[] = [];
  for (const shape of sweep(dtype)) {
    const problem: AttentionProblem = { kernel, shape };
    const seed = seedFor(`${kernel} ${describeShape(shape)}`);
    const r = await runChecked(k, problem, seed);
    try {
      assertClose(r);
    } catch (e) {
      failures.push((e as Error).message);
    }
  }
  assertEquals(failures, [], `${failures.length} ${kernel} ${dtype} cases failed`);
}

Deno.test({
  name: "the sweep covers n = 1, a prime n, n off every tile, n over a tile, every d, B·H > 1",
  ignore: noGpu,
  fn() {
    const shapes = sweep("f32");
    for (const kernel of KERNELS) {
      const tiles = shapes.map((s) => kernels!.defaultTiles(kernel, s));
      assert(shapes.some((s) => s.n === 1));
      assert(shapes.some((s) => isPrime(s.n) && s.n > 2));
      assert(shapes.some((s, i) => {
        const t = tiles[i]!;
        return s.n > t.br && s.n > t.bc && [t.br, t.bc, 8, 16, 32, 64].every((x) => s.n % x !== 0);
      }));
      for (const d of HEAD_DIMS) {
        for (const causal of [false, true]) {
          assert(shapes.some((s) => s.d === d && s.causal === causal && s.batch > 1));
          assert(shapes.some((s) => s.d === d && s.causal === causal && s.heads > 1));
        }
      }
    }
  },
});

for (const kernel of KERNELS) {
  Deno.test({
    name: `${kernel} f32 matches the float64 reference on fresh inputs (sweep)`,
    ignore: noGpu,
    fn: () => checkSweep(kernels!, kernel, "f32"),
  });
}

for (const kernel of KERNELS) {
  Deno.test({
    name: `${kernel} f16 matches the float64 reference on fresh inputs (sweep, needs shader-f16)`,
    ignore: noGpu || !f16,
    fn: () => checkSweep(kernels!, kernel, "f16"),
  });
}

Deno.test({
  name: "f16 on an adapter without shader-f16 is a UsageError",
  ignore: noGpu || f16,
  async fn() {
    const shape = { batch: 1, heads: 1, n: 8, d: 32, dtype: "f16", causal: false } as const;
    for (const kernel of KERNELS) {
      await assertRejects(() => prepareAttention(kernels!, { kernel, shape }), UsageError, "f16");
    }
  },
});

Deno.test({
  name: "a prepared kernel is right again on new inputs, in either input set",
  ignore: noGpu,
  async fn() {
    const shape = { batch: 2, heads: 2, n: 61, d: 32, dtype: "f32", causal: true } as const;
    for (const kernel of KERNELS) {
      const p = await prepareAttention(kernels!, { kernel, shape }, { inputSets: 2 });
      try {
        const a = await checkPrepared(p, 101);
        const b = await checkPrepared(p, 102);
        const c = await checkPrepared(p, 103, { set: 1 });
        for (const r of [a, b, c]) assertClose(r);
        // The inputs differ, so a stale O from the previous run would not pass.
        assertGreater(maxRelError(a.out, b.ref), 100 * tolerance("f32"), kernel);
        // Running set 0 again reads set 0's inputs (b), not set 1's (c).
        p.poisonOutput();
        await p.run(0);
        assertEquals(maxRelError(await p.readOutput(), b.out), 0, `${kernel} set 0 rerun`);
      } finally {
        p.destroy();
      }
    }
  },
});

Deno.test({
  name: "the scale option is honoured, large scores included",
  ignore: noGpu,
  async fn() {
    // Scale 10 at d = 64 puts scores at ±80 or so: exp would overflow without the row maximum.
    for (const kernel of KERNELS) {
      for (const scale of [0.05, 1, 10]) {
        const shape = {
          batch: 1,
          heads: 2,
          n: 97,
          d: 64,
          dtype: "f32",
          causal: scale > 1,
        } as const;
        assertClose(await runChecked(kernels!, { kernel, shape, scale }, seedFor(`${scale}`)));
      }
    }
  },
});

// ---------------------------------------------------------------------------------------------
// Block-sparse against flash and against the masked reference.

function ones(n: number, br: number, bc: number): BlockMask {
  const bits = new Uint8Array(Math.ceil(n / br) * Math.ceil(n / bc)).fill(1);
  return new BlockMask("random", n, br, bc, bits);
}

Deno.test({
  name: "block-sparse with an all-ones mask equals flash (and both equal the reference)",
  ignore: noGpu,
  async fn() {
    for (const d of HEAD_DIMS) {
      for (const causal of [false, true]) {
        const shape = { batch: 2, heads: 2, n: 97, d, dtype: "f32", causal } as const;
        const tiles = kernels!.defaultTiles("block-sparse", shape);
        const masks = [
          ones(shape.n, tiles.br, tiles.bc),
          makeMask({ kind: "random", density: 1, seed: 3, n: shape.n, br: tiles.br, bc: tiles.bc }),
        ];
        assertEquals(masks[1]!.density, 1);
        const seed = seedFor(`ones ${describeShape(shape)}`);
        const flash = await runChecked(kernels!, { kernel: "flash", shape, tiles }, seed);
        assertClose(flash);
        for (const mask of masks) {
          const sparse = await runChecked(kernels!, {
            kernel: "block-sparse",
            shape,
            tiles,
            mask,
          }, seed);
          assertClose(sparse);
          const apart = maxRelError(sparse.out, flash.out);
          assert(apart <= tolerance("f32"), `${sparse.label}: ${apart} from flash`);
        }
      }
    }
  },
});

Deno.test({
  name: "block-sparse with random, butterfly and local masks equals the masked reference",
  ignore: noGpu,
  async fn() {
    const failures: string[] = [];
    let i = 0;
    for (const kind of MASK_KINDS) {
      for (const density of [0.05, 0.2, 0.5]) {
        for (const causal of [false, true]) {
          const d = HEAD_DIMS[i++ % HEAD_DIMS.length]!;
          const n = [61, 130, 200][i % 3]!;
          const shape = { batch: 1 + (i % 2), heads: 2, n, d, dtype: "f32", causal } as const;
          const mask = { kind, density, seed: i };
          const r = await runChecked(kernels!, { kernel: "block-sparse", shape, mask }, i);
          try {
            assertClose(r);
          } catch (e) {
            failures.push((e as Error).message);
          }
        }
      }
    }
    assertEquals(failures, []);
  },
});

Deno.test({
  name: "block-sparse: a row whose blocks are all masked is zero",
  ignore: noGpu,
  async fn() {
    for (const causal of [false, true]) {
      const base = { batch: 1, heads: 2, n: 1, d: 32, dtype: "f32", causal } as const;
      const { br, bc } = kernels!.defaultTiles("block-sparse", base);
      // Four whole query blocks and a partial fifth, whatever the tiles.
      const shape = { ...base, n: 4 * br + 5 };
      const rows = Math.ceil(shape.n / br);
      const cols = Math.ceil(shape.n / bc);
      const bits = new Uint8Array(rows * cols);
      // Block row 0: nothing. Block row 1: only the last key block, past the causal diagonal.
      // Block row 2: its own diagonal block. Others: everything.
      bits[cols + cols - 1] = 1;
      bits[2 * cols + Math.floor((2 * br) / bc)] = 1;
      for (let r = 3; r < rows; r++) bits.fill(1, r * cols, (r + 1) * cols);
      const mask = new BlockMask("random", shape.n, br, bc, bits);
      const res = await runChecked(kernels!, { kernel: "block-sparse", shape, mask }, 7);
      assertClose(res);
      const zeroRows = causal ? 2 * br : br;
      for (let h = 0; h < 2; h++) {
        for (let row = 0; row < zeroRows; row++) {
          for (let c = 0; c < shape.d; c++) {
            const x = res.out[(h * shape.n + row) * shape.d + c]!;
            assert(x === 0, `${res.label}: head ${h} row ${row} col ${c} is ${x}, not 0`);
          }
        }
      }
      // The other rows are not zero (the check is not passing on an all-zero output).
      assert(res.out.subarray(zeroRows * shape.d, shape.n * shape.d).some((x) => x !== 0));
    }
    // A mask that keeps nothing: all of O is zero.
    const shape = { batch: 1, heads: 1, n: 20, d: 64, dtype: "f32", causal: false } as const;
    const { br, bc } = kernels!.defaultTiles("block-sparse", shape);
    const blocks = Math.ceil(20 / br) * Math.ceil(20 / bc);
    const none = new BlockMask("random", 20, br, bc, new Uint8Array(blocks));
    const r = await runChecked(kernels!, { kernel: "block-sparse", shape, mask: none }, 8);
    assertEquals(r.error, 0);
    assert(r.out.every((x) => x === 0));
  },
});

Deno.test({
  name: "block-sparse: a mask on other blocks than the tiles is refused",
  ignore: noGpu,
  async fn() {
    const shape = { batch: 1, heads: 1, n: 64, d: 32, dtype: "f32", causal: false } as const;
    const tiles = kernels!.defaultTiles("block-sparse", shape);
    const mask = makeMask({
      kind: "local",
      n: 64,
      br: 2 * tiles.br,
      bc: tiles.bc,
      density: 1,
      seed: 1,
    });
    await assertRejects(
      () => prepareAttention(kernels!, { kernel: "block-sparse", shape, tiles, mask }),
      Error,
      "tiles",
    );
  },
});

Deno.test({
  name: "a BlockMask built for another n is refused",
  ignore: noGpu,
  async fn() {
    // A mask made for n = 16 (2 × 2 blocks) must not run n = 97: its rowptr/colidx would be read
    // out of bounds and O would be wrong (max relative error ≈ 1.1 on llvmpipe) without an error.
    const shape = { batch: 1, heads: 1, n: 97, d: 32, dtype: "f32", causal: false } as const;
    const tiles = kernels!.defaultTiles("block-sparse", shape);
    const mask = makeMask({
      kind: "random",
      n: 16,
      br: tiles.br,
      bc: tiles.bc,
      density: 1,
      seed: 1,
    });
    await assertRejects(() =>
      prepareAttention(kernels!, { kernel: "block-sparse", shape, tiles, mask })
    );
  },
});

// ---------------------------------------------------------------------------------------------
// The check must catch an output element that no kernel wrote.

Deno.test({
  name: "an output nobody wrote is all NaN and fails the check",
  ignore: noGpu,
  async fn() {
    for (const kernel of KERNELS) {
      const shape = { batch: 2, heads: 1, n: 13, d: 32, dtype: "f32", causal: false } as const;
      const p = await prepareAttention(kernels!, { kernel, shape });
      try {
        // A real run first, so O holds correct values that the poison must then overwrite.
        assertClose(await checkPrepared(p, 1));
        const r = await checkPrepared(p, 2, { run: async () => {} });
        assertEquals(r.error, Infinity, kernel);
        // Every element of every output (O, and flash's LSE) is still the poison.
        const elements = Object.values(r.outputs).reduce((a, o) => a + o.length, 0);
        assertEquals(r.nonFinite, elements, kernel);
        assertThrows(() => assertClose(r), Error, "not finite");
      } finally {
        p.destroy();
      }
    }
  },
});

Deno.test({
  name: "a kernel that leaves the last row of O unwritten fails the check",
  ignore: noGpu,
  async fn() {
    // The flash kernel's and the standard P·V pass's final store is guarded by `if row < n {`;
    // the mutant skips row n − 1 of every head. (The backward kernels' own version of this
    // test, for rows of dQ, dK, dV: backward/backward_test.ts; the decode kernels': decode/.)
    for (const kernel of ATTENTION_KERNELS.filter((k) => findKernel(k)!.mode === "fwd")) {
      const mutant = mutantKernels(kernels!, "if row < n {", "if row + 1u < n {");
      const shape = { batch: 2, heads: 2, n: 21, d: 32, dtype: "f32", causal: true } as const;
      const mask = { kind: "local" as const, density: 1, seed: 1 };
      const r = await runChecked(mutant, { kernel, shape, mask }, 3);
      assertEquals(mutant.cache.mutated, 1, `${kernel}: the store to O was not found to mutate`);
      assertEquals(r.error, Infinity, `${kernel}: the check missed an unwritten row`);
      // Exactly the last row of each of the 4 heads: d elements of O, and one of the LSE where
      // the kernel writes one (in the same guarded store).
      const lse = r.outputs.lse ? 4 : 0;
      assertEquals(r.nonFinite, 4 * shape.d + lse, `${kernel}: exactly the last row of each head`);
      // The same problem on the real kernel passes.
      assertClose(await runChecked(kernels!, { kernel, shape, mask }, 3));
    }
  },
});

// ---------------------------------------------------------------------------------------------
// Sizes the device cannot hold.

Deno.test({
  name: "a standard S larger than a storage binding is split; a Q larger than one does not fit",
  ignore: noGpu,
  async fn() {
    const device = kernels!.gpu.device;
    const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    // S and P go into chunks under the limit (standard/mod.ts): the plan of the smallest n whose
    // f32 S (n² · 4 bytes, one head) exceeds the limit has no scratch buffer over it.
    const smallest = Math.floor(Math.sqrt(limit / 4)) + 1;
    const big = { batch: 1, heads: 1, n: smallest, d: 32, dtype: "f32", causal: false } as const;
    const plan = planFor("standard", {
      shape: big,
      tiles: kernels!.defaultTiles("standard", big),
      maxBindingBytes: limit,
    });
    assertGreater(plan.passes().length, 3);
    for (const b of plan.buffers) assert(b.bytes <= limit, `${b.name}: ${b.bytes} > ${limit}`);
    // Q, K, V and O are one buffer each: the smallest n whose Q exceeds the limit is refused
    // before anything is allocated, and one less is not refused for that reason.
    const n = Math.floor(limit / (32 * 4)) + 1;
    const shape = { batch: 1, heads: 1, n, d: 32, dtype: "f32", causal: false } as const;
    const made = await countingBuffers(device, async () => {
      const e = await assertRejects(
        () => prepareAttention(kernels!, { kernel: "standard", shape }),
        DoesNotFitError,
        "buffer Q",
      );
      assert(e instanceof UsageError, "DoesNotFitError is a UsageError");
    });
    assertEquals(made, 0, `n=${n}: buffers were allocated before the refusal`);
    const fits = planFitsDevice(
      planFor("standard", {
        shape: { ...shape, n: n - 1 },
        tiles: { br: 8, bc: 8, rm: 2, tx: 4 },
        maxBindingBytes: limit,
      }),
      { ...device.limits, maxComputeWorkgroupsPerDimension: Infinity },
    );
    assert(fits === null || !fits.includes("buffer Q"), String(fits));
  },
});

Deno.test({
  name: "more heads than grid rows is DoesNotFitError, before allocating",
  ignore: noGpu,
  async fn() {
    const device = kernels!.gpu.device;
    const heads = device.limits.maxComputeWorkgroupsPerDimension + 1;
    const shape = { batch: 1, heads, n: 1, d: 32, dtype: "f32", causal: false } as const;
    for (const kernel of KERNELS) {
      const made = await countingBuffers(device, async () => {
        await assertRejects(() => prepareAttention(kernels!, { kernel, shape }), DoesNotFitError);
      });
      assertEquals(made, 0, kernel);
    }
  },
});
