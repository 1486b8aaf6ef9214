/**
 * The backward oracle: gradients of attention in float64 on the CPU.
 *
 * For one head, with S = scale · Q Kᵀ + mask, P = softmax(S) row by row and O = P V, and an
 * upstream gradient dO = ∂L/∂O, the chain rule gives (the paper's Algorithm 3, Appendix B):
 *
 *   dV = Pᵀ dO,   dP = dO Vᵀ,   D_i = Σ_j P_ij dP_ij = dO_i · O_i,
 *   dS_ij = P_ij (dP_ij − D_i),   dQ = scale · dS K,   dK = scale · dSᵀ Q.
 *
 * Masked scores (causal j > i, or a block the block mask drops) are −∞, so their P is 0 and so
 * is their dS; a row whose every key is masked has O = 0, no log-sum-exp (−∞) and contributes
 * no gradient, as the forward kernels define it.
 *
 * @module
 */

import type { BlockMask } from "../masks.ts";
import type { AttentionShape, Dtype } from "../../core/shapes.ts";

/** Everything the backward kernels read and produce, `[B, H, N, d]` (or `[B, H, N]`), float64. */
export interface ReferenceGradients {
  /** The forward output O. */
  o: Float64Array;
  /** Natural-log log-sum-exp of each row's scores; −∞ for a row whose every key is masked. */
  lse: Float64Array;
  /** D_i = rowsum(dO ∘ O). */
  delta: Float64Array;
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
  /** The softmax P, `[B, H, N, N]` (the standard backward's input); only when asked for. */
  p: Float64Array | null;
}

/** Options of {@linkcode referenceBackward}. */
export interface ReferenceBackwardOptions {
  /** Softmax scale; 1/√d by default. */
  scale?: number;
  /** Block mask (block-sparse): dropped blocks are −∞ before the softmax. */
  mask?: BlockMask;
  /** Also return P (N² a head: keep N small). */
  keepP?: boolean;
  /**
   * The O that D_i = dO_i · O_i is taken from, as the flash kernels read it: an array (the O
   * uploaded to the kernel), or a storage dtype to round the float64 O to (the O a forward kernel
   * stores); the float64 O when absent. It changes only D, so dQ and dK; O itself (`o`) stays
   * float64. Why: see {@linkcode referenceBackward}.
   */
  storedO?: ArrayLike<number> | Dtype;
}

/**
 * Forward and backward of attention for every (batch, head), in float64.
 *
 * The flash backward does not get the exact O: it reads O as the forward stored it (f16 in an
 * f16 run), Ô = O (1 + ε), |ε| ≤ u = 2⁻¹¹, so its D̂_i = dO_i · Ô_i is off by up to
 * u · Σ_c |dO_ic O_ic|, and dS_ij = P_ij (dP_ij − D_i) cancels: where dP_ij ≈ D_i (a row whose
 * probability sits on keys with nearly equal dP, e.g. two keys at n = 2), that error is not small
 * against dS, nor dQ_i = τ Σ_j dS_ij K_j against max |dQ| (n = 2, d = 128, causal: ΔD = 1.1e-3 on
 * dP − D ≈ 0.1, 1.5 % of dK, where Σ_c |dO_ic O_ic| = 58 bounds ΔD by 0.028). That error is the
 * f16 storage of the forward's output, not the backward's arithmetic, and no backward kernel can
 * undo it; `storedO` mirrors it (as Q, K, V and dO are rounded before the reference sees them),
 * so the kernel is held to the same 1e-2 of max |ref| with D taken from the O it was given.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { referenceBackward } from "./reference.ts";
 * const shape = { batch: 1, heads: 1, n: 2, d: 1, dtype: "f32", causal: true } as const;
 * const one = new Float32Array([1, 1]);
 * const g = referenceBackward(shape, one, new Float32Array([0, 0]), new Float32Array([2, 4]), one);
 * // Row 1 averages V (O = 3); moving V's second entry moves it by ½: dV = [1 + ½, ½].
 * assert(g.o[1] === 3 && g.dv[0] === 1.5 && g.dv[1] === 0.5);
 * ```
 */
export function referenceBackward(
  shape: AttentionShape,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dout: ArrayLike<number>,
  opts: ReferenceBackwardOptions = {},
): ReferenceGradients {
  const { n, d } = shape;
  const heads = shape.batch * shape.heads;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const mask = opts.mask;
  const o = new Float64Array(heads * n * d);
  const lse = new Float64Array(heads * n);
  const delta = new Float64Array(heads * n);
  const dq = new Float64Array(heads * n * d);
  const dk = new Float64Array(heads * n * d);
  const dv = new Float64Array(heads * n * d);
  const pAll = opts.keepP ? new Float64Array(heads * n * n) : null;
  const p = new Float64Array(n * n);
  const dp = new Float64Array(n);
  for (let h = 0; h < heads; h++) {
    const base = h * n * d;
    p.fill(0);
    // Forward: P row by row, O, lse.
    for (let i = 0; i < n; i++) {
      const row = p.subarray(i * n, (i + 1) * n);
      let max = -Infinity;
      for (let j = 0; j < n; j++) {
        let allowed = !(shape.causal && j > i);
        if (allowed && mask) allowed = mask.keeps(i, j);
        if (!allowed) {
          row[j] = -Infinity;
          continue;
        }
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[base + i * d + c]! * k[base + j * d + c]!;
        row[j] = dot * scale;
        if (row[j]! > max) max = row[j]!;
      }
      if (max === -Infinity) {
        row.fill(0);
        lse[h * n + i] = -Infinity;
        continue;
      }
      let sum = 0;
      for (let j = 0; j < n; j++) {
        row[j] = row[j] === -Infinity ? 0 : Math.exp(row[j]! - max);
        sum += row[j]!;
      }
      lse[h * n + i] = max + Math.log(sum);
      for (let j = 0; j < n; j++) {
        row[j] = row[j]! / sum;
        if (row[j] === 0) continue;
        for (let c = 0; c < d; c++) {
          o[base + i * d + c] = o[base + i * d + c]! + row[j]! * v[base + j * d + c]!;
        }
      }
    }
    pAll?.set(p, h * n * n);
    const oD = storedOf(opts.storedO, o, base, n * d);
    // Backward, row by row: dV += P_iᵀ dO_i; dP_i = dO_i Vᵀ; dS_i; dQ_i = dS_i K; dK += dS_iᵀ Q_i.
    for (let i = 0; i < n; i++) {
      const row = p.subarray(i * n, (i + 1) * n);
      let di = 0;
      for (let c = 0; c < d; c++) di += dout[base + i * d + c]! * oD[i * d + c]!;
      delta[h * n + i] = di;
      for (let j = 0; j < n; j++) {
        if (row[j] === 0) {
          dp[j] = 0;
          continue;
        }
        let dot = 0;
        for (let c = 0; c < d; c++) dot += dout[base + i * d + c]! * v[base + j * d + c]!;
        dp[j] = dot;
      }
      for (let j = 0; j < n; j++) {
        const pij = row[j]!;
        if (pij === 0) continue;
        const ds = pij * (dp[j]! - di) * scale;
        for (let c = 0; c < d; c++) {
          dv[base + j * d + c] = dv[base + j * d + c]! + pij * dout[base + i * d + c]!;
          dq[base + i * d + c] = dq[base + i * d + c]! + ds * k[base + j * d + c]!;
          dk[base + j * d + c] = dk[base + j * d + c]! + ds * q[base + i * d + c]!;
        }
      }
    }
  }
  return { o, lse, delta, dq, dk, dv, p: pAll };
}

/** One head's O that D is taken from (see {@linkcode ReferenceBackwardOptions.storedO}). */
function storedOf(
  stored: ArrayLike<number> | Dtype | undefined,
  o: Float64Array,
  base: number,
  len: number,
): ArrayLike<number> {
  const head = o.subarray(base, base + len);
  if (stored === undefined) return head;
  if (stored === "f16") return new Float16Array(head);
  if (stored === "f32") return new Float32Array(head);
  return Array.from({ length: len }, (_, i) => stored[base + i]!);
}
