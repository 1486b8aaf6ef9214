/**
 * One correctness check of a prepared kernel: fresh random inputs, output poisoned with NaN,
 * one run, max relative error against the float64 reference.
 *
 * @module
 */

import type { PreparedAttention } from "./attention.ts";
import { maxRelError, referenceAttention } from "./reference.ts";
import { mulberry32, randomNormal } from "./rng.ts";
import type { AttentionShape } from "../core/shapes.ts";

/** Q, K and V for a shape, drawn from N(0, 1) with a seed, rounded to the storage dtype. */
export interface AttentionInputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

/**
 * Fresh random inputs. Values are rounded to f16 when the dtype is f16, so the reference sees
 * exactly what the kernel sees and the error measures the kernel, not the input rounding.
 *
 * @example
 * ```ts
 * import { randomInputs } from "./check.ts";
 * const shape = { batch: 1, heads: 2, n: 5, d: 32, dtype: "f32", causal: false } as const;
 * console.assert(randomInputs(shape, 1).q.length === 2 * 5 * 32);
 * ```
 */
export function randomInputs(shape: AttentionShape, seed: number): AttentionInputs {
  const len = shape.batch * shape.heads * shape.n * shape.d;
  const rand = mulberry32(seed);
  const draw = () => {
    const x = randomNormal(rand, len);
    return shape.dtype === "f16" ? new Float32Array(new Float16Array(x)) : x;
  };
  return { q: draw(), k: draw(), v: draw() };
}

/**
 * Uploads fresh inputs, poisons O, runs once and returns max |O − ref| / max |ref|
 * (Infinity when any element is NaN: unwritten).
 *
 * @example
 * ```ts ignore
 * import { checkAgainstReference } from "./check.ts";
 * const err = await checkAgainstReference(prepared, 42);
 * ```
 */
export async function checkAgainstReference(
  prepared: PreparedAttention,
  seed: number,
): Promise<number> {
  const { q, k, v } = randomInputs(prepared.shape, seed);
  prepared.upload(q, k, v);
  prepared.poisonOutput();
  await prepared.run();
  const out = await prepared.readOutput();
  const ref = referenceAttention(prepared.shape, q, k, v, { mask: prepared.mask ?? undefined });
  return maxRelError(out, ref);
}
