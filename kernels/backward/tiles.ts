/**
 * Tile footprints of the backward passes: the workgroup memory and threads each pass needs for
 * a tile configuration (the registry entries report the largest pass, so the registry's tile
 * check and default choice see it).
 *
 * The backward uses the forward's tiles (a block mask lives on that grid). Its dK/dV pass holds
 * four tiles of d columns (K, V of bc rows; Q, dO of br rows) and two f32 tiles of P and dS,
 * so it needs more workgroup memory than the forward for the same tiles.
 *
 * @module
 */

import { SPARSE_LIST } from "../flash/mod.ts";
import type { Dtype, Tiles } from "../../core/shapes.ts";
import {
  type BackwardFamily,
  DS_ROWS,
  DS_THREADS,
  flashBackwardTileProblem,
  swapTiles,
} from "./program.ts";

/** Workgroup memory (bytes) and threads of one pass. */
export interface PassFootprint {
  pass: string;
  workgroupBytes: number;
  threads: number;
}

// Each workgroup variable rounded up to 16 bytes, as drivers align them (see ../flash.ts).
function sum(vars: number[]): number {
  return vars.reduce((a, bytes) => a + Math.ceil(bytes / 16) * 16, 0);
}

/**
 * What each backward pass of `kernel` declares for these tiles.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { backwardFootprints } from "./tiles.ts";
 * const f = backwardFootprints("flash", 64, "f32", { br: 32, bc: 32, rm: 4, tx: 8 });
 * assert(f.find((p) => p.pass === "dkdv")!.workgroupBytes === 4 * 32 * 68 * 4 + 2 * 32 * 36 * 4 + 2 * 128 + 16 + 256);
 * ```
 */
export function backwardFootprints(
  kernel: BackwardFamily,
  d: number,
  dtype: Dtype,
  t: Tiles,
): PassFootprint[] {
  const e = dtype === "f16" ? 2 : 4;
  const threads = (own: number) => t.tx * (own / t.rm);
  if (kernel === "standard") {
    const nd = (own: number, walk: number) => sum([own * (walk + 4) * 4, walk * d * e]);
    return [
      { pass: "dv", workgroupBytes: nd(t.bc, t.bc), threads: threads(t.bc) },
      { pass: "dp", workgroupBytes: sum([(t.br + t.bc) * (d + 4) * e]), threads: threads(t.br) },
      {
        pass: "ds",
        workgroupBytes: sum([DS_THREADS * DS_ROWS * 4]),
        threads: DS_THREADS * DS_ROWS,
      },
      { pass: "dq", workgroupBytes: nd(t.br, t.bc), threads: threads(t.br) },
      { pass: "dk", workgroupBytes: nd(t.bc, t.bc), threads: threads(t.bc) },
    ];
  }
  // The block list of block-sparse (a pointer pair and LIST indices), counted for flash too.
  const list = [8, 4 * SPARSE_LIST];
  const pass = (own: number, walk: number, ownTiles: boolean) =>
    sum([
      2 * own * (d + 4) * e,
      2 * walk * (d + 4) * e,
      // dkdv: P and dS of own × walk; dq: dS only.
      ...(ownTiles ? [own * (walk + 4) * 4, own * (walk + 4) * 4] : [own * (walk + 4) * 4]),
      ...(ownTiles ? [walk * 4, walk * 4] : [own * 4, own * 4]),
      ...list,
    ]);
  const swapped = swapTiles(t);
  return [
    { pass: "delta", workgroupBytes: 0, threads: 64 },
    { pass: "dkdv", workgroupBytes: pass(swapped.br, swapped.bc, true), threads: threads(t.bc) },
    { pass: "dq", workgroupBytes: pass(t.br, t.bc, false), threads: threads(t.br) },
  ];
}

/**
 * Workgroup memory the flash backward half of a forward+backward run may take when it picks its
 * own tiles ({@linkcode backwardHalfTiles}): 48 KiB, the H200's limit and the most any adapter
 * here grants. A device that grants less refuses the pair in the registry's tile check, as it
 * refuses any tiles, and the default choice moves on to the next candidate.
 */
export const BACKWARD_HALF_BYTES = 48 * 1024;

/**
 * The tiles the flash backward uses in a forward+backward run whose forward uses `t`: the
 * forward's best tiles are wide (64 query rows, K and V staged once per 32-key block) while the
 * backward stages four d-wide tiles (K, V, Q, dO) and two f32 score tiles per block, so the same
 * tiles either do not fit or leave few threads per workgroup. The backward takes a square tile
 * of min(br, bc) rows with half the forward's rows per thread (the same thread count as the
 * forward's when its tile is half as tall), halving the square while its largest pass needs
 * more than {@linkcode BACKWARD_HALF_BYTES}. The flash backward's block walk is dense, so its
 * tiles need not be the forward's (block-sparse keeps the forward's: the mask lives on them).
 * Returns `t` itself when no square tile builds (the pair is then checked as one tile choice).
 * With an infinite `budget`: the first square, before any halving (the most threads it takes).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { backwardHalfTiles } from "./tiles.ts";
 * const t = backwardHalfTiles(64, "f32", { br: 64, bc: 32, rm: 4, tx: 16 });
 * assert(t.br === 32 && t.bc === 32 && t.rm === 2 && t.tx === 16);
 * ```
 */
export function backwardHalfTiles(
  d: number,
  dtype: Dtype,
  t: Tiles,
  budget = BACKWARD_HALF_BYTES,
): Tiles {
  const largest = (c: Tiles) =>
    Math.max(...backwardFootprints("flash", d, dtype, c).map((p) => p.workgroupBytes));
  let chosen: Tiles | null = null;
  for (let s = Math.min(t.br, t.bc); s >= 4; s /= 2) {
    let tx = t.tx;
    while (s % tx !== 0) tx = tx % 2 === 0 ? tx / 2 : 1;
    let rm = Math.max(1, Math.floor(t.rm / 2));
    while (s % rm !== 0) rm--;
    const c = { br: s, bc: s, rm, tx };
    if (!Number.isInteger(s) || flashBackwardTileProblem(d, c) !== null) break;
    chosen = c;
    if (largest(c) <= budget) break;
  }
  return chosen ?? { ...t };
}

/**
 * The flash backward's own default candidates on a GPU, tried before the shared list: square tiles
 * with many threads. Its dK/dV pass stages K, V, Q and dO plus two f32 score tiles (44 KiB at
 * 32 × 32, d = 64, f32), so an H200 SM holds five of its workgroups whatever their size, and
 * the shared list's first fit (32 × 32, 4 rows × 8 threads: 64 threads) left 10 warps an SM
 * (issue 13, v1: dK/dV 72 ms). 2 rows × 16 threads give 256 threads, as the forward's v5.
 */
export const BACKWARD_TILE_CANDIDATES: readonly Tiles[] = [
  { br: 32, bc: 32, rm: 2, tx: 16 },
  { br: 32, bc: 32, rm: 2, tx: 8 },
  { br: 16, bc: 16, rm: 1, tx: 16 },
  { br: 16, bc: 16, rm: 1, tx: 8 },
];
