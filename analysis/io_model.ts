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

/** Options of {@linkcode flashAttentionBytes}. */
export interface TheoreticalOptions {
  /** On-chip memory size M in BYTES; the model uses `M = ⌊sramBytes / dtypeBytes⌋` elements. */
  sramBytes: number;
  /** Fraction s of nonzero blocks in the block mask, in (0, 1] (1: Algorithm 1). */
  density: number;
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
   * Fraction of the `Tc · (3Nd + 4N)` term that causal masking keeps: the share of (query block,
   * key block) pairs on or below the diagonal, weighted by rows. 1 when not causal and for
   * Algorithm 0.
   */
  causalFraction: number;
  /** The s that multiplied the Tc term: the density for Algorithm 5, 1 otherwise. */
  density: number;
}

/**
 * `⌈a / b⌉` for positive integers.
 *
 * @example
 * ```ts
 * import { ceilDiv } from "./io_model.ts";
 * console.assert(ceilDiv(1024, 48) === 22);
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

function checkDensity(density: number): void {
  if (!(density > 0 && density <= 1)) {
    throw new RangeError(`density must be in (0, 1], got ${density}`);
  }
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
 * HBM traffic of Algorithm 0 (standard attention), all heads: `4N² + 4Nd` elements a head (read
 * Q, K: 2Nd; write S: N²; read S: N²; write P: N²; read P and V: N² + Nd; write O: Nd). Causal
 * masking does not change it: the algorithm materializes the whole S and P. Elements are
 * converted at the storage dtype's width, then × batch × heads.
 *
 * @example
 * ```ts
 * import { standardAttentionBytes } from "./io_model.ts";
 * const shape = { batch: 1, heads: 1, n: 8, d: 4, dtype: "f32" as const, causal: false };
 * console.assert(standardAttentionBytes(shape).bytes === (4 * 64 + 4 * 32) * 4);
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
 * import { unblockedTraffic } from "./io_model.ts";
 * console.assert(unblockedTraffic("compulsory", 64, 16).tc === null);
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
  };
}

/**
 * HBM traffic of FlashAttention (Algorithm 1) with the constants it implies, all heads; with a
 * density below 1, of block-sparse FlashAttention (Algorithm 5).
 *
 * - Algorithm 1: with `M = ⌊sramBytes / dtypeBytes⌋` elements, `Bc = ⌈M/4d⌉`,
 *   `Br = min(⌈M/4d⌉, d)`, `Tc = ⌈N/Bc⌉`: `2Nd + Tc · (3Nd + 4N)` elements a head (K, V read
 *   once; each of the Tc passes reads Q, O, ℓ, m and writes O, ℓ, m). Theorem 2: Θ(N²d²M⁻¹).
 * - Algorithm 5: the Tc term × s (Proposition 4: Θ(Nd + N²d²M⁻¹s)).
 *
 * Causal rule (ours; the paper does not model causal masking): the Tc term is multiplied by
 * {@linkcode TheoreticalTraffic.causalFraction}, the row-weighted share of (query block, key
 * block) pairs on or below the diagonal — exactly what Algorithm 1 moves if it skips blocks that
 * are wholly masked, as block-sparse skips zero blocks (≈ ½ + 1/(2Tc) for square blocks). K and
 * V are still read once each.
 *
 * Elements are converted at the storage dtype's width (ℓ and m too), then × batch × heads.
 *
 * @example
 * ```ts
 * import { flashAttentionBytes } from "./io_model.ts";
 * const shape = { batch: 1, heads: 1, n: 1024, d: 64, dtype: "f32" as const, causal: false };
 * const t = flashAttentionBytes(shape, { sramBytes: 49152, density: 1 });
 * console.assert(t.mElements === 12288 && t.bc === 48 && t.br === 48 && t.tc === 22);
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
  checkDensity(opts.density);
  const density = opts.density;
  const tc = ceilDiv(n, bc);
  const tr = ceilDiv(n, br);
  const causalFraction = shape.causal ? causalRows(n, br, bc, tc) / (tc * n) : 1;
  const elementsPerHead = 2 * n * d + density * causalFraction * tc * (3 * n * d + 4 * n);
  return {
    algorithm: density < 1 ? "Algorithm 5" : "Algorithm 1",
    bytes: elementsPerHead * bytesPerElement * shape.batch * shape.heads,
    elementsPerHead,
    mElements,
    bc,
    br,
    tc,
    tr,
    causalFraction,
    density,
  };
}

/**
 * The compulsory traffic of any exact attention: read Q, K, V once and write O once,
 * `4 · N · d` elements a head, × dtype bytes × batch × heads.
 *
 * @example
 * ```ts
 * import { lowerBoundBytes } from "./io_model.ts";
 * const shape = { batch: 2, heads: 3, n: 16, d: 32, dtype: "f16" as const, causal: false };
 * console.assert(lowerBoundBytes(shape) === 4 * 16 * 32 * 2 * 6);
 * ```
 */
export function lowerBoundBytes(shape: AttentionShape): number {
  checkShape(shape);
  return 4 * shape.n * shape.d * dtypeBytes(shape.dtype) * shape.batch * shape.heads;
}

/**
 * HBM traffic of the loop order our flash kernel uses (query blocks outer, as FlashAttention-2):
 * Q read once, O written once, K and V read once per query block, the log-sum-exp written once in
 * f32. A head moves `(Nd + Nd + Tr · 2Nd) · dtypeBytes + 4N` bytes with `Tr = ⌈N / br⌉`.
 *
 * Idealized: no partial-tile, causal-skipping or cache detail; that is the kernels' modeled count.
 *
 * @example
 * ```ts
 * import { flashQueryOuterBytes } from "./io_model.ts";
 * const shape = { batch: 1, heads: 1, n: 128, d: 64, dtype: "f32" as const, causal: false };
 * // Tr = 2: (2·128·64 + 2·2·128·64) · 4 + 128 · 4
 * console.assert(flashQueryOuterBytes(shape, 64) === 197120);
 * ```
 */
export function flashQueryOuterBytes(shape: AttentionShape, br: number): number {
  checkShape(shape);
  checkPositiveInt(br, "br");
  const { n, d } = shape;
  const tr = ceilDiv(n, br);
  const perHead = (2 * n * d + tr * 2 * n * d) * dtypeBytes(shape.dtype) + 4 * n;
  return perHead * shape.batch * shape.heads;
}

/**
 * FLOPs per byte of HBM traffic. Throws a RangeError when `bytes` is not positive.
 *
 * @example
 * ```ts
 * import { arithmeticIntensity } from "./io_model.ts";
 * console.assert(arithmeticIntensity(1000, 250) === 4);
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
 * import { footprintBytes } from "./io_model.ts";
 * console.assert(footprintBytes([{ name: "Q", bytes: 64 }, { name: "S", bytes: 256 }]) === 320);
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
 * import { fitsDevice } from "./io_model.ts";
 * const limits = { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 32 };
 * const why = fitsDevice([{ name: "S", bytes: 17179869184 }], limits);
 * console.assert(why === "does not fit: S is 17.2 GB, device binding limit is 2.15 GB");
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
 * import { formatSi } from "./io_model.ts";
 * console.assert(formatSi(1073741824, "FLOP") === "1.07 GFLOP");
 * console.assert(formatSi(512, "B") === "512 B");
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
 * import { formatBytes } from "./io_model.ts";
 * console.assert(formatBytes(2 ** 31) === "2.15 GB");
 * ```
 */
export function formatBytes(bytes: number): string {
  return formatSi(bytes, "B");
}
