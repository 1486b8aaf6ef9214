/**
 * The flash and block-sparse programs: one fused dispatch per (query block, head).
 *
 * @module
 */

import flashBody from "./wgsl/flash.wgsl" with { type: "text" };
import { commonPrelude, type ProgramBase, tileConstants, unrollLoops } from "./program.ts";
import type { Tiles } from "../core/shapes.ts";

/** Compile-time knobs of the flash kernel. */
export interface FlashKnobs extends ProgramBase {
  d: number;
  tiles: Tiles;
  /** Visit only the key blocks that the block mask keeps. */
  sparse: boolean;
}

/** Key-block indices the block-sparse kernel stages in workgroup memory at a time. */
export const SPARSE_LIST = 64;

/** Threads per workgroup of a flash tile configuration. */
export function flashThreads(tiles: Tiles): number {
  return tiles.tx * (tiles.br / tiles.rm);
}

/**
 * Bytes of workgroup memory the flash kernel declares for these knobs.
 *
 * @example
 * ```ts
 * import { flashWorkgroupBytes } from "./flash.ts";
 * const bytes = flashWorkgroupBytes(64, "f32", { br: 32, bc: 32, rm: 4, tx: 8 });
 * console.assert(bytes === 64 * 68 * 4 + 32 * 36 * 4 + 32 * 8 * 4 + 16 + 4 * 64);
 * ```
 */
export function flashWorkgroupBytes(d: number, dtype: "f32" | "f16", tiles: Tiles): number {
  const e = dtype === "f16" ? 2 : 4;
  // q_tile and kv_tile rows padded by one vec4, p_tile rows by one vec4 (see flash.wgsl); the
  // block-sparse prelude's row range and block list are counted for flash too (a few hundred
  // bytes), so one figure bounds both.
  // Each variable is rounded up to 16 bytes, as drivers align them.
  const vars = [
    tiles.br * (d + 4) * e,
    tiles.bc * (d + 4) * e,
    tiles.br * (tiles.bc + 4) * 4,
    tiles.br * tiles.tx * 4,
    8,
    4 * SPARSE_LIST,
  ];
  return vars.reduce((sum, bytes) => sum + Math.ceil(bytes / 16) * 16, 0);
}

/**
 * Why these tiles cannot build a flash kernel for head dim `d`, or null when they can.
 *
 * @example
 * ```ts
 * import { flashTileProblem } from "./flash.ts";
 * console.assert(flashTileProblem(64, { br: 32, bc: 32, rm: 4, tx: 8 }) === null);
 * console.assert(flashTileProblem(64, { br: 30, bc: 32, rm: 4, tx: 8 }) !== null);
 * ```
 */
export function flashTileProblem(d: number, t: Tiles): string | null {
  if (t.br % t.rm !== 0) return `br ${t.br} is not a multiple of rm ${t.rm}`;
  if (t.bc % t.tx !== 0) return `bc ${t.bc} is not a multiple of tx ${t.tx}`;
  if (d % (4 * t.tx) !== 0) return `head dim ${d} is not a multiple of 4·tx = ${4 * t.tx}`;
  if (t.bc % 4 !== 0) return `bc ${t.bc} is not a multiple of 4`;
  return null;
}

/** The cache key: every knob that changes the source. */
export function flashKey(k: FlashKnobs): string {
  const t = k.tiles;
  return `${k.sparse ? "block-sparse" : "flash"}/${k.dtype}/d${k.d}/` +
    `br${t.br}-bc${t.bc}-rm${t.rm}-tx${t.tx}${k.count ? "/count" : ""}`;
}

/**
 * The full WGSL source of a flash program.
 *
 * @example
 * ```ts
 * import { flashSource } from "./flash.ts";
 * const src = flashSource({
 *   dtype: "f32", count: false, d: 64, sparse: false, tiles: { br: 32, bc: 32, rm: 4, tx: 8 },
 * });
 * console.assert(src.includes("const D: u32 = 64u;"));
 * ```
 */
export function flashSource(k: FlashKnobs): string {
  const problem = flashTileProblem(k.d, k.tiles);
  if (problem) throw new Error(`flash tiles: ${problem}`);
  const { lines, bounds } = tileConstants(k.d, k.tiles);
  const body = unrollLoops(flashBody, bounds);
  return [commonPrelude(k), ...lines, k.sparse ? SPARSE_BLOCKS : DENSE_BLOCKS, body].join(
    "\n",
  );
}

// Dense: key blocks 0 ..= last_key / BC (the causal diagonal clips \`last_key\`).
const DENSE_BLOCKS = `
fn kv_block_count(qb: u32, last_key: u32, t: u32) -> u32 { return last_key / BC + 1u; }
fn kv_block_at(qb: u32, i: u32, t: u32) -> u32 { return i; }
`;

// Block-sparse: the mask's CSR row. The workgroup copies the row's key-block indices into
// workgroup memory LIST at a time (one coalesced load instead of one dependent global read per
// block), and reads them back through workgroupUniformLoad: values loaded from storage are not
// uniform to WGSL's analysis, and these steer a loop that holds barriers. kv_block_at runs
// right after a workgroupBarrier, so overwriting block_list cannot race with earlier reads.
const SPARSE_BLOCKS = `
@group(0) @binding(6) var<storage, read> rowptr: array<u32>;
@group(0) @binding(7) var<storage, read> colidx: array<u32>;
const LIST: u32 = ${SPARSE_LIST}u;
var<workgroup> row_range: array<u32, 2>;
var<workgroup> block_list: array<u32, LIST>;
var<private> row_start: u32;
var<private> row_end: u32;
fn kv_block_count(qb: u32, last_key: u32, t: u32) -> u32 {
  if t == 0u {
    row_range[0] = rowptr[qb];
    row_range[1] = rowptr[qb + 1u];
    count_read(SLOT_MASK, 8u);
  }
  row_start = workgroupUniformLoad(&row_range[0]);
  row_end = workgroupUniformLoad(&row_range[1]);
  return row_end - row_start;
}
fn kv_block_at(qb: u32, i: u32, t: u32) -> u32 {
  if i % LIST == 0u {
    for (var e = t; e < LIST; e += WG) {
      if row_start + i + e < row_end {
        block_list[e] = colidx[row_start + i + e];
        count_read(SLOT_MASK, 4u);
      }
    }
  }
  return workgroupUniformLoad(&block_list[i % LIST]);
}
`;
