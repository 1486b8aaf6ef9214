/**
 * The backward passes of the three kernels, described as data and run.
 *
 * {@linkcode planBackward} is pure: from a problem it lists the buffers (name, role, bytes,
 * constant contents) and the passes (name, WGSL source, cache key, bindings by buffer name,
 * grid, uniforms), in dispatch order. {@linkcode prepareBackward} allocates the buffers,
 * compiles the passes through the device's pipeline cache and binds them; the result uploads
 * inputs, poisons outputs and scratch with NaN, runs, reads any buffer back and, in the counting
 * variant, reads the byte counters.
 *
 * - flash: `delta` (D = rowsum(dO ∘ O)), `dkdv` (key blocks outer), `dq` (query blocks outer);
 *   inputs Q, K, V, O, dO and the forward's log-sum-exp; D is scratch; no N×N buffer.
 * - block-sparse: the same passes visiting only the blocks the mask keeps (CSR for dq, CSC for
 *   dkdv).
 * - standard (Algorithm 3): `dv`, `dp`, `ds`, `dq`, `dk`; inputs Q, K, V, dO and the forward's
 *   P; dP and dS are N×N scratch buffers in GPU memory.
 *
 * @module
 */

import type { Gpu } from "../gpu.ts";
import { requireDtype } from "../gpu.ts";
import type { BlockMask } from "../masks.ts";
import { COUNTER_BINDING, COUNTER_WORDS, type PipelineCache } from "../program.ts";
import { type AttentionShape, dtypeBytes, type KernelName, type Tiles } from "../types.ts";
import {
  BACKWARD_SLOTS,
  type BackwardKnobs,
  type BackwardSlot,
  type Binding,
  bindingNumbers,
  type BufferName,
  DELTA_ROWS,
  DS_ROWS,
  FLASH_PASSES,
  flashBackwardKey,
  flashBackwardSource,
  flashBackwardTileProblem,
  flashBindings,
  STANDARD_PASSES,
  standardBackwardKey,
  standardBackwardSource,
  standardBindings,
} from "./program.ts";

/** What a buffer is to the passes: read only, produced for the caller, or produced and consumed. */
export type BufferRole = "input" | "output" | "scratch";

/** One GPU buffer of a backward plan. */
export interface BufferSpec {
  name: BufferName;
  role: BufferRole;
  /** Bytes the passes address (the allocation is rounded up to 4, at least 16). */
  bytes: number;
  /** Whether its elements are the storage dtype (else f32 or u32, whatever the dtype). */
  dtypeElements: boolean;
  /** Contents known when planning (the block mask's index arrays); uploaded once. */
  data?: Uint32Array;
}

/** One dispatch of a backward plan. */
export interface PassSpec {
  name: string;
  key: string;
  source: string;
  /** Storage bindings in binding order (numbers from `bindingNumbers`; params is binding 0). */
  bindings: Binding[];
  grid: [number, number, number];
  /** The 16 bytes of `params`: n, bh, causal (u32) and the softmax scale (f32). */
  uniforms: ArrayBuffer;
}

/** What to run backward. */
export interface BackwardProblem {
  kernel: KernelName;
  shape: AttentionShape;
  tiles: Tiles;
  /** Block-sparse only: the mask on the kernel's tile grid (the forward's). */
  mask?: BlockMask | null;
  /** Build the counting variant (never timed). */
  count?: boolean;
  /** Softmax scale; 1/√d by default. */
  scale?: number;
}

/** A backward problem's buffers and passes. */
export interface BackwardPlan {
  kernel: KernelName;
  shape: AttentionShape;
  tiles: Tiles;
  mask: BlockMask | null;
  count: boolean;
  buffers: BufferSpec[];
  passes: PassSpec[];
}

/** Bytes each binding read and wrote, by counter slot. */
export type BackwardBytes = Record<BackwardSlot, { read: number; write: number }>;

/**
 * The mask in compressed sparse column form: for key block j, the kept query blocks
 * `rowidx[colptr[j] .. colptr[j+1])` in increasing order (what the dK/dV pass walks).
 *
 * @example
 * ```ts
 * import { BlockMask } from "../masks.ts";
 * import { maskCsc } from "./backward.ts";
 * const m = new BlockMask("random", 16, 8, 8, new Uint8Array([0, 1, 1, 1]));
 * const { colptr, rowidx } = maskCsc(m);
 * console.assert(colptr.join() === "0,1,3" && rowidx.join() === "1,0,1");
 * ```
 */
export function maskCsc(mask: BlockMask): { colptr: Uint32Array; rowidx: Uint32Array } {
  const colptr = new Uint32Array(mask.colBlocks + 1);
  const rowidx = new Uint32Array(Math.max(1, mask.nnz));
  let at = 0;
  for (let j = 0; j < mask.colBlocks; j++) {
    colptr[j] = at;
    for (let i = 0; i < mask.rowBlocks; i++) {
      if (mask.bits[i * mask.colBlocks + j]) rowidx[at++] = i;
    }
  }
  colptr[mask.colBlocks] = at;
  return { colptr, rowidx };
}

/**
 * Why this problem cannot be planned, or null. Tiles must build both flash passes (the dK/dV
 * pass swaps br and bc); a block-sparse mask must sit on the tile grid.
 *
 * @example
 * ```ts
 * import { backwardProblem } from "./backward.ts";
 * const shape = { batch: 1, heads: 1, n: 9, d: 32, dtype: "f32", causal: false } as const;
 * console.assert(backwardProblem({ kernel: "block-sparse", shape, tiles: { br: 8, bc: 8, rm: 2, tx: 4 } }) !== null);
 * ```
 */
export function backwardProblem(p: BackwardProblem): string | null {
  const { shape, tiles } = p;
  for (
    const [name, value] of Object.entries({ ...tiles, batch: shape.batch, heads: shape.heads })
  ) {
    if (!Number.isSafeInteger(value) || value < 1) return `${name} must be a positive integer`;
  }
  if (!Number.isSafeInteger(shape.n) || shape.n < 1) return "n must be a positive integer";
  const tileText = flashBackwardTileProblem(shape.d, tiles);
  if (tileText) return `tiles ${JSON.stringify(tiles)}: ${tileText}`;
  if (p.kernel === "block-sparse") {
    const m = p.mask;
    if (!m) return "block-sparse needs its mask";
    if (m.br !== tiles.br || m.bc !== tiles.bc) return "the block mask's blocks must be the tiles";
    if (
      m.rowBlocks !== Math.ceil(shape.n / tiles.br) || m.colBlocks !== Math.ceil(shape.n / tiles.bc)
    ) {
      return `the block mask covers ${m.rowBlocks}×${m.colBlocks} blocks, n=${shape.n} needs ` +
        `${Math.ceil(shape.n / tiles.br)}×${Math.ceil(shape.n / tiles.bc)}`;
    }
  } else if (p.mask) {
    return `${p.kernel} takes no block mask`;
  }
  return null;
}

/**
 * The buffers and passes of a backward problem (no GPU needed). Throws on a problem that
 * {@linkcode backwardProblem} rejects.
 *
 * @example
 * ```ts
 * import { planBackward } from "./backward.ts";
 * const shape = { batch: 2, heads: 1, n: 9, d: 32, dtype: "f32", causal: true } as const;
 * const plan = planBackward({ kernel: "flash", shape, tiles: { br: 8, bc: 8, rm: 2, tx: 4 } });
 * console.assert(plan.passes.map((p) => p.name).join() === "delta,dkdv,dq");
 * console.assert(plan.passes[1]!.grid.join() === "2,2,1");
 * ```
 */
export function planBackward(p: BackwardProblem): BackwardPlan {
  const why = backwardProblem(p);
  if (why) throw new Error(`backward ${p.kernel}: ${why}`);
  const { kernel, shape, tiles } = p;
  const { n, d } = shape;
  const heads = shape.batch * shape.heads;
  const count = p.count ?? false;
  const mask = kernel === "block-sparse" ? p.mask! : null;
  const e = dtypeBytes(shape.dtype);
  const tensor = heads * n * d * e;
  const square = heads * n * n * e;
  const row = heads * n * 4;
  const buf = (name: BufferName, role: BufferRole, bytes: number, dtypeElements = true) => ({
    name,
    role,
    bytes,
    dtypeElements,
  });
  const uniforms = new ArrayBuffer(16);
  new Uint32Array(uniforms, 0, 3).set([n, heads, shape.causal ? 1 : 0]);
  new Float32Array(uniforms, 12, 1)[0] = p.scale ?? 1 / Math.sqrt(d);
  const knobs: BackwardKnobs = { dtype: shape.dtype, count, d, tiles, sparse: mask !== null };
  const tr = Math.ceil(n / tiles.br);
  const tc = Math.ceil(n / tiles.bc);
  const grads = [
    buf("dq", "output", tensor),
    buf("dk", "output", tensor),
    buf("dv", "output", tensor),
  ];

  if (kernel === "standard") {
    const grids: Record<(typeof STANDARD_PASSES)[number], [number, number, number]> = {
      dv: [tc, heads, 1],
      dp: [tc, tr, heads],
      ds: [Math.ceil(n / DS_ROWS), heads, 1],
      dq: [tr, heads, 1],
      dk: [tc, heads, 1],
    };
    return {
      kernel,
      shape,
      tiles,
      mask,
      count,
      buffers: [
        buf("q", "input", tensor),
        buf("k", "input", tensor),
        buf("v", "input", tensor),
        buf("dout", "input", tensor),
        buf("p", "input", square),
        buf("dp", "scratch", square),
        buf("ds", "scratch", square),
        ...grads,
      ],
      passes: STANDARD_PASSES.map((pass) => {
        // dV and dK own key rows (blocks of bc), dQ query rows (blocks of br).
        const own = pass === "dv" || pass === "dk"
          ? { ...knobs, tiles: { ...tiles, br: tiles.bc } }
          : knobs;
        return {
          name: pass,
          key: standardBackwardKey(own, pass),
          source: standardBackwardSource(own, pass),
          bindings: standardBindings(pass),
          grid: grids[pass],
          uniforms,
        };
      }),
    };
  }

  const buffers: BufferSpec[] = [
    buf("q", "input", tensor),
    buf("k", "input", tensor),
    buf("v", "input", tensor),
    buf("o", "input", tensor),
    buf("dout", "input", tensor),
    buf("lse", "input", row, false),
    buf("delta", "scratch", row, false),
    ...grads,
  ];
  if (mask) {
    const csr = mask.csr();
    const csc = maskCsc(mask);
    for (
      const [name, data] of [
        ["rowptr", csr.rowptr],
        ["colidx", csr.colidx],
        ["colptr", csc.colptr],
        ["rowidx", csc.rowidx],
      ] as const
    ) {
      buffers.push({ name, role: "input", bytes: data.byteLength, dtypeElements: false, data });
    }
  }
  const grids: Record<(typeof FLASH_PASSES)[number], [number, number, number]> = {
    delta: [Math.ceil(n / DELTA_ROWS), heads, 1],
    dkdv: [tc, heads, 1],
    dq: [tr, heads, 1],
  };
  return {
    kernel,
    shape,
    tiles,
    mask,
    count,
    buffers,
    passes: FLASH_PASSES.map((pass) => ({
      name: pass,
      key: flashBackwardKey(knobs, pass),
      source: flashBackwardSource(knobs, pass),
      bindings: flashBindings(pass, knobs.sparse),
      grid: grids[pass],
      uniforms,
    })),
  };
}

/** The device state a backward run needs (an `AttentionKernels` has it). */
export interface BackwardContext {
  gpu: Gpu;
  cache: PipelineCache;
}

/** A backward plan with its buffers allocated and its passes compiled and bound. */
export interface PreparedBackward {
  readonly plan: BackwardPlan;
  /** Writes a buffer (f32 values, converted to f16 for dtype buffers when the dtype is f16). */
  upload(name: BufferName, data: Float32Array): void;
  /** Fills every output and scratch buffer with NaN: an unwritten element cannot pass a check. */
  poison(): void;
  /** Encodes the passes, in order (or pass `only` alone). */
  encode(pass: GPUComputePassEncoder, only?: number): void;
  /** One run: submit and wait. */
  run(): Promise<void>;
  /** A buffer's contents as f32 (dtype buffers converted from f16). */
  read(name: BufferName): Promise<Float32Array>;
  /** The counters of the counting variant. */
  readCounters(): Promise<BackwardBytes>;
  /** Zeroes the counters. */
  resetCounters(): void;
  destroy(): void;
}

/**
 * Allocates, compiles and binds a backward plan.
 *
 * @example
 * ```ts ignore
 * import { planBackward, prepareBackward } from "./backward.ts";
 * const prepared = await prepareBackward(kernels, planBackward(problem));
 * ```
 */
export async function prepareBackward(
  ctx: BackwardContext,
  plan: BackwardPlan,
): Promise<PreparedBackward> {
  const { device } = ctx.gpu;
  const { shape } = plan;
  requireDtype(ctx.gpu, shape.dtype);
  const programs = await Promise.all(plan.passes.map((p) => ctx.cache.get(p.key, p.source)));

  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const made: GPUBuffer[] = [];
  const make = (label: string, size: number, usage = STORAGE) => {
    const b = device.createBuffer({ label, size: Math.max(16, align4(size)), usage });
    made.push(b);
    return b;
  };
  const buffers = new Map<BufferName, GPUBuffer>();
  for (const b of plan.buffers) buffers.set(b.name, make(b.name, b.bytes));
  const counters = plan.count ? make("counters", COUNTER_WORDS * 4) : null;
  const params = plan.passes.map((p) => {
    const u = make(`params ${p.name}`, 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    device.queue.writeBuffer(u, 0, p.uniforms);
    return u;
  });
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (validation || oom) {
    for (const b of made) b.destroy();
    throw new Error(`allocating backward buffers failed: ${(oom ?? validation)!.message}`);
  }
  for (const b of plan.buffers) {
    if (b.data) device.queue.writeBuffer(buffers.get(b.name)!, 0, b.data);
  }

  const groups = plan.passes.map((p, i) => {
    const pipeline = programs[i]!.pipeline;
    const numbers = bindingNumbers(p.bindings.length);
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: params[i]! } },
      ...p.bindings.map((b, j) => ({
        binding: numbers[j]!,
        resource: { buffer: buffers.get(b.buffer)! },
      })),
    ];
    if (counters) entries.push({ binding: COUNTER_BINDING, resource: { buffer: counters } });
    return device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  });

  const spec = (name: BufferName) => {
    const b = plan.buffers.find((x) => x.name === name);
    if (!b) throw new Error(`backward ${plan.kernel} has no buffer ${name}`);
    return b;
  };
  const f16 = shape.dtype === "f16";
  const readBack = async (src: GPUBuffer, bytes: number): Promise<ArrayBuffer> => {
    const staging = device.createBuffer({
      size: Math.max(16, align4(bytes)),
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
  const encode = (pass: GPUComputePassEncoder, only?: number) => {
    plan.passes.forEach((p, i) => {
      if (only !== undefined && only !== i) return;
      pass.setPipeline(programs[i]!.pipeline);
      pass.setBindGroup(0, groups[i]!);
      pass.dispatchWorkgroups(...p.grid);
    });
  };

  return {
    plan,
    upload(name, data) {
      const b = spec(name);
      const half = f16 && b.dtypeElements;
      if (data.length * (half ? 2 : 4) !== b.bytes) {
        throw new Error(`${name}: expected ${b.bytes} bytes, got ${data.length} elements`);
      }
      device.queue.writeBuffer(buffers.get(name)!, 0, half ? new Float16Array(data) : data);
    },
    poison() {
      for (const b of plan.buffers) {
        if (b.role === "input") continue;
        const nan = f16 && b.dtypeElements
          ? new Uint16Array(b.bytes / 2).fill(0x7e00)
          : new Uint32Array(b.bytes / 4).fill(0x7fc00000);
        device.queue.writeBuffer(buffers.get(b.name)!, 0, nan);
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
      if (err) throw new Error(`backward ${plan.kernel} run failed: ${err.message}`);
    },
    async read(name) {
      const b = spec(name);
      const raw = await readBack(buffers.get(name)!, b.bytes);
      return f16 && b.dtypeElements
        ? new Float32Array(new Float16Array(raw))
        : new Float32Array(raw);
    },
    async readCounters() {
      if (!counters) throw new Error("readCounters needs the counting variant (count: true)");
      const words = new Uint32Array(await readBack(counters, COUNTER_WORDS * 4));
      const at = (i: number) => words[i]! + words[i + 16]! * 2 ** 32;
      const out = {} as BackwardBytes;
      for (const [name, slot] of Object.entries(BACKWARD_SLOTS)) {
        out[name as BackwardSlot] = { read: at(slot), write: at(32 + slot) };
      }
      return out;
    },
    resetCounters() {
      if (counters) device.queue.writeBuffer(counters, 0, new Uint32Array(COUNTER_WORDS));
    },
    destroy() {
      for (const b of made) b.destroy();
    },
  };
}

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}
