/**
 * Running a kernel: buffers, bind groups and dispatches for one problem, for any
 * {@linkcode Kernel}.
 *
 * {@linkcode prepareAttention} asks the kernel for its plan, checks it against the device,
 * allocates every buffer of the plan once (input buffers once per input set) and compiles every
 * pass with its generated header; the result can upload inputs, poison the outputs, encode the
 * passes into a compute pass (for the timer), run once, read the outputs back and, in the
 * counting variant, read the byte counters.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { AttentionShape, MaskKind, Tiles } from "../core/shapes.ts";
import { type BufferLimits, fitsDevice, footprintBytes as sumBytes } from "../analysis/io_model.ts";
import { FLOAT32_ATOMIC, type Gpu, requireDtype } from "./gpu.ts";
import type { CountedBytes, Kernel, KernelPlan, PassSpec } from "./kernel.ts";
import type { BlockMask } from "./masks.ts";
import { counterWords, type PipelineCache, pipelineCacheFor, shaderHeader } from "./program.ts";
import { resolveKernel } from "./registry.ts";
import { defaultTiles, FALLBACK_TILE_CANDIDATES, TILE_CANDIDATES, tileProblem } from "./tiles.ts";

export type { CountedBytes } from "./kernel.ts";

/** A problem larger than the device's limits. The bench records it as `skipped`. */
export class DoesNotFitError extends UsageError {
  constructor(message: string) {
    super(message.startsWith("does not fit") ? message : `does not fit: ${message}`);
    this.name = "DoesNotFitError";
  }
}

/** What to run. */
export interface AttentionProblem {
  /** The kernel, or the name of a registered one. */
  kernel: Kernel | string;
  shape: AttentionShape;
  /** Tile sizes; the adapter's default when absent. */
  tiles?: Tiles;
  /** Sparse kernels: the mask to build (on the kernel's tile grid) or a mask already built. */
  mask?: { kind: MaskKind; density: number; seed: number } | BlockMask;
  /** Kernel-specific parameters, passed to its plan. */
  options?: Readonly<Record<string, unknown>>;
  /** Build the counting variant (for `--count-io`; never timed). */
  count?: boolean;
  /** Softmax scale; 1/√d by default. */
  scale?: number;
  /**
   * false: plan the portable path (subgroup size 0) even where the device has subgroups (a
   * tuned knob, `tune`'s comparison). Absent or true: the device's subgroups.
   */
  subgroups?: boolean;
}

/** A problem with its buffers allocated and its pipelines compiled. */
export interface PreparedAttention {
  readonly kernel: Kernel;
  readonly plan: KernelPlan;
  readonly shape: AttentionShape;
  readonly tiles: Tiles;
  /** The block mask (sparse kernels only). */
  readonly mask: BlockMask | null;
  /** Bytes of the storage buffers the kernel binds (inputs, outputs, scratch, mask). */
  readonly footprintBytes: number;
  /** Pipeline creation time of the kernel's passes, ms (first compile; 0 parts when cached). */
  readonly compileMs: number;
  /** Number of input sets (copies of the caller-filled input buffers) to rotate among. */
  readonly inputSets: number;
  /** Names of the caller-filled input buffers, in plan order (`q`, `k`, `v`). */
  readonly inputNames: readonly string[];
  /** Names of the output buffers, in plan order (`o`, `lse`). */
  readonly outputNames: readonly string[];
  /**
   * Writes the inputs (f32 values; converted to f16 where the buffer holds the dtype and it is
   * f16) into input set `set`. Every caller-filled input must be given.
   */
  upload(inputs: Readonly<Record<string, Float32Array>>, set?: number): void;
  /**
   * Fills every output and scratch buffer with NaN, so an unwritten element (or a pass reading
   * an intermediate no earlier pass wrote) cannot pass a check.
   */
  poisonOutput(): void;
  /** Encodes the kernel's dispatches, reading input set `set`. */
  encode(pass: GPUComputePassEncoder, set?: number): void;
  /** Names of the kernel's dispatches, in order (standard: scores, softmax, pv). */
  readonly passNames: readonly string[];
  /** Encodes dispatch `index` of {@linkcode passNames} alone (to time the passes apart). */
  encodePass(pass: GPUComputePassEncoder, index: number, set?: number): void;
  /** One run: submit and wait. */
  run(set?: number): Promise<void>;
  /** One output as f32 (the first output, O, when no name is given). */
  readOutput(name?: string): Promise<Float32Array>;
  /** Every output as f32, by name. */
  readOutputs(): Promise<Record<string, Float32Array>>;
  /** The counters of the counting variant (zeroed by {@linkcode resetCounters}). */
  readCounters(): Promise<CountedBytes>;
  /** Zeroes the counters. */
  resetCounters(): void;
  /** Frees the buffers. */
  destroy(): void;
}

/** Per-device state: the device's shared pipeline cache. */
export class AttentionKernels {
  readonly gpu: Gpu;
  readonly cache: PipelineCache;

  constructor(gpu: Gpu) {
    this.gpu = gpu;
    this.cache = pipelineCacheFor(gpu.device);
  }

  /** The adapter's default tiles for a kernel and shape. */
  defaultTiles(kernel: Kernel | string, shape: AttentionShape): Tiles {
    const fallback = this.gpu.info.isFallbackAdapter;
    const k = resolveKernel(kernel);
    // A kernel's own candidates come first (defaultTiles adds them to the shared list).
    const candidates = fallback ? FALLBACK_TILE_CANDIDATES : TILE_CANDIDATES;
    return defaultTiles(
      k,
      shape.d,
      shape.dtype,
      this.gpu.device.limits,
      candidates,
    );
  }
}

/**
 * Why a plan cannot run on a device (a buffer or a grid dimension past its limits), or null.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { planFitsDevice } from "./attention.ts";
 * import { planFor } from "./registry.ts";
 * const shape = { batch: 1, heads: 16, n: 16384, d: 64, dtype: "f32", causal: false } as const;
 * const plan = planFor("standard", { shape, tiles: { br: 64, bc: 64, rm: 4, tx: 8 } });
 * const limits = { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 32,
 *   maxComputeWorkgroupsPerDimension: 65535 };
 * assert(planFitsDevice(plan, limits)?.includes("n=16384: buffer S is 17.2 GB"));
 * ```
 */
export function planFitsDevice(
  plan: KernelPlan,
  limits: BufferLimits & { maxComputeWorkgroupsPerDimension: number },
): string | null {
  const { kernel, shape } = plan;
  const sizes = plan.buffers.map((b) => ({ name: b.label ?? b.name, bytes: b.bytes }));
  const why = fitsDevice(sizes, limits);
  if (why) {
    return `does not fit: ${kernel.name} n=${shape.n}: buffer ${
      why.replace(/^does not fit: /, "")
    }`;
  }
  const maxGrid = limits.maxComputeWorkgroupsPerDimension;
  if (plan.passes().some((p) => p.grid.some((g) => (g ?? 1) > maxGrid))) {
    return `does not fit: ${kernel.name} n=${shape.n} batch·heads=${shape.batch * shape.heads}: ` +
      `a grid dimension exceeds the device's ${maxGrid} workgroups`;
  }
  return null;
}

/**
 * Allocates and compiles everything one problem needs. Throws {@linkcode DoesNotFitError} when a
 * buffer or the grid is larger than the device allows, and {@linkcode UsageError} for f16 on
 * an adapter without `shader-f16`, tiles that cannot be built or an unknown kernel.
 *
 * @example
 * ```ts ignore
 * import { AttentionKernels, prepareAttention } from "./attention.ts";
 * import { openGpu } from "./gpu.ts";
 * const kernels = new AttentionKernels(await openGpu());
 * const shape = { batch: 1, heads: 2, n: 100, d: 64, dtype: "f32", causal: false } as const;
 * const prepared = await prepareAttention(kernels, { kernel: "flash", shape });
 * ```
 */
export async function prepareAttention(
  kernels: AttentionKernels,
  problem: AttentionProblem,
  opts: { inputSets?: number } = {},
): Promise<PreparedAttention> {
  const { gpu, cache } = kernels;
  const { device } = gpu;
  const kernel = resolveKernel(problem.kernel);
  const { shape } = problem;
  const count = problem.count ?? false;
  const inputSets = Math.max(1, opts.inputSets ?? 1);
  requireDtype(gpu, shape.dtype);
  const tiles = problem.tiles ?? kernels.defaultTiles(kernel, shape);
  const problemText = tileProblem(kernel, shape.d, shape.dtype, tiles, device.limits);
  if (problemText) throw new UsageError(`tiles ${JSON.stringify(tiles)}: ${problemText}`);

  const plan = kernel.plan({
    shape,
    tiles,
    mask: problem.mask,
    scale: problem.scale,
    options: problem.options,
    subgroupSize: problem.subgroups === false ? 0 : gpu.subgroupSize,
    maxBindingBytes: Math.min(
      Number(device.limits.maxStorageBufferBindingSize),
      Number(device.limits.maxBufferSize),
    ),
    maxWorkgroupBytes: Number(device.limits.maxComputeWorkgroupStorageSize),
  });
  const atomic = plan.passes().some((p) => p.bindings.some((b) => b.element === "atomic<f32>"));
  if (atomic && !device.features.has(FLOAT32_ATOMIC)) {
    throw new UsageError(
      `${kernel.name}: this adapter (${gpu.info.description}) does not grant ${FLOAT32_ATOMIC}, ` +
        "which the atomic dQ needs",
    );
  }
  const why = planFitsDevice(plan, device.limits);
  if (why) throw new DoesNotFitError(why);
  const passes = plan.passes();
  const specs = new Map(plan.buffers.map((b) => [b.name, b]));
  const compiled = await Promise.all(passes.map((pass) => compilePass(cache, plan, pass, count)));
  const compileMs = compiled.reduce((a, p) => a + p.compileMs, 0);

  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const made: GPUBuffer[] = [];
  const buffer = (label: string, size: number, usage = STORAGE) => {
    const b = device.createBuffer({ label, size: Math.max(16, align4(size)), usage });
    made.push(b);
    return b;
  };
  const uploaded = plan.buffers.filter((b) => b.role === "input" && !b.data);
  const shared = new Map(
    plan.buffers.filter((b) => !uploaded.includes(b)).map((b) => [b.name, buffer(b.name, b.bytes)]),
  );
  const sets = Array.from(
    { length: inputSets },
    (_, i) => new Map(uploaded.map((b) => [b.name, buffer(`${b.name}${i}`, b.bytes)])),
  );
  const params = passes.map((p) =>
    buffer(
      `${p.name} params`,
      align16(4 * p.uniforms.length),
      GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    )
  );
  const words = counterWords(plan.slots.length);
  const counters = count ? buffer("counters", words * 4) : null;
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (validation || oom) {
    for (const b of made) b.destroy();
    const needs = (sumBytes(plan.buffers) / 1e9).toPrecision(3);
    if (oom) {
      throw new DoesNotFitError(
        `${kernel.name} n=${shape.n}: out of device memory (needs ${needs} GB): ${oom.message}`,
      );
    }
    throw new DoesNotFitError(
      `allocating buffers for ${kernel.name} n=${shape.n} failed: ${validation!.message}`,
    );
  }

  for (const [i, pass] of passes.entries()) {
    device.queue.writeBuffer(params[i]!, 0, uniformData(pass));
  }
  for (const b of plan.buffers) {
    if (b.data) device.queue.writeBuffer(shared.get(b.name)!, 0, b.data as BufferSource);
  }

  const groups = sets.map((set) =>
    passes.map((pass, i) =>
      device.createBindGroup({
        layout: compiled[i]!.pipeline.getBindGroupLayout(0),
        entries: [
          params[i]!,
          ...pass.bindings.map((b) => set.get(b.buffer) ?? shared.get(b.buffer)!),
          ...(counters ? [counters] : []),
        ].map((buffer, binding) => ({ binding, resource: { buffer } })),
      })
    )
  );
  const encodeSet = (pass: GPUComputePassEncoder, set: number, only?: number) => {
    const g = groups[set % inputSets]!;
    for (const [i, spec] of passes.entries()) {
      if (only !== undefined && only !== i) continue;
      pass.setPipeline(compiled[i]!.pipeline);
      pass.setBindGroup(0, g[i]!);
      pass.dispatchWorkgroups(spec.grid[0], spec.grid[1] ?? 1, spec.grid[2] ?? 1);
    }
  };

  const readBack = async (src: GPUBuffer, bytes: number): Promise<ArrayBuffer> => {
    const staging = device.createBuffer({
      size: align4(bytes),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(src, 0, staging, 0, align4(bytes));
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const copy = staging.getMappedRange().slice(0, bytes);
    staging.destroy();
    return copy;
  };
  const half = (element: string) => shape.dtype === "f16" && (element === "T" || element === "T4");

  const outputNames = plan.buffers.filter((b) => b.role === "output").map((b) => b.name);
  const poisoned = plan.buffers.filter((b) => b.role !== "input").map((b) => b.name);
  const readOutput = async (name = outputNames[0]!) => {
    const spec = specs.get(name);
    if (!spec || spec.role !== "output") throw new Error(`${kernel.name} has no output ${name}`);
    const raw = await readBack(shared.get(name)!, spec.bytes);
    return half(spec.element) ? new Float32Array(new Float16Array(raw)) : new Float32Array(raw);
  };
  const passNames = passes.map((p) => p.name);

  return {
    kernel,
    plan,
    shape,
    tiles,
    mask: plan.mask,
    footprintBytes: sumBytes(plan.buffers),
    compileMs,
    inputSets,
    inputNames: uploaded.map((b) => b.name),
    outputNames,
    upload(inputs, set = 0) {
      const target = sets[set];
      if (!target) throw new Error(`no input set ${set}`);
      for (const spec of uploaded) {
        const x = inputs[spec.name];
        const elements = spec.bytes / (half(spec.element) ? 2 : 4);
        if (!x || x.length !== elements) {
          throw new Error(`input ${spec.name}: expected ${elements} elements, got ${x?.length}`);
        }
        // writeBuffer takes whole 4-byte words: an odd count of f16 elements (standard-bwd's P
        // at n = 1 and B·H = 1 is one element) is padded with a zero, else the write is dropped
        // (a validation error no one awaits) and the kernel reads the buffer's zeros.
        const data = half(spec.element)
          ? new Float16Array(x.length + (x.length & 1))
          : new Float32Array(x.length);
        data.set(x);
        device.queue.writeBuffer(target.get(spec.name)!, 0, data);
      }
    },
    poisonOutput() {
      for (const name of poisoned) {
        const spec = specs.get(name)!;
        const nan = half(spec.element)
          ? new Uint16Array(align4(spec.bytes) / 2).fill(0x7e00)
          : new Uint32Array(align4(spec.bytes) / 4).fill(0x7fc00000);
        device.queue.writeBuffer(shared.get(name)!, 0, nan);
      }
    },
    encode(pass, set = 0) {
      encodeSet(pass, set);
    },
    passNames,
    encodePass(pass, index, set = 0) {
      if (!(index >= 0 && index < passNames.length)) throw new Error(`no pass ${index}`);
      encodeSet(pass, set, index);
    },
    async run(set = 0) {
      device.pushErrorScope("validation");
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      encodeSet(pass, set);
      pass.end();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      const err = await device.popErrorScope();
      if (err) throw new Error(`${kernel.name} run failed: ${err.message}`);
    },
    readOutput,
    async readOutputs() {
      const out: Record<string, Float32Array> = {};
      for (const name of outputNames) out[name] = await readOutput(name);
      return out;
    },
    async readCounters() {
      if (!counters) throw new Error("readCounters needs the counting variant (count: true)");
      const w = new Uint32Array(await readBack(counters, words * 4));
      const s = words / 4;
      const at = (i: number) => w[i]! + w[i + s]! * 2 ** 32;
      return Object.fromEntries(
        plan.slots.map((name, i) => [name, { read: at(i), write: at(2 * s + i) }]),
      );
    },
    resetCounters() {
      if (counters) device.queue.writeBuffer(counters, 0, new Uint32Array(words));
    },
    destroy() {
      for (const b of made) b.destroy();
    },
  };
}

/** Compiles one pass: the generated header, then the kernel's source. */
function compilePass(cache: PipelineCache, plan: KernelPlan, pass: PassSpec, count: boolean) {
  const { key, source } = passProgram(plan, pass, count);
  return cache.get(key, source);
}

/**
 * The full WGSL of one pass of a plan (the generated header, then the kernel's source) and the
 * pipeline cache key it compiles under (the pass's key, the dtype, the counting flag and the
 * generated declarations' signature).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { passProgram } from "./attention.ts";
 * import { planFor } from "./registry.ts";
 * const shape = { batch: 1, heads: 1, n: 8, d: 32, dtype: "f32", causal: false } as const;
 * const plan = planFor("flash", { shape, tiles: { br: 8, bc: 8, rm: 2, tx: 4 } });
 * const { key, source } = passProgram(plan, plan.passes()[0]!, true);
 * assert(key.includes("|count|") && source.includes("fn count_flush()"));
 * ```
 */
export function passProgram(
  plan: KernelPlan,
  pass: PassSpec,
  count: boolean,
): { key: string; source: string } {
  const specs = new Map(plan.buffers.map((b) => [b.name, b]));
  const bindings = pass.bindings.map((b) => {
    const spec = specs.get(b.buffer);
    if (!spec) throw new Error(`${plan.kernel.name} pass ${pass.name} binds no buffer ${b.buffer}`);
    return { name: b.as ?? b.buffer, element: b.element ?? spec.element, access: b.access };
  });
  const header = shaderHeader({
    dtype: plan.shape.dtype,
    count,
    slots: plan.slots,
    bindings,
    uniforms: pass.uniforms,
  });
  const signature = [
    plan.shape.dtype,
    count ? "count" : "",
    plan.slots.join(","),
    bindings.map((b) => `${b.name}:${b.element}:${b.access}`).join(","),
    pass.uniforms.map((u) => `${u.name}:${u.type}`).join(","),
  ].join("|");
  return { key: `${pass.key}#${signature}`, source: `${header}\n${pass.source}` };
}

/** The `Params` uniform of a pass: each field 4 bytes, in order, padded to 16. */
function uniformData(pass: PassSpec): ArrayBuffer {
  const data = new ArrayBuffer(align16(4 * pass.uniforms.length));
  const view = new DataView(data);
  pass.uniforms.forEach((u, i) => {
    if (u.type === "f32") view.setFloat32(4 * i, u.value, true);
    else if (u.type === "i32") view.setInt32(4 * i, u.value, true);
    else view.setUint32(4 * i, u.value, true);
  });
  return data;
}

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

function align16(n: number): number {
  return Math.max(16, Math.ceil(n / 16) * 16);
}
