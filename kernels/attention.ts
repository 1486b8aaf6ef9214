/**
 * Running a kernel: buffers, bind groups and dispatches for one attention problem.
 *
 * {@linkcode prepareAttention} allocates everything once; the result can upload inputs, poison
 * the output, encode the kernel's dispatches into a compute pass (for the timer), run it once,
 * read O back, and, in the counting variant, read the byte counters.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import {
  bufferSizes,
  fitsDevice,
  footprintBytes as footprintBytesOf,
} from "../analysis/io_model.ts";
import { flashKey, flashSource } from "./flash.ts";
import { type Gpu, requireDtype } from "./gpu.ts";
import { BlockMask, makeMask } from "./masks.ts";
import { COUNTER_BINDING, COUNTER_WORDS, PipelineCache, type SlotName, SLOTS } from "./program.ts";
import { SOFTMAX_ROWS, standardKey, type StandardPass, standardSource } from "./standard.ts";
import { defaultTiles, FALLBACK_TILE_CANDIDATES, TILE_CANDIDATES, tileProblem } from "./tiles.ts";
import type { AttentionShape, KernelName, MaskKind, Tiles } from "../core/shapes.ts";

/** A problem larger than the device's limits. The bench records it as `skipped`. */
export class DoesNotFitError extends UsageError {
  constructor(message: string) {
    super(message.startsWith("does not fit") ? message : `does not fit: ${message}`);
    this.name = "DoesNotFitError";
  }
}

/** What to run. */
export interface AttentionProblem {
  kernel: KernelName;
  shape: AttentionShape;
  /** Tile sizes; the adapter's default when absent. */
  tiles?: Tiles;
  /** Block-sparse only: the mask to build (on the kernel's tile grid) or a mask already built. */
  mask?: { kind: MaskKind; density: number; seed: number } | BlockMask;
  /** Build the counting variant (for `--count-io`; never timed). */
  count?: boolean;
  /** Softmax scale; 1/√d by default. */
  scale?: number;
}

/** Bytes each binding read and wrote, as the counting variant counted them. */
export type CountedBytes = Record<SlotName, { read: number; write: number }>;

/** A problem with its buffers allocated and its pipelines compiled. */
export interface PreparedAttention {
  readonly kernel: KernelName;
  readonly shape: AttentionShape;
  readonly tiles: Tiles;
  /** The block mask (block-sparse only). */
  readonly mask: BlockMask | null;
  /** Bytes of the storage buffers the kernel binds (inputs, outputs, intermediates, mask). */
  readonly footprintBytes: number;
  /** Pipeline creation time of the kernel's passes, ms (first compile; 0 parts when cached). */
  readonly compileMs: number;
  /** Number of input sets (Q, K, V buffer triples) to rotate among. */
  readonly inputSets: number;
  /** Writes Q, K, V (f32 values; converted to f16 when the dtype is f16) into input set `set`. */
  upload(q: Float32Array, k: Float32Array, v: Float32Array, set?: number): void;
  /** Fills O (and the log-sum-exp) with NaN, so an unwritten element cannot pass a check. */
  poisonOutput(): void;
  /** Encodes the kernel's dispatches, reading input set `set`. */
  encode(pass: GPUComputePassEncoder, set?: number): void;
  /** Names of the kernel's dispatches, in order (standard: scores, softmax, pv). */
  readonly passNames: readonly string[];
  /** Encodes dispatch `index` of {@linkcode passNames} alone (to time the passes apart). */
  encodePass(pass: GPUComputePassEncoder, index: number, set?: number): void;
  /** One run: submit and wait. */
  run(set?: number): Promise<void>;
  /** O as f32, `[B, H, N, d]`. */
  readOutput(): Promise<Float32Array>;
  /** The counters of the counting variant (zeroed by {@linkcode resetCounters}). */
  readCounters(): Promise<CountedBytes>;
  /** Zeroes the counters. */
  resetCounters(): void;
  /** Frees the buffers. */
  destroy(): void;
}

const PARAMS_BYTES = 16;

/** Per-device state: the pipeline cache. */
export class AttentionKernels {
  readonly gpu: Gpu;
  readonly cache: PipelineCache;

  constructor(gpu: Gpu) {
    this.gpu = gpu;
    this.cache = new PipelineCache(gpu.device);
  }

  /** The adapter's default tiles for a kernel and shape. */
  defaultTiles(kernel: KernelName, shape: AttentionShape): Tiles {
    const candidates = this.gpu.info.isFallbackAdapter ? FALLBACK_TILE_CANDIDATES : TILE_CANDIDATES;
    return defaultTiles(kernel, shape.d, shape.dtype, this.gpu.device.limits, candidates);
  }
}

/**
 * Allocates and compiles everything one problem needs. Throws {@linkcode DoesNotFitError} when a
 * buffer or the grid is larger than the device allows, and {@linkcode UsageError} for f16 on
 * an adapter without `shader-f16` or tiles that cannot be built.
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
  const { kernel, shape } = problem;
  const count = problem.count ?? false;
  const inputSets = Math.max(1, opts.inputSets ?? 1);
  requireDtype(gpu, shape.dtype);
  const tiles = problem.tiles ?? kernels.defaultTiles(kernel, shape);
  const problemText = tileProblem(kernel, shape.d, shape.dtype, tiles, device.limits);
  if (problemText) throw new UsageError(`tiles ${JSON.stringify(tiles)}: ${problemText}`);

  const mask = kernel !== "block-sparse"
    ? null
    : problem.mask instanceof BlockMask
    ? problem.mask
    : makeMask({
      kind: problem.mask?.kind ?? "random",
      density: problem.mask?.density ?? 0.25,
      seed: problem.mask?.seed ?? 1,
      n: shape.n,
      br: tiles.br,
      bc: tiles.bc,
    });
  if (mask && (mask.br !== tiles.br || mask.bc !== tiles.bc)) {
    throw new UsageError("the block mask's blocks must be the kernel's tiles");
  }
  if (
    mask &&
    (mask.rowBlocks !== Math.ceil(shape.n / tiles.br) ||
      mask.colBlocks !== Math.ceil(shape.n / tiles.bc))
  ) {
    throw new UsageError(
      `the block mask covers ${mask.rowBlocks}×${mask.colBlocks} blocks, n=${shape.n} needs ` +
        `${Math.ceil(shape.n / tiles.br)}×${Math.ceil(shape.n / tiles.bc)}`,
    );
  }

  const heads = shape.batch * shape.heads;
  // The IO model's buffer list is the one allocated here, so the footprint it reports and the
  // fit check it makes are this kernel's own.
  const footprint = { tiles, maskNnz: mask?.nnz };
  const why = fitsDevice(kernel, shape, device.limits, footprint);
  if (why) {
    throw new DoesNotFitError(
      `${kernel} n=${shape.n}: buffer ${why.replace(/^does not fit: /, "")}`,
    );
  }
  checkGrid(device.limits, kernel, shape, tiles);
  const sizes = Object.fromEntries(
    bufferSizes(kernel, shape, footprint).map((b) => [b.name, b.bytes]),
  );
  const footprintBytes = footprintBytesOf(kernel, shape, footprint);
  const qkvBytes = sizes.Q!;
  const csr = mask?.csr();

  const knobs = { dtype: shape.dtype, count, d: shape.d, tiles };
  const programs = kernel === "standard"
    ? await Promise.all(
      (["scores", "softmax", "pv"] as StandardPass[]).map((pass) =>
        cache.get(standardKey(knobs, pass), standardSource(knobs, pass))
      ),
    )
    : [
      await cache.get(
        flashKey({ ...knobs, sparse: kernel === "block-sparse" }),
        flashSource({ ...knobs, sparse: kernel === "block-sparse" }),
      ),
    ];
  const compileMs = programs.reduce((a, p) => a + p.compileMs, 0);

  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const made: GPUBuffer[] = [];
  const buffer = (label: string, size: number, usage = STORAGE) => {
    const b = device.createBuffer({ label, size: Math.max(16, align4(size)), usage });
    made.push(b);
    return b;
  };
  const inputs = Array.from({ length: inputSets }, (_, i) => ({
    q: buffer(`q${i}`, qkvBytes),
    k: buffer(`k${i}`, qkvBytes),
    v: buffer(`v${i}`, qkvBytes),
  }));
  const o = buffer("o", qkvBytes);
  const lse = kernel === "standard" ? null : buffer("lse", sizes.LSE!);
  const s = kernel === "standard" ? buffer("s", sizes.S!) : null;
  const p = kernel === "standard" ? buffer("p", sizes.P!) : null;
  const params = buffer(
    "params",
    PARAMS_BYTES,
    GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  );
  const counters = count ? buffer("counters", COUNTER_WORDS * 4) : null;
  const rowptr = csr ? buffer("rowptr", csr.rowptr.byteLength) : null;
  const colidx = csr ? buffer("colidx", csr.colidx.byteLength) : null;
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (validation || oom) {
    for (const b of made) b.destroy();
    const why = (oom ?? validation)!.message;
    throw new DoesNotFitError(`allocating buffers for ${kernel} n=${shape.n} failed: ${why}`);
  }

  const scale = problem.scale ?? 1 / Math.sqrt(shape.d);
  const paramData = new ArrayBuffer(PARAMS_BYTES);
  new Uint32Array(paramData, 0, 3).set([shape.n, heads, shape.causal ? 1 : 0]);
  new Float32Array(paramData, 12, 1)[0] = kernel === "standard" ? scale : scale * Math.LOG2E;
  device.queue.writeBuffer(params, 0, paramData);
  if (csr) {
    device.queue.writeBuffer(rowptr!, 0, csr.rowptr);
    device.queue.writeBuffer(colidx!, 0, csr.colidx);
  }

  const bind = (pipeline: GPUComputePipeline, entries: [number, GPUBuffer | null][]) =>
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        ...entries,
        ...(counters ? [[COUNTER_BINDING, counters] as [number, GPUBuffer]] : []),
      ]
        .filter((x): x is [number, GPUBuffer] => x[1] !== null)
        .map(([binding, buffer]) => ({ binding, resource: { buffer } })),
    });

  const tr = Math.ceil(shape.n / tiles.br);
  const tc = Math.ceil(shape.n / tiles.bc);
  let encodeSet: (pass: GPUComputePassEncoder, set: number, only?: number) => void;
  let passNames: string[];
  if (kernel === "standard") {
    passNames = ["scores", "softmax", "pv"];
    const [scores, softmax, pv] = programs.map((pr) => pr.pipeline) as [
      GPUComputePipeline,
      GPUComputePipeline,
      GPUComputePipeline,
    ];
    const softmaxGroup = bind(softmax, [[0, params], [3, s], [4, p]]);
    const groups = inputs.map((set) => ({
      scores: bind(scores, [[0, params], [1, set.q], [2, set.k], [3, s]]),
      pv: bind(pv, [[0, params], [3, set.v], [4, p], [5, o]]),
    }));
    encodeSet = (pass, set, only) => {
      const g = groups[set % inputSets]!;
      if (only === undefined || only === 0) {
        pass.setPipeline(scores);
        pass.setBindGroup(0, g.scores);
        pass.dispatchWorkgroups(tc, tr, heads);
      }
      if (only === undefined || only === 1) {
        pass.setPipeline(softmax);
        pass.setBindGroup(0, softmaxGroup);
        pass.dispatchWorkgroups(Math.ceil(shape.n / SOFTMAX_ROWS), heads);
      }
      if (only === undefined || only === 2) {
        pass.setPipeline(pv);
        pass.setBindGroup(0, g.pv);
        pass.dispatchWorkgroups(tr, heads);
      }
    };
  } else {
    passNames = [kernel];
    const pipeline = programs[0]!.pipeline;
    const groups = inputs.map((set) =>
      bind(pipeline, [
        [0, params],
        [1, set.q],
        [2, set.k],
        [3, set.v],
        [4, o],
        [5, lse],
        [6, rowptr],
        [7, colidx],
      ])
    );
    encodeSet = (pass, set) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, groups[set % inputSets]!);
      pass.dispatchWorkgroups(tr, heads);
    };
  }

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

  const toDevice = (x: Float32Array): BufferSource => {
    if (x.length !== heads * shape.n * shape.d) {
      throw new Error(`expected ${heads * shape.n * shape.d} elements, got ${x.length}`);
    }
    return shape.dtype === "f16" ? new Float16Array(x) : new Float32Array(x);
  };

  return {
    kernel,
    shape,
    tiles,
    mask,
    footprintBytes,
    compileMs,
    inputSets,
    upload(qv, kv, vv, set = 0) {
      const b = inputs[set]!;
      device.queue.writeBuffer(b.q, 0, toDevice(qv));
      device.queue.writeBuffer(b.k, 0, toDevice(kv));
      device.queue.writeBuffer(b.v, 0, toDevice(vv));
    },
    poisonOutput() {
      const nan = shape.dtype === "f16"
        ? new Uint16Array(qkvBytes / 2).fill(0x7e00)
        : new Uint32Array(qkvBytes / 4).fill(0x7fc00000);
      device.queue.writeBuffer(o, 0, nan);
      if (lse) device.queue.writeBuffer(lse, 0, new Uint32Array(sizes.LSE! / 4).fill(0x7fc00000));
    },
    encode(pass, set = 0) {
      encodeSet(pass, set);
    },
    passNames,
    encodePass(pass, index, set = 0) {
      if (!(index >= 0 && index < passNames.length)) throw new Error(`no pass ${index}`);
      encodeSet(pass, set, passNames.length === 1 ? undefined : index);
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
      if (err) throw new Error(`${kernel} run failed: ${err.message}`);
    },
    async readOutput() {
      const raw = await readBack(o, qkvBytes);
      return shape.dtype === "f16"
        ? new Float32Array(new Float16Array(raw))
        : new Float32Array(raw);
    },
    async readCounters() {
      if (!counters) throw new Error("readCounters needs the counting variant (count: true)");
      const words = new Uint32Array(await readBack(counters, COUNTER_WORDS * 4));
      const at = (i: number) => words[i]! + words[i + 16]! * 2 ** 32;
      const out = {} as CountedBytes;
      for (const [name, slot] of Object.entries(SLOTS)) {
        out[name as SlotName] = { read: at(slot), write: at(32 + slot) };
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

function checkGrid(
  limits: GPUSupportedLimits,
  kernel: KernelName,
  shape: AttentionShape,
  tiles: Tiles,
): void {
  const heads = shape.batch * shape.heads;
  const grid = kernel === "standard"
    ? [Math.ceil(shape.n / tiles.bc), Math.ceil(shape.n / tiles.br), heads]
    : [Math.ceil(shape.n / tiles.br), heads];
  const maxGrid = limits.maxComputeWorkgroupsPerDimension;
  if (grid.some((g) => g > maxGrid)) {
    throw new DoesNotFitError(
      `${kernel} n=${shape.n} batch·heads=${heads}: a grid dimension exceeds the device's ` +
        `${maxGrid} workgroups`,
    );
  }
}
