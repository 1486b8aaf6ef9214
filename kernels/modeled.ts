/**
 * Modeled HBM traffic: the exact bytes our kernels read and write, derived from their tiles and
 * loop structure (partial tiles, causally skipped blocks, mask reads, the log-sum-exp, uniform
 * reads, every pass of the standard kernel). The counting variant of each kernel must count the
 * same bytes, binding by binding; the tests hold them to it.
 *
 * Uniform reads are counted once per workgroup (16 bytes of parameters), as the kernels do.
 *
 * @module
 */

import type { BlockMask } from "./masks.ts";
import { type SlotName, SLOTS } from "./program.ts";
import { SOFTMAX_CACHE, SOFTMAX_ROWS, SOFTMAX_THREADS } from "./standard.ts";
import { type AttentionShape, dtypeBytes, type KernelName, type Tiles } from "./types.ts";
import type { CountedBytes } from "./attention.ts";

const UNIFORM_BYTES = 16;

function empty(): CountedBytes {
  const out = {} as CountedBytes;
  for (const name of Object.keys(SLOTS)) out[name as SlotName] = { read: 0, write: 0 };
  return out;
}

/**
 * Bytes per binding and direction that `kernel` moves for `shape` with `tiles` (and `mask`,
 * block-sparse only).
 *
 * @example
 * ```ts
 * import { modeledTraffic } from "./modeled.ts";
 * const shape = { batch: 1, heads: 1, n: 100, d: 64, dtype: "f32", causal: false } as const;
 * const t = modeledTraffic("flash", shape, { br: 32, bc: 32, rm: 4, tx: 8 }, null);
 * console.assert(t.q.read === 100 * 64 * 4 && t.k.read === 4 * 100 * 64 * 4);
 * ```
 */
export function modeledTraffic(
  kernel: KernelName,
  shape: AttentionShape,
  tiles: Tiles,
  mask: BlockMask | null,
): CountedBytes {
  const { n, d } = shape;
  const e = dtypeBytes(shape.dtype);
  const heads = shape.batch * shape.heads;
  const t = empty();
  const rowsOf = (start: number, size: number) => Math.min(size, n - start);
  const tr = Math.ceil(n / tiles.br);
  const tc = Math.ceil(n / tiles.bc);

  if (kernel === "standard") {
    t.uniform.read += UNIFORM_BYTES * (tc * tr + Math.ceil(n / SOFTMAX_ROWS) + tr);
    t.q.read += tc * n * d * e;
    t.k.read += tr * n * d * e;
    t.s.write += n * n * e;
    const cached = SOFTMAX_CACHE * SOFTMAX_THREADS;
    for (let row = 0; row < n; row++) {
      const end = shape.causal ? row + 1 : n;
      let reads = Math.min(n, cached);
      if (n > cached) reads += n - cached + 2 * Math.max(0, end - cached);
      t.s.read += reads * e;
    }
    t.p.write += n * n * e;
    t.p.read += n * n * e;
    t.v.read += tr * n * d * e;
    t.o.write += n * d * e;
  } else {
    if (kernel === "block-sparse" && !mask) throw new Error("block-sparse needs its mask");
    const sparse = kernel === "block-sparse" ? mask!.csr() : null;
    for (let qb = 0; qb < tr; qb++) {
      const q0 = qb * tiles.br;
      const qrows = rowsOf(q0, tiles.br);
      const qLast = q0 + qrows - 1;
      t.uniform.read += UNIFORM_BYTES;
      t.q.read += qrows * d * e;
      if (sparse) {
        const row = [...sparse.colidx.subarray(sparse.rowptr[qb]!, sparse.rowptr[qb + 1]!)];
        t.mask.read += 8 + 4 * row.length;
        for (const kb of row.filter((kb) => !shape.causal || kb * tiles.bc <= qLast)) {
          const rows = rowsOf(kb * tiles.bc, tiles.bc);
          t.k.read += rows * d * e;
          t.v.read += rows * d * e;
        }
      } else {
        // Key blocks 0..⌊last/bc⌋, in closed form: their rows add up to min(n, blocks·bc).
        const last = shape.causal ? qLast : n - 1;
        const rows = Math.min(n, (Math.floor(last / tiles.bc) + 1) * tiles.bc);
        t.k.read += rows * d * e;
        t.v.read += rows * d * e;
      }
      t.o.write += qrows * d * e;
      t.lse.write += qrows * 4;
    }
  }
  for (const slot of Object.values(t)) {
    slot.read *= heads;
    slot.write *= heads;
  }
  return t;
}

/**
 * Total bytes read plus written.
 *
 * @example
 * ```ts
 * import { modeledTraffic, totalBytes } from "./modeled.ts";
 * const shape = { batch: 1, heads: 1, n: 8, d: 32, dtype: "f32", causal: false } as const;
 * console.assert(totalBytes(modeledTraffic("flash", shape, { br: 8, bc: 8, rm: 2, tx: 4 }, null)) > 0);
 * ```
 */
export function totalBytes(t: CountedBytes): number {
  return Object.values(t).reduce((a, s) => a + s.read + s.write, 0);
}
