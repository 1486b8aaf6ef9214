/**
 * Helpers of the decode kernels' tests: one checked run (fresh inputs with NaN past every
 * sequence's length, outputs poisoned, one run, max relative error against the float64
 * reference) and a case label to replay it. For tests only.
 *
 * @module
 */

import { AssertionError } from "@std/assert";
import { maxRelError } from "../reference.ts";
import { tolerance } from "../../core/tolerances.ts";
import type { PreparedDecode } from "./run.ts";
import { type DecodeInputs, randomDecodeInputs, referenceDecode } from "./reference.ts";

/** One checked decode run. */
export interface DecodeCheck {
  /** max |out − ref| / max |ref|; Infinity when any element of `out` is not finite. */
  error: number;
  out: Float32Array;
  ref: Float64Array;
  inputs: DecodeInputs;
  /** Kernel, shape, split, block size and seed, to replay the case. */
  label: string;
}

/**
 * A decode case in one line.
 *
 * @example
 * ```ts ignore
 * import { describeDecode } from "./testing.ts";
 * console.log(describeDecode(prepared, 1));
 * ```
 */
export function describeDecode(p: PreparedDecode, seed: number): string {
  const { plan } = p;
  const s = plan.shape;
  const lens = s.lens.length > 8
    ? `${s.lens.slice(0, 8).join(",")},… (${s.lens.length})`
    : s.lens.join(",");
  return `${plan.kernel} lens=[${lens}] heads=${s.heads}/${s.kvHeads} d=${s.d} ${s.dtype} ` +
    `split=${plan.splitTokens}${plan.tables ? ` block=${plan.tables.blockSize}` : ""} seed ${seed}`;
}

/**
 * Uploads inputs drawn with `seed` (or `inputs`), poisons O and the partials, runs once and
 * compares O with the float64 reference.
 *
 * @example
 * ```ts ignore
 * import { checkDecode } from "./testing.ts";
 * const { error } = await checkDecode(prepared, 7);
 * ```
 */
export async function checkDecode(
  p: PreparedDecode,
  seed: number,
  inputs: DecodeInputs = randomDecodeInputs(p.plan.shape, seed, p.plan.cap ?? undefined),
): Promise<DecodeCheck> {
  p.upload(inputs);
  p.poisonOutput();
  await p.run();
  const out = await p.readOutput();
  const ref = referenceDecode(p.plan.shape, inputs);
  return { error: maxRelError(out, ref), out, ref, inputs, label: describeDecode(p, seed) };
}

/**
 * Throws unless the run is within its dtype's tolerance (NaN anywhere never is).
 *
 * @example
 * ```ts ignore
 * import { assertDecodeClose, checkDecode } from "./testing.ts";
 * assertDecodeClose(await checkDecode(prepared, 7), "f32");
 * ```
 */
export function assertDecodeClose(r: DecodeCheck, dtype: "f32" | "f16"): void {
  const bound = tolerance(dtype);
  if (!(r.error <= bound)) {
    throw new AssertionError(`${r.label}: max relative error ${r.error} exceeds ${bound}`);
  }
}
