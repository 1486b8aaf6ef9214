/**
 * The one place that states how close a kernel's output must be to the float64 reference.
 *
 * The measure is `maxRelError` of `reference.ts`: max |O − ref| / max |ref|. Storage is
 * f32 or f16 and accumulation is always f32, so the bound is set by the storage precision:
 *
 * - f32: 1e-4 (f32 has a unit roundoff of 6e-8; softmax and two dot products over N ≤ a few
 *   thousand keys stay well inside it);
 * - f16: 1e-2 (f16 has a unit roundoff of 5e-4; Q, K, V, O and, in the standard
 *   kernel, S and P are rounded to it).
 *
 * Whatever judges a kernel's output (tests, `verify`, the bench) should take its bound from here
 * rather than state one of its own.
 *
 * @module
 */

import type { Dtype } from "./shapes.ts";

/** Largest accepted max-relative error, per storage dtype. */
export const TOLERANCES: Readonly<Record<Dtype, number>> = Object.freeze({
  f32: 1e-4,
  f16: 1e-2,
});

/**
 * The largest max-relative error (see `maxRelError`) a kernel may show at `dtype`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { tolerance } from "./tolerances.ts";
 * assert(tolerance("f32") === 1e-4);
 * assert(tolerance("f16") === 1e-2);
 * ```
 */
export function tolerance(dtype: Dtype): number {
  const tol = TOLERANCES[dtype];
  if (tol === undefined) throw new Error(`no tolerance for dtype ${String(dtype)}`);
  return tol;
}
