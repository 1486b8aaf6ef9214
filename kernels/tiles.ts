/**
 * Tile choice: which compile-time tile sizes a kernel uses on an adapter, and whether a given
 * choice can be built there at all.
 *
 * @module
 */

import { type Dtype, TILE_VARIANTS, type Tiles } from "../core/shapes.ts";
import type { Kernel, TileLimits } from "./kernel.ts";
import { resolveKernel } from "./registry.ts";

export type { TileLimits };

/** Candidate tiles in order of preference (largest first), before tuning. */
export const TILE_CANDIDATES: readonly Tiles[] = [
  { br: 64, bc: 64, rm: 4, tx: 8 },
  { br: 64, bc: 32, rm: 4, tx: 8 },
  { br: 32, bc: 64, rm: 2, tx: 8 },
  { br: 32, bc: 32, rm: 4, tx: 8 },
  { br: 32, bc: 32, rm: 2, tx: 8 },
  { br: 16, bc: 32, rm: 2, tx: 8 },
  { br: 16, bc: 16, rm: 2, tx: 4 },
  { br: 8, bc: 8, rm: 1, tx: 4 },
];

/**
 * Tiles for a fallback (software) adapter: speed does not matter there, but LLVM's compile time
 * grows steeply with the unrolled tile (tens of seconds for the GPU tiles), so small tiles keep
 * the test suite fast. Still more than one row and one key column per thread, so the register
 * tiling paths are exercised.
 */
export const FALLBACK_TILE_CANDIDATES: readonly Tiles[] = [
  { br: 8, bc: 8, rm: 2, tx: 4 },
  { br: 8, bc: 8, rm: 1, tx: 4 },
];

/**
 * Workgroup memory bytes of `kernel` with these tiles.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { workgroupBytes } from "./tiles.ts";
 * assert(workgroupBytes("standard", 64, "f32", { br: 32, bc: 32, rm: 4, tx: 8 }) === 17408);
 * ```
 */
export function workgroupBytes(kernel: Kernel | string, d: number, dtype: Dtype, t: Tiles): number {
  return resolveKernel(kernel).workgroupBytes(d, dtype, t);
}

/**
 * Why `tiles` cannot run `kernel` at head dim `d` on a device with `limits`; null when they can.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { tileProblem } from "./tiles.ts";
 * const limits = { maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256 };
 * assert(tileProblem("flash", 128, "f32", { br: 64, bc: 64, rm: 4, tx: 8 }, limits) !== null);
 * ```
 */
export function tileProblem(
  kernel: Kernel | string,
  d: number,
  dtype: Dtype,
  t: Tiles,
  limits: TileLimits,
): string | null {
  for (const name of ["br", "bc", "rm", "tx"] as const) {
    const value = t[name];
    if (!Number.isInteger(value) || value < 1) return `tile ${name} must be a positive integer`;
  }
  if (t.variant !== undefined && !TILE_VARIANTS.includes(t.variant)) {
    return `tile variant ${JSON.stringify(t.variant)} is not one of ${TILE_VARIANTS.join(", ")}`;
  }
  const k = resolveKernel(kernel);
  const structural = k.tileProblem(d, t);
  if (structural) return structural;
  const threads = k.threads(t);
  if (threads > limits.maxComputeInvocationsPerWorkgroup) {
    return `${threads} threads per workgroup exceed the device's ` +
      `${limits.maxComputeInvocationsPerWorkgroup}`;
  }
  const bytes = k.workgroupBytes(d, dtype, t);
  if (bytes > limits.maxComputeWorkgroupStorageSize) {
    return `${bytes} bytes of workgroup memory exceed the device's ` +
      `${limits.maxComputeWorkgroupStorageSize}`;
  }
  return null;
}

/**
 * The first candidate that fits, or throws when none does. With the shared
 * lists ({@linkcode TILE_CANDIDATES}, `FALLBACK_TILE_CANDIDATES`), a kernel's own `tileCandidates` for
 * that adapter are tried first.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { defaultTiles } from "./tiles.ts";
 * const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
 * assert(defaultTiles("flash", 64, "f32", limits).br === 32);
 * ```
 */
export function defaultTiles(
  kernel: Kernel | string,
  d: number,
  dtype: Dtype,
  limits: TileLimits,
  candidates: readonly Tiles[] = TILE_CANDIDATES,
): Tiles {
  // The shared lists stand for "a GPU's defaults" and "a software adapter's": a kernel's own
  // candidates for that adapter come first.
  const k = resolveKernel(kernel);
  const own = candidates === TILE_CANDIDATES
    ? k.tileCandidates?.(false) ?? []
    : candidates === FALLBACK_TILE_CANDIDATES
    ? k.tileCandidates?.(true) ?? []
    : [];
  for (const t of [...own, ...candidates]) {
    if (tileProblem(kernel, d, dtype, t, limits) === null) return { ...t };
  }
  throw new Error(
    `no tile candidate fits ${resolveKernel(kernel).name} d=${d} ${dtype} on this device`,
  );
}
