/**
 * Device ceilings, measured once per bench run with the micro-kernels of `wgsl/ceilings.wgsl`:
 * streaming-copy bandwidth, FMA throughput and the cost of an empty dispatch.
 *
 * @module
 */

import type { Ceilings, ClockKind, DeviceRecord } from "../core/schema.ts";
import { median } from "../analysis/stats.ts";
import type { Gpu } from "./gpu.ts";
import { pipelineCacheFor } from "./program.ts";
import {
  timeDispatches,
  type TimingOptions,
  type TimingResult,
  withErrorScopes,
} from "./timing.ts";
import ceilingsWgsl from "./ceilings.wgsl" with { type: "text" };

const MIB = 1024 * 1024;
/** Threads per workgroup of fill, copy and FMA (the WGSL's `@workgroup_size`). */
const WORKGROUP = 256;
/** FLOPs each FMA thread does per loop iteration: 4 steps × 4 chains × 4 lanes × 2. */
const FLOPS_PER_ITER = 128;
/** The WGSL's `mul` and `add`: chains converge to add / (1 − mul) = 1. */
const FMA_MUL = 0.9990234375;
const FMA_ADD = 1 - FMA_MUL;

/** Sizes and rep counts of the ceiling micro-kernels for one device. */
export interface CeilingPlan {
  /** Bytes of the copy's source, and of its destination. */
  copyBytes: number;
  /** Workgroups of the grid-stride copy (256 threads each). */
  copyWorkgroups: number;
  /** Workgroups of the FMA kernel (256 threads each). */
  fmaWorkgroups: number;
  /** Loop iterations of each FMA thread (128 FLOPs each). */
  fmaIters: number;
  /** Empty dispatches in the pass that measures the marginal cost of a dispatch. */
  dispatchesPerPass: number;
  copy: TimingOptions;
  fma: TimingOptions;
  /** Timing of a pass of one empty dispatch. */
  launchSingle: TimingOptions;
  /** Timing of a pass of `dispatchesPerPass` empty dispatches. */
  launchBatched: TimingOptions;
}

/**
 * Chooses the ceiling micro-kernels' sizes for a device: a 256 MiB copy (64 MiB with `quick`;
 * 16 / 4 MiB on a fallback adapter, so all of it finishes in well under 2 s there), clipped to
 * `maxStorageBufferBindingSize` and `maxBufferSize`; an FMA grid of about 7·10¹⁰ FLOPs (about
 * 1 ms on an H100; 2·10⁸ on a fallback adapter).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { planCeilings } from "./ceilings.ts";
 * const plan = planCeilings({
 *   vendor: "", architecture: "", description: "", device: "", isFallbackAdapter: false,
 *   limits: { maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 2 ** 30 },
 *   features: [],
 * });
 * assert(plan.copyBytes === 128 * 2 ** 20);
 * ```
 */
export function planCeilings(device: DeviceRecord, quick = false): CeilingPlan {
  const fallback = device.isFallbackAdapter;
  const limit = (name: string, otherwise: number) => device.limits[name] ?? otherwise;
  const maxBytes = Math.min(
    limit("maxStorageBufferBindingSize", 128 * MIB),
    limit("maxBufferSize", 256 * MIB),
  );
  const wanted = (fallback ? 16 : 256) * MIB / (quick ? 4 : 1);
  const copyBytes = Math.floor(Math.min(wanted, maxBytes) / (16 * WORKGROUP)) * 16 * WORKGROUP;
  const maxGroups = limit("maxComputeWorkgroupsPerDimension", 65535);
  const copyWorkgroups = Math.min(copyBytes / (16 * WORKGROUP), 4096, maxGroups);
  const fmaWorkgroups = Math.min(fallback ? 32 : 4096, maxGroups);
  const fmaIters = fallback ? 256 : 512;
  const reps = quick ? 5 : fallback ? 10 : 30;
  const minTimeMs = quick || fallback ? 0 : 100;
  // The ceilings are timed first, often after seconds of host work: settle the clocks (300 ms
  // of GPU time and two agreeing batches), or a ceiling comes out low and every ratio high.
  const timed: TimingOptions = {
    warmup: quick ? 1 : 3,
    reps,
    minTimeMs,
    maxReps: 2000,
    ...(quick || fallback ? {} : { settleMs: 300 }),
  };
  return {
    copyBytes,
    copyWorkgroups,
    fmaWorkgroups,
    fmaIters,
    dispatchesPerPass: 100,
    copy: timed,
    fma: timed,
    launchSingle: { warmup: quick ? 2 : 10, reps: quick ? 10 : fallback ? 20 : 100 },
    launchBatched: { warmup: 1, reps, minTimeMs },
  };
}

/** The compiled micro-kernels of one device. */
interface Kernels {
  fill: GPUComputePipeline;
  copy: GPUComputePipeline;
  fma: GPUComputePipeline;
  noop: GPUComputePipeline;
}

/** The four micro-kernels, compiled through the device's shared pipeline cache. */
async function kernelsOf(device: GPUDevice): Promise<Kernels> {
  const cache = pipelineCacheFor(device);
  const [fill, copy, fma, noop] = await Promise.all(
    ["fill_main", "copy_main", "fma_main", "noop_main"].map(async (entry) =>
      (await cache.get(`ceilings/${entry}`, ceilingsWgsl, entry)).pipeline
    ),
  );
  return { fill: fill!, copy: copy!, fma: fma!, noop: noop! };
}

/** Makes the 16-byte Params uniform of ceilings.wgsl. */
function paramsBuffer(
  device: GPUDevice,
  p: { iters: number; mul: number; add: number; seed: number },
): GPUBuffer {
  const buffer = device.createBuffer({
    label: "ceilings params",
    size: 16,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const data = new ArrayBuffer(16);
  const view = new DataView(data);
  view.setUint32(0, p.iters, true);
  view.setFloat32(4, p.mul, true);
  view.setFloat32(8, p.add, true);
  view.setUint32(12, p.seed, true);
  device.queue.writeBuffer(buffer, 0, data);
  return buffer;
}

/** What {@linkcode measureCopy} measured. */
export interface CopyMeasurement {
  /** Bytes read plus bytes written per second at the median sample, in GB/s (1e9). */
  gbs: number;
  /** Bytes read plus written by one rep (twice the buffer size). */
  bytesPerRep: number;
  timing: TimingResult;
  /** A few vec4 elements read back after timing: `src[i]` and `dst[i]`, flattened (4 each). */
  probe: { indices: number[]; src: number[]; dst: number[] };
}

/**
 * Measures streaming-copy bandwidth: fills a buffer with fresh non-zero data, times a
 * grid-stride vec4<f32> copy into a second buffer, then reads back a few elements of both and
 * throws if the copy did not copy.
 *
 * @example
 * ```ts ignore
 * import { openGpu } from "./gpu.ts";
 * import { measureCopy } from "./ceilings.ts";
 * const m = await measureCopy(await openGpu(), { quick: true });
 * console.log(`${m.gbs.toFixed(1)} GB/s`);
 * ```
 */
export async function measureCopy(
  gpu: Gpu,
  opts: { quick?: boolean } = {},
): Promise<CopyMeasurement> {
  const { device } = gpu;
  const plan = planCeilings(gpu.info, opts.quick);
  const kernels = await kernelsOf(device);
  const n = plan.copyBytes / 16;
  const buffers: GPUBuffer[] = [];
  try {
    const [src, dst, params, readback] = await withErrorScopes(
      device,
      "allocating the copy",
      () => {
        const make = (label: string, size: number, usage: number) => {
          const b = device.createBuffer({ label, size, usage });
          buffers.push(b);
          return b;
        };
        const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
        const seed = 1 + Math.floor(Math.random() * 0x7ffffffe);
        const params = paramsBuffer(device, { iters: 0, mul: 0, add: 0, seed });
        buffers.push(params);
        return Promise.resolve(
          [
            make("copy src", plan.copyBytes, storage),
            make("copy dst", plan.copyBytes, storage),
            params,
            make("copy probe", 2 * 4 * 16, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST),
          ] as const,
        );
      },
    );
    const fillGroup = device.createBindGroup({
      layout: kernels.fill.getBindGroupLayout(0),
      entries: [{ binding: 1, resource: { buffer: src } }, {
        binding: 2,
        resource: { buffer: params },
      }],
    });
    const copyGroup = device.createBindGroup({
      layout: kernels.copy.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: src } }, {
        binding: 1,
        resource: { buffer: dst },
      }],
    });
    await withErrorScopes(device, "filling the copy's source", async () => {
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(kernels.fill);
      pass.setBindGroup(0, fillGroup);
      pass.dispatchWorkgroups(plan.copyWorkgroups);
      pass.end();
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
    });
    const timing = await timeDispatches(gpu, (pass) => {
      pass.setPipeline(kernels.copy);
      pass.setBindGroup(0, copyGroup);
      pass.dispatchWorkgroups(plan.copyWorkgroups);
    }, plan.copy);

    const indices = [0, 1, Math.floor(n / 2) + 3, n - 1];
    const words = await withErrorScopes(device, "reading back the copy", async () => {
      const encoder = device.createCommandEncoder();
      indices.forEach((i, k) => {
        encoder.copyBufferToBuffer(src, i * 16, readback, k * 16, 16);
        encoder.copyBufferToBuffer(dst, i * 16, readback, (indices.length + k) * 16, 16);
      });
      device.queue.submit([encoder.finish()]);
      await readback.mapAsync(GPUMapMode.READ);
      const words = [...new Float32Array(readback.getMappedRange().slice(0))];
      readback.unmap();
      return words;
    });
    const probe = { indices, src: words.slice(0, 16), dst: words.slice(16) };
    if (probe.src.some((x) => !(x >= 1 && x < 2))) {
      throw new Error(`the fill kernel did not fill the copy's source: ${probe.src.join(", ")}`);
    }
    if (probe.dst.some((x, i) => x !== probe.src[i])) {
      throw new Error(
        `the copy kernel did not copy: src ${probe.src.join(", ")}; dst ${probe.dst.join(", ")}`,
      );
    }
    const bytesPerRep = 2 * plan.copyBytes;
    const gbs = bytesPerRep / (median(timing.samplesMs) * 1e6);
    return { gbs, bytesPerRep, timing, probe };
  } finally {
    for (const b of buffers) b.destroy();
  }
}

/** What {@linkcode measureFma} measured. */
export interface FmaMeasurement {
  /** FLOPs per second at the median sample, in TFLOP/s (1e12; one FMA = 2 FLOPs a lane). */
  tflops: number;
  /** FLOPs of one rep. */
  flopsPerRep: number;
  timing: TimingResult;
}

/**
 * Measures f32 FMA throughput: every thread runs four independent vec4<f32> fma chains in
 * registers, and writes their sum so the work cannot be optimized away.
 *
 * @example
 * ```ts ignore
 * import { openGpu } from "./gpu.ts";
 * import { measureFma } from "./ceilings.ts";
 * const m = await measureFma(await openGpu(), { quick: true });
 * console.log(`${m.tflops.toFixed(3)} TFLOP/s`);
 * ```
 */
export async function measureFma(
  gpu: Gpu,
  opts: { quick?: boolean } = {},
): Promise<FmaMeasurement> {
  const { device } = gpu;
  const plan = planCeilings(gpu.info, opts.quick);
  const kernels = await kernelsOf(device);
  const threads = plan.fmaWorkgroups * WORKGROUP;
  const buffers: GPUBuffer[] = [];
  try {
    const [out, params] = await withErrorScopes(device, "allocating the FMA kernel", () => {
      const out = device.createBuffer({
        label: "fma out",
        size: threads * 16,
        usage: GPUBufferUsage.STORAGE,
      });
      buffers.push(out);
      const params = paramsBuffer(device, {
        iters: plan.fmaIters,
        mul: FMA_MUL,
        add: FMA_ADD,
        seed: 1,
      });
      buffers.push(params);
      return Promise.resolve([out, params] as const);
    });
    const group = device.createBindGroup({
      layout: kernels.fma.getBindGroupLayout(0),
      entries: [{ binding: 1, resource: { buffer: out } }, {
        binding: 2,
        resource: { buffer: params },
      }],
    });
    const timing = await timeDispatches(gpu, (pass) => {
      pass.setPipeline(kernels.fma);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(plan.fmaWorkgroups);
    }, plan.fma);
    const flopsPerRep = threads * plan.fmaIters * FLOPS_PER_ITER;
    const tflops = flopsPerRep / (median(timing.samplesMs) * 1e9);
    return { tflops, flopsPerRep, timing };
  } finally {
    for (const b of buffers) b.destroy();
  }
}

/** What {@linkcode measureLaunch} measured. */
export interface LaunchMeasurement {
  /**
   * Marginal cost of one empty dispatch in µs: the median time of a pass of
   * `dispatchesPerPass` empty dispatches, divided by their number.
   */
  marginalUs: number;
  /** Median time of a pass holding a single empty dispatch, in µs (pass costs included). */
  singleUs: number;
  dispatchesPerPass: number;
  single: TimingResult;
  batched: TimingResult;
}

/**
 * Measures what an empty dispatch (one workgroup, nothing done) costs, two ways: a pass of one
 * dispatch, and a pass of 100 dispatches divided by 100. The second is the marginal cost a
 * kernel pays for each extra dispatch (standard attention's three) and is what
 * {@linkcode measureCeilings} reports; the first adds the pass's own begin and end.
 *
 * @example
 * ```ts ignore
 * import { openGpu } from "./gpu.ts";
 * import { measureLaunch } from "./ceilings.ts";
 * const m = await measureLaunch(await openGpu(), { quick: true });
 * console.log(`${m.marginalUs.toFixed(1)} µs per dispatch, ${m.singleUs.toFixed(1)} µs a pass`);
 * ```
 */
export async function measureLaunch(
  gpu: Gpu,
  opts: { quick?: boolean } = {},
): Promise<LaunchMeasurement> {
  const { device } = gpu;
  const plan = planCeilings(gpu.info, opts.quick);
  const kernels = await kernelsOf(device);
  const buffers: GPUBuffer[] = [];
  try {
    const [sink, params] = await withErrorScopes(device, "allocating the no-op kernel", () => {
      const sink = device.createBuffer({
        label: "noop sink",
        size: 64 * 16,
        usage: GPUBufferUsage.STORAGE,
      });
      buffers.push(sink);
      const params = paramsBuffer(device, { iters: 0, mul: 0, add: 0, seed: 1 });
      buffers.push(params);
      return Promise.resolve([sink, params] as const);
    });
    const group = device.createBindGroup({
      layout: kernels.noop.getBindGroupLayout(0),
      entries: [{ binding: 1, resource: { buffer: sink } }, {
        binding: 2,
        resource: { buffer: params },
      }],
    });
    const encode = (count: number) => (pass: GPUComputePassEncoder) => {
      pass.setPipeline(kernels.noop);
      pass.setBindGroup(0, group);
      for (let i = 0; i < count; i++) pass.dispatchWorkgroups(1);
    };
    const single = await timeDispatches(gpu, encode(1), plan.launchSingle);
    const batched = await timeDispatches(gpu, encode(plan.dispatchesPerPass), plan.launchBatched);
    return {
      marginalUs: (median(batched.samplesMs) / plan.dispatchesPerPass) * 1e3,
      singleUs: median(single.samplesMs) * 1e3,
      dispatchesPerPass: plan.dispatchesPerPass,
      single,
      batched,
    };
  } finally {
    for (const b of buffers) b.destroy();
  }
}

/**
 * Measures the device's ceilings with the micro-kernels of `wgsl/ceilings.wgsl`, each the
 * median of its samples: streaming-copy GB/s (bytes read + written), f32 FMA TFLOP/s, and the
 * launch overhead as the marginal cost of one empty dispatch in µs (see
 * {@linkcode measureLaunch}). `clock` is `"timestamp-query"` only if all three used it.
 * `quick` uses smaller buffers and fewer reps.
 *
 * @example
 * ```ts ignore
 * import { openGpu } from "./gpu.ts";
 * import { measureCeilings } from "./ceilings.ts";
 * const c = await measureCeilings(await openGpu());
 * console.log(c.copyGBs, c.fmaTflops, c.launchOverheadUs, c.clock);
 * ```
 */
export async function measureCeilings(
  gpu: Gpu,
  opts: { quick?: boolean } = {},
): Promise<Ceilings> {
  const copy = await measureCopy(gpu, opts);
  const fma = await measureFma(gpu, opts);
  const launch = await measureLaunch(gpu, opts);
  const clocks: ClockKind[] = [
    copy.timing.clock,
    fma.timing.clock,
    launch.single.clock,
    launch.batched.clock,
  ];
  return {
    copyGBs: copy.gbs,
    fmaTflops: fma.tflops,
    launchOverheadUs: launch.marginalUs,
    clock: clocks.every((c) => c === "timestamp-query") ? "timestamp-query" : "wall",
  };
}
