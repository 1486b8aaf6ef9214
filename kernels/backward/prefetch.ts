/**
 * The flash backward's software-pipelined loads (kernel option `prefetch`): the two main passes'
 * block loops with each thread's share of the NEXT inner block's staged tiles loaded from GPU
 * memory into registers before the current block's arithmetic, and stored into workgroup memory
 * after the barrier that frees the tiles, so no global load sits between two barriers on the
 * critical path (issue 13; docs/analysis/flash_inner_loop.md: these loops are stall-bound).
 *
 * The dK/dV pass prefetches Q, dO (BC × D4 vec4 each) and L, D (BC floats each) of its next query
 * block; the dQ pass K and V (BC × D4 vec4 each) of its next key block. A thread holds PF =
 * ceil(BC·D4 / WG) vec4 of each tile and PFR = ceil(BC / WG) floats of each row vector.
 *
 * The region is spliced into the pass's readable `.wgsl` body in place of its staging (from the
 * block count to the barrier after the staging); everything after is the body's own code. The
 * blocks visited, the rows loaded and the bytes counted are the default's: only when they are
 * loaded changes.
 *
 * @module
 */

import type { Tiles } from "../../core/shapes.ts";
import { tileThreads, tileVec4sPerThread } from "../program.ts";

/** A tile staged each inner block: rows of `buffer`, counted on `slot`, `empty` past N. */
interface Staged {
  tile: string;
  buffer: string;
  slot: string;
  empty: string;
}

/** A pass's inner block loop, as its `.wgsl` body writes it. */
export interface Staging {
  /** The block count's expression, the block index's (of `bi`) and the block's first row. */
  count: string;
  at: string;
  start: string;
  /** When a listed block is skipped (wholly masked), of its first row. */
  skip: (start: string) => string;
  /** Tiles of BC rows × D4 vec4 (T4), and of BC floats (indexed bh·n + row). */
  vec: Staged[];
  row: Staged[];
  /** The comment the body puts before its first barrier in the loop. */
  comment: string;
}

/** The dK/dV pass: a workgroup's key rows walk query blocks, staging Q, dO, L and D. */
export const DKDV_STAGING: Staging = {
  count: "q_block_count(kb, t)",
  at: "q_block_at(kb, bi, t)",
  start: "q0",
  skip: (q0) => `causal && min(${q0} + BC, n) - 1u < k0`,
  vec: [
    { tile: "q_tile", buffer: "q", slot: "SLOT_Q", empty: "T4()" },
    { tile: "do_tile", buffer: "dout", slot: "SLOT_DOUT", empty: "T4()" },
  ],
  row: [
    { tile: "lse_tile", buffer: "lse", slot: "SLOT_LSE", empty: "NEG" },
    { tile: "delta_tile", buffer: "delta", slot: "SLOT_DELTA", empty: "0.0" },
  ],
  comment: "// Every thread is done with the previous block's tiles.",
};

/** The dQ pass: a workgroup's query rows walk key blocks, staging K and V. */
export const DQ_STAGING: Staging = {
  count: "kv_block_count(qb, t)",
  at: "kv_block_at(qb, bi, t)",
  start: "k0",
  skip: (k0) => `causal && ${k0} > q_last`,
  vec: [
    { tile: "k_tile", buffer: "k", slot: "SLOT_K", empty: "T4()" },
    { tile: "v_tile", buffer: "v", slot: "SLOT_V", empty: "T4()" },
  ],
  row: [],
  comment: "// Every thread is done with the previous block's tiles (and, the first time, Q's).",
};

/**
 * A thread's prefetch registers for these tiles (the pass's own: the dK/dV pass's are swapped):
 * `pf` vec4 of each staged BC × D tile, `pfr` floats of each staged row vector, and the floats
 * that makes for a pass staging `vec` tiles and `row` vectors.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { prefetchShares } from "./prefetch.ts";
 * // 32 × 32 tiles, rm 2, tx 16: 256 threads; 32 rows × 16 vec4 = 2 vec4 a thread.
 * const s = prefetchShares(64, { br: 32, bc: 32, rm: 2, tx: 16 });
 * assert(s.pf === 2 && s.pfr === 1 && s.floats(2, 2) === 18 && s.floats(2, 0) === 16);
 * ```
 */
export function prefetchShares(d: number, t: Tiles): {
  pf: number;
  pfr: number;
  floats: (vec: number, row: number) => number;
} {
  const pf = tileVec4sPerThread(d, t);
  const pfr = Math.ceil(t.bc / tileThreads(t));
  return { pf, pfr, floats: (vec, row) => vec * pf * 4 + row * pfr };
}

/** The prefetching loop head that replaces a body's staging (see the module doc). */
function prefetchRegion(s: Staging): string {
  const all = [
    ...s.vec.map((x) => ({ ...x, type: "T4", n: "PF" })),
    ...s.row.map((x) => ({
      ...x,
      type: "f32",
      n: "PFR",
    })),
  ];
  const store = (x: Staged) => `pf_${x.tile}`;
  const vecStore = s.vec.map((x) => `          ${x.tile}[idx / D4][idx % D4] = ${store(x)}[m];`);
  const vecLoad = s.vec.map((x) =>
    `          ${store(x)}[m] = ${x.buffer}[base + (next + idx / D4) * D4 + idx % D4];
          count_read(${x.slot}, 4u * T_BYTES);`
  );
  const rowStore = s.row.map((x) => `          ${x.tile}[r] = ${store(x)}[m];`);
  const rowLoad = s.row.map((x) =>
    `          ${store(x)}[m] = ${x.buffer}[bh * n + next + r];
          count_read(${x.slot}, 4u);`
  );
  const rowLoops = s.row.length === 0 ? ["", ""] : [
    `
      for (var m = 0u; m < PFR; m++) {
        let r = t + m * WG;
        if r < BC {
${rowStore.join("\n")}
        }
      }`,
    `
      for (var m = 0u; m < PFR; m++) {
        let r = t + m * WG;
${s.row.map((x) => `        ${store(x)}[m] = ${x.empty};`).join("\n")}
        if wanted && r < BC && next + r < n {
${rowLoad.join("\n")}
        }
      }`,
  ];
  return `  let blocks = ${s.count};
  // Prefetch: this thread's share of the next block's tiles, in registers one block ahead.
${all.map((x) => `  var ${store(x)}: array<${x.type}, ${x.n}>;`).join("\n")}
  var next = 0u;
  // Iteration bi stores block bi - 1 (loaded during the previous iteration), loads block bi
  // into registers, then computes on block bi - 1; iteration 0 only loads.
  for (var bi = 0u; bi <= blocks; bi++) {
    ${s.comment}
    workgroupBarrier();
    let ${s.start} = next;
    let live = bi > 0u && !(${s.skip(s.start)});
    if live {
      for (var m = 0u; m < PF; m++) {
        let idx = t + m * WG;
        if idx < BC * D4 {
${vecStore.join("\n")}
        }
      }${rowLoops[0]}
    }
    if bi < blocks {
      next = ${s.at} * BC;
      let wanted = !(${s.skip("next")});
      for (var m = 0u; m < PF; m++) {
        let idx = t + m * WG;
${s.vec.map((x) => `        ${store(x)}[m] = ${x.empty};`).join("\n")}
        if wanted && idx < BC * D4 && next + idx / D4 < n {
${vecLoad.join("\n")}
        }
      }${rowLoops[1]}
    }
    if !live {
      continue;
    }
    workgroupBarrier();
`;
}

/**
 * A pass body with its staging (from `let blocks =` to the barrier after the staging) replaced
 * by the prefetching loop head; throws when the body does not stage as `s` says (the body
 * changed: the splice must be redone, not guessed).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import dqBody from "./wgsl/flash_bwd_dq.wgsl" with { type: "text" };
 * import { DQ_STAGING, prefetchBody } from "./prefetch.ts";
 * assert(prefetchBody(dqBody, DQ_STAGING).includes("var pf_k_tile: array<T4, PF>;"));
 * ```
 */
export function prefetchBody(body: string, s: Staging): string {
  const from = body.indexOf("  let blocks = ");
  const to = body.indexOf("\n\n    // S", from);
  const old = body.slice(from, to);
  const staged = [
    `let blocks = ${s.count};`,
    s.comment,
    `let ${s.start} = ${s.at} * BC;`,
    ...[...s.vec, ...s.row].map((x) => `${x.tile}[r]`),
  ];
  if (
    from < 0 || to < 0 || !old.endsWith("    workgroupBarrier();") ||
    staged.some((x) => !old.includes(x)) || body.indexOf("  let blocks = ", to) >= 0
  ) {
    throw new Error("prefetch: the pass body no longer stages its tiles as prefetch.ts expects");
  }
  return body.slice(0, from) + prefetchRegion(s) + body.slice(to + 1);
}
