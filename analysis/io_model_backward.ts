/**
 * The IO-complexity model of the backward passes, as the FlashAttention paper counts them: pure
 * functions, no GPU. Byte counts are HBM reads plus writes of all `batch · heads` heads.
 *
 * Sources (Dao et al. 2022, arXiv:2205.14135, Appendix B): Algorithm 3 (standard attention
 * backward), Algorithm 4 (FlashAttention backward) and Theorem 5 (its IO complexity:
 * Θ(Nd + N²) for standard, Θ(N²d²M⁻¹) for FlashAttention). How our kernels depart from them is
 * in `kernels/backward/README.md`.
 *
 * @module
 */

import { type AttentionShape, dtypeBytes } from "../core/shapes.ts";
import {
  flashAttentionBytes,
  type MaskGrid,
  standardAttentionBytes,
  type TheoreticalOptions,
  type TheoreticalTraffic,
  usedRows,
} from "./io_model.ts";

/** Which of the paper's backward algorithms: Algorithm 3, or Algorithm 4 (with a mask: sparse). */
export type BackwardAlgorithm = "standard" | "flash";

/**
 * HBM traffic of the paper's backward algorithms, with the constants they imply.
 *
 * - standard, Algorithm 3: `7N² + 8Nd` elements a head. Step 1 reads P and dO, writes dV
 *   (N² + 2Nd); step 2 reads dO and V, writes dP (2Nd + N²); step 3 reads P and dP, writes dS
 *   (3N²); step 4 reads dS and K, writes dQ (N² + 2Nd); step 5 reads dS and Q, writes dK
 *   (N² + 2Nd). Causal masking does not change it (Algorithm 3 moves the whole P, dP, dS).
 * - flash, Algorithm 4: with Algorithm 1's `Bc = ⌈M/4d⌉`, `Br = min(⌈M/4d⌉, d)`,
 *   `Tc = ⌈N/Bc⌉`: `4Nd + Tc · (5Nd + 2N)` elements a head. K and V are read once and dK, dV
 *   written once (4Nd); each of the Tc outer iterations reads Q, O, dO, dQ, ℓ, m
 *   (4Nd + 2N) and writes dQ (Nd). The initialization of dQ, dK, dV in HBM (line 5) is not
 *   counted, as the forward's model does not count line 2's; nor is the dropout state.
 * - block-sparse (flash with `opts.mask`): the Tc term over the blocks Algorithm 5 visits, as the
 *   forward's model counts them (Proposition 4): `4Nd + passRows · (5d + 2)`.
 *
 * Causal: the Tc term over the rows on or below the diagonal, the forward model's rule
 * (`analysis/IO_MODEL.md`, "Causal masking: our rule"), standard unchanged. In general the Tc
 * term is `passRows · (5d + 2)` with the forward's `passRows` (Tc · N when dense).
 * Elements are converted at the storage dtype's width (ℓ and m too), then × batch × heads.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { theoreticalBackwardBytes } from "./io_model_backward.ts";
 * const shape = { batch: 1, heads: 1, n: 1024, d: 64, dtype: "f32" as const, causal: false };
 * const std = theoreticalBackwardBytes("standard", shape, { sramBytes: 49152 });
 * assert(std.elementsPerHead === 7 * 1024 * 1024 + 8 * 1024 * 64);
 * const flash = theoreticalBackwardBytes("flash", shape, { sramBytes: 49152 });
 * assert(flash.tc === 22 && flash.elementsPerHead === 4 * 65536 + 22 * (5 * 65536 + 2048));
 * ```
 */
export function theoreticalBackwardBytes(
  algorithm: BackwardAlgorithm,
  shape: AttentionShape,
  opts: TheoreticalOptions,
): TheoreticalTraffic {
  const { n, d } = shape;
  const e = dtypeBytes(shape.dtype) * shape.batch * shape.heads;
  if (algorithm === "standard") {
    const forward = standardAttentionBytes(shape);
    const elementsPerHead = 7 * n * n + 8 * n * d;
    return { ...forward, algorithm: "Algorithm 3", bytes: elementsPerHead * e, elementsPerHead };
  }
  // The forward model validates the shape and options and derives M, Br, Bc, Tc, Tr and the rows
  // of the visited blocks; the backward uses the same blocks (Algorithm 4, line 2).
  const forward = flashAttentionBytes(shape, opts);
  const elementsPerHead = 4 * n * d + forward.passRows! * (5 * d + 2);
  return {
    ...forward,
    algorithm: opts.mask ? "Algorithm 5 backward" : "Algorithm 4",
    bytes: elementsPerHead * e,
    elementsPerHead,
  };
}

/**
 * The compulsory traffic of the backward: read Q, K, V and dO, write dQ, dK and dV once each,
 * `7 · N · d` elements a head (O, L and P are conveniences of an algorithm, not of the problem:
 * D can come from P and dP). With a block mask, only the rows it uses: Q, dO, dQ over the query
 * rows that attend a key, K, V, dK, dV over the key rows some query attends.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { lowerBoundBackwardBytes } from "./io_model_backward.ts";
 * const shape = { batch: 2, heads: 1, n: 16, d: 32, dtype: "f32" as const, causal: true };
 * assert(lowerBoundBackwardBytes(shape) === 7 * 16 * 32 * 4 * 2);
 * ```
 */
export function lowerBoundBackwardBytes(shape: AttentionShape, mask?: MaskGrid | null): number {
  const { n, d } = shape;
  const used = mask ? usedRows(n, mask, shape.causal) : { queryRows: n, keyRows: n };
  const rows = 3 * used.queryRows + 4 * used.keyRows;
  return rows * d * dtypeBytes(shape.dtype) * shape.batch * shape.heads;
}

/**
 * Forward plus backward, the quantity of the paper's Figure 2 (left): Algorithm 0 + 3 for
 * standard, Algorithm 1 + 4 for flash (Algorithm 5 and its backward for block-sparse).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { theoreticalForwardBackwardBytes } from "./io_model_backward.ts";
 * const shape = { batch: 64, heads: 16, n: 1024, d: 64, dtype: "f16" as const, causal: false };
 * const std = theoreticalForwardBackwardBytes("standard", shape, { sramBytes: 102400 });
 * assert(Math.round(std / 1e8) === 252); // 25.2 GB
 * ```
 */
export function theoreticalForwardBackwardBytes(
  algorithm: BackwardAlgorithm,
  shape: AttentionShape,
  opts: TheoreticalOptions,
): number {
  const forward = algorithm === "standard"
    ? standardAttentionBytes(shape)
    : flashAttentionBytes(shape, opts);
  return forward.bytes + theoreticalBackwardBytes(algorithm, shape, opts).bytes;
}
