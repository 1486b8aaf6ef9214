/**
 * Getting a WebGPU device with the adapter's full limits, and describing it.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { DeviceRecord } from "../core/schema.ts";
import type { Dtype } from "../core/shapes.ts";

/** The limits that matter for attention, in the order `devices` prints them. */
export const LIMIT_NAMES = [
  "maxComputeWorkgroupStorageSize",
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxUniformBufferBindingSize",
] as const;

/** The features that matter for attention. */
export const FEATURE_NAMES = ["shader-f16", "timestamp-query", "subgroups"] as const;

/**
 * The device feature that allows `atomic<f32>` in storage with `atomicAdd` (flash-bwd's
 * `dq: "atomic"`). Requested when the adapter grants it; no `enable` directive in WGSL.
 */
export const FLOAT32_ATOMIC = "wgpu-shader-float32-atomic";

/** An adapter, the device made from it, and what it is. */
export interface Gpu {
  adapter: GPUAdapter;
  device: GPUDevice;
  info: DeviceRecord;
  /** Whether f16 storage and arithmetic is enabled on the device. */
  f16: boolean;
  /** Whether timestamp queries are enabled on the device. */
  timestamps: boolean;
  /**
   * Lanes per subgroup when the kernels may use subgroup operations (the device was granted
   * `subgroups` and the probe found lane = local_invocation_index mod size, and a working
   * subgroupShuffleXor); 0 for the portable path.
   */
  subgroupSize: number;
}

/** How to open the device. */
export interface OpenGpuOptions {
  /** Ask for subgroups (default true); false forces the portable path (`--no-subgroups`). */
  subgroups?: boolean;
}

/**
 * Asks for the adapter; throws {@linkcode UsageError} when there is none.
 *
 * @example
 * ```ts ignore
 * import { requestAdapter } from "./gpu.ts";
 * const adapter = await requestAdapter();
 * ```
 */
export async function requestAdapter(
  powerPreference: GPUPowerPreference = "high-performance",
): Promise<GPUAdapter> {
  if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) {
    throw new UsageError(
      "WebGPU is not available in this Deno; use Deno 2.x (see README, 'No GPU?')",
    );
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference });
  if (!adapter) {
    throw new UsageError(
      "no WebGPU adapter found; install a GPU driver, or Mesa's software rasterizer " +
        "(apt-get install libgl1-mesa-dri libegl-mesa0) for a slow fallback adapter",
    );
  }
  return adapter;
}

/**
 * Describes an adapter for `devices` and the results file.
 *
 * @example
 * ```ts ignore
 * import { describeAdapter, requestAdapter } from "./gpu.ts";
 * console.log(describeAdapter(await requestAdapter()).description);
 * ```
 */
export function describeAdapter(adapter: GPUAdapter): DeviceRecord {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) limits[name] = Number(adapter.limits[name]);
  return {
    vendor: info.vendor ?? "",
    architecture: info.architecture ?? "",
    description: info.description ?? "",
    device: info.device ?? "",
    // Deno 2.9 reports the flag on GPUAdapterInfo; the spec's older place is the adapter.
    isFallbackAdapter: Boolean(
      (info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
        (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    ),
    limits,
    features: [...adapter.features].filter((f) => (FEATURE_NAMES as readonly string[]).includes(f))
      .sort(),
  };
}

/**
 * Opens a device with the adapter's maximum limits (the defaults are far smaller: 16 KiB of
 * workgroup storage, 128 MiB bindings) and the features attention can use.
 * Uncaptured errors are kept so a caller can turn them into a failed run.
 *
 * @example
 * ```ts ignore
 * import { openGpu } from "./gpu.ts";
 * const gpu = await openGpu();
 * console.log(gpu.info.description, gpu.f16);
 * gpu.device.destroy();
 * ```
 */
export async function openGpu(opts: OpenGpuOptions = {}): Promise<Gpu> {
  const adapter = await requestAdapter();
  const info = describeAdapter(adapter);
  const requiredFeatures: GPUFeatureName[] = [];
  const f16 = adapter.features.has("shader-f16");
  const timestamps = adapter.features.has("timestamp-query");
  if (f16) requiredFeatures.push("shader-f16");
  if (timestamps) requiredFeatures.push("timestamp-query");
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) requiredLimits[name] = Number(adapter.limits[name]);
  // Deno 2.9.6 does not list `subgroups` nor `wgpu-shader-float32-atomic` among the adapter's
  // features even where the device grants them (the H200's Vulkan driver, Mesa's lavapipe; not
  // llvmpipe): ask for each on top of those granted so far, and fall back when refused. The
  // last device granted has every feature granted, so it is the one kept.
  const optional: GPUFeatureName[] = [];
  if (opts.subgroups ?? true) optional.push("subgroups" as GPUFeatureName);
  optional.push(FLOAT32_ATOMIC as GPUFeatureName);
  let granted: GPUDevice | null = null;
  for (const feature of optional) {
    try {
      const next = await adapter.requestDevice({
        requiredFeatures: [...requiredFeatures, feature],
        requiredLimits,
      });
      granted?.destroy();
      granted = next;
      requiredFeatures.push(feature);
    } catch {
      // Not granted: the kernels take their portable path (or refuse an option that needs it).
    }
  }
  const device = granted ?? await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const subgroupSize = device.features.has("subgroups") ? await probeSubgroups(device) : 0;
  info.subgroups = subgroupSize > 0;
  info.subgroupSize = subgroupSize;
  if (info.subgroups && !info.features.includes("subgroups")) {
    info.features = [...info.features, "subgroups"].sort();
  }
  return { adapter, device, info, f16, timestamps, subgroupSize };
}

// One 256-thread workgroup: each thread writes subgroup_size and whether its lane is
// local_invocation_index mod subgroup_size and subgroupShuffleXor(t, 1) returned t ^ 1. No
// `enable subgroups;`: naga 2.9.6 rejects the directive but accepts the builtins once the
// device has the feature.
const PROBE = `
@group(0) @binding(0) var<storage, read_write> out: array<u32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32, @builtin(subgroup_size) size: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
  let ok = lane == t % size && subgroupShuffleXor(t, 1u) == (t ^ 1u) &&
    subgroupMax(t) == t - lane + size - 1u;
  out[t] = select(0u, size, ok);
}`;

/**
 * The subgroup size the kernels may rely on, or 0: every thread of a 256-thread workgroup must
 * see the same size, lanes in local_invocation_index order and working shuffles.
 */
async function probeSubgroups(device: GPUDevice): Promise<number> {
  device.pushErrorScope("validation");
  try {
    const module = device.createShaderModule({ code: PROBE, label: "subgroup probe" });
    const info = await module.getCompilationInfo();
    if (info.messages.some((m) => m.type === "error")) return 0;
    const pipeline = await device.createComputePipelineAsync({
      layout: "auto",
      compute: { module, entryPoint: "main" },
    });
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
    const buf = device.createBuffer({ size: 1024, usage });
    const read = device.createBuffer({
      size: 1024,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(
      0,
      device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [{ binding: 0, resource: { buffer: buf } }],
      }),
    );
    pass.dispatchWorkgroups(1);
    pass.end();
    enc.copyBufferToBuffer(buf, 0, read, 0, 1024);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const sizes = new Uint32Array(read.getMappedRange().slice(0));
    read.destroy();
    buf.destroy();
    const size = sizes[0]!;
    const pow2 = size >= 4 && (size & (size - 1)) === 0;
    return pow2 && sizes.every((s) => s === size) ? size : 0;
  } catch {
    return 0;
  } finally {
    await device.popErrorScope();
  }
}

/**
 * Throws {@linkcode UsageError} when `dtype` needs a feature the device lacks (f16 needs
 * `shader-f16`). Commands call it before any work, the kernels again before compiling.
 *
 * @example
 * ```ts ignore
 * import { openGpu, requireDtype } from "./gpu.ts";
 * requireDtype(await openGpu(), "f16");
 * ```
 */
export function requireDtype(gpu: Gpu, dtype: Dtype): void {
  if (dtype === "f16" && !gpu.f16) {
    throw new UsageError(
      `this adapter (${gpu.info.description}) has no shader-f16 feature; use --dtype f32`,
    );
  }
}
