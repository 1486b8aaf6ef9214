/**
 * The measuring half of `bench`: one kernel × shape → one {@linkcode RunRecord}. Prepares the
 * kernel, times it, and fills in FLOPs, the three byte counts, the footprint and, when asked,
 * the counted bytes and the error against the reference. A shape that does not fit is `skipped`;
 * a kernel that fails (compile error, device lost, out of memory) is `failed`.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import { maskGridProblem } from "./flags.ts";
import type { RunDecode, RunRecord } from "../core/schema.ts";
import { median, summarize, timingWarnings } from "../analysis/stats.ts";
import { footprintBytes, lowerBoundBytes } from "../analysis/io_model.ts";
import {
  type AttentionKernels,
  DoesNotFitError,
  prepareAttention,
  type PreparedAttention,
} from "../kernels/attention.ts";
import { checkAgainstReference, countRun } from "../kernels/check.ts";
import { tolerance } from "../core/tolerances.ts";
import { runProblem } from "../analysis/validate.ts";
import { kernelCatalog } from "../kernels/catalog.ts";
import {
  inputsToTime,
  type Kernel,
  type KernelPlan,
  passTrafficOf,
  totalBytes,
} from "../kernels/kernel.ts";
import type { BlockMask } from "../kernels/masks.ts";
import { passOfMode } from "../kernels/registry.ts";
import { type SettleResult, timeDispatches as realTimeDispatches } from "../kernels/timing.ts";
import type { AttentionShape, MaskKind, Tiles } from "../core/shapes.ts";

/** One run to make. */
export interface RunSpec {
  kernel: Kernel;
  shape: AttentionShape;
  tiles: Tiles;
  /** Sparse kernels: the mask generator and its target density. */
  mask: { kind: MaskKind; density: number; seed: number };
  sweep: RunRecord["sweep"];
  seed: number;
  /** Kernel-specific options (a decode kernel's lengths, KV heads, block size). */
  options?: Readonly<Record<string, unknown>>;
  /** Decode kernels: the workload, recorded as the run's `decode`. */
  decode?: RunDecode;
  /** f16 flash and block-sparse: the arithmetic (`--f16-math`), recorded as the run's. */
  f16Math?: RunRecord["f16Math"];
  /** flash's backward: a non-default dQ (`--dq`), recorded as the run's. */
  dq?: RunRecord["dq"];
  /**
   * false: the portable path on a device with subgroups (a tuned knob), recorded as the run's;
   * absent: the device's subgroups.
   */
  subgroups?: false;
}

/** How to measure. */
export interface MeasureOptions {
  warmup: number;
  /**
   * Keep the GPU busy with this kernel for at least this long before timing (ms): an idle GPU
   * clocks down, and the first tens of milliseconds of a run are slow (seen on an H200: 21.4 ms
   * samples, then 4.3 ms once the clocks came up).
   */
  warmupMs: number;
  reps: number;
  minTimeMs: number;
  countIo: boolean;
  verify: boolean;
  /**
   * On-chip memory M in bytes for the paper's model: `bench` passes the adapter's
   * `maxComputeWorkgroupStorageSize`; every record stores it as `hbmBytes.sramBytes`.
   */
  sramBytes: number;
}

/** The timer {@linkcode measureRun} uses; tests pass a mock. */
export type TimeDispatches = typeof realTimeDispatches;

/** What {@linkcode measureRun} measures with: the timer and the preparation (tests mock them). */
export interface MeasureDeps {
  timeDispatches: TimeDispatches;
  prepare: typeof prepareAttention;
}

/** Largest single-head problem `--verify` checks on the CPU (N²·d multiply-adds). */
export const VERIFY_MAX_WORK = 2 ** 32;

/** Inputs larger than this are not rotated: they no longer fit in any GPU cache. */
const ROTATE_BELOW_BYTES = 256 * 2 ** 20;

/**
 * Why a run's block mask is too large to build, or null (see `maskGridProblem`). Checked for
 * every run before the sweep starts.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { maskTooLarge } from "./bench_runner.ts";
 * import { KERNELS } from "../kernels/registry.ts";
 * const shape = { batch: 1, heads: 1, n: 2 ** 20, d: 64, dtype: "f32", causal: false } as const;
 * const mask = { kind: "random", density: 0.25, seed: 1 } as const;
 * const tiles = { br: 16, bc: 16, rm: 1, tx: 4 };
 * assert(maskTooLarge({ kernel: KERNELS["block-sparse"], shape, tiles, mask, sweep: "n", seed: 1 })
 *   !== null);
 * ```
 */
export function maskTooLarge(spec: RunSpec): string | null {
  if (!spec.kernel.sparse) return null;
  return maskGridProblem(spec.kernel.name, spec.shape.n, spec.tiles.br, spec.tiles.bc);
}

/** What {@linkcode measureSweep} reports while it runs. */
export interface SweepHooks {
  /** Called before run `index` starts. */
  onRun?: (index: number, spec: RunSpec) => void;
  /** Measures one run; {@linkcode measureRun} unless a test injects another. */
  measure?: typeof measureRun;
}

/**
 * Runs every spec in order and returns one record per spec, never throwing for a GPU fault:
 * an uncaptured GPU error during a run fails that run with the error; once the device is lost,
 * the run in progress and every remaining run are `failed` with the reason, and the records
 * of the runs that finished are kept (so `bench` still writes them).
 *
 * @example
 * ```ts ignore
 * import { measureSweep } from "./bench_runner.ts";
 * const runs = await measureSweep(kernels, specs, opts);
 * ```
 */
export async function measureSweep(
  kernels: AttentionKernels,
  specs: readonly RunSpec[],
  opts: MeasureOptions,
  hooks: SweepHooks = {},
): Promise<RunRecord[]> {
  const { device } = kernels.gpu;
  let lost: string | null = null;
  device.lost.then((info) => {
    lost = `device lost (${info.reason}${info.message ? `: ${info.message}` : ""})`;
  });
  let gpuError: string | null = null;
  const onError = (ev: Event) => {
    gpuError ??= (ev as GPUUncapturedErrorEvent).error?.message ?? "uncaptured GPU error";
  };
  device.addEventListener("uncapturederror", onError);
  const measure = hooks.measure ?? measureRun;
  const runs: RunRecord[] = [];
  try {
    for (const [i, spec] of specs.entries()) {
      hooks.onRun?.(i, spec);
      if (lost !== null) {
        runs.push(unmeasuredRecord(spec, opts, `not run: the ${lost} earlier in the sweep`));
        continue;
      }
      gpuError = null;
      const record = await measure(kernels, spec, opts);
      // Let a pending device-lost or error event land before judging the run.
      await new Promise((resolve) => setTimeout(resolve, 0));
      const lostNow: string | null = lost;
      if (lostNow !== null) {
        // Whatever the run reported, the device it ran on is gone: the run failed with that.
        const own = record.reason ? `: ${record.reason}` : "";
        record.status = "failed";
        record.reason = `GPU fault during the run: ${lostNow}${own}`;
      } else if (gpuError !== null && record.status === "ok") {
        record.status = "failed";
        record.reason = `GPU fault during the run: ${String(gpuError).split("\n")[0]}`;
      }
      runs.push(record);
    }
  } finally {
    device.removeEventListener("uncapturederror", onError);
  }
  return runs;
}

/** The record of a run that was never measured: its models, and `failed` with `reason`. */
export function unmeasuredRecord(spec: RunSpec, opts: MeasureOptions, reason: string): RunRecord {
  let record: RunRecord;
  try {
    const plan = spec.kernel.plan({
      shape: spec.shape,
      tiles: spec.tiles,
      mask: spec.mask,
      options: spec.options,
    });
    record = baseRecord(spec, opts, plan, totalBytes(plan.modeledTraffic()));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    record = unplannedRecord(spec);
  }
  record.status = "failed";
  record.reason = reason;
  return record;
}

/**
 * Runs one spec and returns its record; never throws for a kernel failure.
 *
 * @example
 * ```ts ignore
 * const record = await measureRun(kernels, spec, { warmup: 3, reps: 20, minTimeMs: 0,
 *   countIo: false, verify: false, sramBytes: 49152 });
 * ```
 */
export async function measureRun(
  kernels: AttentionKernels,
  spec: RunSpec,
  opts: MeasureOptions,
  deps: Partial<MeasureDeps> = {},
): Promise<RunRecord> {
  const timeDispatches = deps.timeDispatches ?? realTimeDispatches;
  const prepare = deps.prepare ?? prepareAttention;
  const { kernel, shape, tiles } = spec;
  let plan: KernelPlan;
  try {
    // The plan (and a sparse kernel's mask) is made once, from the spec: the record, the kernel
    // and the checks share it.
    plan = kernel.plan({ shape, tiles, mask: spec.mask, options: spec.options });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const record = unplannedRecord(spec);
    record.reason = e.message;
    return record;
  }
  const mask = plan.mask;
  const traffic = plan.modeledTraffic();
  const record = baseRecord(spec, opts, plan, totalBytes(traffic));
  let prepared: PreparedAttention | null = null;
  try {
    // The inputs the caller fills (Q, K, V) are rotated among sets while they are small.
    const qkvBytes = footprintBytes(plan.buffers.filter((b) => b.role === "input" && !b.data));
    const inputSets = qkvBytes < ROTATE_BELOW_BYTES
      ? Math.min(4, Math.ceil(ROTATE_BELOW_BYTES / qkvBytes))
      : 1;
    prepared = await prepare(
      kernels,
      { kernel, shape, tiles, mask: mask ?? undefined, options: spec.options, ...sgOf(spec) },
      { inputSets },
    );
    for (let set = 0; set < inputSets; set++) {
      prepared.upload(inputsToTime(prepared.plan, spec.seed + 7919 * set), set);
    }
    record.compileMs = prepared.compileMs;
    const p = prepared;
    // Estimate a run's time, then warm up for warmupMs in the same submission stream as the
    // timed runs, so the GPU's clocks are up when timing starts.
    let warmup = opts.warmup;
    if (opts.warmupMs > 0) {
      const probe = await timeDispatches(
        kernels.gpu,
        (pass, rep) => p.encode(pass, rep % inputSets),
        {
          warmup: 1,
          reps: 3,
        },
      );
      warmup = Math.max(warmup, Math.min(5000, Math.ceil(opts.warmupMs / median(probe.samplesMs))));
    }
    const timing = await timeDispatches(
      kernels.gpu,
      (pass, rep) => p.encode(pass, rep % inputSets),
      {
        warmup,
        reps: opts.reps,
        minTimeMs: opts.minTimeMs,
        // The warm-up above is counted in reps of a probe taken while the clocks may still be
        // down; settling then measures: warmupMs more GPU time, until two batches agree.
        ...(opts.warmupMs > 0 ? { settleMs: opts.warmupMs } : {}),
      },
    );
    const stats = summarize(timing.samplesMs);
    record.clock = timing.clock;
    record.timeMs = stats;
    record.tflops = record.flops / (stats.median * 1e9);
    record.tflopsDenseEquivalent = plan.denseFlops(kernel.mode) / (stats.median * 1e9);
    record.achievedGBs = record.hbmBytes.modeled / (stats.median * 1e6);
    record.warnings.push(
      ...timingWarnings(timing.samplesMs, {
        firstRunMs: Math.max(0, timing.firstRunMs - timing.roundTripMs),
        timerResolutionMs: timing.resolutionMs,
      }),
    );
    const unsettled = settleWarning(timing.settle);
    if (unsettled) record.warnings.push(unsettled);
    if (timing.discarded > 0) {
      record.warnings.push(`${timing.discarded} samples with a non-positive time were discarded`);
    }
    if (p.passNames.length > 1) {
      await timePasses(record, kernels, p, opts, timeDispatches);
    }
    if (opts.verify) await verifyRun(record, kernels, spec, mask);
    if (opts.countIo) await countBytes(record, kernels, spec, mask);
    const problem = runProblem({ ...record, status: "ok" }, kernelCatalog());
    if (problem) throw new Error(`the measurement is not usable: ${problem}`);
    record.status = "ok";
  } catch (e) {
    if (e instanceof DoesNotFitError) {
      record.status = "skipped";
      record.reason = e.message;
    } else if (e instanceof UsageError) {
      record.status = "skipped";
      record.reason = e.message;
    } else {
      record.status = "failed";
      record.reason = (e instanceof Error ? e.message : String(e)).split("\n")[0] || "failed";
      // Whatever was measured before the failure stays, unless it is not a finite number.
      if (runProblem(record, kernelCatalog())) clearMeasurements(record);
    }
  } finally {
    prepared?.destroy();
  }
  return record;
}

/** Drops the measured fields of a failed run (one may be NaN or infinite). */
function clearMeasurements(record: RunRecord): void {
  record.timeMs = null;
  record.tflops = null;
  record.tflopsDenseEquivalent = null;
  record.achievedGBs = null;
  record.compileMs = Number.isFinite(record.compileMs) ? record.compileMs : null;
  record.hbmBytes.counted = Number.isFinite(record.hbmBytes.counted)
    ? record.hbmBytes.counted
    : null;
  record.maxRelError = Number.isFinite(record.maxRelError) ? record.maxRelError : null;
  delete record.passes;
}

/**
 * Everything known before the kernel runs: the configuration, FLOPs and the byte models with the
 * mask the kernel runs (and the M and s the theoretical count used), and the footprint, so a run
 * that is skipped (does not fit) still records what it would have moved and allocated.
 */
function baseRecord(
  spec: RunSpec,
  opts: MeasureOptions,
  plan: KernelPlan,
  modeledBytes: number,
): RunRecord {
  const { kernel } = spec;
  const mask = plan.mask;
  const density = plan.density;
  const theory = plan.theoreticalBytes({ sramBytes: opts.sramBytes });
  const warnings: string[] = [];
  if (mask && density < spec.mask.density - 1 / mask.bits.length) {
    warnings.push(
      `the ${spec.mask.kind} mask reaches density ${density.toFixed(3)}, short of the ` +
        `${spec.mask.density} asked for`,
    );
  }
  return {
    ...unplannedRecord(spec),
    density,
    status: "failed",
    flops: plan.flops(kernel.mode),
    hbmBytes: {
      theoretical: theory.bytes,
      modeled: modeledBytes,
      lowerBound: plan.lowerBoundBytes(),
      counted: null,
      sramBytes: opts.sramBytes,
      theoreticalDensity: theory.density,
    },
    footprintBytes: footprintBytes(plan.buffers),
    warnings,
  };
}

/** The record of a run whose kernel refused the problem: the configuration, no figures. */
function unplannedRecord(spec: RunSpec): RunRecord {
  const { kernel, shape, tiles } = spec;
  const pass = passOfMode(kernel.mode);
  return {
    kernel: kernel.name,
    ...(pass === "fwd" ? {} : { pass }),
    dtype: shape.dtype,
    batch: shape.batch,
    heads: shape.heads,
    n: shape.n,
    d: shape.d,
    causal: shape.causal,
    density: 1,
    mask: kernel.sparse ? spec.mask.kind : null,
    tile: { ...tiles },
    sweep: spec.sweep,
    status: "skipped",
    reason: null,
    clock: null,
    compileMs: null,
    timeMs: null,
    flops: 0,
    tflops: null,
    tflopsDenseEquivalent: null,
    hbmBytes: { theoretical: 0, modeled: 0, lowerBound: lowerBoundBytes(shape), counted: null },
    achievedGBs: null,
    footprintBytes: 0,
    maxRelError: null,
    warnings: [],
    ...(spec.decode ? { decode: spec.decode } : {}),
    ...(spec.f16Math ? { f16Math: spec.f16Math } : {}),
    ...(spec.dq ? { dq: spec.dq } : {}),
    ...sgOf(spec),
  };
}

/**
 * The warning for clocks that did not settle before timing, or undefined.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { settleWarning } from "./bench_runner.ts";
 * assertEquals(settleWarning({ busyMs: 500, batchMediansMs: [0.8, 0.29, 0.286], settled: true }), undefined);
 * assertEquals(
 *   settleWarning({ busyMs: 2001, batchMediansMs: [0.8, 0.6, 0.4], settled: false }),
 *   "the GPU's clocks did not settle in 2001 ms of warm-up (batch medians 0.8, 0.6, 0.4 ms): " +
 *     "the times may be slow; rerun, or raise --warmup-ms",
 * );
 * ```
 */
export function settleWarning(settle: SettleResult | undefined): string | undefined {
  if (!settle || settle.settled) return undefined;
  const last = settle.batchMediansMs.slice(-3).map((m) => Number(m.toPrecision(3)));
  return `the GPU's clocks did not settle in ${Math.round(settle.busyMs)} ms of warm-up ` +
    `(batch medians ${last.join(", ")} ms): the times may be slow; rerun, or raise --warmup-ms`;
}

/** A spec's `subgroups: false` (the portable path), for its problem and its record. */
function sgOf(spec: RunSpec): { subgroups?: false } {
  return spec.subgroups === false ? { subgroups: false } : {};
}

/** Times each dispatch of a multi-pass kernel on its own (10 reps each). */
async function timePasses(
  record: RunRecord,
  kernels: AttentionKernels,
  prepared: PreparedAttention,
  opts: MeasureOptions,
  timeDispatches: TimeDispatches,
): Promise<void> {
  record.passes = [];
  const perPass = passTrafficOf(prepared.plan);
  for (const [index, name] of prepared.passNames.entries()) {
    const t = await timeDispatches(
      kernels.gpu,
      (pass) => prepared.encodePass(pass, index),
      {
        warmup: Math.min(opts.warmup, 2),
        reps: Math.min(opts.reps, 10),
        // The whole run was just timed: the clocks are up, two agreeing batches confirm it.
        ...(opts.warmupMs > 0 ? { settleMs: 0 } : {}),
      },
    );
    const unsettled = settleWarning(t.settle);
    if (unsettled) record.warnings.push(`pass ${name}: ${unsettled}`);
    const ms = median(t.samplesMs);
    // The pass's modeled bytes, uniform reads left out.
    const own = perPass[index] ?? {};
    const bytes = totalBytes(own) - (own.uniform?.read ?? 0);
    record.passes.push({ name, medianMs: ms, bytes, achievedGBs: bytes / (ms * 1e6) });
  }
}

/**
 * Checks one head (batch 1, heads 1) at the same N and tiles against the reference; a decode
 * run (one query a sequence: Σ lengths · heads · d multiply-adds) is checked whole.
 */
async function verifyRun(
  record: RunRecord,
  kernels: AttentionKernels,
  spec: RunSpec,
  mask: BlockMask | null,
) {
  const decode = spec.decode;
  const shape = decode ? spec.shape : { ...spec.shape, batch: 1, heads: 1 };
  const work = decode
    ? decode.contexts.reduce((a, b) => a + b, 0) * shape.heads * shape.d
    : shape.n * shape.n * shape.d;
  if (work > VERIFY_MAX_WORK) {
    record.warnings.push(
      decode
        ? `not verified: the decode batch is too large for the CPU reference (Σ lengths·H·d > 2^32)`
        : `not verified: n=${shape.n} is too large for the CPU reference (N²·d > 2^32)`,
    );
    return;
  }
  const prepared = await prepareAttention(kernels, {
    kernel: spec.kernel,
    shape,
    tiles: spec.tiles,
    mask: mask ?? undefined,
    options: spec.options,
    ...sgOf(spec),
  });
  let err: number;
  try {
    err = await checkAgainstReference(prepared, spec.seed + 1);
  } finally {
    prepared.destroy();
  }
  // A NaN or an infinity is a failure, never a number that JSON would turn into null.
  if (!Number.isFinite(err)) {
    throw new WrongOutputError(
      "output has NaN or infinite values (elements left unwritten or overflowed)",
    );
  }
  record.maxRelError = err;
  const tol = tolerance(spec.shape.dtype);
  if (err > tol) {
    throw new WrongOutputError(`max relative error ${err.toExponential(2)} > tolerance ${tol}`);
  }
}

/** The kernel ran but its output is wrong: the run fails with this reason. */
export class WrongOutputError extends Error {
  constructor(message: string) {
    super(`wrong output: ${message}`);
    this.name = "WrongOutputError";
  }
}

/** Runs the counting variant once at the full shape and records the counted bytes. */
async function countBytes(
  record: RunRecord,
  kernels: AttentionKernels,
  spec: RunSpec,
  mask: BlockMask | null,
) {
  const problem = {
    kernel: spec.kernel,
    shape: spec.shape,
    tiles: spec.tiles,
    mask: mask ?? undefined,
    options: spec.options,
    ...sgOf(spec),
  };
  const r = await countRun(kernels, problem, spec.seed + 2, { check: false });
  record.hbmBytes.counted = r.countedBytes;
  if (record.hbmBytes.counted !== record.hbmBytes.modeled) {
    record.warnings.push(
      `counted bytes ${record.hbmBytes.counted} differ from modeled ${record.hbmBytes.modeled}`,
    );
  }
}
