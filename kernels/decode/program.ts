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
 * a reservation (contiguous) and the split size. The request's tiles carry the split pass's knobs
 * ({@linkcode DecodeTiles}: threads, lanes per token, tokens per round, segment).
 *
 * @module
 */

import splitBody from "./decode_split.wgsl" with { type: "text" };
import combineBody from "./decode_combine.wgsl" with { type: "text" };
import commonBody from "./decode_common.wgsl" with { type: "text" };
import contiguousLayout from "./kv_contiguous.wgsl" with { type: "text" };
import pagedLayout from "./kv_paged.wgsl" with { type: "text" };
import { UsageError } from "../../core/errors.ts";
import { type AttentionShape, type Dtype, dtypeBytes, type Tiles } from "../../core/shapes.ts";
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
import {
  type DecodeInputs,
  gatherCache,
  randomDecodeInputs,
  referenceDecode,
  timingDecodeInputs,
} from "./reference.ts";
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

/**
 * The split pass's knobs ride in the request's tiles, so that runs record what decode used:
 * `br` threads per workgroup, `tx` lanes per token (LT: a K/V row is read by LT consecutive
 * lanes, d / 4 / LT vec4 each), `rm` tokens per lane group and round (UT: loaded before any is
 * used) and `bc` tokens per segment (SEG: the unit in which the paged layout stages block-table
 * entries; a multiple of the round, br / tx · rm tokens).
 */
export interface DecodeTiles {
  threads: number;
  lanes: number;
  unroll: number;
  segment: number;
}

/** The decode knobs of a request's tiles. */
export function decodeTilesOf(t: Tiles): DecodeTiles {
  return { threads: t.br, lanes: t.tx, unroll: t.rm, segment: t.bc };
}

/** Default decode tiles on a GPU, best first: 256 threads, 8 lanes a token, 2 tokens a round. */
export const DECODE_TILE_CANDIDATES: readonly Tiles[] = [
  { br: 256, bc: 256, rm: 2, tx: 8 },
  { br: 128, bc: 256, rm: 2, tx: 8 },
  { br: 64, bc: 256, rm: 2, tx: 8 },
];

/**
 * Decode tiles on a software adapter: 8 token groups of 8 lanes (lavapipe's 8-lane subgroups hold
 * a group), 1 token a round, segments of 64 tokens: little to unroll, since LLVM's compile time
 * grows with it (the tests vary every knob at small sizes).
 */
export const DECODE_FALLBACK_TILES: readonly Tiles[] = [{ br: 64, bc: 64, rm: 1, tx: 8 }];

/** Most tokens per round a lane group takes (`rm`), and most tokens per segment (`bc`). */
export const MAX_UNROLL = 8;
export const MAX_SEGMENT = 2048;

/**
 * Why these tiles cannot build the split pass at head dim `d`; null when they can: `br` a power
 * of two from 32 to 1024, `tx` a power of two dividing d / 4 and at most `br`, `rm` from 1 to
 * 8, `bc` a multiple of the round (br / tx · rm tokens) up to 2048.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodeTileProblem } from "./program.ts";
 * assert(decodeTileProblem(128, { br: 256, bc: 256, rm: 2, tx: 8 }) === null);
 * assert(decodeTileProblem(32, { br: 256, bc: 256, rm: 2, tx: 16 }) !== null);
 * ```
 */
export function decodeTileProblem(d: number, t: Tiles): string | null {
  const pow2 = (x: number) => Number.isInteger(x) && x >= 1 && (x & (x - 1)) === 0;
  const k = decodeTilesOf(t);
  if (!pow2(k.threads) || k.threads < 32 || k.threads > 1024) {
    return `decode threads per workgroup (tile br) must be a power of two from 32 to 1024, got ${k.threads}`;
  }
  if (!pow2(k.lanes) || (d / 4) % k.lanes !== 0) {
    return `decode lanes per token (tile tx) must be a power of two dividing d/4 = ${
      d / 4
    }, got ${k.lanes}`;
  }
  if (!Number.isInteger(k.unroll) || k.unroll < 1 || k.unroll > MAX_UNROLL) {
    return `decode tokens per round (tile rm) must be from 1 to ${MAX_UNROLL}, got ${k.unroll}`;
  }
  const round = (k.threads / k.lanes) * k.unroll;
  if (k.segment % round !== 0 || k.segment > MAX_SEGMENT) {
    return `decode tokens per segment (tile bc) must be a multiple of the round (${round} tokens) ` +
      `up to ${MAX_SEGMENT}, got ${k.segment}`;
  }
  return null;
}

/** Most query heads per KV head the split pass is built for. */
export const MAX_GROUP = 16;

/**
 * Streaming multiprocessors the default split count fills: the H200's 132 (WebGPU does not
 * report a GPU's size; `splitTokens` overrides the choice).
 */
export const DECODE_SMS = 132;
/** Resident threads per SM the default split count aims at (the H200's most: 2048). */
export const DECODE_THREADS_PER_SM = 2048;

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
  /** The split pass's knobs (the request's tiles). */
  tiles: DecodeTiles;
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
 * Tokens per split, from the context and the GPU's size: about {@linkcode DECODE_SMS} ·
 * {@linkcode DECODE_THREADS_PER_SM} threads in split workgroups of `threads` (a few per SM), i.e.
 * splits = round(that / (sequences · kvHeads · threads)), at least 1 and at most the longest
 * context's segments; ⌈longest / splits⌉ rounded up to a whole segment.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { defaultSplitTokens } from "./program.ts";
 * const shape = { lens: Array(16).fill(8192), heads: 16, kvHeads: 16, d: 128, dtype: "f16" } as const;
 * const tiles = { br: 256, bc: 256, rm: 2, tx: 8 };
 * assert(defaultSplitTokens(shape, tiles) === 2048); // 4 splits: 1024 workgroups
 * assert(defaultSplitTokens({ ...shape, lens: [10] }, tiles) === 256);
 * ```
 */
export function defaultSplitTokens(shape: DecodeShape, tiles: Tiles): number {
  const { threads, segment } = decodeTilesOf(tiles);
  const longest = Math.max(...shape.lens);
  const segments = Math.ceil(longest / segment);
  const rows = shape.lens.length * shape.kvHeads;
  const wanted = Math.round((DECODE_SMS * DECODE_THREADS_PER_SM) / (rows * threads));
  const splits = Math.max(1, Math.min(segments, wanted));
  return Math.ceil(Math.ceil(longest / splits) / segment) * segment;
}

/**
 * The decode shape of a request: `batch` sequences of the given lengths (all `n` when none are
 * given), `heads` query heads over `kvHeads` KV heads. Throws {@linkcode UsageError} when the
 * lengths disagree with the shape (their count with `batch`, their maximum with `n`) or an option
 * is unknown.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodeShapeOf } from "./program.ts";
 * const shape = { batch: 2, heads: 4, n: 9, d: 64, dtype: "f32", causal: false } as const;
 * const s = decodeShapeOf(shape, { lens: [3, 9], kvHeads: 2 });
 * assert(s.lens.join() === "3,9" && s.kvHeads === 2);
 * assert(decodeShapeOf(shape).lens.join() === "9,9");
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
 * import { assert } from "@std/assert";
 * import { decodeSetup } from "./program.ts";
 * const shape = { batch: 2, heads: 4, n: 70, d: 64, dtype: "f32", causal: false } as const;
 * const tiles = { br: 64, bc: 64, rm: 2, tx: 4 };
 * const s = decodeSetup("paged-decode", { shape, tiles, options: { lens: [5, 70], splitTokens: 64 } });
 * assert(s.maxSplits === 2 && s.tables!.blockSize === 16);
 * ```
 */
export function decodeSetup(
  kernel: DecodeKernelName,
  request: Pick<ProblemRequest, "shape" | "options" | "scale" | "tiles">,
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
  const splitTokens = options.splitTokens ?? defaultSplitTokens(shape, request.tiles);
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
    tiles: decodeTilesOf(request.tiles),
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
  /** The split pass's tiles. */
  tiles: DecodeTiles;
  /**
   * Lanes per subgroup the split pass may use to sum a token's partial dot products (0: the
   * portable path); used when a token's lanes lie in one subgroup ({@linkcode decodeUsesSubgroups}).
   */
  subgroupSize?: number;
}

/**
 * Whether the split pass sums a token group's lanes through subgroupShuffleXor: the device has
 * subgroups of at least `lanes` lanes (both powers of two, lanes in invocation order, see
 * kernels/gpu.ts) and a group has more than one lane.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodeUsesSubgroups } from "./program.ts";
 * const tiles = { threads: 256, lanes: 8, unroll: 2, segment: 256 };
 * const knobs = { kernel: "decode", d: 128, group: 1, tiles } as const;
 * assert(decodeUsesSubgroups({ ...knobs, subgroupSize: 32 }));
 * assert(!decodeUsesSubgroups({ ...knobs, subgroupSize: 4 }));
 * ```
 */
export function decodeUsesSubgroups(k: DecodeKnobs): boolean {
  const size = k.subgroupSize ?? 0;
  return k.tiles.lanes > 1 && size >= k.tiles.lanes && size % k.tiles.lanes === 0;
}

/**
 * The cache key of a pass (the runner appends dtype, counting flag and the generated header's
 * signature): the combine pass is the same for both kernels, every group and every tile.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodeKey } from "./program.ts";
 * const tiles = { threads: 256, lanes: 8, unroll: 2, segment: 256 };
 * const knobs = { kernel: "paged-decode", d: 128, group: 4, tiles, subgroupSize: 32 } as const;
 * assert(decodeKey(knobs, "split") === "paged-decode-split/d128/g4/w256-l8-u2-s256-sg");
 * assert(decodeKey(knobs, "combine") === "decode-combine/d128");
 * ```
 */
export function decodeKey(k: DecodeKnobs, pass: "split" | "combine"): string {
  if (pass === "combine") return `decode-combine/d${k.d}`;
  const t = k.tiles;
  const sg = decodeUsesSubgroups(k) ? "-sg" : "";
  return `${k.kernel}-split/d${k.d}/g${k.group}/w${t.threads}-l${t.lanes}-u${t.unroll}-s${t.segment}${sg}`;
}

/** group_sum through subgroup shuffles: the LT lanes of a group are consecutive in a subgroup. */
const GROUP_SUM_SUBGROUP = `fn group_sum(x: f32, t: u32) -> f32 {
  var s = x;
  for (var o = LT / 2u; o > 0u; o /= 2u) {
    s += subgroupShuffleXor(s, o);
  }
  return s;
}`;

/** group_sum through workgroup memory (the portable path): the same butterfly, with barriers. */
const GROUP_SUM_PORTABLE = `var<workgroup> red: array<f32, WG>;

fn group_sum(x: f32, t: u32) -> f32 {
  var s = x;
  for (var o = LT / 2u; o > 0u; o /= 2u) {
    workgroupBarrier();
    red[t] = s;
    workgroupBarrier();
    s += red[t ^ o];
  }
  return s;
}`;

/**
 * The WGSL of a pass after the generated header: constants, the shared prelude
 * (decode_common.wgsl), the KV layout and group_sum (split pass) and the body, loops over the
 * group's heads, the lane's columns and the round's tokens unrolled.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodeSource } from "./program.ts";
 * const tiles = { threads: 64, lanes: 4, unroll: 2, segment: 64 };
 * const src = decodeSource({ kernel: "decode", d: 64, group: 2, tiles }, "split");
 * assert(src.includes("const RM: u32 = 2u;") && src.includes("fn kv_row"));
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
  const t = k.tiles;
  const ng = t.threads / t.lanes;
  const cpl = d4 / t.lanes;
  lines.push(
    `const RM: u32 = ${k.group}u;`,
    `const WG: u32 = ${t.threads}u;`,
    `const LT: u32 = ${t.lanes}u;`,
    `const NG: u32 = ${ng}u;`,
    `const CPL: u32 = ${cpl}u;`,
    `const UT: u32 = ${t.unroll}u;`,
    `const SEG: u32 = ${t.segment}u;`,
    `const MS: u32 = ${Math.min(ng, 8)}u;`,
    decodeUsesSubgroups(k) ? GROUP_SUM_SUBGROUP : GROUP_SUM_PORTABLE,
  );
  const layout = k.kernel === "paged-decode" ? pagedLayout : contiguousLayout;
  return [
    ...lines,
    layout,
    unrollLoops(splitBody, { RM: k.group, CPL: cpl, UT: t.unroll }),
  ].join("\n");
}

/**
 * Bytes of workgroup memory the split pass declares (the combine pass needs less): the query
 * tile, the group states and merge slots, the portable exchange row, the sequence length and
 * (paged) the segment's block list, each rounded up to 16.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodeWorkgroupBytes } from "./program.ts";
 * assert(decodeWorkgroupBytes(128, { br: 256, bc: 256, rm: 2, tx: 8 }, 16) < 16384);
 * ```
 */
export function decodeWorkgroupBytes(d: number, tiles: Tiles, group = MAX_GROUP): number {
  const t = decodeTilesOf(tiles);
  const ng = Math.max(1, Math.floor(t.threads / Math.max(1, t.lanes)));
  const vars = [
    group * (d / 4) * 16,
    ng * 8,
    Math.min(ng, 8) * (d / 4) * 16,
    t.threads * 4,
    4,
    (Math.floor(t.segment / 8) + 1) * 4,
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
 * import { assert } from "@std/assert";
 * import { decodeFlops } from "./program.ts";
 * const shape = { lens: [10, 20], heads: 2, kvHeads: 1, d: 64, dtype: "f32" } as const;
 * assert(decodeFlops(shape, "fwd") === 4 * 30 * 2 * 64);
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
function decodePasses(s: DecodeSetup, subgroupSize: number): PassSpec[] {
  const { shape } = s;
  const knobs: DecodeKnobs = {
    kernel: s.kernel,
    d: shape.d,
    group: shape.heads / shape.kvHeads,
    tiles: s.tiles,
    subgroupSize,
  };
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

/** A setup's inputs from a contiguous generator, paged through the tables when paged. */
function decodeInputs(
  s: DecodeSetup,
  make: (shape: DecodeShape, seed: number, cap: number) => DecodeInputs,
  seed: number,
): Record<string, Float32Array> {
  const x = make(s.shape, seed, s.cap ?? Math.max(...s.shape.lens));
  if (!s.tables) return { q: x.q, k: x.k, v: x.v };
  const page = (c: Float32Array) =>
    pageCache(c, s.shape.lens, s.shape.kvHeads, s.shape.d, x.cap, s.tables!);
  return { q: x.q, k: page(x.k), v: page(x.v) };
}

/**
 * The plan of a decode kernel for one request.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodePlan } from "./program.ts";
 * import { decode } from "./mod.ts";
 * const shape = { batch: 2, heads: 4, n: 70, d: 64, dtype: "f32", causal: false } as const;
 * const plan = decodePlan(decode, { shape, tiles: { br: 64, bc: 64, rm: 2, tx: 4 },
 *   options: { lens: [5, 70], kvHeads: 2, splitTokens: 64 } });
 * assert(plan.passes()[0]!.grid.join() === "2,2,2");
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
    passes: () => decodePasses(s, request.subgroupSize ?? 0),
    modeledTraffic: () => modeledDecodeTraffic(s),
    theoreticalBytes: () => decodeTheoretical(s),
    lowerBoundBytes: () => compulsoryDecodeBytes(s.shape),
    idealBytes: () => ({}),
    flops: (mode) => decodeFlops(s.shape, mode),
    denseFlops: (mode) => decodeFlops(s.shape, mode),
    randomInputs: (seed) => decodeInputs(s, randomDecodeInputs, seed),
    timingInputs: (seed) => decodeInputs(s, timingDecodeInputs, seed),
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
    threads: (tiles) => tiles.br,
    workgroupBytes: (d: number, _dtype: Dtype, tiles: Tiles) => decodeWorkgroupBytes(d, tiles),
    tileProblem: decodeTileProblem,
    tileCandidates: (fallback) => fallback ? DECODE_FALLBACK_TILES : DECODE_TILE_CANDIDATES,
    plan: (request) => decodePlan(kernel, request),
  };
  return kernel;
}
