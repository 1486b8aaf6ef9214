/**
 * Program objects of the backward passes: from a pass's compile-time knobs, its WGSL source (the
 * shared prelude of `../program.ts`, the backward's counter slots, the binding declarations
 * generated from the pass's binding list, the pass's constants, then the readable `.wgsl`
 * body) and a cache key holding every knob that changes the source.
 *
 * Bindings are generated, not written in the `.wgsl` files: a pass lists its bindings by name,
 * and the declarations and the host's bind group both number them from that one list, so they
 * cannot drift apart. Binding 0 is the uniform `params`; storage bindings follow in list order,
 * skipping {@linkcode COUNTER_BINDING}, which the counting variant's counters take.
 *
 * @module
 */

import deltaBody from "./wgsl/flash_bwd_delta.wgsl" with { type: "text" };
import dkdvBody from "./wgsl/flash_bwd_dkdv.wgsl" with { type: "text" };
import dqBody from "./wgsl/flash_bwd_dq.wgsl" with { type: "text" };
import ndBody from "./wgsl/standard_bwd_nd.wgsl" with { type: "text" };
import dpBody from "./wgsl/standard_bwd_dp.wgsl" with { type: "text" };
import dsBody from "./wgsl/standard_bwd_ds.wgsl" with { type: "text" };
import { flashTileProblem, SPARSE_LIST } from "../flash.ts";
import {
  commonPrelude,
  COUNTER_BINDING,
  type ProgramBase,
  SLOTS,
  tileConstants,
  unrollLoops,
} from "../program.ts";
import type { Tiles } from "../types.ts";

/**
 * Counter slots of the backward passes: the forward's nine, then the backward's own tensors.
 * The counters buffer has 16 slots a direction, so these fill it.
 */
export const BACKWARD_SLOTS = {
  ...SLOTS,
  dout: 9,
  dq: 10,
  dk: 11,
  dv: 12,
  delta: 13,
  dp: 14,
  ds: 15,
} as const;

/** Name of a backward counter slot. */
export type BackwardSlot = keyof typeof BACKWARD_SLOTS;

/** Every buffer a backward pass can bind. */
export type BufferName =
  | "q"
  | "k"
  | "v"
  | "o"
  | "dout"
  | "lse"
  | "delta"
  | "p"
  | "dp"
  | "ds"
  | "dq"
  | "dk"
  | "dv"
  | "rowptr"
  | "colidx"
  | "colptr"
  | "rowidx";

/** Element type of a buffer in WGSL: `T4`/`T` are the storage dtype's vec4 and scalar. */
export type ElementType = "T4" | "T" | "f32" | "u32";

/** One storage binding of a pass: the buffer, the name the shader gives it, how it is used. */
export interface Binding {
  buffer: BufferName;
  /** The WGSL identifier (the buffer's name unless the body is generic, e.g. `a`, `b`). */
  wgsl: string;
  access: "read" | "read_write";
  element: ElementType;
}

/** The backward passes, by kernel, in dispatch order. */
export const FLASH_PASSES = ["delta", "dkdv", "dq"] as const;
/** Algorithm 3's five steps, in dispatch order. */
export const STANDARD_PASSES = ["dv", "dp", "ds", "dq", "dk"] as const;
/** A flash (or block-sparse) backward pass. */
export type FlashPass = (typeof FLASH_PASSES)[number];
/** A standard backward pass. */
export type StandardPass = (typeof STANDARD_PASSES)[number];

/** Rows (threads) a workgroup of the flash delta pass. */
export const DELTA_ROWS = 64;
/** Threads a row of the standard dS pass (a power of two: its reduction is a tree). */
export const DS_THREADS = 64;
/** Rows a workgroup of the standard dS pass. */
export const DS_ROWS = 4;
/** Row elements each dS thread keeps in registers; the tail of a longer row is read twice. */
export const DS_CACHE = 32;

/** Compile-time knobs of a backward pass. */
export interface BackwardKnobs extends ProgramBase {
  d: number;
  tiles: Tiles;
  /** Block-sparse: visit only the blocks the mask keeps (flash passes only). */
  sparse: boolean;
}

/**
 * The binding numbers of a pass's storage bindings, in list order: 1, 2, … skipping the
 * counters' binding.
 *
 * @example
 * ```ts
 * import { bindingNumbers } from "./program.ts";
 * console.assert(bindingNumbers(9).join() === "1,2,3,4,5,6,7,9,10");
 * ```
 */
export function bindingNumbers(count: number): number[] {
  const out: number[] = [];
  for (let b = 1; out.length < count; b++) if (b !== COUNTER_BINDING) out.push(b);
  return out;
}

/**
 * The WGSL declarations of `params` (binding 0) and of a pass's storage bindings.
 *
 * @example
 * ```ts
 * import { bindingDeclarations } from "./program.ts";
 * const src = bindingDeclarations([{ buffer: "q", wgsl: "q", access: "read", element: "T4" }]);
 * console.assert(src.includes("@group(0) @binding(1) var<storage, read> q: array<T4>;"));
 * ```
 */
export function bindingDeclarations(bindings: readonly Binding[]): string {
  const numbers = bindingNumbers(bindings.length);
  return [
    "struct Params {",
    "  n: u32,",
    "  bh: u32,",
    "  causal: u32,",
    "  scale: f32,",
    "}",
    "@group(0) @binding(0) var<uniform> params: Params;",
    ...bindings.map((b, i) =>
      `@group(0) @binding(${numbers[i]}) var<storage, ${b.access}> ${b.wgsl}: array<${b.element}>;`
    ),
  ].join("\n");
}

const read = (buffer: BufferName, element: ElementType, wgsl: string = buffer): Binding => ({
  buffer,
  wgsl,
  access: "read",
  element,
});
const write = (buffer: BufferName, element: ElementType, wgsl: string = buffer): Binding => ({
  buffer,
  wgsl,
  access: "read_write",
  element,
});

/**
 * The binding list of a flash backward pass.
 *
 * @example
 * ```ts
 * import { flashBindings } from "./program.ts";
 * console.assert(flashBindings("delta", false).map((b) => b.buffer).join() === "o,dout,delta");
 * ```
 */
export function flashBindings(pass: FlashPass, sparse: boolean): Binding[] {
  if (pass === "delta") return [read("o", "T4"), read("dout", "T4"), write("delta", "f32")];
  const common = [
    read("q", "T4"),
    read("k", "T4"),
    read("v", "T4"),
    read("dout", "T4"),
    read("lse", "f32"),
    read("delta", "f32"),
  ];
  if (pass === "dkdv") {
    return [
      ...common,
      write("dk", "T4"),
      write("dv", "T4"),
      ...(sparse ? [read("colptr", "u32"), read("rowidx", "u32")] : []),
    ];
  }
  return [
    ...common,
    write("dq", "T4"),
    ...(sparse ? [read("rowptr", "u32"), read("colidx", "u32")] : []),
  ];
}

/**
 * The binding list of a standard backward pass (Algorithm 3's step).
 *
 * @example
 * ```ts
 * import { standardBindings } from "./program.ts";
 * console.assert(standardBindings("dk").map((b) => b.buffer).join() === "ds,q,dk");
 * ```
 */
export function standardBindings(pass: StandardPass): Binding[] {
  switch (pass) {
    case "dv":
      return [read("p", "T", "a"), read("dout", "T4", "b"), write("dv", "T4", "c_out")];
    case "dp":
      return [read("dout", "T4"), read("v", "T4"), write("dp", "T")];
    case "ds":
      return [read("p", "T"), read("dp", "T"), write("ds", "T")];
    case "dq":
      return [read("ds", "T", "a"), read("k", "T4", "b"), write("dq", "T4", "c_out")];
    case "dk":
      return [read("ds", "T", "a"), read("q", "T4", "b"), write("dk", "T4", "c_out")];
  }
}

/**
 * Why these tiles cannot build the flash backward for head dim `d`, or null when they can. The
 * dK/dV pass uses them with the roles of `br` and `bc` swapped, so both orders must build.
 *
 * @example
 * ```ts
 * import { flashBackwardTileProblem } from "./program.ts";
 * console.assert(flashBackwardTileProblem(32, { br: 8, bc: 8, rm: 2, tx: 4 }) === null);
 * console.assert(flashBackwardTileProblem(32, { br: 8, bc: 6, rm: 2, tx: 2 }) !== null);
 * ```
 */
export function flashBackwardTileProblem(d: number, t: Tiles): string | null {
  return flashTileProblem(d, t) ?? flashTileProblem(d, swapTiles(t));
}

/** The tiles of the dK/dV pass: it owns `bc` key rows and walks query blocks of `br` rows. */
export function swapTiles(t: Tiles): Tiles {
  return { br: t.bc, bc: t.br, rm: t.rm, tx: t.tx };
}

function tilesKey(d: number, t: Tiles): string {
  return `d${d}/br${t.br}-bc${t.bc}-rm${t.rm}-tx${t.tx}`;
}

/**
 * The cache key of a flash backward pass: every knob that changes its source.
 *
 * @example
 * ```ts
 * import { flashBackwardKey } from "./program.ts";
 * const k = { dtype: "f32", count: true, d: 64, sparse: true, tiles: { br: 8, bc: 8, rm: 2, tx: 4 } } as const;
 * console.assert(flashBackwardKey(k, "dq") === "block-sparse-bwd-dq/f32/d64/br8-bc8-rm2-tx4/count");
 * ```
 */
export function flashBackwardKey(k: BackwardKnobs, pass: FlashPass): string {
  const kernel = k.sparse && pass !== "delta" ? "block-sparse" : "flash";
  const knobs = pass === "delta" ? `d${k.d}/rows${DELTA_ROWS}` : tilesKey(k.d, k.tiles);
  return `${kernel}-bwd-${pass}/${k.dtype}/${knobs}${k.count ? "/count" : ""}`;
}

/**
 * The cache key of a standard backward pass.
 *
 * @example
 * ```ts
 * import { standardBackwardKey } from "./program.ts";
 * const k = { dtype: "f16", count: false, d: 32, sparse: false, tiles: { br: 8, bc: 8, rm: 2, tx: 4 } } as const;
 * console.assert(standardBackwardKey(k, "ds") === "standard-bwd-ds/f16/tpr64-rows4-cache32");
 * ```
 */
export function standardBackwardKey(k: BackwardKnobs, pass: StandardPass): string {
  const knobs = pass === "ds"
    ? `tpr${DS_THREADS}-rows${DS_ROWS}-cache${DS_CACHE}`
    : tilesKey(k.d, k.tiles);
  return `standard-bwd-${pass}/${k.dtype}/${knobs}${k.count ? "/count" : ""}`;
}

function slotLines(): string[] {
  return Object.entries(BACKWARD_SLOTS)
    .filter(([name]) => !(name in SLOTS))
    .map(([name, slot]) => `const SLOT_${name.toUpperCase()}: u32 = ${slot}u;`);
}

// Dense block lists. dQ pass: key blocks 0 ..= last / BC, last clipped by the causal diagonal
// (as the forward). dK/dV pass (BR = key rows, BC = query rows): query blocks from the first
// one reaching the diagonal, floor(k0 / BC), when causal, else 0, to the last.
const DENSE_DQ_BLOCKS = `
fn kv_block_count(qb: u32, t: u32) -> u32 {
  let last = select(params.n - 1u, min(qb * BR + BR, params.n) - 1u, params.causal != 0u);
  return last / BC + 1u;
}
fn kv_block_at(qb: u32, i: u32, t: u32) -> u32 { return i; }
`;
const DENSE_DKDV_BLOCKS = `
fn q_block_first(kb: u32) -> u32 { return select(0u, kb * BR / BC, params.causal != 0u); }
fn q_block_count(kb: u32, t: u32) -> u32 { return (params.n + BC - 1u) / BC - q_block_first(kb); }
fn q_block_at(kb: u32, i: u32, t: u32) -> u32 { return q_block_first(kb) + i; }
`;

// Block-sparse: the block list of the workgroup's own block from a compressed mask (CSR row for
// the dQ pass, CSC column for the dK/dV pass), staged LIST indices at a time in workgroup memory
// and read back through workgroupUniformLoad, exactly as the forward does (see ../flash.ts).
function sparseBlocks(prefix: "kv" | "q", ptr: string, idx: string): string {
  return `
const LIST: u32 = ${SPARSE_LIST}u;
var<workgroup> list_range: array<u32, 2>;
var<workgroup> block_list: array<u32, LIST>;
var<private> list_start: u32;
var<private> list_end: u32;
fn ${prefix}_block_count(ob: u32, t: u32) -> u32 {
  if t == 0u {
    list_range[0] = ${ptr}[ob];
    list_range[1] = ${ptr}[ob + 1u];
    count_read(SLOT_MASK, 8u);
  }
  list_start = workgroupUniformLoad(&list_range[0]);
  list_end = workgroupUniformLoad(&list_range[1]);
  return list_end - list_start;
}
fn ${prefix}_block_at(ob: u32, i: u32, t: u32) -> u32 {
  if i % LIST == 0u {
    for (var e = t; e < LIST; e += WG) {
      if list_start + i + e < list_end {
        block_list[e] = ${idx}[list_start + i + e];
        count_read(SLOT_MASK, 4u);
      }
    }
  }
  return workgroupUniformLoad(&block_list[i % LIST]);
}
`;
}

/**
 * The full WGSL source of a flash backward pass.
 *
 * @example
 * ```ts
 * import { flashBackwardSource } from "./program.ts";
 * const k = { dtype: "f32", count: false, d: 32, sparse: false, tiles: { br: 8, bc: 8, rm: 2, tx: 4 } } as const;
 * console.assert(flashBackwardSource(k, "dkdv").includes("fn q_block_count"));
 * ```
 */
export function flashBackwardSource(k: BackwardKnobs, pass: FlashPass): string {
  const head = [
    commonPrelude(k),
    ...slotLines(),
    bindingDeclarations(flashBindings(pass, k.sparse)),
  ];
  if (pass === "delta") {
    return [
      ...head,
      `const D4: u32 = ${k.d / 4}u;`,
      `const ROWS: u32 = ${DELTA_ROWS}u;`,
      unrollLoops(deltaBody, { D4: k.d / 4 }),
    ].join("\n");
  }
  const problem = flashBackwardTileProblem(k.d, k.tiles);
  if (problem) throw new Error(`flash backward tiles: ${problem}`);
  const dkdv = pass === "dkdv";
  const { lines, bounds } = tileConstants(k.d, dkdv ? swapTiles(k.tiles) : k.tiles);
  const blocks = k.sparse
    ? (dkdv ? sparseBlocks("q", "colptr", "rowidx") : sparseBlocks("kv", "rowptr", "colidx"))
    : (dkdv ? DENSE_DKDV_BLOCKS : DENSE_DQ_BLOCKS);
  return [...head, ...lines, blocks, unrollLoops(dkdv ? dkdvBody : dqBody, bounds)].join("\n");
}

/**
 * The full WGSL source of a standard backward pass (a step of Algorithm 3).
 *
 * @example
 * ```ts
 * import { standardBackwardSource } from "./program.ts";
 * const k = { dtype: "f32", count: false, d: 32, sparse: false, tiles: { br: 8, bc: 8, rm: 2, tx: 4 } } as const;
 * console.assert(standardBackwardSource(k, "dv").includes("const A_T: bool = true;"));
 * ```
 */
export function standardBackwardSource(k: BackwardKnobs, pass: StandardPass): string {
  const bindings = standardBindings(pass);
  const head = [commonPrelude(k), ...slotLines(), bindingDeclarations(bindings)];
  if (pass === "ds") {
    return [
      ...head,
      `const TPR: u32 = ${DS_THREADS}u;`,
      `const ROWS: u32 = ${DS_ROWS}u;`,
      "const WG: u32 = TPR * ROWS;",
      `const CACHE: u32 = ${DS_CACHE}u;`,
      unrollLoops(dsBody, { CACHE: DS_CACHE }),
    ].join("\n");
  }
  const problem = flashTileProblem(k.d, k.tiles);
  if (problem) throw new Error(`standard backward tiles: ${problem}`);
  const { lines, bounds } = tileConstants(k.d, k.tiles);
  if (pass === "dp") return [...head, ...lines, unrollLoops(dpBody, bounds)].join("\n");
  const slot = (name: BufferName) => `SLOT_${name.toUpperCase()}`;
  const [a, b, c] = bindings as [Binding, Binding, Binding];
  return [
    ...head,
    ...lines,
    `const A_T: bool = ${pass !== "dq"};`,
    `const SCALED: bool = ${pass !== "dv"};`,
    `const SLOT_A: u32 = ${slot(a.buffer)};`,
    `const SLOT_B: u32 = ${slot(b.buffer)};`,
    `const SLOT_C: u32 = ${slot(c.buffer)};`,
    unrollLoops(ndBody, bounds),
  ].join("\n");
}
