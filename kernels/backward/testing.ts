/**
 * Helpers of the backward tests: seeded inputs with their float64 reference gradients, and the
 * checked run (inputs uploaded, outputs and scratch poisoned with NaN, one run, max relative
 * error of dQ, dK and dV against the reference).
 *
 * For tests only (`*_test.ts`).
 *
 * @module
 */

import { randomInputs } from "../check.ts";
import { maxRelError } from "../reference.ts";
import { mulberry32, randomNormal } from "../rng.ts";
import type { AttentionShape } from "../types.ts";
import type { PreparedBackward } from "./backward.ts";
import { referenceBackward, type ReferenceGradients } from "./reference.ts";

/** The log-sum-exp the forward kernels write for a row whose every key is masked. */
export const MASKED_LSE = -3.0e38;

/** Inputs of one backward problem (rounded to the storage dtype) and its reference. */
export interface BackwardCase {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  dout: Float32Array;
  ref: ReferenceGradients;
}

/**
 * Seeded N(0, 1) Q, K, V, dO (rounded to f16 when the dtype is f16) and their float64
 * reference gradients (with P when `keepP`).
 *
 * @example
 * ```ts
 * import { backwardCase } from "./testing.ts";
 * const shape = { batch: 1, heads: 1, n: 3, d: 4, dtype: "f32", causal: false } as const;
 * console.assert(backwardCase(shape, 1).ref.dq.length === 12);
 * ```
 */
export function backwardCase(
  shape: AttentionShape,
  seed: number,
  opts: { mask?: import("../masks.ts").BlockMask | null; keepP?: boolean } = {},
): BackwardCase {
  const { q, k, v } = randomInputs(shape, seed);
  let dout = randomNormal(mulberry32(seed ^ 0x2545f491), q.length);
  if (shape.dtype === "f16") dout = new Float32Array(new Float16Array(dout));
  const ref = referenceBackward(shape, q, k, v, dout, {
    mask: opts.mask ?? undefined,
    keepP: opts.keepP,
  });
  return { q, k, v, dout, ref };
}

/**
 * The error measure of a gradient: max |x − ref| / max |ref|, as `maxRelError`, except that a
 * gradient whose reference is identically zero is measured against `scale` instead. That
 * happens: with N = 1 (or a block mask leaving each row one key) the softmax is constant, so
 * dQ = dK = 0 exactly, while a kernel's rounding leaves ~1e-8; max |dV| is then the scale.
 * NaN or ±∞ anywhere in `out` gives Infinity.
 *
 * @example
 * ```ts
 * import { gradientError } from "./testing.ts";
 * console.assert(gradientError([1e-9, 0], [0, 0], 2) === 5e-10);
 * console.assert(gradientError([NaN, 0], [0, 0], 2) === Infinity);
 * console.assert(gradientError([1.5, 2], [1, 2], 2) === 0.25);
 * ```
 */
export function gradientError(
  out: ArrayLike<number>,
  ref: ArrayLike<number>,
  scale: number,
): number {
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  if (maxRef > 0) return maxRelError(out, ref);
  let maxErr = 0;
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i]!)) return Infinity;
    maxErr = Math.max(maxErr, Math.abs(out[i]!));
  }
  return maxErr === 0 ? 0 : scale > 0 ? maxErr / scale : Infinity;
}

/** Errors of one checked backward run. */
export interface BackwardCheck {
  /** {@linkcode gradientError} of dQ, dK, dV (scale max |dV|); Infinity when any is not finite. */
  dq: number;
  dk: number;
  dv: number;
  /** The gradients read back. */
  out: { dq: Float32Array; dk: Float32Array; dv: Float32Array };
}

/**
 * Uploads the case's inputs (O, the log-sum-exp and P from the reference, as the forward would
 * have left them), poisons outputs and scratch, runs once and compares the gradients.
 *
 * @example
 * ```ts ignore
 * import { backwardCase, checkBackward } from "./testing.ts";
 * const r = await checkBackward(prepared, backwardCase(prepared.plan.shape, 1));
 * ```
 */
export async function checkBackward(
  prepared: PreparedBackward,
  c: BackwardCase,
): Promise<BackwardCheck> {
  const names = new Set(prepared.plan.buffers.map((b) => b.name));
  prepared.upload("q", c.q);
  prepared.upload("k", c.k);
  prepared.upload("v", c.v);
  prepared.upload("dout", c.dout);
  if (names.has("o")) prepared.upload("o", new Float32Array(c.ref.o));
  if (names.has("lse")) {
    prepared.upload(
      "lse",
      new Float32Array(c.ref.lse.map((x) => x === -Infinity ? MASKED_LSE : x)),
    );
  }
  if (names.has("p")) {
    if (!c.ref.p) throw new Error("the standard backward needs the case's P (keepP)");
    prepared.upload("p", new Float32Array(c.ref.p));
  }
  prepared.poison();
  await prepared.run();
  const out = {
    dq: await prepared.read("dq"),
    dk: await prepared.read("dk"),
    dv: await prepared.read("dv"),
  };
  let scale = 0;
  for (const x of c.ref.dv) scale = Math.max(scale, Math.abs(x));
  return {
    dq: gradientError(out.dq, c.ref.dq, scale),
    dk: gradientError(out.dk, c.ref.dk, scale),
    dv: gradientError(out.dv, c.ref.dv, scale),
    out,
  };
}
