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
  atomicDq,
  type BackwardFamily,
  type BackwardSlot,
  DELTA_ROWS,
  DQ_FILL_THREADS,
  dqAccumulator,
  type DqMode,
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
 * import { assert } from "@std/assert";
 * import { backwardSlots } from "./modeled.ts";
 * assert(backwardSlots("block-sparse").at(-1) === "mask");
 * assert(backwardSlots("flash", "atomic", "f16").at(-1) === "dqacc");
 * ```
 */
export function backwardSlots(
  family: BackwardFamily,
  dq: DqMode = "pass",
  dtype: AttentionShape["dtype"] = "f32",
): readonly BackwardSlot[] {
  if (family === "standard") return STANDARD_BACKWARD_SLOTS;
  if (family === "block-sparse") return [...FLASH_BACKWARD_SLOTS, "mask"];
  // The atomic dQ in f16 accumulates in its own f32 scratch, counted under `dqacc`.
  return atomicDq(dq) && dqAccumulator(dtype) === "dqacc"
    ? [...FLASH_BACKWARD_SLOTS, "dqacc"]
    : FLASH_BACKWARD_SLOTS;
}

/**
 * The (query block, key block) pairs a flash backward visits: every pair (block-sparse: every
 * pair the mask keeps), less those wholly above the diagonal when causal. Both the dK/dV pass
 * (by key block) and the dQ pass (by query block) visit exactly these, as the forward does.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { visitedBlocks } from "./modeled.ts";
 * const shape = { batch: 1, heads: 1, n: 10, d: 32, dtype: "f32", causal: true } as const;
 * const pairs = visitedBlocks(shape, { br: 8, bc: 8, rm: 2, tx: 4 }, null);
 * assert(JSON.stringify(pairs) === "[[0,0],[1,0],[1,1]]");
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
 * (and `mask`, block-sparse only), all passes and heads together: the sum of
 * {@linkcode modeledBackwardPasses}.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { modeledBackward } from "./modeled.ts";
 * const shape = { batch: 1, heads: 1, n: 100, d: 64, dtype: "f32", causal: false } as const;
 * const t = modeledBackward("flash", shape, { br: 32, bc: 32, rm: 4, tx: 8 }, null);
 * // dK/dV: each of the 4 key blocks reads all of Q; dQ: Q once.
 * assert(t.q!.read === 5 * 100 * 64 * 4 && t.k!.read === 5 * 100 * 64 * 4);
 * ```
 */
export function modeledBackward(
  kernel: BackwardFamily,
  shape: AttentionShape,
  tiles: Tiles,
  mask: BlockMask | null,
  dq: DqMode = "pass",
): CountedBytes {
  const total = emptyTraffic(backwardSlots(kernel, dq, shape.dtype));
  for (const pass of modeledBackwardPasses(kernel, shape, tiles, mask, dq)) {
    for (const [slot, x] of Object.entries(pass)) {
      total[slot]!.read += x.read;
      total[slot]!.write += x.write;
    }
  }
  return total;
}

/**
 * The bytes of each pass of the backward of `kernel`, in dispatch order (flash, block-sparse:
 * delta, dkdv, dq; flash with an atomic `dq` (`"atomic"`, `"atomic-stagger"`): dqzero, delta, dkdv, and in f16 dqcast;
 * standard: dv, dp, ds, dq, dk), every slot in each, all heads.
 *
 * The atomic dQ: dqzero writes the f32 accumulator (dq in f32, dqacc in f16) once, N·d·4 bytes;
 * the dK/dV pass adds to it once per visited block and query row below N, d atomicAdds of 4
 * bytes, each counted as a read and a write of 4 bytes (a read-modify-write moves the word in
 * and out of the L2, where the atomics execute); dqcast reads the accumulator (N·d·4) and writes
 * dq (N·d·b). Zeroing and conversion read the uniforms once a workgroup, as every pass.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { modeledBackwardPasses } from "./modeled.ts";
 * const shape = { batch: 1, heads: 1, n: 100, d: 64, dtype: "f32", causal: false } as const;
 * const [delta, dkdv, dq] = modeledBackwardPasses("flash", shape, { br: 32, bc: 32, rm: 4, tx: 8 }, null);
 * assert(delta!.o!.read === 100 * 64 * 4 && dkdv!.q!.read === 4 * 100 * 64 * 4);
 * assert(dq!.q!.read === 100 * 64 * 4 && dq!.k!.read === 4 * 100 * 64 * 4);
 * // Atomic dQ, f32: zeroed, then 4 key blocks each add to all 100 rows: 4 RMWs of dQ.
 * const [zero, , add] = modeledBackwardPasses("flash", shape, { br: 32, bc: 32, rm: 4, tx: 8 }, null, "atomic");
 * assert(zero!.dq!.write === 100 * 64 * 4 && add!.dq!.read === 4 * 100 * 64 * 4);
 * assert(add!.dq!.write === 4 * 100 * 64 * 4 && add!.k!.read === 100 * 64 * 4);
 * ```
 */
export function modeledBackwardPasses(
  kernel: BackwardFamily,
  shape: AttentionShape,
  tiles: Tiles,
  mask: BlockMask | null,
  dqMode: DqMode = "pass",
): CountedBytes[] {
  const { n, d } = shape;
  const e = dtypeBytes(shape.dtype);
  const row = d * e;
  const heads = shape.batch * shape.heads;
  const pass = () => {
    const c = emptyTraffic(backwardSlots(kernel, dqMode, shape.dtype));
    return [c, c as Record<BackwardSlot, { read: number; write: number }>] as const;
  };
  const tr = Math.ceil(n / tiles.br);
  const tc = Math.ceil(n / tiles.bc);
  const qRows = (qb: number) => Math.min(tiles.br, n - qb * tiles.br);
  const kRows = (kb: number) => Math.min(tiles.bc, n - kb * tiles.bc);
  const out: CountedBytes[] = [];

  if (kernel === "standard") {
    const [dv, tDv] = pass();
    const [dp, tDp] = pass();
    const [ds, tDs] = pass();
    const [dq, tDq] = pass();
    const [dk, tDk] = pass();
    // Workgroups: dv tc, dp tc × tr tiles, ds rows, dq tr, dk tc; one uniform read each.
    tDv.uniform.read += UNIFORM_BYTES * tc;
    tDp.uniform.read += UNIFORM_BYTES * tc * tr;
    tDs.uniform.read += UNIFORM_BYTES * Math.ceil(n / DS_ROWS);
    tDq.uniform.read += UNIFORM_BYTES * tr;
    tDk.uniform.read += UNIFORM_BYTES * tc;
    // Step 1: dV = Pᵀ dO. P in full; every key block reads all of dO.
    tDv.p.read += n * n * e;
    tDv.dout.read += tc * n * row;
    tDv.dv.write += n * row;
    // Step 2: dP = dO Vᵀ, tile by tile.
    tDp.dout.read += tc * n * row;
    tDp.v.read += tr * n * row;
    tDp.dp.write += n * n * e;
    // Step 3: dS. A row past the register cache reads its tail twice.
    const cached = DS_THREADS * DS_CACHE;
    const reads = n * (n + Math.max(0, n - cached)) * e;
    tDs.p.read += reads;
    tDs.dp.read += reads;
    tDs.ds.write += n * n * e;
    // Steps 4 and 5: dQ = dS K, dK = dSᵀ Q.
    tDq.ds.read += n * n * e;
    tDq.k.read += tr * n * row;
    tDq.dq.write += n * row;
    tDk.ds.read += n * n * e;
    tDk.q.read += tc * n * row;
    tDk.dk.write += n * row;
    out.push(dv, dp, ds, dq, dk);
  } else {
    if (kernel === "block-sparse" && !mask) throw new Error("block-sparse needs its mask");
    const m = kernel === "block-sparse" ? mask! : null;
    const [delta, tDelta] = pass();
    const [dkdv, tDkdv] = pass();
    const [dq, tDq] = pass();
    // delta: D = rowsum(dO ∘ O).
    tDelta.uniform.read += UNIFORM_BYTES * Math.ceil(n / DELTA_ROWS);
    tDelta.o.read += n * row;
    tDelta.dout.read += n * row;
    tDelta.delta.write += 4 * n;
    // dkdv: each key block stages K, V once and the query blocks it visits.
    tDkdv.uniform.read += UNIFORM_BYTES * tc;
    tDkdv.k.read += n * row;
    tDkdv.v.read += n * row;
    tDkdv.dk.write += n * row;
    tDkdv.dv.write += n * row;
    // dq: each query block stages Q, dO, L, D once and the key blocks it visits.
    tDq.uniform.read += UNIFORM_BYTES * tr;
    tDq.q.read += n * row;
    tDq.dout.read += n * row;
    tDq.lse.read += 4 * n;
    tDq.delta.read += 4 * n;
    tDq.dq.write += n * row;
    for (const [qb, kb] of visitedBlocks(shape, tiles, m)) {
      tDkdv.q.read += qRows(qb) * row;
      tDkdv.dout.read += qRows(qb) * row;
      tDkdv.lse.read += 4 * qRows(qb);
      tDkdv.delta.read += 4 * qRows(qb);
      tDq.k.read += kRows(kb) * row;
      tDq.v.read += kRows(kb) * row;
    }
    if (m) {
      // Each workgroup reads its pointer pair and its whole list, causally skipped entries too.
      tDkdv.mask.read += 8 * tc + 4 * m.nnz;
      tDq.mask.read += 8 * tr + 4 * m.nnz;
    }
    if (atomicDq(dqMode)) {
      // dqzero, delta, dkdv (no dq pass), and in f16 dqcast.
      const acc = dqAccumulator(shape.dtype);
      const fills = UNIFORM_BYTES * Math.ceil((n * d) / 4 / DQ_FILL_THREADS);
      const [zero, tZero] = pass();
      tZero.uniform.read += fills;
      tZero[acc].write += n * d * 4;
      for (const [qb] of visitedBlocks(shape, tiles, m)) {
        tDkdv[acc].read += qRows(qb) * d * 4;
        tDkdv[acc].write += qRows(qb) * d * 4;
      }
      out.push(zero, delta, dkdv);
      if (acc === "dqacc") {
        const [cast, tCast] = pass();
        tCast.uniform.read += fills;
        tCast.dqacc.read += n * d * 4;
        tCast.dq.write += n * row;
        out.push(cast);
      }
    } else {
      out.push(delta, dkdv, dq);
    }
  }
  for (const t of out) {
    for (const slot of Object.values(t)) {
      slot.read *= heads;
      slot.write *= heads;
    }
  }
  return out;
}
