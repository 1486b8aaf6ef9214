/**
 * The standard-attention programs (Algorithm 0): scores, softmax and P·V, three dispatches.
 *
 * @module
 */

import scoresBody from "./wgsl/standard_scores.wgsl" with { type: "text" };
import softmaxBody from "./wgsl/standard_softmax.wgsl" with { type: "text" };
import pvBody from "./wgsl/standard_pv.wgsl" with { type: "text" };
import { commonPrelude, type ProgramBase, tileConstants, unrollLoops } from "./program.ts";
import type { Tiles } from "../core/shapes.ts";

/** Threads a row of the softmax pass (a power of two: the reduction is a tree). */
export const SOFTMAX_THREADS = 32;
/** Rows a workgroup of the softmax pass. */
export const SOFTMAX_ROWS = 8;
/** Row elements each softmax thread keeps in registers; the tail of a longer row is re-read. */
export const SOFTMAX_CACHE = 64;

/** Compile-time knobs of the standard kernel's tiled passes. */
export interface StandardKnobs extends ProgramBase {
  d: number;
  tiles: Tiles;
}

/** The three passes, in dispatch order. */
export type StandardPass = "scores" | "softmax" | "pv";

/**
 * Bytes of workgroup memory the larger of the two tiled passes declares.
 *
 * @example
 * ```ts
 * import { standardWorkgroupBytes } from "./standard.ts";
 * console.assert(standardWorkgroupBytes(64, "f32", { br: 32, bc: 32, rm: 4, tx: 8 }) === 17408);
 * ```
 */
export function standardWorkgroupBytes(d: number, dtype: "f32" | "f16", t: Tiles): number {
  const e = dtype === "f16" ? 2 : 4;
  const scores = (t.br + t.bc) * (d + 4) * e;
  const pv = t.br * (t.bc + 4) * 4 + t.bc * d * e;
  return Math.max(scores, pv, SOFTMAX_THREADS * SOFTMAX_ROWS * 8);
}

/** The cache key of one pass: every knob that changes its source. */
export function standardKey(k: StandardKnobs, pass: StandardPass): string {
  const t = k.tiles;
  const tiles = pass === "softmax"
    ? `tpr${SOFTMAX_THREADS}-rows${SOFTMAX_ROWS}-cache${SOFTMAX_CACHE}`
    : `d${k.d}/br${t.br}-bc${t.bc}-rm${t.rm}-tx${t.tx}`;
  return `standard-${pass}/${k.dtype}/${tiles}${k.count ? "/count" : ""}`;
}

/**
 * The WGSL source of one pass.
 *
 * @example
 * ```ts
 * import { standardSource } from "./standard.ts";
 * const knobs = { dtype: "f32", count: false, d: 64, tiles: { br: 32, bc: 32, rm: 4, tx: 8 } } as const;
 * console.assert(standardSource(knobs, "softmax").includes("const CACHE"));
 * ```
 */
export function standardSource(k: StandardKnobs, pass: StandardPass): string {
  const t = k.tiles;
  const prelude = commonPrelude(k);
  if (pass === "softmax") {
    return [
      prelude,
      `const TPR: u32 = ${SOFTMAX_THREADS}u;`,
      `const ROWS: u32 = ${SOFTMAX_ROWS}u;`,
      "const WG: u32 = TPR * ROWS;",
      `const CACHE: u32 = ${SOFTMAX_CACHE}u;`,
      unrollLoops(softmaxBody, { CACHE: SOFTMAX_CACHE }),
    ].join("\n");
  }
  const { lines, bounds } = tileConstants(k.d, t);
  const body = unrollLoops(pass === "scores" ? scoresBody : pvBody, bounds);
  return [prelude, ...lines, body].join("\n");
}
