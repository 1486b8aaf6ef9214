/**
 * How the report draws each kernel: its colour and its label, in ONE lookup
 * ({@linkcode kernelStyle}), so that a kernel registry can supply them later without touching the
 * charts. Also the two roles a kernel plays in comparisons (the baseline speedups are measured
 * against, the dense kernel a sparse one is compared with). Private to `reports/`.
 *
 * @module
 */

import { KERNELS } from "../kernels/types.ts";

/** A kernel's look in the report. */
export interface KernelStyle {
  /** Name shown in legends and sentences. */
  label: string;
  /** Hue (degrees) and saturation (percent) of its colour; lightness varies per configuration. */
  hue: number;
  saturation: number;
}

const STYLES: Record<string, KernelStyle> = {
  standard: { label: "standard", hue: 8, saturation: 72 },
  flash: { label: "flash", hue: 212, saturation: 74 },
  "block-sparse": { label: "block-sparse", hue: 158, saturation: 64 },
};

/**
 * The colour and label of a kernel; an unknown kernel gets an amber colour and its own name.
 *
 * @example
 * ```ts
 * import { kernelStyle } from "./_kernel_style.ts";
 * console.assert(kernelStyle("nope").label === "nope");
 * ```
 */
export function kernelStyle(name: string): KernelStyle {
  return STYLES[name] ?? { label: name, hue: 40, saturation: 60 };
}

/** The kernel that speedups are measured against (materializes S and P). */
export const BASELINE_KERNEL = "standard";
/** The dense kernel a masked (block-sparse) run is compared with. */
export const DENSE_KERNEL = "flash";

const LIGHTNESS = [44, 30, 58, 22, 68];

/**
 * The colour of a kernel's `variant`-th configuration (another d, dtype, …: another lightness).
 *
 * @example
 * ```ts
 * import { kernelColor } from "./_kernel_style.ts";
 * console.assert(kernelColor("flash", 0) !== kernelColor("flash", 1));
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
 * Sort key of kernels: the order the tool runs them, unknown kernels last.
 *
 * @example
 * ```ts
 * import { kernelOrder } from "./_kernel_style.ts";
 * console.assert(kernelOrder("standard") < kernelOrder("zzz"));
 * ```
 */
export function kernelOrder(name: string): number {
  const i = (KERNELS as readonly string[]).indexOf(name);
  return i < 0 ? KERNELS.length : i;
}
