/**
 * The kernel registry: every built-in kernel, one line each, and the kernels users load with
 * `--kernel-module`. Everything that needs a kernel by name asks here.
 *
 * Adding a built-in kernel: a folder `kernels/<name>/` whose `mod.ts` exports a `Kernel`, and
 * one line in {@linkcode KERNELS}. The `satisfies` makes an entry that lacks a member a compile
 * error.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import { forwardBackward } from "./backward/fwd_bwd.ts";
import { blockSparseBwd, flashBwd, standardBwd } from "./backward/mod.ts";
import { backwardHalfTiles } from "./backward/tiles.ts";
import { blockSparse } from "./block_sparse/mod.ts";
import { decode, pagedDecode } from "./decode/mod.ts";
import { flash } from "./flash/mod.ts";
import type { CountedBytes, DisplayStyle, Kernel, KernelPlan, ProblemRequest } from "./kernel.ts";
import type { BlockMask } from "./masks.ts";
import { standard } from "./standard/mod.ts";
import type { AttentionShape, Tiles } from "../core/shapes.ts";

/**
 * The built-in kernels, in the order the tool runs and reports them: the forward kernels, then
 * their backward passes (`mode: "bwd"`, each naming its `forward`; `--pass` picks among them).
 */
export const KERNELS = {
  standard,
  flash,
  "block-sparse": blockSparse,
  decode,
  "paged-decode": pagedDecode,
  "standard-bwd": standardBwd,
  "flash-bwd": flashBwd,
  "block-sparse-bwd": blockSparseBwd,
} as const satisfies Record<string, Kernel>;

/** Name of a built-in kernel. */
export type KernelName = keyof typeof KERNELS;

/**
 * Forward then backward of each forward kernel that has a backward (`--pass fwd+bwd`): built
 * from the two entries above, so they add no kernel of their own to the generic sweeps.
 */
export const FORWARD_BACKWARD_KERNELS: readonly Kernel[] = [
  forwardBackward(standard, standardBwd),
  forwardBackward(flash, flashBwd, backwardHalfTiles),
  forwardBackward(blockSparse, blockSparseBwd),
];

/** Names of the built-in kernels, in order. */
export const BUILTIN_KERNEL_NAMES: readonly KernelName[] = Object.keys(KERNELS) as KernelName[];

const loaded = new Map<string, Kernel>();

/**
 * Every kernel known now: the built-in ones, their forward + backward composites, then those
 * registered with {@linkcode registerKernel}, in order.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { allKernels } from "./registry.ts";
 * assert(
 *   allKernels().filter((k) => k.mode === "fwd").map((k) => k.name).join() ===
 *     "standard,flash,block-sparse,decode,paged-decode",
 * );
 * ```
 */
export function allKernels(): Kernel[] {
  return [...Object.values(KERNELS), ...FORWARD_BACKWARD_KERNELS, ...loaded.values()];
}

/** What one run computes: forward, backward, or forward then backward (`--pass`). */
export type Pass = "fwd" | "bwd" | "fwd+bwd";

/** The passes, as `--pass` spells them. */
export const PASSES: readonly Pass[] = ["fwd", "bwd", "fwd+bwd"];

/**
 * The FLOP mode of a pass (flash-attention's `flops(mode)`), and back.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { passOfMode, passMode } from "./registry.ts";
 * assert(passMode("fwd+bwd") === "fwd_bwd" && passOfMode("bwd") === "bwd");
 * ```
 */
export function passMode(pass: Pass): Kernel["mode"] {
  return pass === "fwd+bwd" ? "fwd_bwd" : pass;
}

/** The pass of a kernel's FLOP mode. */
export function passOfMode(mode: Kernel["mode"]): Pass {
  return mode === "fwd_bwd" ? "fwd+bwd" : mode;
}

/**
 * The kernel that runs `pass` for a name: the kernel itself when its mode is the pass, else the
 * kernel of that pass whose `forward` is the name (`flash` → `flash-bwd`, `flash-fwd+bwd`). A
 * name with no kernel of that pass is a {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { kernelForPass } from "./registry.ts";
 * assert(kernelForPass("flash", "bwd").name === "flash-bwd");
 * assert(kernelForPass("flash", "fwd+bwd").name === "flash-fwd+bwd");
 * assert(kernelForPass("flash-bwd", "bwd").name === "flash-bwd");
 * ```
 */
export function kernelForPass(name: string, pass: Pass): Kernel {
  const mode = passMode(pass);
  const k = resolveKernel(name);
  if (k.mode === mode) return k;
  const family = k.forward ?? k.name;
  const found = allKernels().find((x) => x.mode === mode && (x.forward ?? x.name) === family);
  if (!found) throw new UsageError(`kernel "${name}" has no --pass ${pass} variant`);
  return found;
}

/**
 * The kernel of this name, or undefined.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { findKernel } from "./registry.ts";
 * assert(findKernel("flash")?.name === "flash" && findKernel("nope") === undefined);
 * ```
 */
export function findKernel(name: string): Kernel | undefined {
  if (Object.hasOwn(KERNELS, name)) return KERNELS[name as KernelName];
  return FORWARD_BACKWARD_KERNELS.find((k) => k.name === name) ?? loaded.get(name);
}

/**
 * A kernel given as itself or by name; an unknown name is a {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { resolveKernel } from "./registry.ts";
 * assert(resolveKernel("standard").name === "standard");
 * ```
 */
export function resolveKernel(kernel: Kernel | string): Kernel {
  if (typeof kernel !== "string") return kernel;
  const found = findKernel(kernel);
  if (!found) {
    throw new UsageError(
      `unknown kernel "${kernel}"; kernels: ${allKernels().map((k) => k.name).join(", ")}`,
    );
  }
  return found;
}

/**
 * Makes a user kernel known by name (to `--kernels`, the report and `check`). Registering the
 * same object twice is harmless; another kernel under a taken name is a {@linkcode UsageError}.
 *
 * @example
 * ```ts ignore
 * import { registerKernel } from "./registry.ts";
 * registerKernel(myKernel);
 * ```
 */
export function registerKernel(kernel: Kernel): void {
  const taken = findKernel(kernel.name);
  if (taken === kernel) return;
  if (taken) throw new UsageError(`a kernel named "${kernel.name}" is already registered`);
  loaded.set(kernel.name, kernel);
}

/**
 * Forgets a kernel {@linkcode registerKernel} added (built-in ones stay); for tests.
 *
 * @example
 * ```ts
 * import { unregisterKernel } from "./registry.ts";
 * unregisterKernel("never-registered");
 * ```
 */
export function unregisterKernel(name: string): void {
  loaded.delete(name);
}

/**
 * How reports draw a kernel: its own style, or a neutral one for a name no kernel has (results
 * files from elsewhere).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { displayStyle } from "./registry.ts";
 * assert(displayStyle("flash").hue === 212 && displayStyle("mine").label === "mine");
 * ```
 */
export function displayStyle(name: string): DisplayStyle {
  return findKernel(name)?.display ?? { label: name, hue: 40, saturation: 60 };
}

/**
 * The kernel reports measure speedups against by default: the `baseline` the registered kernels
 * name first (for the built-in ones, standard), or null when none names one.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { baselineKernel, findKernel } from "./registry.ts";
 * assert(findKernel(baselineKernel()!)?.baseline === null);
 * ```
 */
export function baselineKernel(): string | null {
  return allKernels().find((k) => k.baseline !== null)?.baseline ?? null;
}

/**
 * The dense kernel a sparse one is compared with in density sweeps: the first kernel that a
 * density sweep runs once as the dense reference (`densitySweep: "once"`), or null.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { denseReferenceKernel, isSparseKernel } from "./registry.ts";
 * assert(!isSparseKernel(denseReferenceKernel()!));
 * ```
 */
export function denseReferenceKernel(): string | null {
  return allKernels().find((k) => k.densitySweep === "once")?.name ?? null;
}

/**
 * Whether the kernel of this name follows a block mask (its density and mask are worth showing).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { isSparseKernel } from "./registry.ts";
 * assert(isSparseKernel("block-sparse") && !isSparseKernel("flash"));
 * ```
 */
export function isSparseKernel(name: string): boolean {
  return findKernel(name)?.sparse === true;
}

/**
 * The order reports list kernels in: the registry's, unknown names after.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { kernelOrder } from "./registry.ts";
 * assert(kernelOrder("standard") < kernelOrder("flash"));
 * ```
 */
export function kernelOrder(name: string): number {
  const i = allKernels().findIndex((k) => k.name === name);
  return i < 0 ? allKernels().length : i;
}

/**
 * A kernel's plan for one problem (by kernel or name).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { planFor } from "./registry.ts";
 * const shape = { batch: 1, heads: 1, n: 8, d: 32, dtype: "f32", causal: false } as const;
 * const plan = planFor("flash", { shape, tiles: { br: 8, bc: 8, rm: 2, tx: 4 } });
 * assert(plan.passes().length === 1);
 * ```
 */
export function planFor(kernel: Kernel | string, request: ProblemRequest): KernelPlan {
  return resolveKernel(kernel).plan(request);
}

/**
 * Exact bytes per slot a kernel moves for `shape` with `tiles` (and `mask`, sparse kernels).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { modeledTraffic } from "./registry.ts";
 * const shape = { batch: 1, heads: 1, n: 100, d: 64, dtype: "f32", causal: false } as const;
 * const t = modeledTraffic("flash", shape, { br: 32, bc: 32, rm: 4, tx: 8 }, null);
 * assert(t.q!.read === 100 * 64 * 4 && t.k!.read === 4 * 100 * 64 * 4);
 * ```
 */
export function modeledTraffic(
  kernel: Kernel | string,
  shape: AttentionShape,
  tiles: Tiles,
  mask: BlockMask | null,
): CountedBytes {
  return planFor(kernel, { shape, tiles, mask: mask ?? undefined }).modeledTraffic();
}

/**
 * Which problem a kernel's shape describes: `"attention"` (the default) or `"decode"` (one query
 * a sequence against a KV cache; tiles are not its knob).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { problemOf } from "./registry.ts";
 * assert(problemOf("flash") === "attention" && problemOf("paged-decode") === "decode");
 * ```
 */
export function problemOf(kernel: Kernel | string): "attention" | "decode" {
  return resolveKernel(kernel).problem ?? "attention";
}
