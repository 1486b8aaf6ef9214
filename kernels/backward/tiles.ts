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
import { type BackwardFamily, DS_ROWS, DS_THREADS, swapTiles } from "./program.ts";

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
 * import { backwardFootprints } from "./tiles.ts";
 * const f = backwardFootprints("flash", 64, "f32", { br: 32, bc: 32, rm: 4, tx: 8 });
 * console.assert(f.find((p) => p.pass === "dkdv")!.workgroupBytes === 4 * 32 * 68 * 4 + 2 * 32 * 36 * 4 + 2 * 128 + 16 + 256);
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
