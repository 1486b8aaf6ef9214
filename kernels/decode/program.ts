/**
 * The decode kernels as registry entries: from a problem, the buffers (name, role, bytes,
 * element), the passes (source, cache key, bindings by name, grid, uniforms) and the counter
 * slots. Pure: no GPU. The generic runner (`kernels/attention.ts`) allocates and dispatches what
 * a plan says; bindings and `struct Params` come from the generated header (`kernels/program.ts`).
 *
 * Two kernels share one split pass body (decode_split.wgsl) and one combine pass
 * (decode_combine.wgsl); they differ in where a token's K and V rows lie, which a small WGSL
 * prelude states: kv_contiguous.wgsl (`decode`) or kv_paged.wgsl (`paged-decode`).
 *
 * ## The problem
 *
 * A decode step is not the forward attention shape: every sequence has one query token per query
 * head, and its own context length. In a {@linkcode ProblemRequest} the shape's `batch` is the
 * number of sequences, `heads` the query heads, `n` the longest context, `d` and `dtype` as usual
 * (`causal` changes nothing: the one query is the last position, which sees every key). The
 * decode options ({@linkcode DecodeOptions}) give the context lengths (all `n` when absent), the
 * KV heads (grouped-query attention when fewer than `heads`), the block size and tables (paged),
 * a reservation (contiguous) and the split size. Tiles are not a knob of these kernels.
 *
 * @module
 */

import splitBody from "./decode_split.wgsl" with { type: "text" };
import combineBody from "./decode_combine.wgsl" with { type: "text" };
import commonBody from "./decode_common.wgsl" with { type: "text" };
import contiguousLayout from "./kv_contiguous.wgsl" with { type: "text" };
import pagedLayout from "./kv_paged.wgsl" with { type: "text" };
import { UsageError } from "../../core/errors.ts";
import { type AttentionShape, type Dtype, dtypeBytes } from "../../core/shapes.ts";
import type {
  BufferSpec,
  FlopMode,
  Kernel,
  KernelPlan,
  PassBinding,
  PassSpec,
  ProblemRequest,
  TheoreticalTraffic,
  Uniform,
} from "../kernel.ts";
import { unblockedTraffic } from "../../analysis/io_model.ts";
import { unrollLoops } from "../program.ts";
import { need } from "../common.ts";
import { compulsoryDecodeBytes, modeledDecodeTraffic } from "./modeled.ts";
import { gatherCache, randomDecodeInputs, referenceDecode } from "./reference.ts";
import {
  BLOCK_SIZES,
  type BlockTables,
  buildBlockTables,
  checkDecodeShape,
  type DecodeShape,
  pageCache,
  queryElements,
  validateBlockTables,
} from "./workload.ts";

/** The decode kernels' names. */
export type DecodeKernelName = "decode" | "paged-decode";
/** Every decode kernel. */
export const DECODE_KERNELS: readonly DecodeKernelName[] = ["decode", "paged-decode"];

/** Threads per workgroup of the split pass, and tokens per tile. */
export const DECODE_WG = 64;
/** Most query heads per KV head the split pass is built for. */
export const MAX_GROUP = 16;

/** Counter slots of the contiguous kernel; `paged-decode` adds `table`. */
export const DECODE_SLOTS = ["q", "k", "v", "o", "uniform", "lens", "part_ml", "part_o"] as const;

/** The uniforms' names and types, in order (`struct Params` is generated from them). */
export const DECODE_UNIFORMS = [
  ["seqs", "u32"],
  ["heads", "u32"],
  ["kv_heads", "u32"],
  ["stride", "u32"],
  ["block", "u32"],
  ["chunk", "u32"],
  ["max_splits", "u32"],
  ["scale_log2e", "f32"],
] as const;

/** Bytes of the uniforms one workgroup reads (one word each). */
export const PARAMS_BYTES = 4 * DECODE_UNIFORMS.length;

/** Kernel-specific options of a decode problem (`ProblemRequest.options`). */
export type DecodeOptions = {
  /** Context length of each sequence; `batch` lengths of `n` when absent. */
  lens?: readonly number[];
  /** KV heads (≤ heads, dividing it); `heads` when absent. */
  kvHeads?: number;
  /** Paged: tokens per block (8..256; 16 by default). */
  blockSize?: number;
  /** Paged: the block tables; built by the allocator with `tableSeed` when absent. */
  tables?: BlockTables;
  /** Paged: seed of the allocator's churn (default 1). */
  tableSeed?: number;
  /** Contiguous: rows reserved per (sequence, KV head); the longest context when absent. */
  cap?: number;
  /** Tokens per split; {@linkcode defaultSplitTokens} when absent. */
  splitTokens?: number;
};

const OPTION_KEYS = ["lens", "kvHeads", "blockSize", "tables", "tableSeed", "cap", "splitTokens"];

/** A decode problem resolved: what the plan, the traffic model and the reference share. */
export interface DecodeSetup {
  kernel: DecodeKernelName;
  shape: DecodeShape;
  /** Tokens per split. */
  splitTokens: number;
  /** Splits per (sequence, head) the partial buffers hold: ⌈longest context / splitTokens⌉. */
  maxSplits: number;
  /** Contiguous: rows per (sequence, KV head). Paged: null. */
  cap: number | null;
  /** Paged: the validated block tables. Contiguous: null. */
  tables: BlockTables | null;
  scale: number;
}

/**
 * Tokens per split so that the split pass has about `target` workgroups (enough to fill a large
 * GPU) without splits shorter than one tile: ⌈longest / splits⌉ rounded up to a whole tile, where
 * splits = ⌈target / (sequences · kvHeads)⌉ capped by the tiles of the longest context.
 *
 * @example
 * ```ts
 * import { defaultSplitTokens } from "./program.ts";
 * const shape = { lens: [8192], heads: 8, kvHeads: 8, d: 128, dtype: "f16" } as const;
 * console.assert(defaultSplitTokens(shape) === 128);
 * console.assert(defaultSplitTokens({ ...shape, lens: [10] }) === 64);
 * ```
 */
export function defaultSplitTokens(shape: DecodeShape, target = 512): number {
  const longest = Math.max(...shape.lens);
  const tiles = Math.ceil(longest / DECODE_WG);
  const splits = Math.min(tiles, Math.ceil(target / (shape.lens.length * shape.kvHeads)));
  return Math.ceil(Math.ceil(longest / splits) / DECODE_WG) * DECODE_WG;
}

/**
 * The decode shape of a request: `batch` sequences of the given lengths (all `n` when none are
 * given), `heads` query heads over `kvHeads` KV heads. Throws {@linkcode UsageError} when the
 * lengths disagree with the shape (their count with `batch`, their maximum with `n`) or an option
 * is unknown.
 *
 * @example
 * ```ts
 * import { decodeShapeOf } from "./program.ts";
 * const shape = { batch: 2, heads: 4, n: 9, d: 64, dtype: "f32", causal: false } as const;
 * const s = decodeShapeOf(shape, { lens: [3, 9], kvHeads: 2 });
 * console.assert(s.lens.join() === "3,9" && s.kvHeads === 2);
 * console.assert(decodeShapeOf(shape).lens.join() === "9,9");
 * ```
 */
export function decodeShapeOf(shape: AttentionShape, options: DecodeOptions = {}): DecodeShape {
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.includes(key)) {
      throw new UsageError(`unknown decode option ${key}; options: ${OPTION_KEYS.join(", ")}`);
    }
  }
  const lens = options.lens ?? Array.from({ length: shape.batch }, () => shape.n);
  if (lens.length !== shape.batch) {
    throw new UsageError(`${lens.length} context lengths for a batch of ${shape.batch} sequences`);
  }
  const decodeShape: DecodeShape = {
    lens,
    heads: shape.heads,
    kvHeads: options.kvHeads ?? shape.heads,
    d: shape.d,
    dtype: shape.dtype,
  };
  checkDecodeShape(decodeShape);
  if (Math.max(...lens) !== shape.n) {
    throw new UsageError(`the longest context is ${Math.max(...lens)}, the shape's n ${shape.n}`);
  }
  return decodeShape;
}

/**
 * Resolves a decode request: checks the shape and options (and, paged, the block tables: an
 * entry outside the pool or a table too short for its sequence is refused here, before any
 * buffer exists) and picks the split size. Throws {@linkcode UsageError} (a `BlockTableError`
 * for a bad table).
 *
 * @example
 * ```ts
 * import { decodeSetup } from "./program.ts";
 * const shape = { batch: 2, heads: 4, n: 70, d: 64, dtype: "f32", causal: false } as const;
 * const s = decodeSetup("paged-decode", { shape, options: { lens: [5, 70], splitTokens: 64 } });
 * console.assert(s.maxSplits === 2 && s.tables!.blockSize === 16);
 * ```
 */
export function decodeSetup(
  kernel: DecodeKernelName,
  request: Pick<ProblemRequest, "shape" | "options" | "scale">,
): DecodeSetup {
  const options = (request.options ?? {}) as DecodeOptions;
  const shape = decodeShapeOf(request.shape, options);
  const group = shape.heads / shape.kvHeads;
  if (group > MAX_GROUP) {
    throw new UsageError(
      `${group} query heads per KV head; the decode kernels take at most ${MAX_GROUP}`,
    );
  }
  const longest = Math.max(...shape.lens);
  const splitTokens = options.splitTokens ?? defaultSplitTokens(shape);
  if (!Number.isInteger(splitTokens) || splitTokens < 1) {
    throw new UsageError(`tokens per split must be a positive integer, got ${splitTokens}`);
  }
  let cap: number | null = null;
  let tables: BlockTables | null = null;
  if (kernel === "paged-decode") {
    if (options.cap !== undefined) throw new UsageError("cap applies to the contiguous cache");
    const blockSize = options.tables?.blockSize ?? options.blockSize ?? BLOCK_SIZES.default;
    if (options.blockSize !== undefined && blockSize !== options.blockSize) {
      throw new UsageError(
        `block size ${options.blockSize} differs from the tables' ${blockSize}`,
      );
    }
    tables = options.tables ??
      buildBlockTables(shape.lens, blockSize, { seed: options.tableSeed ?? 1 });
    validateBlockTables(shape.lens, tables);
  } else {
    if (options.tables || options.blockSize !== undefined) {
      throw new UsageError("block tables and block size apply to paged-decode only");
    }
    cap = options.cap ?? longest;
    if (!Number.isInteger(cap) || cap < longest) {
      throw new UsageError(
        `the contiguous cache holds ${cap} rows, the longest context ${longest}`,
      );
    }
  }
  const scale = request.scale ?? 1 / Math.sqrt(shape.d);
  return {
    kernel,
    shape,
    splitTokens,
    maxSplits: Math.ceil(longest / splitTokens),
    cap,
    tables,
    scale,
  };
}

/** Compile-time knobs of a decode pass. */
export interface DecodeKnobs {
  kernel: DecodeKernelName;
  d: number;
  /** Query heads per KV head. */
  group: number;
}

/**
 * The cache key of a pass (the runner appends dtype, counting flag and the generated header's
 * signature): the combine pass is the same for both kernels and every group.
 *
 * @example
 * ```ts
 * import { decodeKey } from "./program.ts";
 * const knobs = { kernel: "paged-decode", d: 128, group: 4 } as const;
 * console.assert(decodeKey(knobs, "split") === "paged-decode-split/d128/g4");
 * console.assert(decodeKey(knobs, "combine") === "decode-combine/d128");
 * ```
 */
export function decodeKey(k: DecodeKnobs, pass: "split" | "combine"): string {
  return pass === "split" ? `${k.kernel}-split/d${k.d}/g${k.group}` : `decode-combine/d${k.d}`;
}

/**
 * The WGSL of a pass after the generated header: constants, the shared prelude
 * (decode_common.wgsl), the KV layout (split pass) and the body, loops over the group's heads and
 * the head dim unrolled.
 *
 * @example
 * ```ts
 * import { decodeSource } from "./program.ts";
 * const src = decodeSource({ kernel: "decode", d: 64, group: 2 }, "split");
 * console.assert(src.includes("const RM: u32 = 2u;") && src.includes("fn kv_row"));
 * ```
 */
export function decodeSource(k: DecodeKnobs, pass: "split" | "combine"): string {
  const d4 = k.d / 4;
  const lines = [
    `const D: u32 = ${k.d}u;`,
    `const D4: u32 = ${d4}u;`,
    `const PARAMS_BYTES: u32 = ${PARAMS_BYTES}u;`,
    commonBody,
  ];
  if (pass === "combine") {
    return [...lines, `const CWG: u32 = ${d4}u;`, unrollLoops(combineBody, { D4: d4 })].join("\n");
  }
  lines.push(
    `const RM: u32 = ${k.group}u;`,
    `const WG: u32 = ${DECODE_WG}u;`,
    `const TILE: u32 = ${DECODE_WG}u;`,
    `const TG: u32 = ${DECODE_WG / d4}u;`,
  );
  const layout = k.kernel === "paged-decode" ? pagedLayout : contiguousLayout;
  return [...lines, layout, unrollLoops(splitBody, { RM: k.group, D4: d4 })].join("\n");
}

/**
 * Bytes of workgroup memory the split pass declares for `group` query heads per KV head (the
 * combine pass needs less): the query tile and score tile, three per-head scalars, the reduction
 * row, the sequence length and (paged) the tile's block list, each rounded up to 16.
 *
 * @example
 * ```ts
 * import { decodeWorkgroupBytes } from "./program.ts";
 * console.assert(decodeWorkgroupBytes(128, 16) < 16384);
 * ```
 */
export function decodeWorkgroupBytes(d: number, group = MAX_GROUP): number {
  const vars = [
    group * (d / 4) * 16,
    group * DECODE_WG * 4,
    group * 4,
    group * 4,
    group * 4,
    DECODE_WG * 16,
    4,
    (DECODE_WG / 8 + 1) * 4,
  ];
  return vars.reduce((sum, bytes) => sum + Math.ceil(bytes / 16) * 16, 0);
}

/**
 * FLOPs of one decode step: each query head of each sequence does a dot product (q·k) and an
 * accumulation (p·v) of d multiply-adds per token of its context: 4 · Σ lens · heads · d. The
 * backward ratios are attention's (2.5×, 3.5×), for a uniform table.
 *
 * @example
 * ```ts
 * import { decodeFlops } from "./program.ts";
 * const shape = { lens: [10, 20], heads: 2, kvHeads: 1, d: 64, dtype: "f32" } as const;
 * console.assert(decodeFlops(shape, "fwd") === 4 * 30 * 2 * 64);
 * ```
 */
export function decodeFlops(shape: DecodeShape, mode: FlopMode): number {
  const tokens = shape.lens.reduce((a, b) => a + b, 0);
  const fwd = 4 * tokens * shape.heads * shape.d;
  return mode === "fwd" ? fwd : mode === "bwd" ? 2.5 * fwd : 3.5 * fwd;
}

/** The decode uniforms of a setup, in the order of {@linkcode DECODE_UNIFORMS}. */
function decodeUniforms(s: DecodeSetup): Uniform[] {
  const values: Record<(typeof DECODE_UNIFORMS)[number][0], number> = {
    seqs: s.shape.lens.length,
    heads: s.shape.heads,
    kv_heads: s.shape.kvHeads,
    stride: s.tables ? s.tables.stride : s.cap!,
    block: s.tables ? s.tables.blockSize : 0,
    chunk: s.splitTokens,
    max_splits: s.maxSplits,
    scale_log2e: s.scale * Math.LOG2E,
  };
  return DECODE_UNIFORMS.map(([name, type]) => ({ name, type, value: values[name] }));
}

/** The buffers of a setup: Q, K, V, lens, (table), the split partials, O. */
function decodeBuffers(s: DecodeSetup): BufferSpec[] {
  const { shape, tables } = s;
  const e = dtypeBytes(shape.dtype);
  const seqs = shape.lens.length;
  const kvBytes = tables
    ? tables.poolBlocks * shape.kvHeads * tables.blockSize * shape.d * e
    : seqs * shape.kvHeads * s.cap! * shape.d * e;
  const qBytes = queryElements(shape) * e;
  const partials = seqs * shape.heads * s.maxSplits;
  const lens = new Uint32Array(shape.lens);
  return [
    { name: "q", label: "Q", role: "input", bytes: qBytes, element: "T4" },
    {
      name: "k",
      label: tables ? "K pool" : "K cache",
      role: "input",
      bytes: kvBytes,
      element: "T4",
    },
    {
      name: "v",
      label: tables ? "V pool" : "V cache",
      role: "input",
      bytes: kvBytes,
      element: "T4",
    },
    {
      name: "lens",
      label: "context lengths",
      role: "input",
      bytes: lens.byteLength,
      element: "u32",
      data: lens,
    },
    ...(tables
      ? [
        {
          name: "table",
          label: "block tables",
          role: "input",
          bytes: tables.table.byteLength,
          element: "u32",
          data: tables.table,
        } satisfies BufferSpec,
      ]
      : []),
    {
      name: "part_ml",
      label: "partial (m, l)",
      role: "scratch",
      bytes: 8 * partials,
      element: "vec2<f32>",
    },
    {
      name: "part_o",
      label: "partial O",
      role: "scratch",
      bytes: 4 * shape.d * partials,
      element: "vec4<f32>",
    },
    { name: "o", label: "O", role: "output", bytes: qBytes, element: "T4" },
  ];
}

/** The two passes of a setup. */
function decodePasses(s: DecodeSetup): PassSpec[] {
  const { shape } = s;
  const knobs: DecodeKnobs = { kernel: s.kernel, d: shape.d, group: shape.heads / shape.kvHeads };
  const uniforms = decodeUniforms(s);
  const read = (buffer: string): PassBinding => ({ buffer, access: "read" });
  const write = (buffer: string): PassBinding => ({ buffer, access: "read_write" });
  const seqs = shape.lens.length;
  return [
    {
      name: "split",
      key: decodeKey(knobs, "split"),
      source: decodeSource(knobs, "split"),
      bindings: [
        read("q"),
        read("k"),
        read("v"),
        read("lens"),
        ...(s.tables ? [read("table")] : []),
        write("part_ml"),
        write("part_o"),
      ],
      uniforms,
      grid: [s.maxSplits, shape.kvHeads, seqs],
      moves: [
        ["q", "read"],
        ["k", "read"],
        ["v", "read"],
        ...(s.tables ? [["table", "read"] as const] : []),
        ["part_ml", "write"],
        ["part_o", "write"],
      ],
    },
    {
      name: "combine",
      key: decodeKey(knobs, "combine"),
      source: decodeSource(knobs, "combine"),
      bindings: [read("lens"), read("part_ml"), read("part_o"), write("o")],
      uniforms,
      grid: [shape.heads, seqs],
      moves: [["part_ml", "read"], ["part_o", "read"], ["o", "write"]],
    },
  ];
}

/**
 * What the IO model calls the idealized traffic of a decode step: the compulsory bytes (every
 * live K and V element once, Q and O once); no paper gives a blocked formula for decode.
 */
function decodeTheoretical(s: DecodeSetup): TheoreticalTraffic {
  const bytes = compulsoryDecodeBytes(s.shape);
  const heads = s.shape.lens.length * s.shape.heads;
  return unblockedTraffic(
    "compulsory (decode)",
    bytes,
    bytes / dtypeBytes(s.shape.dtype) / heads,
  );
}

/**
 * The plan of a decode kernel for one request.
 *
 * @example
 * ```ts
 * import { decodePlan } from "./program.ts";
 * import { decode } from "./mod.ts";
 * const shape = { batch: 2, heads: 4, n: 70, d: 64, dtype: "f32", causal: false } as const;
 * const plan = decodePlan(decode, { shape, tiles: { br: 8, bc: 8, rm: 1, tx: 4 },
 *   options: { lens: [5, 70], kvHeads: 2, splitTokens: 64 } });
 * console.assert(plan.passes()[0]!.grid.join() === "2,2,2");
 * ```
 */
export function decodePlan(kernel: Kernel, request: ProblemRequest): KernelPlan & {
  decode: DecodeSetup;
} {
  const name = kernel.name as DecodeKernelName;
  const s = decodeSetup(name, request);
  const buffers = decodeBuffers(s);
  const slots = s.tables ? [...DECODE_SLOTS, "table"] : [...DECODE_SLOTS];
  return {
    kernel,
    shape: request.shape,
    tiles: request.tiles,
    scale: s.scale,
    mask: null,
    density: 1,
    buffers,
    slots,
    decode: s,
    passes: () => decodePasses(s),
    modeledTraffic: () => modeledDecodeTraffic(s),
    theoreticalBytes: () => decodeTheoretical(s),
    lowerBoundBytes: () => compulsoryDecodeBytes(s.shape),
    idealBytes: () => ({}),
    flops: (mode) => decodeFlops(s.shape, mode),
    denseFlops: (mode) => decodeFlops(s.shape, mode),
    randomInputs(seed) {
      const x = randomDecodeInputs(s.shape, seed, s.cap ?? Math.max(...s.shape.lens));
      if (!s.tables) return { q: x.q, k: x.k, v: x.v };
      const page = (c: Float32Array) =>
        pageCache(c, s.shape.lens, s.shape.kvHeads, s.shape.d, x.cap, s.tables!);
      return { q: x.q, k: page(x.k), v: page(x.v) };
    },
    reference(inputs) {
      const q = need(inputs, "q");
      let k = need(inputs, "k");
      let v = need(inputs, "v");
      let cap = s.cap ?? 0;
      if (s.tables) {
        cap = Math.max(...s.shape.lens);
        k = gatherCache(k, s.shape.lens, s.shape.kvHeads, s.shape.d, s.tables);
        v = gatherCache(v, s.shape.lens, s.shape.kvHeads, s.shape.d, s.tables);
      }
      return { o: referenceDecode(s.shape, { q, k, v, cap }, s.scale) };
    },
  };
}

/** A decode kernel's registry entry (everything but what differs between the two). */
export function decodeKernel(
  name: DecodeKernelName,
  summary: string,
  display: Kernel["display"],
  baseline: string | null,
): Kernel {
  const kernel: Kernel = {
    name,
    summary,
    mode: "fwd",
    problem: "decode",
    display,
    sparse: false,
    densitySweep: "none",
    baseline,
    tunedLike: null,
    threads: () => DECODE_WG,
    workgroupBytes: (d: number, _dtype: Dtype) => decodeWorkgroupBytes(d),
    tileProblem: () => null,
    plan: (request) => decodePlan(kernel, request),
  };
  return kernel;
}
