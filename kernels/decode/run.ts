/**
 * Running a decode plan: buffers, bind groups and the two dispatches (split, combine).
 *
 * {@linkcode prepareDecode} resolves the problem into its plan (refusing a bad block table before
 * anything is allocated), compiles the passes through a {@linkcode PipelineCache}, allocates the
 * plan's buffers and returns an object that uploads inputs, poisons O, encodes or runs the
 * passes, reads O back and, in the counting variant, reads the byte counters.
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import { type Gpu, requireDtype } from "../gpu.ts";
import { COUNTER_BINDING, COUNTER_WORDS } from "./prelude.ts";
import type { PipelineCache } from "../program.ts";
import {
  DECODE_SLOTS,
  type DecodeBuffer,
  type DecodeBytes,
  type DecodePlan,
  decodePlan,
  type DecodeProblem,
  type DecodeSlot,
  paramsBytes,
} from "./program.ts";
import type { DecodeInputs } from "./reference.ts";
import { pageCache, queryElements } from "./workload.ts";

/** A decode problem with its buffers allocated and its passes compiled. */
export interface PreparedDecode {
  readonly plan: DecodePlan;
  /** Writes Q and the K, V caches (contiguous `[seqs, kvHeads, cap, d]`; paged through the
   * tables into the pool, whose unused slots get NaN). */
  upload(inputs: DecodeInputs): void;
  /** Fills O and the partial results with NaN. */
  poisonOutput(): void;
  /** Encodes both passes (or only pass `only`: 0 split, 1 combine). */
  encode(pass: GPUComputePassEncoder, only?: number): void;
  /** One run: submit and wait. */
  run(): Promise<void>;
  /** O as f32, `[seqs, heads, d]`. */
  readOutput(): Promise<Float32Array>;
  /** The counters of the counting variant. */
  readCounters(): Promise<DecodeBytes>;
  /** Zeroes the counters. */
  resetCounters(): void;
  destroy(): void;
}

/**
 * Plans, compiles and allocates one decode problem. Throws {@linkcode UsageError} for bad input
 * (a `BlockTableError` for a malformed block table) before any buffer exists, and for f16 on an
 * adapter without `shader-f16`.
 *
 * @example
 * ```ts ignore
 * import { openGpu } from "../gpu.ts";
 * import { PipelineCache } from "../program.ts";
 * import { prepareDecode } from "./run.ts";
 * const gpu = await openGpu();
 * const shape = { lens: [17, 300], heads: 8, kvHeads: 2, d: 64, dtype: "f32" } as const;
 * const p = await prepareDecode(gpu, new PipelineCache(gpu.device), { kernel: "paged-decode", shape });
 * ```
 */
export async function prepareDecode(
  gpu: Gpu,
  cache: PipelineCache,
  problem: DecodeProblem,
): Promise<PreparedDecode> {
  const { device } = gpu;
  requireDtype(gpu, problem.shape.dtype);
  const plan = decodePlan(problem);
  const { shape } = plan;
  const limits = device.limits;
  for (const b of plan.buffers) {
    if (b.bytes > limits.maxStorageBufferBindingSize || b.bytes > limits.maxBufferSize) {
      throw new UsageError(`does not fit: decode buffer ${b.name} of ${b.bytes} bytes`);
    }
  }
  for (const p of plan.passes) {
    if (p.grid.some((g) => g > limits.maxComputeWorkgroupsPerDimension)) {
      throw new UsageError(`does not fit: the ${p.name} grid ${p.grid.join("×")}`);
    }
  }
  const programs = await Promise.all(plan.passes.map((p) => cache.get(p.key, p.source)));

  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const buffers = new Map<DecodeBuffer["name"], GPUBuffer>();
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  for (const b of plan.buffers) {
    const usage = b.role === "uniform" ? GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST : STORAGE;
    buffers.set(b.name, device.createBuffer({ label: b.name, size: align16(b.bytes), usage }));
  }
  const counters = plan.count
    ? device.createBuffer({ label: "counters", size: COUNTER_WORDS * 4, usage: STORAGE })
    : null;
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (validation || oom) {
    for (const b of buffers.values()) b.destroy();
    counters?.destroy();
    throw new UsageError(
      `does not fit: allocating ${plan.kernel}'s buffers failed: ${(oom ?? validation)!.message}`,
    );
  }
  const buf = (name: DecodeBuffer["name"]) => buffers.get(name)!;
  const spec = (name: DecodeBuffer["name"]) => plan.buffers.find((b) => b.name === name)!;

  device.queue.writeBuffer(buf("params"), 0, paramsBytes(plan));
  device.queue.writeBuffer(buf("lens"), 0, new Uint32Array(shape.lens));
  if (plan.tables) device.queue.writeBuffer(buf("table"), 0, plan.tables.table);

  const groups = plan.passes.map((pass, i) =>
    device.createBindGroup({
      label: pass.key,
      layout: programs[i]!.pipeline.getBindGroupLayout(0),
      entries: [
        ...pass.bindings.map((name) => ({
          binding: spec(name).binding,
          resource: { buffer: buf(name) },
        })),
        ...(counters ? [{ binding: COUNTER_BINDING, resource: { buffer: counters } }] : []),
      ],
    })
  );

  const encode = (pass: GPUComputePassEncoder, only?: number) => {
    plan.passes.forEach((p, i) => {
      if (only !== undefined && only !== i) return;
      pass.setPipeline(programs[i]!.pipeline);
      pass.setBindGroup(0, groups[i]!);
      pass.dispatchWorkgroups(...p.grid);
    });
  };

  const readBack = async (src: GPUBuffer, bytes: number): Promise<ArrayBuffer> => {
    const staging = device.createBuffer({
      size: align16(bytes),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(src, 0, staging, 0, align16(bytes));
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const copy = staging.getMappedRange().slice(0, bytes);
    staging.destroy();
    return copy;
  };

  const f16 = shape.dtype === "f16";
  const toDevice = (x: Float32Array): BufferSource =>
    f16 ? new Float16Array(x) : new Float32Array(x);
  const nan = (bytes: number) => new Uint32Array(align16(bytes) / 4).fill(0x7fc07fc0);

  return {
    plan,
    upload(inputs) {
      if (inputs.q.length !== queryElements(shape)) {
        throw new Error(`q holds ${inputs.q.length} elements, expected ${queryElements(shape)}`);
      }
      const cacheLen = shape.lens.length * shape.kvHeads * inputs.cap * shape.d;
      if (inputs.k.length !== cacheLen || inputs.v.length !== cacheLen) {
        throw new Error(`the K and V caches must hold ${cacheLen} elements`);
      }
      if (plan.cap !== null && inputs.cap !== plan.cap) {
        throw new Error(`the inputs reserve ${inputs.cap} rows, the kernel ${plan.cap}`);
      }
      device.queue.writeBuffer(buf("q"), 0, toDevice(inputs.q));
      for (const name of ["k", "v"] as const) {
        const x = plan.tables
          ? pageCache(inputs[name], shape.lens, shape.kvHeads, shape.d, inputs.cap, plan.tables)
          : inputs[name];
        device.queue.writeBuffer(buf(name), 0, toDevice(x));
      }
    },
    poisonOutput() {
      for (const name of ["o", "part_ml", "part_o"] as const) {
        device.queue.writeBuffer(buf(name), 0, nan(spec(name).bytes));
      }
    },
    encode,
    async run() {
      device.pushErrorScope("validation");
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      encode(pass);
      pass.end();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      const err = await device.popErrorScope();
      if (err) throw new Error(`${plan.kernel} run failed: ${err.message}`);
    },
    async readOutput() {
      const raw = await readBack(buf("o"), spec("o").bytes);
      return f16 ? new Float32Array(new Float16Array(raw)) : new Float32Array(raw);
    },
    async readCounters() {
      if (!counters) throw new Error("readCounters needs the counting variant (count: true)");
      const words = new Uint32Array(await readBack(counters, COUNTER_WORDS * 4));
      const at = (i: number) => words[i]! + words[i + 16]! * 2 ** 32;
      const out = {} as DecodeBytes;
      for (const [name, slot] of Object.entries(DECODE_SLOTS)) {
        out[name as DecodeSlot] = { read: at(slot), write: at(32 + slot) };
      }
      return out;
    },
    resetCounters() {
      if (counters) device.queue.writeBuffer(counters, 0, new Uint32Array(COUNTER_WORDS));
    },
    destroy() {
      for (const b of buffers.values()) b.destroy();
      counters?.destroy();
    },
  };
}

function align16(n: number): number {
  return Math.max(16, Math.ceil(n / 16) * 16);
}
