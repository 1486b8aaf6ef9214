import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "@std/assert";
import { UsageError } from "../core/errors.ts";
import { prepareAttention } from "./attention.ts";
import { flashWorkgroupBytes } from "./flash/mod.ts";
import { standardWorkgroupBytes } from "./standard/mod.ts";
import {
  assertClose,
  countingBuffers,
  describeShape,
  describeTiles,
  getKernels,
  runChecked,
  seedFor,
} from "./testing.ts";
import {
  defaultTiles,
  FALLBACK_TILE_CANDIDATES,
  TILE_CANDIDATES,
  type TileLimits,
  tileProblem,
  workgroupBytes,
} from "./tiles.ts";
import { type AttentionShape, HEAD_DIMS, type Tiles } from "../core/shapes.ts";
import {
  BUILTIN_KERNEL_NAMES as KERNELS,
  findKernel,
  type KernelName,
  problemOf,
} from "./registry.ts";

/**
 * Kernels whose tiles are a knob of the attention problem. The decode kernels' tiles are their
 * split pass's knobs (threads, lanes per token, tokens a round, segment), tested in decode/.
 */
const TILED = KERNELS.filter((k) => problemOf(k) === "attention");
// The forward kernels. The backward kernels stage four d-wide tiles and two f32 score tiles (see
// backward/tiles.ts), so the forward's 32 KiB and 16 KiB examples below do not hold for them;
// their tile rules are tested in backward/backward_test.ts, and the GPU tests here take them.
const FORWARD = TILED.filter((k) => findKernel(k)!.mode === "fwd");

const kernels = await getKernels();
const noGpu = kernels === null;

const LIMITS: TileLimits = {
  maxComputeWorkgroupStorageSize: 32768,
  maxComputeInvocationsPerWorkgroup: 256,
};

// ---------------------------------------------------------------------------------------------
// Which tiles can be built: pure, no GPU.

Deno.test("tileProblem accepts the candidates and names what is wrong with bad tiles", () => {
  const ok = { br: 32, bc: 32, rm: 4, tx: 8 };
  for (const kernel of FORWARD) {
    assertEquals(tileProblem(kernel, 64, "f32", ok, LIMITS), null, kernel);
    const bad: [Tiles, number, RegExp][] = [
      [{ ...ok, br: 0 }, 64, /br must be a positive integer/],
      [{ ...ok, tx: 2.5 }, 64, /tx must be a positive integer/],
      [{ ...ok, rm: -4 }, 64, /rm must be a positive integer/],
      [{ ...ok, br: 30 }, 64, /br 30 is not a multiple of rm 4/],
      [{ ...ok, bc: 36 }, 64, /bc 36 is not a multiple of tx 8/],
      [{ ...ok, bc: 64, tx: 16 }, 32, /head dim 32 is not a multiple of 4·tx = 64/],
      // 64 rows / 1 per thread × 8 = 512 threads > 256.
      [{ ...ok, br: 64, rm: 1 }, 64, /512 threads per workgroup exceed the device's 256/],
      // 64 × 64 tiles at d = 128, f32: far over 32 KiB of workgroup memory.
      [
        { br: 64, bc: 64, rm: 4, tx: 8 },
        128,
        /bytes of workgroup memory exceed the device's 32768/,
      ],
    ];
    // Tiles that are not positive integers are refused for every kernel, the rest where tiles
    // are a knob.
    for (const [tiles, d, why] of TILED.includes(kernel) ? bad : bad.slice(0, 3)) {
      const problem = tileProblem(kernel, d, "f32", tiles, LIMITS);
      assert(problem !== null, `${kernel} d=${d} ${JSON.stringify(tiles)} accepted`);
      assertMatch(problem, why);
    }
  }
});

Deno.test("workgroup memory covers at least the tiles the algorithms stage", () => {
  // Lower bounds from the algorithms, whatever padding the WGSL adds:
  // flash: Q tile br·d, K/V tile bc·d (storage dtype), P tile br·bc and row maxima br·tx (f32);
  // standard: the larger of the score pass (Q and K tiles), the P·V pass (f32 P tile and a V
  // tile) and the softmax's 256 f32 (one a thread: the row maxima, then the sums, in turn).
  for (const dtype of ["f32", "f16"] as const) {
    const e = dtype === "f16" ? 2 : 4;
    for (const d of HEAD_DIMS) {
      for (const t of [...TILE_CANDIDATES, ...FALLBACK_TILE_CANDIDATES]) {
        const what = `${dtype} d=${d} ${describeTiles(t)}`;
        const flash = (t.br + t.bc) * d * e + t.br * t.bc * 4 + t.br * t.tx * 4;
        assert(flashWorkgroupBytes(d, dtype, t) >= flash, `flash ${what}`);
        const standard = Math.max((t.br + t.bc) * d * e, t.br * t.bc * 4 + t.bc * d * e, 1024);
        assert(standardWorkgroupBytes(d, dtype, t) >= standard, `standard ${what}`);
        if (dtype === "f16") {
          assert(flashWorkgroupBytes(d, "f16", t) < flashWorkgroupBytes(d, "f32", t), what);
        }
      }
    }
  }
  // 32 × 32 at d = 128, f32: Q and K/V tiles alone are 32 KiB, so flash cannot fit in 32 KiB.
  assert(tileProblem("flash", 128, "f32", { br: 32, bc: 32, rm: 4, tx: 8 }, LIMITS) !== null);
});

Deno.test("defaultTiles takes the first candidate that fits, as a copy", () => {
  // At d = 64 the three larger candidates need over 32 KiB for flash; 32 × 32 (21512) fits.
  const t = defaultTiles("flash", 64, "f32", LIMITS);
  const first = TILE_CANDIDATES.find((c) => tileProblem("flash", 64, "f32", c, LIMITS) === null)!;
  assertEquals(t, first);
  for (const earlier of TILE_CANDIDATES.slice(0, TILE_CANDIDATES.indexOf(first))) {
    assert(tileProblem("flash", 64, "f32", earlier, LIMITS) !== null);
  }
  t.br = 999;
  assert(TILE_CANDIDATES.every((c) => c.br !== 999), "the candidate list is not aliased");
  // Nothing fits on a device with 1 KiB of workgroup memory.
  assertThrows(
    () => defaultTiles("flash", 64, "f32", { ...LIMITS, maxComputeWorkgroupStorageSize: 1024 }),
    Error,
    "no tile candidate fits",
  );
  // Every fallback candidate is a valid tile for every kernel and head dim on WebGPU's defaults.
  const defaults = {
    maxComputeWorkgroupStorageSize: 16384,
    maxComputeInvocationsPerWorkgroup: 256,
  };
  for (const c of FALLBACK_TILE_CANDIDATES) {
    for (const kernel of FORWARD) {
      for (const d of HEAD_DIMS) assertEquals(tileProblem(kernel, d, "f32", c, defaults), null);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Tiles on the GPU.

Deno.test({
  name: "a fallback adapter gets the small fallback tiles",
  ignore: noGpu || !kernels?.gpu.info.isFallbackAdapter,
  fn() {
    for (const kernel of KERNELS) {
      for (const d of HEAD_DIMS) {
        const shape = { batch: 1, heads: 1, n: 64, d, dtype: "f32", causal: false } as const;
        // The decode kernels' tiles are their split pass's knobs, with defaults of their own.
        const own = findKernel(kernel)!.tileCandidates?.(true)[0];
        assertEquals(kernels!.defaultTiles(kernel, shape), own ?? FALLBACK_TILE_CANDIDATES[0]);
      }
    }
  },
});

const NON_DEFAULT: Tiles[] = [{ br: 16, bc: 8, rm: 2, tx: 2 }, { br: 8, bc: 16, rm: 1, tx: 4 }];

Deno.test({
  name: "non-default tiles match the float64 reference too",
  ignore: noGpu,
  async fn() {
    const failures: string[] = [];
    let i = 0;
    for (const d of HEAD_DIMS) {
      for (const causal of [false, true]) {
        // n = 1, and n = 37: a multiple of neither 8 nor 16, over two tiles either way.
        for (const [batch, heads, n] of [[1, 1, 1], [2, 2, 37]] as const) {
          const shape: AttentionShape = { batch, heads, n, d, dtype: "f32", causal };
          // Default tiles first, in the same pipeline cache: a key that missed a tile knob would
          // hand the next tiles the wrong pipeline (the cache refuses that loudly).
          for (const tiles of [undefined, ...NON_DEFAULT]) {
            // Backward kernels: their br ≠ bc tilings are in backward/ at d = 32 (each tiling at
            // d = 128 costs llvmpipe minutes of compile).
            for (const kernel of FORWARD) {
              const mask = { kind: "random" as const, density: 0.5, seed: i++ };
              const seed = seedFor(`${kernel} ${describeShape(shape)} ${JSON.stringify(tiles)}`);
              const r = await runChecked(kernels!, { kernel, shape, tiles, mask }, seed);
              try {
                assertClose(r);
              } catch (e) {
                failures.push((e as Error).message);
              }
            }
          }
        }
      }
    }
    assertEquals(failures, []);
  },
});

Deno.test({
  name: "GPU-sized tiles {br 32, bc 32, rm 4, tx 8} at d = 64 match the reference (slow once)",
  ignore: noGpu,
  async fn() {
    // The only case with big tiles: llvmpipe takes tens of seconds to compile it the first time
    // (Mesa keeps it in its disk cache afterwards). n = 77: three query blocks, the last partial.
    const tiles = { br: 32, bc: 32, rm: 4, tx: 8 };
    const shape = { batch: 2, heads: 1, n: 77, d: 64, dtype: "f32", causal: true } as const;
    const r = await runChecked(kernels!, { kernel: "flash", shape, tiles }, seedFor("gpu tiles"));
    assertClose(r);
    assert(r.label.includes(describeTiles(tiles)), r.label);
  },
});

Deno.test({
  name: "invalid tiles are a UsageError, before allocating",
  ignore: noGpu,
  async fn() {
    const device = kernels!.gpu.device;
    const shape = { batch: 1, heads: 1, n: 40, d: 32, dtype: "f32", causal: false } as const;
    const big = { ...shape, d: 128 };
    const cases: [Tiles, AttentionShape, string][] = [
      [{ br: 0, bc: 8, rm: 1, tx: 4 }, shape, "positive integer"],
      [{ br: 8, bc: 8, rm: 1.5, tx: 4 }, shape, "positive integer"],
      [{ br: 30, bc: 32, rm: 4, tx: 8 }, shape, "not a multiple of rm"],
      [{ br: 8, bc: 12, rm: 1, tx: 8 }, shape, "not a multiple of tx"],
      [{ br: 16, bc: 16, rm: 1, tx: 16 }, shape, "head dim 32"],
      [{ br: 64, bc: 64, rm: 1, tx: 32 }, big, "threads per workgroup"],
      [{ br: 64, bc: 64, rm: 4, tx: 8 }, big, "workgroup memory"],
    ];
    for (const kernel of KERNELS) {
      for (const [tiles, s, why] of TILED.includes(kernel) ? cases : cases.slice(0, 2)) {
        const made = await countingBuffers(device, async () => {
          await assertRejects(
            () => prepareAttention(kernels!, { kernel, shape: s, tiles }),
            UsageError,
            why,
          );
        });
        assertEquals(made, 0, `${kernel} ${JSON.stringify(tiles)}`);
      }
    }
  },
});

/** For each kernel and head dim, the accepted tiles that leave the least workgroup memory. */
function tightestTiles(limits: TileLimits): [KernelName, number, Tiles, number][] {
  const out: [KernelName, number, Tiles, number][] = [];
  for (const kernel of KERNELS) {
    for (const d of HEAD_DIMS) {
      let best: [Tiles, number] | null = null;
      for (let br = 1; br <= 128; br++) {
        for (let bc = 4; bc <= 128; bc += 4) {
          // Most threads first: among equally tight tiles, the least unrolled one.
          for (const tx of [8, 4, 2, 1]) {
            for (const rm of [1, 2, 4]) {
              const t = { br, bc, rm, tx };
              if (tileProblem(kernel, d, "f32", t, limits) !== null) continue;
              const slack = limits.maxComputeWorkgroupStorageSize -
                workgroupBytes(kernel, d, "f32", t);
              if (!best || slack < best[1]) best = [t, slack];
            }
          }
        }
      }
      if (best) out.push([kernel, d, best[0], best[1]]);
    }
  }
  return out;
}

Deno.test({
  name: "tiles accepted with the least workgroup memory to spare do build on the device",
  ignore: noGpu,
  async fn() {
    // tileProblem's promise: null means the tiles can be built. At the edge, an estimate that
    // misses a few bytes the WGSL declares (padding, the block-sparse row range) turns into a
    // pipeline error instead of a UsageError. Pipelines are created, never run, so llvmpipe
    // does not compile them to machine code.
    const device = kernels!.gpu.device;
    const failures: string[] = [];
    const tight = tightestTiles(device.limits);
    assertEquals(tight.length, KERNELS.length * HEAD_DIMS.length);
    for (const [kernel, d, tiles, slack] of tight) {
      const shape = { batch: 1, heads: 1, n: 20, d, dtype: "f32", causal: false } as const;
      try {
        (await prepareAttention(kernels!, { kernel, shape, tiles })).destroy();
      } catch (e) {
        failures.push(`${kernel} d=${d} ${describeTiles(tiles)} (${slack} bytes spare): ${e}`);
      }
    }
    assertEquals(failures, []);
  },
});
