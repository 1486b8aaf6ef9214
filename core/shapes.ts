/**
 * Shared vocabulary of the kernels: which precision, which shape, which tiles. (Which kernels
 * there are is the registry's: `kernels/registry.ts`.)
 *
 * Tensors are `[batch, heads, n, d]`, row-major, one contiguous buffer per tensor.
 *
 * @module
 */

/** Storage precision of Q, K, V and O. Accumulation is always f32. */
export type Dtype = "f32" | "f16";
/** Every dtype. */
export const DTYPES: readonly Dtype[] = ["f32", "f16"];

/** Head dimensions the kernels are built for. */
export const HEAD_DIMS: readonly number[] = [32, 64, 128];

/** Block-mask generators of the block-sparse kernel. */
export type MaskKind = "random" | "butterfly" | "local";
/** Every mask kind. */
export const MASK_KINDS: readonly MaskKind[] = ["random", "butterfly", "local"];

/** Bytes per element of a dtype in GPU memory. */
export function dtypeBytes(dtype: Dtype): number {
  return dtype === "f16" ? 2 : 4;
}

/** One attention problem: what every kernel computes, independent of how. */
export interface AttentionShape {
  batch: number;
  heads: number;
  /** Sequence length (queries and keys). */
  n: number;
  /** Head dimension. */
  d: number;
  dtype: Dtype;
  /** Query i attends only keys j <= i. */
  causal: boolean;
}

/**
 * Tile sizes of a kernel: the compile-time knobs.
 *
 * flash / block-sparse: a workgroup owns `br` query rows and walks K/V in blocks of `bc` rows;
 * each of its threads owns `rm` query rows and, for the score tile, `bc / tx` key columns.
 * standard: the two matrix products use `br × bc` output tiles; `rm × rn` per thread.
 */
export interface Tiles {
  /** Query rows per workgroup (Br in the paper). */
  br: number;
  /** Key/value rows per block (Bc in the paper). */
  bc: number;
  /** Query rows each thread owns. */
  rm: number;
  /** Threads along the key (or column) dimension of a tile. */
  tx: number;
  /**
   * flash / block-sparse only: `"v7"` builds flash.wgsl with each thread's output columns
   * interleaved across the row group and row sums from each thread's own keys (BENCHMARKS.md,
   * issue 10, v7); `"v8"`, `"v8k"` and `"v8v"` are v7 with the next key block's K and V, K only
   * or V only fetched into registers during the current block, `"v8e"` with the next K and the
   * current block's V fetched at the block's start (issue 10, v8;
   * docs/analysis/v8_prefetch.md). Absent: the layout the four sizes pick. Other kernels
   * ignore it.
   */
  variant?: TileVariant;
}

/** The values of {@linkcode Tiles.variant}. */
export const TILE_VARIANTS = ["v7", "v8", "v8k", "v8v", "v8e"] as const;

/** A flash layout named in the tiles ({@linkcode TILE_VARIANTS}). */
export type TileVariant = typeof TILE_VARIANTS[number];
