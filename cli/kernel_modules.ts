/**
 * `--kernel-module PATH` (repeatable): load modules that export {@linkcode Kernel}s and register
 * them, so `verify`, `bench`, `tune` and `model` run them like the built-in kernels.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { Kernel } from "../kernels/kernel.ts";
import { registerKernel } from "../kernels/registry.ts";

/** The help line of the flag, for each command's `--help`. */
export const KERNEL_MODULE_HELP =
  `  --kernel-module PATH  load the Kernels a module exports and run them too (repeatable; see
                      README, "Write your own kernel")`;

const MEMBERS = [
  "threads",
  "workgroupBytes",
  "tileProblem",
  "plan",
] as const;

/**
 * Whether a value has the shape of a {@linkcode Kernel} (its name, display and methods).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { isKernel } from "./kernel_modules.ts";
 * import { KERNELS } from "../kernels/registry.ts";
 * assert(isKernel(KERNELS.flash) && !isKernel({ name: "x" }));
 * ```
 */
export function isKernel(value: unknown): value is Kernel {
  if (typeof value !== "object" || value === null) return false;
  const k = value as Record<string, unknown>;
  return typeof k.name === "string" && k.name !== "" && typeof k.display === "object" &&
    MEMBERS.every((m) => typeof k[m] === "function");
}

/**
 * Imports each module and registers every exported {@linkcode Kernel}; returns them in order.
 * A module that cannot be imported, or that exports no kernel, is a {@linkcode UsageError}.
 *
 * @example
 * ```ts ignore
 * import { loadKernelModules } from "./kernel_modules.ts";
 * const mine = await loadKernelModules(["./examples/row_kernel/mod.ts"]);
 * ```
 */
export async function loadKernelModules(paths: readonly string[]): Promise<Kernel[]> {
  const out: Kernel[] = [];
  for (const path of paths) {
    const url = new URL(path, `file://${Deno.cwd()}/`).href;
    let mod: Record<string, unknown>;
    try {
      mod = await import(url);
    } catch (e) {
      throw new UsageError(
        `--kernel-module ${path}: cannot load it: ${(e as Error).message.split("\n")[0]}`,
      );
    }
    const kernels = Object.values(mod).filter(isKernel);
    if (kernels.length === 0) {
      throw new UsageError(`--kernel-module ${path} exports no Kernel (see README)`);
    }
    for (const k of kernels) {
      registerKernel(k);
      if (!out.includes(k)) out.push(k);
    }
  }
  return out;
}

/**
 * The `--kernel-module` values of parsed flags (none, one or several).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { kernelModulePaths } from "./kernel_modules.ts";
 * assert(kernelModulePaths({ _: [], "kernel-module": ["a.ts", "b.ts"] }).length === 2);
 * ```
 */
export function kernelModulePaths(raw: Record<string, unknown>): string[] {
  const v = raw["kernel-module"];
  return Array.isArray(v) ? v.map(String) : typeof v === "string" ? [v] : [];
}
