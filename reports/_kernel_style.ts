/**
 * How the report draws each kernel: its colour and its label, in ONE lookup
 * ({@linkcode kernelStyle}) that asks the kernel registry (`Kernel.display`), so a kernel brought
 * with `--kernel-module` is drawn in its own style and a name no kernel has in a neutral one. Also
 * the two roles a kernel plays in comparisons (the baseline speedups are measured against, the
 * dense kernel a sparse one is compared with), both taken from the registry. Private to
 * `reports/`.
 *
 * @module
 */

import {
  baselineKernel,
  denseReferenceKernel,
  displayStyle,
  kernelOrder as registryOrder,
} from "../kernels/registry.ts";
import type { DisplayStyle } from "../kernels/kernel.ts";

/** A kernel's look in the report: its name in legends and sentences, hue and saturation. */
export type KernelStyle = DisplayStyle;

/**
 * The colour and label of a kernel (the registry's display style); an unknown kernel gets an
 * amber colour and its own name.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { kernelStyle } from "./_kernel_style.ts";
 * assert(kernelStyle("nope").label === "nope");
 * ```
 */
export function kernelStyle(name: string): KernelStyle {
  return displayStyle(name);
}

/** The kernel that speedups are measured against by default (the registry's baseline). */
export const BASELINE_KERNEL: string = baselineKernel() ?? "";
/** The dense kernel a masked run is compared with (the registry's dense reference). */
export const DENSE_KERNEL: string = denseReferenceKernel() ?? "";

const LIGHTNESS = [44, 30, 58, 22, 68];

/**
 * The colour of a kernel's `variant`-th configuration (another d, dtype, …: another lightness).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { kernelColor } from "./_kernel_style.ts";
 * assert(kernelColor("flash", 0) !== kernelColor("flash", 1));
 * ```
 */
export function kernelColor(name: string, variant = 0, alpha = 1): string {
  const s = kernelStyle(name);
  const l = LIGHTNESS[variant % LIGHTNESS.length];
  return alpha < 1
    ? `hsla(${s.hue}, ${s.saturation}%, ${l}%, ${alpha})`
    : `hsl(${s.hue}, ${s.saturation}%, ${l}%)`;
}

/**
 * Sort key of kernels: the order the registry lists them, unknown kernels last.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { kernelOrder } from "./_kernel_style.ts";
 * assert(kernelOrder("standard") < kernelOrder("zzz"));
 * ```
 */
export function kernelOrder(name: string): number {
  return registryOrder(name);
}
