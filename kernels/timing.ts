/**
 * The GPU timer: times compute passes with timestamp queries when the device has them, and with
 * the wall clock around batched submits when it does not. Never waits after each dispatch.
 *
 * A *rep* is one compute pass, encoded by the caller; it may hold several dispatches (standard
 * attention's three). A *sample* is the time of one rep in milliseconds.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { ClockKind } from "../core/schema.ts";
import type { Gpu } from "./gpu.ts";

/** Encodes one rep into `pass`; `rep` counts every rep encoded (first run and warm-up too). */
export type EncodeRep = (pass: GPUComputePassEncoder, rep: number) => void;

/** How many reps to run and for how long. */
export interface TimingOptions {
  /** Untimed reps before the timed ones, the first run included (0 still does the first run). */
  warmup: number;
  /** Timed samples wanted (at least). */
  reps: number;
  /** Keep timing until the timed reps add up to at least this many milliseconds. */
  minTimeMs?: number;
  /**
   * Most timed reps attempted, discarded ones included (on the wall clock: most batches, each
   * one sample); default `max(reps, 10000)`.
   */
  maxReps?: number;
  /**
   * Settle the GPU's clocks before timing (timestamp clock only): after the warm-up, untimed
   * batches of about {@linkcode SETTLE_BATCH_MS} of work each run until they add up to at least
   * `settleMs` of GPU time and the last two batches' medians agree within
   * {@linkcode SETTLE_TOLERANCE}, or until max({@linkcode SETTLE_MAX_MS}, 4 · `settleMs`) of GPU
   * time has passed (then `settle.settled` is false) or {@linkcode SETTLE_MAX_WALL_MS} of wall time
   * (then it is whether the last two agreed). Absent: no settling.
   */
  settleMs?: number;
}

/** What the clock settling ({@linkcode TimingOptions.settleMs}) did before the timed reps. */
export interface SettleResult {
  /** GPU time spent in settle batches, in ms. */
  busyMs: number;
  /** The median rep time of each settle batch, in ms, in order. */
  batchMediansMs: number[];
  /** Whether the last two batches agreed (false: stopped at the time cap). */
  settled: boolean;
}

/** What {@linkcode timeDispatches} measured. */
export interface TimingResult {
  /** One time per timed rep, in milliseconds, in the order they ran. */
  samplesMs: number[];
  /** The clock that produced `samplesMs`. */
  clock: ClockKind;
  /**
   * Wall time of the very first rep (submit to done), first-use costs included, in ms. It holds
   * one `roundTripMs` too: compare `firstRunMs - roundTripMs` with the median.
   */
  firstRunMs: number;
  /**
   * The clock's tick in ms: for timestamps, the largest quantum all timestamp differences are
   * multiples of (1e-6, one ns, when they are not quantized); for the wall clock, the smallest
   * step of `performance.now()`.
   */
  resolutionMs: number;
  /** Timed reps thrown away because their time was zero or negative. */
  discarded: number;
  /** Fixed wall cost of one submit-and-wait on this device, in ms ({@linkcode measureRoundTripMs}). */
  roundTripMs: number;
  /** Present when `settleMs` was asked for and the timestamp clock ran the settling. */
  settle?: SettleResult;
}

/** Passes per timestamp batch: the query set holds two queries per pass. */
export const TIMESTAMP_BATCH = 256;
/** A wall-clock batch is grown until it lasts at least this long, in ms. */
export const WALL_BATCH_MIN_MS = 2;
/** Most reps in one wall-clock batch. */
export const WALL_BATCH_MAX_REPS = 4096;
const DEFAULT_MAX_REPS = 10_000;
/** GPU time a settle batch aims at, in ms: its median is then steady from rep to rep. */
export const SETTLE_BATCH_MS = 25;
/** Two settle batches agree when their medians differ by at most this fraction. */
export const SETTLE_TOLERANCE = 0.02;
/** Settling gives up after this much GPU time (or 4 · settleMs, whichever is more), in ms. */
export const SETTLE_MAX_MS = 2000;
/**
 * Settling also stops after this much wall time, in ms, settled if its last two batches agree: a
 * kernel of a few µs fills a 256-rep batch with well under 25 ms of work and waits on each
 * read-back, so its GPU-time floor could take a minute to reach.
 */
export const SETTLE_MAX_WALL_MS = 5000;
/** Passes encoded into one command buffer for warm-up. */
const WARMUP_CHUNK = 256;

/**
 * Times `opts.reps` (or more) reps of `encodeRep` on `gpu`.
 *
 * The first rep always runs alone (submit, then wait) and its wall time is `firstRunMs`: shader
 * first-use costs land there, so a caller can warn when it is far above the median. It counts
 * as the first of `opts.warmup` warm-up reps, which then run as one submit.
 *
 * With `gpu.timestamps`, up to {@linkcode TIMESTAMP_BATCH} reps go into one command encoder,
 * each its own compute pass with a beginning- and end-of-pass timestamp; the batch is submitted
 * once and its timestamps read back once. A rep whose end is not after its begin is discarded
 * (counted in `discarded`). Batches continue until `reps` samples are collected and, with
 * `minTimeMs`, their sum reaches it, or `maxReps` reps were tried. If timestamps yield fewer
 * than `reps` usable samples, the timer falls back to the wall clock and says so in `clock`.
 *
 * Without timestamps (clock `"wall"`): a batch of k reps is encoded, then `performance.now()`
 * is read around `queue.submit` and `await queue.onSubmittedWorkDone()`, and the sample is
 * (elapsed − `roundTripMs`) / k, where `roundTripMs` is the device's fixed cost of one
 * submit-and-wait ({@linkcode measureRoundTripMs}: about 11 ms in Deno 2.9, whose wait sleeps
 * 10 ms after the work is done). k is grown (calibration batches, not kept) until one batch's
 * net time lasts at least max({@linkcode WALL_BATCH_MIN_MS} = 2 ms, `roundTripMs`), or k
 * reaches {@linkcode WALL_BATCH_MAX_REPS}, so the round trip's jitter and the timer's tick are
 * small next to what is timed. Each wall sample is one batch; `minTimeMs` counts the batches'
 * net time.
 *
 * Every batch runs inside `validation` and `out-of-memory` error scopes; a GPU error caught
 * there is thrown as an Error that names the stage. Bad options throw {@linkcode UsageError}.
 *
 * @example
 * ```ts ignore
 * import { openGpu } from "./gpu.ts";
 * import { timeDispatches } from "./timing.ts";
 * const gpu = await openGpu();
 * // `pipeline` and `bindGroup` made by the caller.
 * const r = await timeDispatches(gpu, (pass) => {
 *   pass.setPipeline(pipeline);
 *   pass.setBindGroup(0, bindGroup);
 *   pass.dispatchWorkgroups(64);
 * }, { warmup: 3, reps: 20, minTimeMs: 50 });
 * console.log(r.clock, r.samplesMs.length, r.firstRunMs);
 * ```
 */
export async function timeDispatches(
  gpu: Gpu,
  encodeRep: EncodeRep,
  opts: TimingOptions,
): Promise<TimingResult> {
  const { warmup, reps } = opts;
  const minTimeMs = opts.minTimeMs ?? 0;
  const maxReps = opts.maxReps ?? Math.max(reps, DEFAULT_MAX_REPS);
  checkOptions(warmup, reps, minTimeMs, maxReps);
  const { device } = gpu;
  let rep = 0;
  const roundTripMs = await measureRoundTripMs(device);

  /** Encodes `count` reps, each its own pass, into `encoder`. */
  const encodeReps = (
    encoder: GPUCommandEncoder,
    count: number,
    querySet?: GPUQuerySet,
  ): void => {
    for (let i = 0; i < count; i++) {
      const pass = encoder.beginComputePass(
        querySet
          ? {
            timestampWrites: {
              querySet,
              beginningOfPassWriteIndex: 2 * i,
              endOfPassWriteIndex: 2 * i + 1,
            },
          }
          : {},
      );
      encodeRep(pass, rep++);
      pass.end();
    }
  };

  /** Wall time of submitting `count` reps and waiting for them (encoding not included). */
  const wallBatch = async (count: number): Promise<number> => {
    const encoder = device.createCommandEncoder();
    encodeReps(encoder, count);
    const commands = encoder.finish();
    const t0 = performance.now();
    device.queue.submit([commands]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };

  const firstRunMs = await withErrorScopes(device, "the first run", () => wallBatch(1));

  const rest = Math.max(0, warmup - 1);
  if (rest > 0) {
    await withErrorScopes(device, "warm-up", () => {
      const buffers: GPUCommandBuffer[] = [];
      for (let done = 0; done < rest; done += WARMUP_CHUNK) {
        const encoder = device.createCommandEncoder();
        encodeReps(encoder, Math.min(WARMUP_CHUNK, rest - done));
        buffers.push(encoder.finish());
      }
      // No wait here: the timed reps follow on the queue with no idle gap, during which an idle
      // GPU would clock down (seen on an H200: the first timed samples 1.6x slower).
      device.queue.submit(buffers);
      return Promise.resolve();
    });
  }

  let discarded = 0;
  if (gpu.timestamps) {
    const settle = opts.settleMs === undefined
      ? undefined
      : await settleClocks(device, encodeReps, opts.settleMs);
    const timed = await timestampLoop(device, encodeReps, reps, minTimeMs, maxReps);
    discarded = timed.discarded;
    if (timed.samplesMs.length >= reps) {
      return {
        samplesMs: timed.samplesMs,
        clock: "timestamp-query",
        firstRunMs,
        resolutionMs: timed.resolutionMs,
        discarded,
        roundTripMs,
        ...(settle ? { settle } : {}),
      };
    }
  }

  const resolutionMs = wallClockResolutionMs();
  const targetMs = Math.max(WALL_BATCH_MIN_MS, roundTripMs);
  // Calibrate k: grow the batch until its net time (round trip taken off) lasts targetMs.
  let k = 1;
  for (;;) {
    const net = (await withErrorScopes(device, "wall-clock calibration", () => wallBatch(k))) -
      roundTripMs;
    if (net >= targetMs || k >= WALL_BATCH_MAX_REPS) break;
    // At most 16x a step: a net time lost in the round trip's jitter says little.
    const grow = Math.ceil((k * 1.25 * targetMs) / Math.max(net, resolutionMs));
    k = Math.min(WALL_BATCH_MAX_REPS, 16 * k, Math.max(2 * k, grow));
  }
  const samplesMs: number[] = [];
  let elapsed = 0;
  let attempts = 0;
  while ((samplesMs.length < reps || elapsed < minTimeMs) && attempts < maxReps) {
    const ms = await withErrorScopes(device, "a timed batch", () => wallBatch(k));
    attempts++;
    elapsed += ms - roundTripMs;
    if (ms - roundTripMs > 0) samplesMs.push((ms - roundTripMs) / k);
    else discarded++;
  }
  if (samplesMs.length < reps) {
    throw new Error(
      `the wall clock gave ${samplesMs.length} usable samples of ${reps} in ${attempts} batches`,
    );
  }
  return { samplesMs, clock: "wall", firstRunMs, resolutionMs, discarded, roundTripMs };
}

const roundTrips = new WeakMap<GPUDevice, number>();

/**
 * The median wall time of submitting nothing and awaiting `onSubmittedWorkDone`, in ms: the
 * fixed cost of one wait, measured once per device. Deno 2.9's wait blocks on the device and
 * then sleeps 10 ms before resolving, so this is about 11 ms there (~0.05 ms in Chrome).
 *
 * @example
 * ```ts ignore
 * import { openGpu } from "./gpu.ts";
 * import { measureRoundTripMs } from "./timing.ts";
 * const { device } = await openGpu();
 * console.log(`each wait costs ${(await measureRoundTripMs(device)).toFixed(2)} ms`);
 * ```
 */
export async function measureRoundTripMs(device: GPUDevice): Promise<number> {
  const known = roundTrips.get(device);
  if (known !== undefined) return known;
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    device.queue.submit([]);
    await device.queue.onSubmittedWorkDone();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const median = times[2]!;
  roundTrips.set(device, median);
  return median;
}

/**
 * Runs untimed timestamp batches until the GPU's clocks have settled ({@linkcode
 * TimingOptions.settleMs}). On an H200 a kernel that follows a few seconds of host-side work ran
 * at 0.80, then 0.63 ms a rep for about 250 ms of GPU time (a plateau where two batches agree
 * within 1 %), then 0.286 ms: hence a floor of GPU time as well as agreement.
 */
async function settleClocks(
  device: GPUDevice,
  encodeReps: (encoder: GPUCommandEncoder, count: number, querySet?: GPUQuerySet) => void,
  settleMs: number,
): Promise<SettleResult> {
  const capMs = Math.max(SETTLE_MAX_MS, 4 * settleMs);
  const start = performance.now();
  const batchMediansMs: number[] = [];
  let busyMs = 0;
  let estimateMs = 0;
  for (;;) {
    const count = estimateMs > 0
      ? Math.max(1, Math.min(TIMESTAMP_BATCH, Math.ceil(SETTLE_BATCH_MS / estimateMs)))
      : 1;
    const { samplesMs } = await timestampLoop(device, encodeReps, count, 0, count);
    if (samplesMs.length === 0) return { busyMs, batchMediansMs, settled: false };
    const sorted = samplesMs.toSorted((a, b) => a - b);
    estimateMs = sorted[Math.floor(sorted.length / 2)]!;
    busyMs += samplesMs.reduce((a, b) => a + b, 0);
    // The first one-rep batch only sizes the next; it is not a batch to agree with.
    if (count > 1 || estimateMs >= SETTLE_BATCH_MS) batchMediansMs.push(estimateMs);
    const k = batchMediansMs.length;
    const agree = k >= 2 &&
      Math.abs(batchMediansMs[k - 1]! - batchMediansMs[k - 2]!) <=
        SETTLE_TOLERANCE * batchMediansMs[k - 2]!;
    if (agree && busyMs >= settleMs) return { busyMs, batchMediansMs, settled: true };
    if (busyMs >= capMs) return { busyMs, batchMediansMs, settled: false };
    if (performance.now() - start >= SETTLE_MAX_WALL_MS) {
      return { busyMs, batchMediansMs, settled: agree };
    }
  }
}

/** Timestamp batches until enough samples; what it got, possibly too few. */
async function timestampLoop(
  device: GPUDevice,
  encodeReps: (encoder: GPUCommandEncoder, count: number, querySet?: GPUQuerySet) => void,
  reps: number,
  minTimeMs: number,
  maxReps: number,
): Promise<{ samplesMs: number[]; discarded: number; resolutionMs: number }> {
  const bytes = 2 * TIMESTAMP_BATCH * 8;
  const { querySet, resolve, readback } = await withErrorScopes(
    device,
    "timestamp setup",
    () =>
      Promise.resolve({
        querySet: device.createQuerySet({ type: "timestamp", count: 2 * TIMESTAMP_BATCH }),
        resolve: device.createBuffer({
          size: bytes,
          usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
        }),
        readback: device.createBuffer({
          size: bytes,
          usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        }),
      }),
  );
  const samplesMs: number[] = [];
  let discarded = 0;
  let sum = 0;
  let attempts = 0;
  let quantumNs = 0n;
  try {
    while ((samplesMs.length < reps || sum < minTimeMs) && attempts < maxReps) {
      let want = reps - samplesMs.length;
      if (want <= 0) want = Math.ceil((minTimeMs - sum) / (sum / samplesMs.length));
      const count = Math.max(1, Math.min(want, TIMESTAMP_BATCH, maxReps - attempts));
      const ticks = await withErrorScopes(device, "a timed batch", async () => {
        const encoder = device.createCommandEncoder();
        encodeReps(encoder, count, querySet);
        encoder.resolveQuerySet(querySet, 0, 2 * count, resolve, 0);
        encoder.copyBufferToBuffer(resolve, 0, readback, 0, 2 * count * 8);
        device.queue.submit([encoder.finish()]);
        await readback.mapAsync(GPUMapMode.READ, 0, 2 * count * 8);
        const values = new BigInt64Array(readback.getMappedRange(0, 2 * count * 8).slice(0));
        readback.unmap();
        return values;
      });
      attempts += count;
      for (let i = 0; i < count; i++) {
        const delta = ticks[2 * i + 1]! - ticks[2 * i]!;
        if (delta <= 0n) {
          discarded++;
          continue;
        }
        const ms = Number(delta) / 1e6;
        samplesMs.push(ms);
        sum += ms;
      }
      quantumNs = gcdOfDifferences(ticks.subarray(0, 2 * count), quantumNs);
      // A whole batch with nothing usable: these timestamps are not worth more batches.
      if (samplesMs.length === 0) break;
    }
  } finally {
    querySet.destroy();
    resolve.destroy();
    readback.destroy();
  }
  const resolutionMs = Number(quantumNs > 0n ? quantumNs : 1n) / 1e6;
  return { samplesMs, discarded, resolutionMs };
}

/** Folds into `gcd` the greatest common divisor of the differences between `ticks`. */
function gcdOfDifferences(ticks: BigInt64Array, gcd: bigint): bigint {
  const first = ticks[0];
  if (first === undefined) return gcd;
  for (const t of ticks) {
    let a = t > first ? t - first : first - t;
    let b = gcd;
    while (b > 0n) [a, b] = [b, a % b];
    gcd = a;
  }
  return gcd;
}

/** The smallest step `performance.now()` takes, in ms, over a few tries. */
function wallClockResolutionMs(): number {
  let best = Infinity;
  for (let tries = 0; tries < 5; tries++) {
    const t0 = performance.now();
    let t1 = t0;
    for (let spins = 0; t1 === t0 && spins < 10_000_000; spins++) t1 = performance.now();
    if (t1 > t0) best = Math.min(best, t1 - t0);
  }
  return Number.isFinite(best) ? best : 1;
}

function checkOptions(warmup: number, reps: number, minTimeMs: number, maxReps: number): void {
  if (!Number.isInteger(warmup) || warmup < 0) {
    throw new UsageError(`warm-up reps must be a whole number >= 0, got ${warmup}`);
  }
  if (!Number.isInteger(reps) || reps < 1) {
    throw new UsageError(`reps must be a positive whole number, got ${reps}`);
  }
  if (!Number.isFinite(minTimeMs) || minTimeMs < 0) {
    throw new UsageError(`the minimum time must be a finite number of ms >= 0, got ${minTimeMs}`);
  }
  if (!Number.isInteger(maxReps) || maxReps < reps) {
    throw new UsageError(`the most reps (${maxReps}) must be a whole number >= reps (${reps})`);
  }
}

/**
 * Runs `work` inside `validation` and `out-of-memory` error scopes and throws a descriptive
 * Error naming `stage` if the GPU reported one (the error of `work` itself becomes its cause).
 *
 * @example
 * ```ts ignore
 * import { openGpu } from "./gpu.ts";
 * import { withErrorScopes } from "./timing.ts";
 * const { device } = await openGpu();
 * const buffer = await withErrorScopes(device, "allocating Q", () =>
 *   Promise.resolve(device.createBuffer({ size: 1 << 20, usage: GPUBufferUsage.STORAGE })));
 * ```
 */
export async function withErrorScopes<T>(
  device: GPUDevice,
  stage: string,
  work: () => Promise<T>,
): Promise<T> {
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  let value: T | undefined;
  let failure: unknown = undefined;
  let failed = false;
  try {
    value = await work();
  } catch (e) {
    failure = e;
    failed = true;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (validation) {
    throw new Error(`GPU validation error in ${stage}: ${validation.message}`, { cause: failure });
  }
  if (oom) {
    throw new Error(`GPU out of memory in ${stage}: ${oom.message}`, { cause: failure });
  }
  if (failed) throw failure;
  return value as T;
}

/**
 * Creates a compute pipeline with `createComputePipelineAsync` and measures how long that took
 * (wall clock, ms): translation of the already-parsed shader module to the backend's language
 * plus the driver's compile. WGSL parsing and validation happen earlier, in
 * `createShaderModule`, and are not included. A driver's on-disk shader cache can make a
 * repeated compile far faster than a cold one.
 *
 * Throws a descriptive Error if the pipeline cannot be created.
 *
 * @example
 * ```ts ignore
 * import { openGpu } from "./gpu.ts";
 * import { measurePipelineCompileMs } from "./timing.ts";
 * const { device } = await openGpu();
 * const module = device.createShaderModule({
 *   code: "@compute @workgroup_size(1) fn main() {}",
 * });
 * const { pipeline, ms } = await measurePipelineCompileMs(device, {
 *   layout: "auto",
 *   compute: { module, entryPoint: "main" },
 * });
 * console.log(`compiled in ${ms.toFixed(1)} ms`, pipeline.label);
 * ```
 */
export async function measurePipelineCompileMs(
  device: GPUDevice,
  descriptor: GPUComputePipelineDescriptor,
): Promise<{ pipeline: GPUComputePipeline; ms: number }> {
  const what = `compute pipeline ${
    JSON.stringify(descriptor.label ?? descriptor.compute.entryPoint ?? "")
  }`;
  return await withErrorScopes(device, `creating ${what}`, async () => {
    const t0 = performance.now();
    let pipeline: GPUComputePipeline;
    try {
      pipeline = await device.createComputePipelineAsync(descriptor);
    } catch (e) {
      throw new Error(`could not create ${what}: ${(e as Error).message}`, { cause: e });
    }
    return { pipeline, ms: performance.now() - t0 };
  });
}
