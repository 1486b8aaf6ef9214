/**
 * Modeled HBM traffic of the backward passes: the exact bytes our kernels read and write per
 * binding, derived from their grids, tiles and loop structure (partial tiles, causally skipped
 * blocks, mask reads, the f32 log-sum-exp and D, the uniform reads, every pass). The counting
 * variant must count the same bytes, binding by binding; the tests hold them to it.
 *
 * @module
 */

import type { BlockMask } from "../masks.ts";
import { type AttentionShape, dtypeBytes, type Tiles } from "../../core/shapes.ts";
import { type CountedBytes, emptyTraffic } from "../kernel.ts";
import {
  type BackwardFamily,
  type BackwardSlot,
  DELTA_ROWS,
  DS_CACHE,
  DS_ROWS,
  DS_THREADS,
  FLASH_BACKWARD_SLOTS,
  STANDARD_BACKWARD_SLOTS,
} from "./program.ts";

const UNIFORM_BYTES = 16;

/**
 * The counter slots of a backward, in order.
 *
 * @example
 * ```ts
 * import { backwardSlots } from "./modeled.ts";
 * console.assert(backwardSlots("block-sparse").at(-1) === "mask");
 * ```
 */
export function backwardSlots(family: BackwardFamily): readonly BackwardSlot[] {
  if (family === "standard") return STANDARD_BACKWARD_SLOTS;
  return family === "block-sparse" ? [...FLASH_BACKWARD_SLOTS, "mask"] : FLASH_BACKWARD_SLOTS;
}

/**
 * The (query block, key block) pairs a flash backward visits: every pair (block-sparse: every
 * pair the mask keeps), less those wholly above the diagonal when causal. Both the dK/dV pass
 * (by key block) and the dQ pass (by query block) visit exactly these, as the forward does.
 *
 * @example
 * ```ts
 * import { visitedBlocks } from "./modeled.ts";
 * const shape = { batch: 1, heads: 1, n: 10, d: 32, dtype: "f32", causal: true } as const;
 * const pairs = visitedBlocks(shape, { br: 8, bc: 8, rm: 2, tx: 4 }, null);
 * console.assert(JSON.stringify(pairs) === "[[0,0],[1,0],[1,1]]");
 * ```
 */
export function visitedBlocks(
  shape: AttentionShape,
  tiles: Tiles,
  mask: BlockMask | null,
): [number, number][] {
  const { n } = shape;
  const tr = Math.ceil(n / tiles.br);
  const tc = Math.ceil(n / tiles.bc);
  const out: [number, number][] = [];
  for (let qb = 0; qb < tr; qb++) {
    const qLast = Math.min(n, (qb + 1) * tiles.br) - 1;
    for (let kb = 0; kb < tc; kb++) {
      if (mask && !mask.bits[qb * tc + kb]) continue;
      if (shape.causal && kb * tiles.bc > qLast) continue;
      out.push([qb, kb]);
    }
  }
  return out;
}

/**
 * Bytes per binding and direction that the backward of `kernel` moves for `shape` with `tiles`
 * (and `mask`, block-sparse only), all passes and heads together.
 *
 * @example
 * ```ts
 * import { modeledBackward } from "./modeled.ts";
 * const shape = { batch: 1, heads: 1, n: 100, d: 64, dtype: "f32", causal: false } as const;
 * const t = modeledBackward("flash", shape, { br: 32, bc: 32, rm: 4, tx: 8 }, null);
 * // dK/dV: each of the 4 key blocks reads all of Q; dQ: Q once.
 * console.assert(t.q!.read === 5 * 100 * 64 * 4 && t.k!.read === 5 * 100 * 64 * 4);
 * ```
 */
export function modeledBackward(
  kernel: BackwardFamily,
  shape: AttentionShape,
  tiles: Tiles,
  mask: BlockMask | null,
): CountedBytes {
  const { n, d } = shape;
  const e = dtypeBytes(shape.dtype);
  const row = d * e;
  const heads = shape.batch * shape.heads;
  const counted = emptyTraffic(backwardSlots(kernel));
  const t = counted as Record<BackwardSlot, { read: number; write: number }>;
  const tr = Math.ceil(n / tiles.br);
  const tc = Math.ceil(n / tiles.bc);
  const qRows = (qb: number) => Math.min(tiles.br, n - qb * tiles.br);
  const kRows = (kb: number) => Math.min(tiles.bc, n - kb * tiles.bc);

  if (kernel === "standard") {
    // dv (tc workgroups), dp (tc × tr tiles), ds (rows), dq (tr), dk (tc).
    t.uniform.read += UNIFORM_BYTES * (tc + tc * tr + Math.ceil(n / DS_ROWS) + tr + tc);
    // Step 1: dV = Pᵀ dO. P in full; every key block reads all of dO.
    t.p.read += n * n * e;
    t.dout.read += tc * n * row;
    t.dv.write += n * row;
    // Step 2: dP = dO Vᵀ, tile by tile.
    t.dout.read += tc * n * row;
    t.v.read += tr * n * row;
    t.dp.write += n * n * e;
    // Step 3: dS. A row past the register cache reads its tail twice.
    const cached = DS_THREADS * DS_CACHE;
    const reads = n * (n + Math.max(0, n - cached)) * e;
    t.p.read += reads;
    t.dp.read += reads;
    t.ds.write += n * n * e;
    // Steps 4 and 5: dQ = dS K, dK = dSᵀ Q.
    t.ds.read += 2 * n * n * e;
    t.k.read += tr * n * row;
    t.q.read += tc * n * row;
    t.dq.write += n * row;
    t.dk.write += n * row;
  } else {
    if (kernel === "block-sparse" && !mask) throw new Error("block-sparse needs its mask");
    const m = kernel === "block-sparse" ? mask! : null;
    // delta: D = rowsum(dO ∘ O).
    t.uniform.read += UNIFORM_BYTES * Math.ceil(n / DELTA_ROWS);
    t.o.read += n * row;
    t.dout.read += n * row;
    t.delta.write += 4 * n;
    // dkdv: each key block stages K, V once and the query blocks it visits.
    t.uniform.read += UNIFORM_BYTES * tc;
    t.k.read += n * row;
    t.v.read += n * row;
    t.dk.write += n * row;
    t.dv.write += n * row;
    // dq: each query block stages Q, dO, L, D once and the key blocks it visits.
    t.uniform.read += UNIFORM_BYTES * tr;
    t.q.read += n * row;
    t.dout.read += n * row;
    t.lse.read += 4 * n;
    t.delta.read += 4 * n;
    t.dq.write += n * row;
    for (const [qb, kb] of visitedBlocks(shape, tiles, m)) {
      t.q.read += qRows(qb) * row;
      t.dout.read += qRows(qb) * row;
      t.lse.read += 4 * qRows(qb);
      t.delta.read += 4 * qRows(qb);
      t.k.read += kRows(kb) * row;
      t.v.read += kRows(kb) * row;
    }
    if (m) {
      // Each workgroup reads its pointer pair and its whole list, causally skipped entries too.
      t.mask.read += 8 * (tr + tc) + 2 * 4 * m.nnz;
    }
  }
  for (const slot of Object.values(counted)) {
    slot.read *= heads;
    slot.write *= heads;
  }
  return counted;
}
