/**
 * `--dq pass|atomic|atomic-stagger`: how flash's backward (`--pass bwd`, and the backward half of
 * `--pass fwd+bwd`) computes dQ (kernel option `dq`, kernels/backward/README.md). `pass`
 * (default): its own pass re-reading K and V. `atomic`: the dK/dV pass adds each block's dQ part
 * to an f32 accumulator with atomicAdd (device feature wgpu-shader-float32-atomic).
 * `atomic-stagger`: the same, each key block starting its query walk at its own offset. It
 * changes the program and its traffic, so a run records a non-`pass` dQ and `check` keys by it.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import { DQ_KERNELS } from "../core/schema.ts";
import type { Pass } from "../kernels/registry.ts";
import { DQ_MODES, type DqMode } from "../kernels/backward/program.ts";
import { FLOAT32_ATOMIC, type Gpu } from "../kernels/gpu.ts";
import type { RawFlags } from "./flags.ts";

/** The help lines of `--dq`. */
export const DQ_HELP =
  `  --dq M              flash's backward dQ (--pass bwd, fwd+bwd): pass (default: its own pass),
                      atomic (atomicAdd in the dK/dV pass; needs ${FLOAT32_ATOMIC}) or
                      atomic-stagger (the same, each key block from its own query block)`;

/**
 * The dQ mode the flags ask for, or null for the default (`pass`, or no flag). A value other
 * than the modes, or the flag with `--pass fwd` (no backward to change), is a
 * {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { dqFlag } from "./dq_flag.ts";
 * assert(dqFlag({ _: [], dq: "atomic" }, "bwd") === "atomic");
 * assert(dqFlag({ _: [], dq: "pass" }, "fwd+bwd") === null);
 * assert(dqFlag({ _: [] }, "fwd") === null);
 * ```
 */
export function dqFlag(flags: RawFlags, pass: Pass): Exclude<DqMode, "pass"> | null {
  const v = flags.dq;
  if (v === undefined) return null;
  if (!DQ_MODES.includes(v as DqMode)) {
    throw new UsageError(`--dq ${String(v)}: expected ${DQ_MODES.join(", ")}`);
  }
  if (pass === "fwd") throw new UsageError("--dq needs --pass bwd or fwd+bwd");
  return v === "pass" ? null : v as Exclude<DqMode, "pass">;
}

/**
 * Refuses an atomic dQ (a {@linkcode UsageError}) when a kernel that would use it runs on a
 * device without {@linkcode FLOAT32_ATOMIC}, before any run starts.
 *
 * @example
 * ```ts
 * import { assertThrows } from "@std/assert";
 * import type { Gpu } from "../kernels/gpu.ts";
 * import { requireDqFeature } from "./dq_flag.ts";
 * const gpu = { device: { features: new Set() }, info: { description: "cpu" } } as unknown as Gpu;
 * requireDqFeature(gpu, null, ["flash-bwd"]);
 * requireDqFeature(gpu, "atomic", ["standard-bwd"]);
 * assertThrows(() => requireDqFeature(gpu, "atomic", ["flash-bwd"]));
 * ```
 */
export function requireDqFeature(gpu: Gpu, dq: DqMode | null, kernels: readonly string[]): void {
  if (dq === null || dq === "pass" || !kernels.some((k) => DQ_KERNELS.includes(k))) return;
  if (!gpu.device.features.has(FLOAT32_ATOMIC)) {
    throw new UsageError(
      `--dq ${dq}: this adapter (${gpu.info.description}) does not grant ${FLOAT32_ATOMIC}`,
    );
  }
}
