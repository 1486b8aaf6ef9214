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

import type { AttentionShape, KernelName } from "../kernels/types.ts";
import { dtypeBytes } from "../kernels/types.ts";
import { theoreticalBytes, type TheoreticalOptions, type TheoreticalTraffic } from "./io_model.ts";

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
 * - block-sparse: the Tc term × s, as the forward's Algorithm 5 (Proposition 4).
 *
 * Causal: the Tc term × the forward model's causal fraction (the share of the inner loop on or
 * below the diagonal; `analysis/IO_MODEL.md`, "Causal masking: our rule"), standard unchanged.
 * Elements are converted at the storage dtype's width (ℓ and m too), then × batch × heads.
 *
 * @example
 * ```ts
 * import { theoreticalBackwardBytes } from "./io_model_backward.ts";
 * const shape = { batch: 1, heads: 1, n: 1024, d: 64, dtype: "f32" as const, causal: false };
 * const std = theoreticalBackwardBytes("standard", shape, { sramBytes: 49152, density: 1 });
 * console.assert(std.elementsPerHead === 7 * 1024 * 1024 + 8 * 1024 * 64);
 * const flash = theoreticalBackwardBytes("flash", shape, { sramBytes: 49152, density: 1 });
 * console.assert(flash.tc === 22 && flash.elementsPerHead === 4 * 65536 + 22 * (5 * 65536 + 2048));
 * ```
 */
export function theoreticalBackwardBytes(
  kernel: KernelName,
  shape: AttentionShape,
  opts: TheoreticalOptions,
): TheoreticalTraffic {
  // The forward model validates the shape and options and derives M, Br, Bc, Tc, Tr, the causal
  // fraction and the density; the backward uses the same blocks (Algorithm 4, line 2).
  const forward = theoreticalBytes(kernel, shape, opts);
  const { n, d } = shape;
  const elementsPerHead = kernel === "standard"
    ? 7 * n * n + 8 * n * d
    : 4 * n * d + forward.density * forward.causalFraction * forward.tc! * (5 * n * d + 2 * n);
  return {
    ...forward,
    bytes: elementsPerHead * dtypeBytes(shape.dtype) * shape.batch * shape.heads,
    elementsPerHead,
  };
}

/**
 * Forward plus backward, the quantity of the paper's Figure 2 (left): Algorithm 0 + 3 for
 * standard, Algorithm 1 + 4 for flash (Algorithm 5 and its backward for block-sparse).
 *
 * @example
 * ```ts
 * import { theoreticalForwardBackwardBytes } from "./io_model_backward.ts";
 * const shape = { batch: 64, heads: 16, n: 1024, d: 64, dtype: "f16" as const, causal: false };
 * const std = theoreticalForwardBackwardBytes("standard", shape, { sramBytes: 102400, density: 1 });
 * console.assert(Math.round(std / 1e8) === 252); // 25.2 GB
 * ```
 */
export function theoreticalForwardBackwardBytes(
  kernel: KernelName,
  shape: AttentionShape,
  opts: TheoreticalOptions,
): number {
  return theoreticalBytes(kernel, shape, opts).bytes +
    theoreticalBackwardBytes(kernel, shape, opts).bytes;
}
