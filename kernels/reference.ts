/**
 * The oracle: attention in float64 on the CPU. Every kernel is checked against it.
 *
 * @module
 */

import type { AttentionShape } from "../core/shapes.ts";
import type { BlockMask } from "./masks.ts";

/**
 * O = softmax(scale · Q Kᵀ + mask) V for every (batch, head), in float64.
 *
 * Masked scores (causal j > i, or a block the block mask drops) are −∞ before the softmax; a row
 * whose scores are all −∞ yields zeros, as the kernels do. Inputs are `[B, H, N, d]` row-major.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { referenceAttention } from "./reference.ts";
 * const shape = { batch: 1, heads: 1, n: 2, d: 1, dtype: "f32", causal: true } as const;
 * const q = new Float32Array([1, 1]), k = new Float32Array([0, 0]), v = new Float32Array([2, 4]);
 * const o = referenceAttention(shape, q, k, v);
 * assert(o[0] === 2 && o[1] === 3);
 * ```
 */
export function referenceAttention(
  shape: AttentionShape,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  opts: { scale?: number; mask?: BlockMask } = {},
): Float64Array {
  return referenceWithLse(shape, q, k, v, opts).o;
}

/**
 * The log-sum-exp a fully masked row gets: the kernels' −3·10³⁸ (WGSL has no −∞), in f32.
 */
export const MASKED_LSE: number = Math.fround(-3.0e38);

/**
 * {@linkcode referenceAttention} and, per row, the natural-log log-sum-exp of its scaled scores
 * (`max + ln Σ exp(s − max)`; {@linkcode MASKED_LSE} for a row whose every key is masked): the
 * `lse` a forward kernel writes for a backward pass. `lse` is `[B, H, N]`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { referenceWithLse } from "./reference.ts";
 * const shape = { batch: 1, heads: 1, n: 2, d: 1, dtype: "f32", causal: false } as const;
 * const z = new Float32Array([0, 0]);
 * const { lse } = referenceWithLse(shape, z, z, new Float32Array([1, 3]));
 * assert(Math.abs(lse[0]! - Math.log(2)) < 1e-12);
 * ```
 */
export function referenceWithLse(
  shape: AttentionShape,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  opts: { scale?: number; mask?: BlockMask } = {},
): { o: Float64Array; lse: Float64Array } {
  const { n, d } = shape;
  const heads = shape.batch * shape.heads;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const mask = opts.mask;
  const out = new Float64Array(heads * n * d);
  const lse = new Float64Array(heads * n).fill(MASKED_LSE);
  const s = new Float64Array(n);
  for (let h = 0; h < heads; h++) {
    const base = h * n * d;
    for (let i = 0; i < n; i++) {
      let max = -Infinity;
      for (let j = 0; j < n; j++) {
        let allowed = !(shape.causal && j > i);
        if (allowed && mask) allowed = mask.keeps(i, j);
        if (!allowed) {
          s[j] = -Infinity;
          continue;
        }
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[base + i * d + c]! * k[base + j * d + c]!;
        s[j] = dot * scale;
        if (s[j]! > max) max = s[j]!;
      }
      if (max === -Infinity) continue; // every key masked: the row stays zero
      let sum = 0;
      for (let j = 0; j < n; j++) {
        const p = s[j] === -Infinity ? 0 : Math.exp(s[j]! - max);
        s[j] = p;
        sum += p;
      }
      lse[h * n + i] = max + Math.log(sum);
      const row = base + i * d;
      for (let j = 0; j < n; j++) {
        const p = s[j]! / sum;
        if (p === 0) continue;
        for (let c = 0; c < d; c++) out[row + c] = out[row + c]! + p * v[base + j * d + c]!;
      }
    }
  }
  return { o: out, lse };
}

/**
 * The error measure of every check: max |out − ref| / max |ref| over all elements.
 * NaN anywhere in `out` (an unwritten, poisoned element) gives Infinity: it never passes.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { maxRelError } from "./reference.ts";
 * assert(maxRelError(new Float32Array([1, 2]), new Float64Array([1, 2])) === 0);
 * assert(maxRelError(new Float32Array([NaN, 2]), new Float64Array([1, 2])) === Infinity);
 * ```
 */
export function maxRelError(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (out.length !== ref.length) {
    throw new Error(`length mismatch: ${out.length} vs ${ref.length}`);
  }
  let maxRef = 0;
  let maxErr = 0;
  for (let i = 0; i < ref.length; i++) {
    const o = out[i]!;
    if (!Number.isFinite(o)) return Infinity;
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
    maxErr = Math.max(maxErr, Math.abs(o - ref[i]!));
  }
  if (maxRef === 0) return maxErr === 0 ? 0 : Infinity;
  return maxErr / maxRef;
}
