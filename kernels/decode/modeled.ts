/**
 * Modeled HBM traffic of the decode kernels: the exact bytes each binding reads and writes, from
 * the plan's splits, tiles and block tables. The counting variant must count the same bytes; the
 * tests hold it to that. And the compulsory bytes: what any decode step must move.
 *
 * @module
 */

import { dtypeBytes } from "../../core/shapes.ts";
import { type CountedBytes, emptyTraffic } from "../kernel.ts";
import { DECODE_SLOTS, type DecodeSetup, PARAMS_BYTES } from "./program.ts";
import type { DecodeShape } from "./workload.ts";

/**
 * Bytes per binding and direction that one run of a decode setup moves.
 *
 * Split pass, per workgroup (split i, KV head, sequence s of length L): the uniforms and lens[s]
 * (thread 0), and if the split starts before L: the g query vectors, the K and V rows of its
 * tokens (every live row once over all splits), one table entry per block each segment (`bc`
 * tokens of the split) touches (paged), and g partial states written (8 bytes of (m, l) and d f32 of acc each). Combine pass,
 * per (query head, sequence): the uniforms and lens[s], the ⌈L / chunk⌉ partial states read, and
 * one output row written.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodeSetup } from "./program.ts";
 * import { modeledDecodeTraffic } from "./modeled.ts";
 * const shape = { batch: 1, heads: 1, n: 100, d: 32, dtype: "f32", causal: false } as const;
 * const tiles = { br: 64, bc: 64, rm: 2, tx: 4 };
 * const t = modeledDecodeTraffic(decodeSetup("decode", { shape, tiles, options: { splitTokens: 64 } }));
 * assert(t.k!.read === 100 * 32 * 4 && t.part_o!.write === 2 * 32 * 4);
 * ```
 */
export function modeledDecodeTraffic(plan: DecodeSetup): CountedBytes {
  const { shape, tables } = plan;
  const { d, heads, kvHeads } = shape;
  const e = dtypeBytes(shape.dtype);
  const group = heads / kvHeads;
  const chunk = plan.splitTokens;
  const seg = plan.tiles.segment;
  const t = emptyTraffic(tables ? [...DECODE_SLOTS, "table"] : DECODE_SLOTS);
  const seqs = shape.lens.length;

  // Split pass: every workgroup of the grid reads the uniforms and its length.
  const splitGroups = plan.maxSplits * kvHeads * seqs;
  t.uniform!.read += PARAMS_BYTES * splitGroups;
  t.lens!.read += 4 * splitGroups;
  for (const len of shape.lens) {
    const splits = Math.ceil(len / chunk);
    t.q!.read += kvHeads * splits * group * d * e;
    t.k!.read += kvHeads * len * d * e;
    t.v!.read += kvHeads * len * d * e;
    t.part_ml!.write += heads * splits * 8;
    t.part_o!.write += heads * splits * d * 4;
    if (tables) {
      let entries = 0;
      for (let start = 0; start < len; start += chunk) {
        const end = Math.min(start + chunk, len);
        for (let t0 = start; t0 < end; t0 += seg) {
          const last = Math.min(t0 + seg, end) - 1;
          entries += Math.floor(last / tables.blockSize) - Math.floor(t0 / tables.blockSize) + 1;
        }
      }
      t.table!.read += kvHeads * entries * 4;
    }
  }

  // Combine pass: one workgroup per (query head, sequence).
  const combineGroups = heads * seqs;
  t.uniform!.read += PARAMS_BYTES * combineGroups;
  t.lens!.read += 4 * combineGroups;
  for (const len of shape.lens) {
    const splits = Math.ceil(len / chunk);
    t.part_ml!.read += heads * splits * 8;
    t.part_o!.read += heads * splits * d * 4;
  }
  t.o!.write += seqs * heads * d * e;
  return t;
}

/**
 * The bytes any decode step must move: every live K and V element once (per KV head), Q read and
 * O written once.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { compulsoryDecodeBytes } from "./modeled.ts";
 * const shape = { lens: [10, 20], heads: 4, kvHeads: 2, d: 64, dtype: "f16" } as const;
 * // K and V: 2 · 30 tokens · 2 KV heads · 64 · 2 bytes; Q and O: 2 · 2 seqs · 4 heads · 64 · 2.
 * assert(compulsoryDecodeBytes(shape) === 15360 + 2048);
 * ```
 */
export function compulsoryDecodeBytes(shape: DecodeShape): number {
  const e = dtypeBytes(shape.dtype);
  const tokens = shape.lens.reduce((a, b) => a + b, 0);
  return 2 * tokens * shape.kvHeads * shape.d * e +
    2 * shape.lens.length * shape.heads * shape.d * e;
}
