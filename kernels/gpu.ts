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

/** An adapter, the device made from it, and what it is. */
export interface Gpu {
  adapter: GPUAdapter;
  device: GPUDevice;
  info: DeviceRecord;
  /** Whether f16 storage and arithmetic is enabled on the device. */
  f16: boolean;
  /** Whether timestamp queries are enabled on the device. */
  timestamps: boolean;
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
export async function openGpu(): Promise<Gpu> {
  const adapter = await requestAdapter();
  const info = describeAdapter(adapter);
  const requiredFeatures: GPUFeatureName[] = [];
  const f16 = adapter.features.has("shader-f16");
  const timestamps = adapter.features.has("timestamp-query");
  if (f16) requiredFeatures.push("shader-f16");
  if (timestamps) requiredFeatures.push("timestamp-query");
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) requiredLimits[name] = Number(adapter.limits[name]);
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  return { adapter, device, info, f16, timestamps };
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
