/**
 * The IO-complexity model of attention: pure functions of a shape, no GPU. The paper's
 * algorithms' HBM traffic (Algorithm 0, standard attention; Algorithm 1, FlashAttention, and its
 * block-sparse Algorithm 5), the compulsory lower bound, and the fit of a buffer list in a
 * device's limits. Each kernel's plan (`kernels/<name>/mod.ts`) picks the formula that is its.
 *
 * Every byte count is HBM traffic (reads plus writes) or storage of the whole problem, all
 * `batch · heads` heads together. The formulas, their sources in the FlashAttention paper
 * (Dao et al. 2022, arXiv:2205.14135) and why our kernels' counts differ are in
 * `analysis/IO_MODEL.md`.
 *
 * @module
 */

import { type AttentionShape, dtypeBytes } from "../core/shapes.ts";

/**
 * A block mask as the IO model reads it: row-major keep bits (1 = kept) over a
 * `rowBlocks × colBlocks` grid of `br`-row query blocks and `bc`-row key blocks; query row i may
 * attend key row j iff the bit of block `(⌊i/br⌋, ⌊j/bc⌋)` is 1. `kernels/masks.ts`'s `BlockMask`
 * is one.
 */
export interface MaskGrid {
  readonly br: number;
  readonly bc: number;
  readonly rowBlocks: number;
  readonly colBlocks: number;
  readonly bits: Uint8Array;
}

/** Options of {@linkcode flashAttentionBytes}. */
export interface TheoreticalOptions {
  /** On-chip memory size M in BYTES; the model uses `M = ⌊sramBytes / dtypeBytes⌋` elements. */
  sramBytes: number;
  /**
   * Block-sparse (required there, ignored otherwise): the mask the kernel runs with, on any grid.
   * Algorithm 5 skips its own Br × Bc blocks that hold no kept entry of this mask; its density s
   * is measured on that grid, so the counts are whole elements.
   */
  mask?: MaskGrid | null;
  /** Override of Bc (key/value rows per block); default `⌈M / 4d⌉` as Algorithm 1 sets it. */
  bc?: number;
  /** Override of Br (query rows per block); default `min(⌈M / 4d⌉, d)` as Algorithm 1 sets it. */
  br?: number;
}

/** HBM traffic of one of the paper's algorithms, with the values that produced it. */
export interface TheoreticalTraffic {
  /** "Algorithm 0" (standard), "Algorithm 1" (FlashAttention) or "Algorithm 5" (block-sparse). */
  algorithm: string;
  /** Reads plus writes, in bytes, of all `batch · heads` heads. */
  bytes: number;
  /** Reads plus writes of one head, in elements. */
  elementsPerHead: number;
  /** M: on-chip memory in elements (`⌊sramBytes / dtypeBytes⌋`); null for Algorithm 0. */
  mElements: number | null;
  /** Bc: key/value rows per block; null for Algorithm 0. */
  bc: number | null;
  /** Br: query rows per block; null for Algorithm 0. */
  br: number | null;
  /** Tc = ⌈N / Bc⌉: passes over Q and O; null for Algorithm 0. */
  tc: number | null;
  /** Tr = ⌈N / Br⌉: query blocks; null for Algorithm 0. */
  tr: number | null;
  /**
   * Fraction of the dense `Tc · (3Nd + 4N)` term that causal masking keeps: the share of (query
   * block, key block) pairs on or below the diagonal, weighted by rows. 1 when not causal and for
   * standard.
   */
  causalFraction: number;
  /**
   * s: for block-sparse, the share of Algorithm 5's `Tr × Tc` blocks (Br × Bc) that hold an entry
   * the mask keeps; 1 otherwise.
   */
  density: number;
  /**
   * Rows of Q, O, ℓ, m the inner loop loads (and of O, ℓ, m it writes back), summed over the Tc
   * key blocks: the Tc term is `passRows · (3d + 4)` elements. `Tc · N` for dense flash; fewer
   * with causal skipping or a block mask. null for standard (and any count without a Tc term).
   */
  passRows: number | null;
}

/**
 * `⌈a / b⌉` for positive integers.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { ceilDiv } from "./io_model.ts";
 * assert(ceilDiv(1024, 48) === 22);
 * ```
 */
export function ceilDiv(a: number, b: number): number {
  return Math.ceil(a / b);
}

function checkPositiveInt(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${what} must be a positive integer, got ${value}`);
  }
}

function checkShape(shape: AttentionShape): void {
  checkPositiveInt(shape.batch, "batch");
  checkPositiveInt(shape.heads, "heads");
  checkPositiveInt(shape.n, "n");
  checkPositiveInt(shape.d, "d");
}

/**
 * Rows of Q and O that Algorithm 1's inner loop visits, summed over all Tc key blocks, when
 * causal masking skips every (i, j) block that lies wholly above the diagonal.
 *
 * For key block j (keys `j·Bc …`), query block i has an unmasked entry iff its last row
 * `(i+1)·Br − 1 ≥ j·Bc`, so the first needed block is `⌊j·Bc / Br⌋` and the rows visited are
 * `N − ⌊j·Bc / Br⌋ · Br`.
 */
function causalRows(n: number, br: number, bc: number, tc: number): number {
  let rows = 0;
  for (let j = 0; j < tc; j++) rows += n - Math.floor((j * bc) / br) * br;
  return rows;
}

/**
 * Algorithm 5 on its own Br × Bc grid with the kernel's `mask` (any grid): block (i, j) is
 * visited when it holds an entry the mask keeps (and, when causal, one on or below the diagonal).
 * Returns the blocks holding a kept entry (causal aside) and the rows of Q visited over all j.
 */
function sparsePasses(
  n: number,
  br: number,
  bc: number,
  mask: MaskGrid,
  causal: boolean,
): { keptBlocks: number; passRows: number } {
  checkMaskGrid(n, mask);
  const cols = mask.colBlocks;
  // next[a·(cols+1) + b]: the first kept mask column ≥ b in mask row a, or cols.
  const next = new Int32Array(mask.rowBlocks * (cols + 1));
  for (let a = 0; a < mask.rowBlocks; a++) {
    const base = a * (cols + 1);
    next[base + cols] = cols;
    for (let b = cols - 1; b >= 0; b--) {
      next[base + b] = mask.bits[a * cols + b] ? b : next[base + b + 1]!;
    }
  }
  let keptBlocks = 0;
  let passRows = 0;
  for (let r0 = 0; r0 < n; r0 += br) {
    const r1 = Math.min(n, r0 + br);
    const a0 = Math.floor(r0 / mask.br);
    const a1 = Math.floor((r1 - 1) / mask.br);
    for (let c0 = 0; c0 < n; c0 += bc) {
      const c1 = Math.min(n, c0 + bc);
      const b0 = Math.floor(c0 / mask.bc);
      const b1 = Math.floor((c1 - 1) / mask.bc);
      let kept = false;
      let visited = false;
      for (let a = a0; a <= a1 && !visited; a++) {
        const b = next[a * (cols + 1) + b0]!;
        if (b > b1) continue;
        kept = true;
        // The first kept column gives the smallest key; the last row of the overlap the largest
        // query: an entry on or below the diagonal exists iff key ≤ query for that pair.
        const lastRow = Math.min(r1, (a + 1) * mask.br) - 1;
        visited = !causal || Math.max(c0, b * mask.bc) <= lastRow;
      }
      if (kept) keptBlocks++;
      if (visited) passRows += r1 - r0;
    }
  }
  return { keptBlocks, passRows };
}

function checkMaskGrid(n: number, mask: MaskGrid): void {
  checkPositiveInt(mask.br, "mask br");
  checkPositiveInt(mask.bc, "mask bc");
  if (
    mask.rowBlocks !== ceilDiv(n, mask.br) || mask.colBlocks !== ceilDiv(n, mask.bc) ||
    mask.bits.length !== mask.rowBlocks * mask.colBlocks
  ) {
    throw new RangeError(`the block mask's grid does not cover N = ${n}`);
  }
}

/**
 * HBM traffic of Algorithm 0 (standard attention), all heads: `4N² + 4Nd` elements a head (read
 * Q, K: 2Nd; write S: N²; read S: N²; write P: N²; read P and V: N² + Nd; write O: Nd). Causal
 * masking does not change it: the algorithm materializes the whole S and P. Elements are
 * converted at the storage dtype's width, then × batch × heads.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { standardAttentionBytes } from "./io_model.ts";
 * const shape = { batch: 1, heads: 1, n: 8, d: 4, dtype: "f32" as const, causal: false };
 * assert(standardAttentionBytes(shape).bytes === (4 * 64 + 4 * 32) * 4);
 * ```
 */
export function standardAttentionBytes(shape: AttentionShape): TheoreticalTraffic {
  checkShape(shape);
  const { n, d } = shape;
  const elementsPerHead = 4 * n * n + 4 * n * d;
  const bytes = elementsPerHead * dtypeBytes(shape.dtype) * shape.batch * shape.heads;
  return unblockedTraffic("Algorithm 0", bytes, elementsPerHead);
}

/**
 * Idealized traffic of an algorithm without on-chip blocking (no M, Bc, Br, Tc, Tr; density 1).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { unblockedTraffic } from "./io_model.ts";
 * assert(unblockedTraffic("compulsory", 64, 16).tc === null);
 * ```
 */
export function unblockedTraffic(
  algorithm: string,
  bytes: number,
  elementsPerHead: number,
): TheoreticalTraffic {
  return {
    algorithm,
    bytes,
    elementsPerHead,
    mElements: null,
    bc: null,
    br: null,
    tc: null,
    tr: null,
    causalFraction: 1,
    density: 1,
    passRows: null,
  };
}

/**
 * HBM traffic of FlashAttention (Algorithm 1) with the constants it implies, all heads; with the
 * kernel's block `mask`, of block-sparse FlashAttention (Algorithm 5).
 *
 * - Algorithm 1: with `M = ⌊sramBytes / dtypeBytes⌋` elements, `Bc = ⌈M/4d⌉`,
 *   `Br = min(⌈M/4d⌉, d)`, `Tc = ⌈N/Bc⌉`: `2Nd + Tc · (3Nd + 4N)` elements a head (K, V read
 *   once; each of the Tc passes reads Q, O, ℓ, m and writes O, ℓ, m). Theorem 2: Θ(N²d²M⁻¹).
 * - Algorithm 5 (with `mask`): Algorithm 1 that skips the (i, j) blocks of its own Br × Bc grid
 *   holding no entry the kernel's `mask` keeps: `2Nd + passRows · (3d + 4)`, passRows the rows
 *   of the visited blocks; with full blocks, `2Nd + s · Tc · (3Nd + 4N)` with s measured on the
 *   Br × Bc grid (Proposition 4: Θ(Nd + N²d²M⁻¹s)). K and V are loaded for every j (line 6).
 *
 * Causal rule (ours; the paper does not model causal masking): Algorithm 1 skips the blocks that
 * lie wholly above the diagonal, as block-sparse skips zero blocks; the Tc term keeps
 * {@linkcode TheoreticalTraffic.causalFraction} of its rows (≈ ½ + 1/(2Tc) for square blocks).
 * Block-sparse visits the blocks that hold a kept entry on or below the diagonal. K and V are
 * still read once each.
 *
 * Elements are converted at the storage dtype's width (ℓ and m too), then × batch × heads.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { flashAttentionBytes } from "./io_model.ts";
 * const shape = { batch: 1, heads: 1, n: 1024, d: 64, dtype: "f32" as const, causal: false };
 * const t = flashAttentionBytes(shape, { sramBytes: 49152 });
 * assert(t.mElements === 12288 && t.bc === 48 && t.br === 48 && t.tc === 22);
 * ```
 */
export function flashAttentionBytes(
  shape: AttentionShape,
  opts: TheoreticalOptions,
): TheoreticalTraffic {
  checkShape(shape);
  const { n, d } = shape;
  const bytesPerElement = dtypeBytes(shape.dtype);
  checkPositiveInt(opts.sramBytes, "sramBytes");
  const mElements = Math.floor(opts.sramBytes / bytesPerElement);
  if (mElements < 1) {
    throw new RangeError(`sramBytes ${opts.sramBytes} holds no ${shape.dtype} element`);
  }
  const blockDefault = ceilDiv(mElements, 4 * d);
  const bc = opts.bc ?? blockDefault;
  const br = opts.br ?? Math.min(blockDefault, d);
  checkPositiveInt(bc, "bc");
  checkPositiveInt(br, "br");
  const tc = ceilDiv(n, bc);
  const tr = ceilDiv(n, br);
  const denseRows = shape.causal ? causalRows(n, br, bc, tc) : tc * n;
  let density = 1;
  let passRows = denseRows;
  if (opts.mask) {
    const sparse = sparsePasses(n, br, bc, opts.mask, shape.causal);
    density = sparse.keptBlocks / (tr * tc);
    passRows = sparse.passRows;
  }
  const causalFraction = denseRows / (tc * n);
  const elementsPerHead = 2 * n * d + passRows * (3 * d + 4);
  return {
    algorithm: opts.mask ? "Algorithm 5" : "Algorithm 1",
    bytes: elementsPerHead * bytesPerElement * shape.batch * shape.heads,
    elementsPerHead,
    mElements,
    bc,
    br,
    tc,
    tr,
    causalFraction,
    density,
    passRows,
  };
}

/**
 * The compulsory traffic: the bytes any exact attention with this mask must move. Without a mask
 * (or causal alone: every query attends itself) it reads Q, K, V once and writes O once,
 * `4 · N · d` elements a head. With a block mask (block-sparse) only the rows the mask uses count:
 * the rows of Q that attend at least one key (read, and their rows of O written) and the rows of
 * K and V that at least one query attends (read), `2 · d · (queryRows + keyRows)` elements a
 * head. A query row that attends nothing has no softmax; its output is whatever initialization
 * left, which the paper does not count either. Then × dtype bytes × batch × heads.
 *
 * Every kernel's theoretical, modeled and counted bytes are at least this (tested).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { lowerBoundBytes } from "./io_model.ts";
 * const shape = { batch: 2, heads: 3, n: 16, d: 32, dtype: "f16" as const, causal: false };
 * assert(lowerBoundBytes(shape) === 4 * 16 * 32 * 2 * 6);
 * // One kept block of 8 queries × 4 keys: 8 rows of Q and O, 4 of K and V.
 * const mask = { br: 8, bc: 4, rowBlocks: 2, colBlocks: 4, bits: new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]) };
 * assert(lowerBoundBytes(shape, mask) === 2 * 32 * (8 + 4) * 2 * 6);
 * ```
 */
export function lowerBoundBytes(shape: AttentionShape, mask?: MaskGrid | null): number {
  checkShape(shape);
  const { n, d } = shape;
  let rows = 4 * n;
  if (mask) {
    const used = usedRows(n, mask, shape.causal);
    rows = 2 * used.queryRows + 2 * used.keyRows;
  }
  return rows * d * dtypeBytes(shape.dtype) * shape.batch * shape.heads;
}

/** Query rows that attend at least one key, and key rows that at least one query attends (`mask` on its own grid). */
export function usedRows(
  n: number,
  mask: MaskGrid,
  causal: boolean,
): { queryRows: number; keyRows: number } {
  checkMaskGrid(n, mask);
  // Difference arrays: +1 where a used range starts, −1 where it ends.
  const q = new Int32Array(n + 1);
  const k = new Int32Array(n + 1);
  for (let a = 0; a < mask.rowBlocks; a++) {
    const r0 = a * mask.br;
    const r1 = Math.min(n, r0 + mask.br);
    for (let b = 0; b < mask.colBlocks; b++) {
      if (!mask.bits[a * mask.colBlocks + b]) continue;
      const c0 = b * mask.bc;
      const c1 = Math.min(n, c0 + mask.bc);
      if (causal && c0 > r1 - 1) continue; // wholly above the diagonal
      const qFrom = causal ? Math.max(r0, c0) : r0; // a query needs a key ≤ itself
      const kTo = causal ? Math.min(c1, r1) : c1; // a key needs a query ≥ itself
      q[qFrom]!++;
      q[r1]!--;
      k[c0]!++;
      k[kTo]!--;
    }
  }
  let queryRows = 0;
  let keyRows = 0;
  for (let i = 0, qa = 0, ka = 0; i < n; i++) {
    qa += q[i]!;
    ka += k[i]!;
    if (qa > 0) queryRows++;
    if (ka > 0) keyRows++;
  }
  return { queryRows, keyRows };
}

/**
 * HBM traffic of the loop order our flash kernel uses (query blocks outer, as FlashAttention-2):
 * Q read once, O written once, K and V read once per query block, the log-sum-exp written once in
 * f32. A head moves `(Nd + Nd + Tr · 2Nd) · dtypeBytes + 4N` bytes with `Tr = ⌈N / br⌉`. When
 * causal, query block i reads only the keys up to its last row, `min(N, (i+1)·br)` rows of K and
 * of V instead of N: the same skipping as the theoretical count's causal rule.
 *
 * Idealized: no partial-tile or cache detail, and keys skipped row by row rather than by key
 * blocks; the exact count of our kernels is the modeled one.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { flashQueryOuterBytes } from "./io_model.ts";
 * const shape = { batch: 1, heads: 1, n: 128, d: 64, dtype: "f32" as const, causal: false };
 * // Tr = 2: (2·128·64 + 2·2·128·64) · 4 + 128 · 4
 * assert(flashQueryOuterBytes(shape, 64) === 197120);
 * // causal: the first query block reads 64 keys, the second 128
 * assert(flashQueryOuterBytes({ ...shape, causal: true }, 64) === 164352);
 * ```
 */
export function flashQueryOuterBytes(shape: AttentionShape, br: number): number {
  checkShape(shape);
  checkPositiveInt(br, "br");
  const { n, d } = shape;
  const tr = ceilDiv(n, br);
  let keyRows = tr * n;
  if (shape.causal) {
    keyRows = 0;
    for (let i = 0; i < tr; i++) keyRows += Math.min(n, (i + 1) * br);
  }
  const perHead = (2 * n * d + 2 * d * keyRows) * dtypeBytes(shape.dtype) + 4 * n;
  return perHead * shape.batch * shape.heads;
}

/**
 * FLOPs per byte of HBM traffic. Throws a RangeError when `bytes` is not positive.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { arithmeticIntensity } from "./io_model.ts";
 * assert(arithmeticIntensity(1000, 250) === 4);
 * ```
 */
export function arithmeticIntensity(flopCount: number, bytes: number): number {
  if (!(bytes > 0)) throw new RangeError(`bytes must be positive, got ${bytes}`);
  return flopCount / bytes;
}

/** One GPU storage buffer a kernel allocates. */
export interface BufferSize {
  /** Q, K, V, O, S, P, LSE, mask rowptr or mask colidx. */
  name: string;
  bytes: number;
}

/**
 * Peak bytes of GPU storage buffers: the sum of their sizes (a kernel's plan lists them).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { footprintBytes } from "./io_model.ts";
 * assert(footprintBytes([{ name: "Q", bytes: 64 }, { name: "S", bytes: 256 }]) === 320);
 * ```
 */
export function footprintBytes(buffers: readonly { name?: string; bytes: number }[]): number {
  return buffers.reduce((sum, b) => sum + b.bytes, 0);
}

/** The two device limits a single buffer must respect, in bytes. */
export interface BufferLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

/**
 * Whether every buffer fits the device's limits. Returns null when each buffer fits both
 * `maxStorageBufferBindingSize` and `maxBufferSize`, else a reason that starts with
 * `"does not fit:"` and names the largest offending buffer and the tighter limit it breaks.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { fitsDevice } from "./io_model.ts";
 * const limits = { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 32 };
 * const why = fitsDevice([{ name: "S", bytes: 17179869184 }], limits);
 * assert(why === "does not fit: S is 17.2 GB, device binding limit is 2.15 GB");
 * ```
 */
export function fitsDevice(
  buffers: readonly BufferSize[],
  limits: BufferLimits,
): string | null {
  const checks = [
    { label: "device binding limit", bytes: limits.maxStorageBufferBindingSize },
    { label: "device buffer limit", bytes: limits.maxBufferSize },
  ].sort((a, b) => a.bytes - b.bytes);
  for (const buffer of [...buffers].sort((a, b) => b.bytes - a.bytes)) {
    for (const limit of checks) {
      if (buffer.bytes > limit.bytes) {
        let size = formatBytes(buffer.bytes);
        let max = formatBytes(limit.bytes);
        if (size === max) {
          size = `${size} (${buffer.bytes} B)`;
          max = `${max} (${limit.bytes} B)`;
        }
        return `does not fit: ${buffer.name} is ${size}, ${limit.label} is ${max}`;
      }
    }
  }
  return null;
}

const SI_PREFIXES = ["", "k", "M", "G", "T", "P", "E"];

/**
 * A quantity in decimal SI units with three significant digits: `formatSi(1.72e10, "B")` is
 * `"17.2 GB"`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { formatSi } from "./io_model.ts";
 * assert(formatSi(1073741824, "FLOP") === "1.07 GFLOP");
 * assert(formatSi(512, "B") === "512 B");
 * ```
 */
export function formatSi(value: number, unit: string): string {
  if (!Number.isFinite(value)) return `${value} ${unit}`;
  if (value === 0) return `0 ${unit}`;
  let scaled = Math.abs(value);
  let p = 0;
  while (p < SI_PREFIXES.length - 1 && Number(scaled.toPrecision(3)) >= 1000) {
    scaled /= 1000;
    p++;
  }
  const digits = p === 0 && Number.isInteger(scaled) ? String(scaled) : scaled.toPrecision(3);
  return `${value < 0 ? "-" : ""}${digits} ${SI_PREFIXES[p]}${unit}`;
}

/**
 * Bytes in decimal units (1 MB = 10⁶ B), three significant digits.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { formatBytes } from "./io_model.ts";
 * assert(formatBytes(2 ** 31) === "2.15 GB");
 * ```
 */
export function formatBytes(bytes: number): string {
  return formatSi(bytes, "B");
}
