/**
 * The computation of `attnbench model`: for each sequence length and kernel, the tiles it would
 * run with, the paper's bytes, the kernel's modeled bytes, FLOPs, intensity and footprint, all
 * from the kernels' plans. Pure, no GPU; `model.ts` parses the flags, `model_render.ts` prints.
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import { maskGridProblem, shapeAt, type ShapeOptions } from "../flags.ts";
import {
  arithmeticIntensity,
  ceilDiv,
  flashAttentionBytes,
  flashQueryOuterBytes,
  footprintBytes,
  type TheoreticalTraffic,
} from "../../analysis/io_model.ts";
import { type Kernel, totalBytes } from "../../kernels/kernel.ts";
import type { BlockMask } from "../../kernels/masks.ts";
import { findKernel, planFor } from "../../kernels/registry.ts";
import {
  defaultTiles,
  TILE_CANDIDATES,
  type TileLimits,
  tileProblem,
} from "../../kernels/tiles.ts";
import {
  type AttentionShape,
  type Dtype,
  dtypeBytes,
  type MaskKind,
  type Tiles,
} from "../../core/shapes.ts";

/**
 * The kernels' own exact byte count for `shape` with `tiles` (and `mask`, block-sparse only;
 * null otherwise), or null when the kernel has none.
 */
export type ModeledBytesFn = (
  kernel: Kernel,
  shape: AttentionShape,
  tiles: Tiles,
  mask: BlockMask | null,
  options?: Readonly<Record<string, unknown>>,
) => number | null;

/**
 * The real modeled bytes: {@linkcode totalBytes} of the kernel plan's modeled traffic.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { kernelModeledBytes } from "./model_build.ts";
 * import { KERNELS } from "../../kernels/registry.ts";
 * const shape = { batch: 1, heads: 1, n: 64, d: 64, dtype: "f32", causal: false } as const;
 * // Q, K, V read once, O written once, 64 LSE floats, one 16-byte uniform read per workgroup.
 * const tiles = { br: 64, bc: 64, rm: 1, tx: 1 };
 * const bytes = kernelModeledBytes(KERNELS.flash, shape, tiles, null);
 * assert(bytes === 4 * 64 * 64 * 4 + 64 * 4 + 16);
 * ```
 */
export const kernelModeledBytes: ModeledBytesFn = (kernel, shape, tiles, mask, options) =>
  totalBytes(planFor(kernel, { shape, tiles, mask: mask ?? undefined, options }).modeledTraffic());

/** What the model command needs from outside `analysis/`; injectable for tests. */
export interface ModelDeps {
  /** The kernels' modeled bytes; when absent (or it returns null) the table shows "—". */
  modeled?: ModeledBytesFn;
}

/** Everything the flags decide: the shared shape flags plus the model's own. */
export interface ModelOptions extends ShapeOptions {
  sramBytes: number;
  /** Block sizes of the block-size table, or null for no such table. */
  blockSizes: number[] | null;
  /** `--br` / `--bc`: tiles to model instead of the ones the GPU would choose; null when absent. */
  br: number | null;
  bc: number | null;
  json: boolean;
  /** Kernel-specific options at context/sequence length n (a decode kernel's KV heads, block). */
  optionsFor?: (kernel: Kernel, n: number) => Readonly<Record<string, unknown>> | undefined;
}

/**
 * Defaults of the flags.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { MODEL_DEFAULTS } from "./model_build.ts";
 * assert(MODEL_DEFAULTS.sramBytes === 49152);
 * ```
 */
export const MODEL_DEFAULTS = {
  ns: [256, 512, 1024, 2048, 4096, 8192, 16384],
  d: 64,
  batch: 1,
  heads: 16,
  density: 0.25,
  /** A typical `maxComputeWorkgroupStorageSize`. */
  sramBytes: 49152,
  /** `maxComputeInvocationsPerWorkgroup` of the modeled device (WebGPU's default is 256). */
  maxInvocations: 1024,
} as const;

export interface KernelTiles {
  kernel: string;
  /** null when no candidate fits M: the kernel could not run, and modeled shows "—". */
  tiles: Tiles | null;
  /** `"sram"`: the first candidate that fits `--sram`; `"flags"`: `--br`/`--bc`. */
  source: "sram" | "flags";
  /** Why there are no tiles, or why the given ones would not build; null when all is well. */
  note: string | null;
}

/**
 * The tiles `kernel` is modeled with: `--br`/`--bc` (with rm = tx = 1: modeled bytes depend on
 * br and bc only) or, as the GPU would choose, {@linkcode defaultTiles} with `--sram` as the
 * workgroup storage limit.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseModelArgs } from "./model.ts";
 * import { chooseTiles } from "./model_build.ts";
 * const o = parseModelArgs([]);
 * import { KERNELS } from "../../kernels/registry.ts";
 * if (o !== "help") assert(chooseTiles(KERNELS.flash, o).tiles?.bc === 32);
 * ```
 */
export function chooseTiles(kernel: Kernel, opts: ModelOptions): KernelTiles {
  const limits: TileLimits = {
    maxComputeWorkgroupStorageSize: opts.sramBytes,
    maxComputeInvocationsPerWorkgroup: MODEL_DEFAULTS.maxInvocations,
  };
  const { d, dtype } = opts;
  const fits = TILE_CANDIDATES.some((t) => tileProblem(kernel, d, dtype, t, limits) === null);
  const chosen = fits ? defaultTiles(kernel, d, dtype, limits) : null;
  const name = kernel.name;
  if (opts.br === null && opts.bc === null) {
    if (chosen) return { kernel: name, tiles: chosen, source: "sram", note: null };
    const smallest = Math.min(...TILE_CANDIDATES.map((t) => kernel.workgroupBytes(d, dtype, t)));
    return {
      kernel: name,
      tiles: null,
      source: "sram",
      note: `no tile candidate fits M = ${opts.sramBytes} bytes (the smallest needs ` +
        `${smallest} bytes); modeled shows —; raise --sram or give --br/--bc`,
    };
  }
  const br = opts.br ?? chosen?.br ?? opts.bc!;
  const bc = opts.bc ?? chosen?.bc ?? opts.br!;
  const tiles: Tiles = { br, bc, rm: 1, tx: 1 };
  const bytes = kernel.workgroupBytes(d, dtype, tiles);
  return {
    kernel: name,
    tiles,
    source: "flags",
    note: bytes > opts.sramBytes
      ? `${br}×${bc} needs ${bytes} bytes of workgroup memory, more than M = ${opts.sramBytes}; ` +
        `modeled anyway`
      : null,
  };
}

/** The block-sparse mask actually built. */
export interface MaskModel {
  kind: MaskKind;
  seed: number;
  /** `--density`: the fraction asked for. */
  targetDensity: number;
  /** The fraction of blocks the mask keeps: the s every block-sparse number uses. */
  density: number;
  nnz: number;
  /** Blocks of the `⌈N/br⌉ × ⌈N/bc⌉` grid. */
  blocks: number;
}

/** One kernel at one N. */
export interface KernelModel {
  kernel: string;
  /** Tiles modeled, or null when none fits M. */
  tiles: Tiles | null;
  /**
   * s of the kernel's FLOPs: the density its mask reaches on its own tiles for sparse kernels, 1
   * otherwise (the theoretical count's s, on Algorithm 5's grid, is `theoretical.density`).
   */
  density: number;
  /** Block-sparse's mask; null for the other kernels and when there are no tiles. */
  mask: MaskModel | null;
  theoretical: TheoreticalTraffic;
  /**
   * Query-outer loop-order count with the kernel's br (flash's idealized count), bytes; when
   * causal, each query block reads only the keys up to its last row.
   */
  queryOuterBytes: number | null;
  /** The kernels' modeled bytes, or null when not wired in or without tiles. */
  modeledBytes: number | null;
  /** Compulsory bytes; for a sparse kernel only the rows its mask uses. */
  lowerBoundBytes: number;
  flops: number;
  /** FLOPs per byte of theoretical and of modeled traffic. */
  intensity: { theoretical: number; modeled: number | null };
  /** Buffer bytes; null for block-sparse without tiles (its mask has no grid). */
  footprintBytes: number | null;
}

/** All kernels at one N. */
export interface SizeModel {
  n: number;
  kernels: KernelModel[];
  /**
   * Baseline bytes / kernel bytes for the first kernel whose registry baseline is modeled too
   * (standard / flash); null when there is no such pair (or it is not modeled).
   */
  standardOverFlash: { theoretical: number | null; modeled: number | null };
}

/** One row of the block-size table. */
export interface BlockSizeRow {
  blockSize: number;
  /** ⌈N / B⌉: key blocks of Algorithm 1 and query blocks of the query-outer order. */
  blocks: number;
  flashTheoreticalBytes: number;
  queryOuterBytes: number;
}

/** The whole report: what the tables show and `--json` prints. */
export interface ModelReport {
  config: {
    kernels: string[];
    batch: number;
    heads: number;
    d: number;
    dtype: Dtype;
    causal: boolean;
    /** `--density`: the target; each block-sparse row reports what its mask reached. */
    density: number;
    mask: MaskKind;
    seed: number;
    /** The tiles of each kernel, in the order of `kernels`. */
    tiles: KernelTiles[];
  };
  /** M of the paper: bytes, and elements of the dtype; Algorithm 1's block sizes from it. */
  sram: { bytes: number; elements: number; dtype: Dtype; bc: number; br: number };
  sizes: SizeModel[];
  blockSizes: { n: number; rows: BlockSizeRow[] }[] | null;
}

/**
 * Computes the report from parsed options: pure, no GPU.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseModelArgs } from "./model.ts";
 * import { buildModel } from "./model_build.ts";
 * const o = parseModelArgs(["--n", "1024"]);
 * if (o !== "help") {
 *   const r = buildModel(o, {});
 *   assert(r.sram.elements === 12288 && r.sizes.length === 1);
 * }
 * ```
 */
export function buildModel(opts: ModelOptions, deps: ModelDeps): ModelReport {
  const tiles = opts.kernels.map((kernel) => chooseTiles(kernel, opts));
  const elements = Math.floor(opts.sramBytes / dtypeBytes(opts.dtype));
  const block = ceilDiv(elements, 4 * opts.d);
  const sizes = opts.ns.map((n): SizeModel => {
    const shape = shapeAt(opts, n);
    const kernels = opts.kernels.map((kernel, i): KernelModel => {
      const t = tiles[i]?.tiles ?? null;
      // Without tiles the kernel could not run; its buffers and the paper's count are still
      // shown, planned on Algorithm 1's Br × Bc blocks (a sparse kernel's theoretical count then
      // builds the mask on that grid); its mask and a sparse kernel's footprint are not.
      const planTiles = t ?? { br: Math.min(block, opts.d), bc: block, rm: 1, tx: 1 };
      const tooLarge = kernel.sparse
        ? maskGridProblem(kernel.name, n, planTiles.br, planTiles.bc)
        : null;
      if (tooLarge) throw new UsageError(tooLarge);
      const options = opts.optionsFor?.(kernel, n);
      const plan = kernel.plan({
        shape,
        tiles: planTiles,
        mask: { kind: opts.mask, density: opts.density, seed: opts.seed },
        options,
      });
      const blockMask = t === null ? null : plan.mask;
      const density = plan.density;
      const theoretical = plan.theoreticalBytes({ sramBytes: opts.sramBytes });
      const modeled = t === null
        ? null
        : deps.modeled?.(kernel, shape, t, blockMask, options) ?? null;
      const modeledBytes = modeled !== null && modeled > 0 ? modeled : null;
      const flopCount = plan.flops(kernel.mode);
      const footprint = t === null && kernel.sparse ? null : footprintBytes(plan.buffers);
      return {
        kernel: kernel.name,
        tiles: t,
        density,
        mask: blockMask === null ? null : {
          kind: blockMask.kind,
          seed: opts.seed,
          targetDensity: opts.density,
          density: blockMask.density,
          nnz: blockMask.nnz,
          blocks: blockMask.bits.length,
        },
        theoretical,
        queryOuterBytes: t === null ? null : plan.idealBytes()["query-outer"] ?? null,
        modeledBytes,
        lowerBoundBytes: plan.lowerBoundBytes(),
        flops: flopCount,
        intensity: {
          theoretical: arithmeticIntensity(flopCount, theoretical.bytes),
          modeled: modeledBytes === null ? null : arithmeticIntensity(flopCount, modeledBytes),
        },
        footprintBytes: footprint,
      };
    });
    const pair = kernels.find((k) => {
      const base = findKernel(k.kernel)?.baseline;
      return base != null && kernels.some((b) => b.kernel === base);
    });
    const base = kernels.find((b) => b.kernel === findKernel(pair?.kernel ?? "")?.baseline);
    const ratio = (a: number | null | undefined, b: number | null | undefined) =>
      a == null || b == null ? null : a / b;
    return {
      n,
      kernels,
      standardOverFlash: {
        theoretical: ratio(base?.theoretical.bytes, pair?.theoretical.bytes),
        modeled: ratio(base?.modeledBytes, pair?.modeledBytes),
      },
    };
  });

  let blockSizes: ModelReport["blockSizes"] = null;
  if (opts.blockSizes !== null) {
    const bs = opts.blockSizes;
    blockSizes = opts.ns.map((n) => {
      const shape = shapeAt(opts, n);
      return {
        n,
        rows: bs.map((b) => ({
          blockSize: b,
          blocks: ceilDiv(n, b),
          flashTheoreticalBytes: flashAttentionBytes(shape, {
            sramBytes: opts.sramBytes,
            bc: b,
            br: b,
          }).bytes,
          queryOuterBytes: flashQueryOuterBytes(shape, b),
        })),
      };
    });
  }

  return {
    config: {
      kernels: opts.kernels.map((k) => k.name),
      batch: opts.batch,
      heads: opts.heads,
      d: opts.d,
      dtype: opts.dtype,
      causal: opts.causal,
      density: opts.density,
      mask: opts.mask,
      seed: opts.seed,
      tiles,
    },
    sram: {
      bytes: opts.sramBytes,
      elements,
      dtype: opts.dtype,
      bc: block,
      br: Math.min(block, opts.d),
    },
    sizes,
    blockSizes,
  };
}
