/**
 * `--f16-math f32|packed`: how the f16 flash programs (flash, block-sparse) compute. `f32`
 * (default): f16 storage, f32 arithmetic. `packed`: half arithmetic in chunks of 16 elements,
 * folded into f32 sums (flash_h16.wgsl). It changes the numbers, so a run records it.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { Dtype } from "../core/shapes.ts";
import { F16_CHUNK, F16_MATHS, type F16Math } from "../kernels/flash/mod.ts";
import type { RawFlags } from "./flags.ts";

/** The help lines of `--f16-math`. */
export const F16_MATH_HELP =
  `  --f16-math M        f16 flash and block-sparse arithmetic: f32 (default; f16 storage, f32
                      math) or packed (vec4<f16> products in chunks of ${F16_CHUNK}, summed in f32)`;

/**
 * The f16 math the flags ask for, or null at f32 storage without the flag. A value other than
 * f32 or packed, or `packed` at `--dtype f32`, is a {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { f16MathFlag } from "./f16_math_flag.ts";
 * assert(f16MathFlag({ _: [], "f16-math": "packed" }, "f16") === "packed");
 * assert(f16MathFlag({ _: [] }, "f16") === "f32");
 * assert(f16MathFlag({ _: [] }, "f32") === null);
 * ```
 */
export function f16MathFlag(flags: RawFlags, dtype: Dtype): F16Math | null {
  const v = flags["f16-math"];
  if (v !== undefined && !F16_MATHS.includes(v as F16Math)) {
    throw new UsageError(`--f16-math ${String(v)}: expected ${F16_MATHS.join(" or ")}`);
  }
  if (dtype !== "f16") {
    if (v === "packed") throw new UsageError("--f16-math packed needs --dtype f16");
    return null;
  }
  return (v as F16Math | undefined) ?? F16_MATHS[0]!;
}
