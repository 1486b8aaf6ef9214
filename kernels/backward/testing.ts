/**
 * Helpers of the backward tests: one checked run of a backward kernel through the shared runner
 * (`../attention.ts`: inputs uploaded, outputs and scratch poisoned with NaN, one run, every
 * gradient compared with the float64 reference by `../check.ts`), with its failures as text.
 *
 * For tests only (`*_test.ts`).
 *
 * @module
 */

import type { AttentionShape, Tiles } from "../../core/shapes.ts";
import { tolerance } from "../../core/tolerances.ts";
import { type AttentionKernels, type AttentionProblem, prepareAttention } from "../attention.ts";
import { type CountedBytes, passTrafficOf } from "../kernel.ts";
import { checkPrepared, type CheckResult, describeCase } from "../check.ts";
import type { BlockMask } from "../masks.ts";
import { seedFor } from "../testing.ts";
import type { BackwardFamily } from "./program.ts";

/** One backward problem of a test: the forward family, the shape, the tiles, the mask. */
export interface BackwardCase {
  kernel: BackwardFamily;
  shape: AttentionShape;
  tiles: Tiles;
  mask?: BlockMask;
  /** Run the counting variant. */
  count?: boolean;
  /** Kernel options (flash: `dq`). */
  options?: Readonly<Record<string, unknown>>;
}

/** A checked run: the check, its failures (empty when every gradient is in tolerance), counts. */
export interface BackwardRun {
  check: CheckResult;
  failures: string[];
  counted: Record<string, { read: number; write: number }> | null;
  modeled: Record<string, { read: number; write: number }>;
}

/**
 * Runs one backward case on fresh inputs (seeded by its description) and checks dQ, dK, dV.
 *
 * @example
 * ```ts ignore
 * import { runBackward } from "./testing.ts";
 * const r = await runBackward(kernels, { kernel: "flash", shape, tiles });
 * console.assert(r.failures.length === 0);
 * ```
 */
export async function runBackward(
  kernels: AttentionKernels,
  c: BackwardCase,
): Promise<BackwardRun> {
  const p = await prepareAttention(kernels, {
    kernel: `${c.kernel}-bwd`,
    shape: c.shape,
    tiles: c.tiles,
    mask: c.mask,
    count: c.count,
    options: c.options,
  });
  try {
    const label = describeCase(p, 0).replace(/ seed 0$/, "");
    const seed = seedFor(label);
    p.resetCounters();
    const check = await checkPrepared(p, seed);
    const tol = tolerance(c.shape.dtype);
    const failures = Object.entries(check.errors)
      .filter(([, e]) => !(e <= tol))
      .map(([g, e]) => `${label} seed ${seed}: ${g} max relative error ${e} exceeds ${tol}`);
    return {
      check,
      failures,
      counted: c.count ? await p.readCounters() : null,
      modeled: p.plan.modeledTraffic(),
    };
  } finally {
    p.destroy();
  }
}

/**
 * Each pass of a problem's counting variant run alone on seeded inputs: the bytes it counted and
 * the bytes the plan models for it (`passTrafficOf`), by pass name, in dispatch order.
 *
 * @example
 * ```ts ignore
 * import { countEachPass } from "./testing.ts";
 * for (const r of await countEachPass(kernels, { kernel: "flash-bwd", shape, tiles })) {
 *   console.assert(JSON.stringify(r.counted) === JSON.stringify(r.modeled), r.name);
 * }
 * ```
 */
export async function countEachPass(
  kernels: AttentionKernels,
  problem: AttentionProblem,
): Promise<{ name: string; counted: CountedBytes; modeled: CountedBytes | undefined }[]> {
  const p = await prepareAttention(kernels, { ...problem, count: true });
  try {
    p.upload(p.plan.randomInputs(5));
    const modeled = passTrafficOf(p.plan);
    if (modeled.length !== p.passNames.length) {
      throw new Error(`${modeled.length} modeled passes, ${p.passNames.length} dispatched`);
    }
    const { device } = kernels.gpu;
    const out = [];
    for (const [i, name] of p.passNames.entries()) {
      p.resetCounters();
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      p.encodePass(pass, i);
      pass.end();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      out.push({ name, counted: await p.readCounters(), modeled: modeled[i] });
    }
    return out;
  } finally {
    p.destroy();
  }
}
