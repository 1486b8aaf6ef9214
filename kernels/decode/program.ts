/**
 * The decode kernels as data: from a problem, the buffers (name, role, binding, bytes), the
 * passes (source, cache key, bindings by name, grid) and the uniforms. Pure: no GPU. `run.ts`
 * allocates and dispatches what this describes; `modeled.ts` predicts its bytes.
 *
 * Two kernels share one split pass body (decode_split.wgsl) and one combine pass
 * (decode_combine.wgsl); they differ in where a token's K and V rows lie, which a small WGSL
 * prelude states: kv_contiguous.wgsl (`decode`) or kv_paged.wgsl (`paged-decode`).
 *
 * @module
 */

import splitBody from "./decode_split.wgsl" with { type: "text" };
import combineBody from "./decode_combine.wgsl" with { type: "text" };
import commonBody from "./decode_common.wgsl" with { type: "text" };
import contiguousLayout from "./kv_contiguous.wgsl" with { type: "text" };
import pagedLayout from "./kv_paged.wgsl" with { type: "text" };
import { UsageError } from "../../core/errors.ts";
import { commonPrelude, type ProgramBase, SLOTS } from "./prelude.ts";
import { unrollLoops } from "../program.ts";
import { dtypeBytes } from "../../core/shapes.ts";
import {
  BLOCK_SIZES,
  type BlockTables,
  buildBlockTables,
  checkDecodeShape,
  type DecodeShape,
  queryElements,
  validateBlockTables,
} from "./workload.ts";

/** The decode kernels. */
export type DecodeKernelName = "decode" | "paged-decode";
/** Every decode kernel. */
export const DECODE_KERNELS: readonly DecodeKernelName[] = ["decode", "paged-decode"];

/** Threads per workgroup of the split pass, and tokens per tile. */
export const DECODE_WG = 64;
/** Most query heads per KV head the split pass is built for. */
export const MAX_GROUP = 16;

/**
 * Counter slots of the decode kernels' counting variant: the attention slots they share (Q, K, V,
 * O, uniforms), then their own in the free slots 9..12 of the same 16-slot counters buffer.
 */
export const DECODE_SLOTS = {
  q: SLOTS.q,
  k: SLOTS.k,
  v: SLOTS.v,
  o: SLOTS.o,
  uniform: SLOTS.uniform,
  lens: 9,
  table: 10,
  partialMl: 11,
  partialO: 12,
} as const;

/** Name of a decode counter slot. */
export type DecodeSlot = keyof typeof DECODE_SLOTS;

/** Bytes each binding read and wrote. */
export type DecodeBytes = Record<DecodeSlot, { read: number; write: number }>;

/** The uniforms, in order; WGSL's `struct Params` is generated from this list. */
export const PARAM_FIELDS = [
  ["seqs", "u32"],
  ["heads", "u32"],
  ["kv_heads", "u32"],
  ["stride", "u32"],
  ["block", "u32"],
  ["chunk", "u32"],
  ["max_splits", "u32"],
  ["scale_log2e", "f32"],
] as const;

/** Name of a uniform. */
export type ParamName = (typeof PARAM_FIELDS)[number][0];

/** Bytes of the uniforms (one word each). */
export const PARAMS_BYTES = 4 * PARAM_FIELDS.length;

/** Buffer roles, as the registry will name them. */
export type BufferRole = "uniform" | "input" | "output" | "scratch";

/** One buffer of a decode run. */
export interface DecodeBuffer {
  name: "params" | "q" | "k" | "v" | "lens" | "table" | "part_ml" | "part_o" | "o";
  role: BufferRole;
  /** Binding number, the same in every pass that binds it. */
  binding: number;
  /** Size in bytes. */
  bytes: number;
  /** The counter slot its traffic is counted under. */
  slot: DecodeSlot;
}

/** One dispatch of a decode run. */
export interface DecodePass {
  name: "split" | "combine";
  /** Pipeline cache key: every knob that changes `source`. */
  key: string;
  source: string;
  /** Names of the buffers it binds (at their `binding`). */
  bindings: DecodeBuffer["name"][];
  /** Workgroups along x, y, z. */
  grid: [number, number, number];
  /** Threads per workgroup. */
  workgroupSize: number;
}

/** What to run. */
export interface DecodeProblem {
  kernel: DecodeKernelName;
  shape: DecodeShape;
  /** Paged: tokens per block (8..256; default 16). */
  blockSize?: number;
  /** Paged: the block tables; built by the allocator with `tableSeed` when absent. */
  tables?: BlockTables;
  /** Paged: seed of the allocator's churn (default 1). */
  tableSeed?: number;
  /** Contiguous: rows reserved per (sequence, KV head); the longest context when absent. */
  cap?: number;
  /** Tokens per split; {@linkcode defaultSplitTokens} when absent. */
  splitTokens?: number;
  /** Build the counting variant. */
  count?: boolean;
  /** Softmax scale; 1/√d by default. */
  scale?: number;
}

/** A problem resolved into buffers, passes and uniforms. */
export interface DecodePlan {
  kernel: DecodeKernelName;
  shape: DecodeShape;
  count: boolean;
  /** Tokens per split. */
  splitTokens: number;
  /** Splits per (sequence, head) the partial buffers hold: ⌈longest context / splitTokens⌉. */
  maxSplits: number;
  /** Contiguous: rows per (sequence, KV head). Paged: null. */
  cap: number | null;
  /** Paged: the validated block tables. Contiguous: null. */
  tables: BlockTables | null;
  params: Record<ParamName, number>;
  buffers: DecodeBuffer[];
  passes: DecodePass[];
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

/** Compile-time knobs of a decode pass. */
export interface DecodeKnobs extends ProgramBase {
  kernel: DecodeKernelName;
  d: number;
  /** Query heads per KV head. */
  group: number;
}

/**
 * The cache key of a pass: the combine pass is the same for both kernels and every group.
 *
 * @example
 * ```ts
 * import { decodeKey } from "./program.ts";
 * const knobs = { kernel: "paged-decode", dtype: "f16", d: 128, group: 4, count: false } as const;
 * console.assert(decodeKey(knobs, "split") === "paged-decode-split/f16/d128/g4");
 * console.assert(decodeKey(knobs, "combine") === "decode-combine/f16/d128");
 * ```
 */
export function decodeKey(k: DecodeKnobs, pass: DecodePass["name"]): string {
  const tail = k.count ? "/count" : "";
  return pass === "split"
    ? `${k.kernel}-split/${k.dtype}/d${k.d}/g${k.group}${tail}`
    : `decode-combine/${k.dtype}/d${k.d}${tail}`;
}

/**
 * The WGSL of a pass: the common prelude (storage type, counting helpers), the decode slots,
 * constants and `struct Params`, the KV layout (split pass), then the body, loops over the
 * group's heads and the head dim unrolled.
 *
 * @example
 * ```ts
 * import { decodeSource } from "./program.ts";
 * const src = decodeSource({ kernel: "decode", dtype: "f32", d: 64, group: 2, count: false }, "split");
 * console.assert(src.includes("const RM: u32 = 2u;") && src.includes("scale_log2e: f32,"));
 * ```
 */
export function decodeSource(k: DecodeKnobs, pass: DecodePass["name"]): string {
  const d4 = k.d / 4;
  const lines = [
    commonPrelude(k),
    ...Object.entries(DECODE_SLOTS).filter(([name]) => !(name in SLOTS)).map(([name, slot]) =>
      `const SLOT_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}: u32 = ${slot}u;`
    ),
    `const D: u32 = ${k.d}u;`,
    `const D4: u32 = ${d4}u;`,
    `const PARAMS_BYTES: u32 = ${PARAMS_BYTES}u;`,
    "struct Params {",
    ...PARAM_FIELDS.map(([name, type]) => `  ${name}: ${type},`),
    "}",
    commonBody,
  ];
  if (pass === "combine") {
    return [...lines, `const CWG: u32 = ${d4}u;`, unrollLoops(combineBody, { D4: d4 })].join("\n");
  }
  const bounds = { RM: k.group, D4: d4 };
  const layout = k.kernel === "paged-decode" ? pagedLayout : contiguousLayout;
  lines.push(
    `const RM: u32 = ${k.group}u;`,
    `const WG: u32 = ${DECODE_WG}u;`,
    `const TILE: u32 = ${DECODE_WG}u;`,
    `const TG: u32 = ${DECODE_WG / d4}u;`,
  );
  return [...lines, layout, unrollLoops(splitBody, bounds)].join("\n");
}

/**
 * Resolves a problem into its plan: checks the shape (and, paged, the block tables: an entry
 * outside the pool or a table too short for its sequence is refused here, before any buffer
 * exists), picks the split size, sizes the buffers and describes the two passes. Throws
 * {@linkcode UsageError} (a `BlockTableError` for a bad table) on bad input.
 *
 * @example
 * ```ts
 * import { decodePlan } from "./program.ts";
 * const shape = { lens: [5, 70], heads: 4, kvHeads: 2, d: 64, dtype: "f32" } as const;
 * const plan = decodePlan({ kernel: "paged-decode", shape, splitTokens: 64 });
 * console.assert(plan.maxSplits === 2 && plan.passes[0]!.grid.join() === "2,2,2");
 * ```
 */
export function decodePlan(problem: DecodeProblem): DecodePlan {
  const { kernel, shape } = problem;
  checkDecodeShape(shape);
  if (!(DECODE_KERNELS as readonly string[]).includes(kernel)) {
    throw new UsageError(`unknown decode kernel ${kernel}; use ${DECODE_KERNELS.join(" or ")}`);
  }
  const group = shape.heads / shape.kvHeads;
  if (group > MAX_GROUP) {
    throw new UsageError(
      `${group} query heads per KV head; the decode kernels take at most ${MAX_GROUP}`,
    );
  }
  const count = problem.count ?? false;
  const seqs = shape.lens.length;
  const longest = Math.max(...shape.lens);
  const splitTokens = problem.splitTokens ?? defaultSplitTokens(shape);
  if (!Number.isInteger(splitTokens) || splitTokens < 1) {
    throw new UsageError(`tokens per split must be a positive integer, got ${splitTokens}`);
  }
  const maxSplits = Math.ceil(longest / splitTokens);
  const e = dtypeBytes(shape.dtype);
  const paged = kernel === "paged-decode";

  let cap: number | null = null;
  let tables: BlockTables | null = null;
  let kvBytes: number;
  if (paged) {
    if (problem.cap !== undefined) throw new UsageError("cap applies to the contiguous cache");
    const blockSize = problem.tables?.blockSize ?? problem.blockSize ?? BLOCK_SIZES.default;
    if (problem.blockSize !== undefined && blockSize !== problem.blockSize) {
      throw new UsageError(
        `block size ${problem.blockSize} differs from the tables' ${blockSize}`,
      );
    }
    tables = problem.tables ??
      buildBlockTables(shape.lens, blockSize, { seed: problem.tableSeed ?? 1 });
    validateBlockTables(shape.lens, tables);
    kvBytes = tables.poolBlocks * shape.kvHeads * tables.blockSize * shape.d * e;
  } else {
    if (problem.tables || problem.blockSize !== undefined) {
      throw new UsageError("block tables and block size apply to paged-decode only");
    }
    cap = problem.cap ?? longest;
    if (!Number.isInteger(cap) || cap < longest) {
      throw new UsageError(
        `the contiguous cache holds ${cap} rows, the longest context ${longest}`,
      );
    }
    kvBytes = seqs * shape.kvHeads * cap * shape.d * e;
  }

  const qBytes = queryElements(shape) * e;
  const partials = seqs * shape.heads * maxSplits;
  const buffers: DecodeBuffer[] = [
    { name: "params", role: "uniform", binding: 0, bytes: PARAMS_BYTES, slot: "uniform" },
    { name: "q", role: "input", binding: 1, bytes: qBytes, slot: "q" },
    { name: "k", role: "input", binding: 2, bytes: kvBytes, slot: "k" },
    { name: "v", role: "input", binding: 3, bytes: kvBytes, slot: "v" },
    { name: "lens", role: "input", binding: 4, bytes: 4 * seqs, slot: "lens" },
    ...(tables
      ? [
        {
          name: "table",
          role: "input",
          binding: 5,
          bytes: tables.table.byteLength,
          slot: "table",
        } as const,
      ]
      : []),
    { name: "part_ml", role: "scratch", binding: 6, bytes: 8 * partials, slot: "partialMl" },
    {
      name: "part_o",
      role: "scratch",
      binding: 7,
      bytes: 4 * shape.d * partials,
      slot: "partialO",
    },
    { name: "o", role: "output", binding: 9, bytes: qBytes, slot: "o" },
  ];

  const knobs: DecodeKnobs = { kernel, dtype: shape.dtype, d: shape.d, group, count };
  const passes: DecodePass[] = [
    {
      name: "split",
      key: decodeKey(knobs, "split"),
      source: decodeSource(knobs, "split"),
      bindings: [
        "params",
        "q",
        "k",
        "v",
        "lens",
        ...(paged ? ["table" as const] : []),
        "part_ml",
        "part_o",
      ],
      grid: [maxSplits, shape.kvHeads, seqs],
      workgroupSize: DECODE_WG,
    },
    {
      name: "combine",
      key: decodeKey(knobs, "combine"),
      source: decodeSource(knobs, "combine"),
      bindings: ["params", "lens", "part_ml", "part_o", "o"],
      grid: [shape.heads, seqs, 1],
      workgroupSize: shape.d / 4,
    },
  ];

  const scale = problem.scale ?? 1 / Math.sqrt(shape.d);
  const params: Record<ParamName, number> = {
    seqs,
    heads: shape.heads,
    kv_heads: shape.kvHeads,
    stride: tables ? tables.stride : cap!,
    block: tables ? tables.blockSize : 0,
    chunk: splitTokens,
    max_splits: maxSplits,
    scale_log2e: scale * Math.LOG2E,
  };
  return { kernel, shape, count, splitTokens, maxSplits, cap, tables, params, buffers, passes };
}

/**
 * The uniforms as the bytes of `struct Params`.
 *
 * @example
 * ```ts
 * import { decodePlan, paramsBytes } from "./program.ts";
 * const plan = decodePlan({ kernel: "decode", shape: { lens: [3], heads: 1, kvHeads: 1, d: 32, dtype: "f32" } });
 * console.assert(new Uint32Array(paramsBytes(plan))[5] === plan.splitTokens);
 * ```
 */
export function paramsBytes(plan: DecodePlan): ArrayBuffer {
  const data = new ArrayBuffer(PARAMS_BYTES);
  const view = new DataView(data);
  PARAM_FIELDS.forEach(([name, type], i) => {
    if (type === "f32") view.setFloat32(4 * i, plan.params[name], true);
    else view.setUint32(4 * i, plan.params[name], true);
  });
  return data;
}
