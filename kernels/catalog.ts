/**
 * The registry's view for validation (`analysis/validate.ts` `KernelCatalog`): which kernel names
 * are known now (the built-in ones and those loaded with `--kernel-module`), which follow a block
 * mask, and their device-independent tile rules. `analysis/` sits below `kernels/`, so it takes
 * this view as an argument instead of importing the registry.
 *
 * @module
 */

import type { KernelCatalog } from "../analysis/validate.ts";
import { allKernels, findKernel, isSparseKernel, passOfMode } from "./registry.ts";
import { tileProblem } from "./tiles.ts";

/** No device limit: the rules a tile must meet on any device. */
const NO_LIMITS = {
  maxComputeWorkgroupStorageSize: Infinity,
  maxComputeInvocationsPerWorkgroup: Infinity,
};

/**
 * The kernels known now, as validation sees them; a kernel registered later is seen too.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { kernelCatalog } from "./catalog.ts";
 * const kernels = kernelCatalog();
 * assert(kernels.names().includes("flash") && kernels.sparse("block-sparse"));
 * ```
 */
export function kernelCatalog(): KernelCatalog {
  return {
    names: () => allKernels().map((k) => k.name),
    sparse: isSparseKernel,
    pass: (name) => passOfMode(findKernel(name)?.mode ?? "fwd"),
    tileProblem: (name, d, dtype, tiles) => tileProblem(name, d, dtype, tiles, NO_LIMITS),
  };
}
