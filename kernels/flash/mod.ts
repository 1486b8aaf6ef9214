/**
 * The flash kernel (FlashAttention's forward, query blocks outer as in FlashAttention-2): one
 * fused dispatch per (query block, head); S and P never leave the chip. The program serves the
 * block-sparse kernel too (`sparse: true`: the key blocks come from the mask's CSR rows).
 *
 * Its registry entry {@linkcode flash}: the pass and its WGSL, buffers, exact modeled traffic,
 * the paper's Algorithm 1 bytes, FLOPs and the float64 reference (O and the log-sum-exp).
 *
 * @module
 */

import flashBody from "./flash.wgsl" with { type: "text" };
import flashRtBody from "./flash_rt.wgsl" with { type: "text" };
import flashH16Body from "./flash_h16.wgsl" with { type: "text" };
import flashTiles from "./flash_tiles.wgsl" with { type: "text" };
import {
  type AttentionShape,
  type Dtype,
  dtypeBytes,
  type Tiles,
  type TileVariant,
} from "../../core/shapes.ts";
import { UsageError } from "../../core/errors.ts";
import {
  flashAttentionBytes,
  flashQueryOuterBytes,
  lowerBoundBytes,
} from "../../analysis/io_model.ts";
import { need, qkvoBuffers, randomInputs, shapeUniforms } from "../common.ts";
import {
  attentionFlops,
  type BufferSpec,
  type CountedBytes,
  emptyTraffic,
  type Kernel,
  type KernelPlan,
  type PassBinding,
  type ProblemRequest,
} from "../kernel.ts";
import type { BlockMask } from "../masks.ts";
import {
  tileConstants,
  tileStructureProblem,
  tileThreads,
  tileVec4sPerThread,
  unrollLoops,
} from "../program.ts";
import { referenceWithLse } from "../reference.ts";

/** Compile-time knobs of the flash kernel. */
export interface FlashKnobs {
  d: number;
  tiles: Tiles;
  /** Visit only the key blocks that the block mask keeps. */
  sparse: boolean;
  /**
   * Lanes per subgroup the program may use for row maxima and sums (0: the portable path).
   * Only the register-tile layout uses them ({@linkcode flashUsesSubgroups}).
   */
  subgroupSize?: number;
  /**
   * f16 storage only: `"packed"` builds flash_h16.wgsl (both products in vec4<f16> chunks of
   * {@linkcode F16_CHUNK} elements, folded into f32), `"f32"` or absent the f32-arithmetic
   * source. Ignored at f32.
   */
  f16Math?: F16Math;
  /** The packed program's chunk length in elements (default {@linkcode F16_CHUNK}). */
  f16Chunk?: number;
  /**
   * Bytes of extra workgroup memory that no run uses (the occupancy experiment of issue 10,
   * {@linkcode padWorkgroupBytesOf}); 0 or absent: no pad, the unpadded source.
   */
  padWorkgroupBytes?: number;
}

/**
 * How the f16 flash program computes: `"f32"` (f16 storage, f32 arithmetic) or `"packed"`
 * (half arithmetic in short chunks, accumulated in f32: flash_h16.wgsl).
 */
export type F16Math = "f32" | "packed";

/** The kernels whose f16 programs take {@linkcode F16Math} (kernel option `f16Math`). */
export const F16_MATH_KERNELS: readonly string[] = ["flash", "block-sparse"];

/** The values of {@linkcode F16Math}; the first is the default. */
export const F16_MATHS: readonly F16Math[] = ["f32", "packed"];

/**
 * Elements per f16 partial sum of the packed program: the head-dim slice of a score (4 vec4s)
 * and the keys of a P·V chunk (4 key quads) before each is added to its f32 sum.
 */
export const F16_CHUNK = 16;

/**
 * The f16 math a problem's kernel options ask for (`options.f16Math`), `"f32"` when absent;
 * anything else is an error.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { f16MathOf } from "./mod.ts";
 * assert(f16MathOf({ f16Math: "packed" }) === "packed" && f16MathOf(undefined) === "f32");
 * ```
 */
export function f16MathOf(options: Readonly<Record<string, unknown>> | undefined): F16Math {
  const m = options?.f16Math ?? F16_MATHS[0];
  if (!F16_MATHS.includes(m as F16Math)) {
    throw new UsageError(`f16Math ${String(m)}: expected ${F16_MATHS.join(" or ")}`);
  }
  return m as F16Math;
}

/**
 * The packed program's chunk length a problem's kernel options ask for (`options.f16Chunk`, a
 * multiple of 4 from 4 to 128; {@linkcode F16_CHUNK} when absent). Longer chunks fold into f32
 * less often and round more: the score error bound grows as chunk / 4 + 2.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { f16ChunkOf } from "./mod.ts";
 * assert(f16ChunkOf({ f16Chunk: 64 }) === 64 && f16ChunkOf(undefined) === 16);
 * ```
 */
export function f16ChunkOf(options: Readonly<Record<string, unknown>> | undefined): number {
  const c = options?.f16Chunk ?? F16_CHUNK;
  if (typeof c !== "number" || !Number.isInteger(c) || c % 4 !== 0 || c < 4 || c > 128) {
    throw new UsageError(`f16Chunk ${String(c)}: expected a multiple of 4 from 4 to 128`);
  }
  return c;
}

/**
 * The workgroup-memory pad a problem's kernel options ask for (`options.padWorkgroupBytes`, a
 * whole number of bytes, a multiple of 16; 0 when absent). The padded program declares that many
 * more bytes of workgroup memory and touches them only in a branch no valid problem takes, so
 * its results and counted bytes are the unpadded program's: what changes is how many workgroups
 * fit an SM (issue 10's occupancy experiment, docs/analysis/flash_inner_loop.md). Anything else
 * is a {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { padWorkgroupBytesOf } from "./mod.ts";
 * assert(padWorkgroupBytesOf({ padWorkgroupBytes: 8192 }) === 8192);
 * assert(padWorkgroupBytesOf(undefined) === 0);
 * ```
 */
export function padWorkgroupBytesOf(
  options: Readonly<Record<string, unknown>> | undefined,
): number {
  const b = options?.padWorkgroupBytes ?? 0;
  if (typeof b !== "number" || !Number.isInteger(b) || b < 0 || b % 16 !== 0) {
    throw new UsageError(
      `padWorkgroupBytes ${String(b)}: expected a whole number of bytes >= 0, a multiple of 16`,
    );
  }
  return b;
}

/**
 * Which source builds these tiles: `"rt"`, the GEMM-style register tiles of flash_rt.wgsl (rm a
 * multiple of 4 and at least 8, bc a multiple of 4·tx, the head dim's vec4s a multiple of tx),
 * `"v5"`, flash.wgsl, for every other tile, or `"v7"`, flash.wgsl with interleaved output
 * columns and per-thread row sums ({@linkcode flashV7Body}), when the tiles say
 * `variant: "v7"`, or `"v8"`, `"v8k"`, `"v8v"`, `"v8e"`: v7 with K and/or V fetched into
 * registers ahead of their use ({@linkcode flashV8Body}), when the tiles name them. The
 * register tiles measured 2–7× slower than v5 on the H200 (BENCHMARKS.md, issue 10), so only
 * rows-per-thread past every default and tuned tile (rm ≥ 8) select them.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { flashLayout } from "./mod.ts";
 * assert(flashLayout(64, { br: 64, bc: 32, rm: 8, tx: 8 }) === "rt");
 * assert(flashLayout(64, { br: 64, bc: 32, rm: 4, tx: 8 }) === "v5");
 * assert(flashLayout(64, { br: 64, bc: 32, rm: 4, tx: 8, variant: "v7" }) === "v7");
 * ```
 */
export function flashLayout(d: number, t: Tiles): FlashLayout {
  if (t.variant !== undefined) return t.variant;
  return t.rm % 4 === 0 && t.rm >= 8 && t.bc % (4 * t.tx) === 0 && (d / 4) % t.tx === 0 &&
      t.br % t.rm === 0
    ? "rt"
    : "v5";
}

/** The flash sources {@linkcode flashLayout} picks from. */
export type FlashLayout = "rt" | "v5" | TileVariant;

/** Whether the register-tile layout shares one workgroup buffer between K^T and V. */
export function flashKvShared(d: number): boolean {
  return d > 64;
}

/**
 * Whether this program combines rows through subgroup shuffles: the register-tile layout only,
 * when a row group's TX threads (a power of two) fit in one subgroup. The v5 layout keeps its
 * workgroup-memory maxima: with shuffles it ran 4–8% slower on the H200 (BENCHMARKS.md, v6a).
 */
export function flashUsesSubgroups(k: FlashKnobs): boolean {
  const size = k.subgroupSize ?? 0;
  const tx = k.tiles.tx;
  return flashLayout(k.d, k.tiles) === "rt" && size >= tx && size % tx === 0 &&
    (tx & (tx - 1)) === 0;
}

/** Key-block indices the block-sparse kernel stages in workgroup memory at a time. */
export const SPARSE_LIST = 64;

/**
 * Bytes of workgroup memory the flash kernel declares for these knobs.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { flashWorkgroupBytes } from "./mod.ts";
 * const bytes = flashWorkgroupBytes(64, "f32", { br: 32, bc: 32, rm: 4, tx: 8 });
 * assert(bytes === 64 * 68 * 4 + 32 * 36 * 4 + 32 * 8 * 4 + 16 + 4 * 64);
 * ```
 */
export function flashWorkgroupBytes(d: number, dtype: Dtype, tiles: Tiles): number {
  const e = dtype === "f16" ? 2 : 4;
  const round = (bytes: number) => Math.ceil(bytes / 16) * 16;
  if (flashLayout(d, tiles) === "rt") {
    // q_t, p_t (rows padded by one vec4), red, K^T and V (one buffer when shared), and the
    // block-sparse prelude's row range and list; all f32 whatever the storage type.
    const kv = d * tiles.bc * 4 * (flashKvShared(d) ? 1 : 2);
    return [
      d * tiles.br * 4,
      tiles.bc * (tiles.br / 4 + 1) * 16,
      tiles.br * tiles.tx * 4,
      kv,
      8,
      4 * SPARSE_LIST,
    ].reduce((sum, bytes) => sum + round(bytes), 0);
  }
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
  return vars.reduce((sum, bytes) => sum + round(bytes), 0);
}

/** The cache key: every knob that changes the source. */
export function flashKey(k: FlashKnobs): string {
  const t = k.tiles;
  const sg = flashUsesSubgroups(k) ? "-sg" : "";
  const chosen = flashLayout(k.d, t);
  const layout = k.f16Math === "packed"
    ? `h16c${k.f16Chunk ?? F16_CHUNK}`
    : chosen === "rt"
    ? `rt${sg}${flashKvShared(k.d) ? "-kvs" : ""}`
    : chosen;
  const pad = k.padWorkgroupBytes ? `/pad${k.padWorkgroupBytes}` : "";
  return `flash${
    k.sparse ? "-sparse" : ""
  }/d${k.d}/br${t.br}-bc${t.bc}-rm${t.rm}-tx${t.tx}/${layout}${pad}`;
}

/**
 * The WGSL source of a flash program after the generated header: constants, the key-block
 * walk (dense or the mask's), the body.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { flashSource } from "./mod.ts";
 * const src = flashSource({ d: 64, sparse: false, tiles: { br: 32, bc: 32, rm: 4, tx: 8 } });
 * assert(src.includes("const D: u32 = 64u;"));
 * ```
 */
export function flashSource(k: FlashKnobs): string {
  const source = unpaddedSource(k);
  return k.padWorkgroupBytes ? padWorkgroup(source, k.padWorkgroupBytes) : source;
}

/** {@linkcode flashSource} without the workgroup-memory pad. */
function unpaddedSource(k: FlashKnobs): string {
  const problem = tileStructureProblem(k.d, k.tiles);
  if (problem) throw new Error(`flash tiles: ${problem}`);
  const { lines, bounds } = tileConstants(k.d, k.tiles);
  const blocks = k.sparse ? SPARSE_BLOCKS : DENSE_BLOCKS;
  const t = k.tiles;
  const sg = flashUsesSubgroups(k);
  const combine = sg ? SUBGROUP_COMBINE : PORTABLE_COMBINE;
  if (k.f16Math === "packed") return flashH16Source(k, lines, blocks, bounds);
  const layout = flashLayout(k.d, k.tiles);
  if (layout === "v5" || layout === "v7") {
    const body = layout === "v7" ? flashV7Body(flashBody) : flashBody;
    return [...lines, blocks, unrollLoops(flashTiles + body, bounds)].join("\n");
  }
  if (layout !== "rt") {
    const pf = tileVec4sPerThread(k.d, t);
    const body = flashTiles + flashV8Body(flashV7Body(flashBody), layout) + v8Staging(k.d, t);
    return [...lines, `const PF: u32 = ${pf}u;`, blocks, unrollLoops(body, { ...bounds, PF: pf })]
      .join("\n");
  }
  const shared = flashKvShared(k.d);
  const rt = {
    ...bounds,
    RM4: t.rm / 4,
    RN4: t.bc / (4 * t.tx),
    RD4: k.d / 4 / t.tx,
  };
  const consts = [
    "const VEC: u32 = 4u;",
    `const RM4: u32 = ${rt.RM4}u;`,
    `const RN4: u32 = ${rt.RN4}u;`,
    `const BR4: u32 = ${t.br / 4}u;`,
    `const BR4P: u32 = ${t.br / 4 + 1}u;`,
    `const SG: bool = ${sg};`,
    `const KV_SHARED: bool = ${shared};`,
  ];
  return [
    ...lines.filter((l) => !l.startsWith("const RD4")),
    `const RD4: u32 = ${rt.RD4}u;`,
    ...consts,
    shared ? KV_SHARED_TILES : KV_SEPARATE_TILES,
    combine,
    blocks,
    unrollLoops(flashRtBody, rt),
  ].join("\n");
}

// Every flash body (flash.wgsl and v7, flash_h16.wgsl, flash_rt.wgsl) has this line once, near
// the top of main, after `n`, `qb`, `base` and `t` are known.
const PAD_ANCHOR = "  let tx = t % TX;\n";

/**
 * A flash program with `bytes` more workgroup memory (issue 10's occupancy experiment): an
 * array that only a branch on `params.causal > 1u` touches. The host writes 0 or 1 there
 * (`shapeUniforms`), so the branch never runs and results and counted bytes stay the unpadded
 * program's; a compiler cannot know the uniform's value, so it must keep the branch, and the
 * branch reads the array back into O, so the array cannot be dropped as written-only.
 */
function padWorkgroup(source: string, bytes: number): string {
  if (source.split(PAD_ANCHOR).length !== 2) {
    throw new Error(`flash pad: the body must have ${JSON.stringify(PAD_ANCHOR.trim())} once`);
  }
  const vecs = bytes / 16;
  const use = `  if params.causal > 1u {
    occupancy_pad[(t + n) % ${vecs}u] = vec4<f32>(f32(n));
    o[base] = T4(occupancy_pad[(t + qb) % ${vecs}u]);
  }
`;
  return source.replace(PAD_ANCHOR, PAD_ANCHOR + use) +
    "\n// Occupancy pad (kernel option padWorkgroupBytes): only the branch on causal > 1 uses it.\n" +
    `var<workgroup> occupancy_pad: array<vec4<f32>, ${vecs}>;\n`;
}

// v7 is flash.wgsl with two changes, made by replacing these texts of it (each must be there,
// so an edit of flash.wgsl cannot leave v7 silently building v5):
// 1. Output columns interleaved across the row group. v5's thread tx owns the RD4 contiguous
//    vec4 columns tx·RD4 … tx·RD4 + RD4 - 1 of O (and reads those columns of V); v7's owns
//    columns c·TX + tx, so at each step c the TX threads of a row group read TX consecutive
//    vec4s of a V row. With v5's columns and RD4 > 1 those reads are RD4·4 words apart and
//    2–4 lanes share a bank (RD4 = 2: banks 0, 8, 16, 24 …), which serialises P·V's loads.
// 2. Row sums from each thread's own keys. In v5 each of a row's TX threads adds up the whole
//    row's p in the P·V loop (4 adds per 16 FMAs, repeated by all TX threads); in v7 each adds
//    its RN p values when it writes them, and the TX partial sums are combined once at the end
//    (through row_max_part, free since the last block's maxima were read before a barrier).
const V7_EDITS: readonly (readonly [string, string])[] = [
  ["tx * RD4 + c", "c * TX + tx"],
  ["        l[i] += p4[i].x + p4[i].y + p4[i].z + p4[i].w;\n", ""],
  [
    "p_tile[r][col / 4u][col % 4u] = select(exp2(s[i][j] - mx), 0.0, s[i][j] <= NEG);",
    "let p = select(exp2(s[i][j] - mx), 0.0, s[i][j] <= NEG);\n" +
    "        p_tile[r][col / 4u][col % 4u] = p;\n        l[i] += p;",
  ],
  [
    "\n  for (var i = 0u; i < RM; i++) {\n    let row = q0 + ty + i * TY;\n    if row < n {",
    `
  for (var i = 0u; i < RM; i++) {
    row_max_part[ty + i * TY][tx] = l[i];
  }
  workgroupBarrier();
  for (var i = 0u; i < RM; i++) {
    var sum = 0.0;
    for (var x = 0u; x < TX; x++) {
      sum += row_max_part[ty + i * TY][x];
    }
    l[i] = sum;
  }
$&`,
  ],
];

/**
 * flash.wgsl turned into v7 (see `V7_EDITS` above): interleaved output columns and per-thread
 * row sums. Throws when the body lacks a text an edit replaces.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { flashV7Body } from "./mod.ts";
 * let thrown = false;
 * try {
 *   flashV7Body("no flash body");
 * } catch {
 *   thrown = true;
 * }
 * assert(thrown);
 * ```
 */
export function flashV7Body(body: string): string {
  let out = body;
  for (const [from, to] of V7_EDITS) {
    if (!out.includes(from)) {
      throw new Error(`flash v7: flash.wgsl no longer has ${JSON.stringify(from.trim())}`);
    }
    out = out.replaceAll(from, to); // "$&" in `to` stands for `from`
  }
  return out;
}

/**
 * How a v8 layout stages K and V: `k` true, the next key block's K is fetched into registers
 * during the current block; `v` `"next"`, likewise the next block's V; `"early"`, the current
 * block's V is fetched at the block's start (its load runs under S = Q·Kᵀ, and its registers
 * are free again before P·V, where the register peak is); null, as v7 (global → kv_tile between
 * two barriers).
 */
export interface V8Prefetch {
  k: boolean;
  v: "next" | "early" | null;
}

/** The v8 layouts and how each stages K and V ({@linkcode V8Prefetch}). */
export const V8_PREFETCH: Readonly<Record<"v8" | "v8k" | "v8v" | "v8e", V8Prefetch>> = {
  v8: { k: true, v: "next" },
  v8k: { k: true, v: null },
  v8v: { k: false, v: "next" },
  v8e: { k: true, v: "early" },
};

/**
 * v8's staging in two halves: fetch_kv loads this thread's PF vec4s of rows [row0, row0 + BC)
 * of k or v into registers (zero past n), put_kv_tile stores them into kv_tile. Both walk
 * load_kv_tile's elements in its order (idx = t + e·WG), so each thread stores what it fetched;
 * the bound on idx is written out only where BC·D4 is not a multiple of WG.
 */
function v8Staging(d: number, t: Tiles): string {
  const ragged = (t.bc * d / 4) % tileThreads(t) !== 0;
  const inTile = ragged ? "idx < BC * D4 && " : "";
  return `
// v8 (flash/mod.ts, v8Staging): K/V staging split into a register fetch and a tile store.
fn fetch_kv(use_v: bool, base: u32, row0: u32, n: u32, t: u32) -> array<T4, PF> {
  var x: array<T4, PF>;
  for (var e = 0u; e < PF; e++) {
    let idx = t + e * WG;
    let r = idx / D4;
    if ${inTile}row0 + r < n {
      let g = base + (row0 + r) * D4 + idx % D4;
      if use_v {
        x[e] = v[g];
        count_read(SLOT_V, 4u * T_BYTES);
      } else {
        x[e] = k[g];
        count_read(SLOT_K, 4u * T_BYTES);
      }
    }
  }
  return x;
}

fn put_kv_tile(x: array<T4, PF>, t: u32) {
  for (var e = 0u; e < PF; e++) {
    let idx = t + e * WG;
${ragged ? "    if idx < BC * D4 {\n  " : ""}    kv_tile[idx / D4][idx % D4] = x[e];
${ragged ? "    }\n" : ""}  }
}
`;
}

// v8 is v7 with the global loads of the next key block's K and/or V issued into registers
// (fetch_kv) while the current block is computed, and stored into kv_tile (put_kv_tile) after
// the barrier that frees it, so a prefetched tile's load does not sit between two barriers
// (v8e: the current block's V, issued at the block's start; V8Prefetch). The block index is
// read one block ahead (kv_block_at for bi + 1 right after the barrier that starts block bi,
// as v7 reads bi there, so block-sparse's list refill keeps its barrier), and a block past the
// causal diagonal (block-sparse only) is neither fetched nor stored. The last block fetches
// nothing, so each K and V element is still read once per query block.
const V8_HEAD = `  for (var bi = 0u; bi < blocks; bi++) {
    // Every thread is done with the previous block's kv_tile and p_tile.
    workgroupBarrier();
    let k0 = kv_block_at(qb, bi, t) * BC;
    if causal && k0 > q_last {
      continue; // only a block-sparse row can list a block past the diagonal
    }
    load_kv_tile(false, base, k0, n, t);
    workgroupBarrier();
`;
const V8_V_STAGE = "    load_kv_tile(true, base, k0, n, t);\n";

/** The v8 loop head for a prefetch choice (see `V8_HEAD`). */
function v8Head(p: V8Prefetch): string {
  const fetch = (what: string, use: boolean, indent: string) =>
    `${indent}${what}_pf = fetch_kv(${use}, base, k_next, n, t);\n`;
  const next = { k: p.k, v: p.v === "next" };
  const what = [next.k ? "K" : "", next.v ? "V" : ""].filter(Boolean).join(" and ");
  return `  // v8: the first key block's index and ${what} here, each next block's during this one.
  var k_next = 0u;
  var next_live = false;
  if blocks > 0u {
    k_next = kv_block_at(qb, 0u, t) * BC;
    next_live = !(causal && k_next > q_last);
  }
${next.k ? "  var k_pf: array<T4, PF>;\n" : ""}${
    next.v ? "  var v_pf: array<T4, PF>;\n" : ""
  }  if next_live {
${next.k ? fetch("k", false, "    ") : ""}${next.v ? fetch("v", true, "    ") : ""}  }
  for (var bi = 0u; bi < blocks; bi++) {
    // Every thread is done with the previous block's kv_tile and p_tile.
    workgroupBarrier();
    let k0 = k_next;
    let live = next_live;
    next_live = false;
    if bi + 1u < blocks {
      k_next = kv_block_at(qb, bi + 1u, t) * BC;
      next_live = !(causal && k_next > q_last);
    }
${
    p.k
      ? `    if live {
      put_kv_tile(k_pf, t);
    }
    if next_live {
${fetch("k", false, "      ")}    }
`
      : ""
  }    if !live {
${
    next.v
      ? `      if next_live {
${fetch("v", true, "        ")}      }
`
      : ""
  }      continue; // only a block-sparse row can list a block past the diagonal
    }
${p.k ? "" : "    load_kv_tile(false, base, k0, n, t);\n"}${
    p.v === "early" ? "    let v_cur = fetch_kv(true, base, k0, n, t);\n" : ""
  }    workgroupBarrier();
`;
}

/**
 * The v7 body turned into a v8 layout (see `V8_HEAD` above): the next block's K (`"v8k"`), V
 * (`"v8v"`) or both (`"v8"`) fetched into registers during the current block, or the next K and
 * the current V at the block's start (`"v8e"`; {@linkcode V8Prefetch}). Needs
 * {@linkcode v8Staging}'s functions and the constant PF; throws when the body lacks a text it
 * replaces.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { flashV8Body } from "./mod.ts";
 * let thrown = false;
 * try {
 *   flashV8Body("no flash body", "v8");
 * } catch {
 *   thrown = true;
 * }
 * assert(thrown);
 * ```
 */
export function flashV8Body(v7: string, layout: keyof typeof V8_PREFETCH): string {
  const p = V8_PREFETCH[layout];
  for (const from of [V8_HEAD, V8_V_STAGE]) {
    if (v7.split(from).length !== 2) {
      throw new Error(`flash ${layout}: the v7 body must have ${JSON.stringify(from.trim())} once`);
    }
  }
  const stageV = p.v === "next"
    ? `    put_kv_tile(v_pf, t);
    if next_live {
      v_pf = fetch_kv(true, base, k_next, n, t);
    }
`
    : p.v === "early"
    ? "    put_kv_tile(v_cur, t);\n"
    : V8_V_STAGE;
  return v7.replace(V8_HEAD, () => v8Head(p)).replace(V8_V_STAGE, () => stageV);
}

/**
 * flash_h16.wgsl after the v5 constants: the chunk lengths CH4 (head-dim vec4s per score chunk)
 * and CK4 (key quads per P·V chunk), each at most what the tile has.
 */
function flashH16Source(
  k: FlashKnobs,
  lines: string[],
  blocks: string,
  bounds: Record<string, number>,
): string {
  const chunk = k.f16Chunk ?? F16_CHUNK;
  const ch4 = Math.min(chunk / 4, k.d / 4);
  const ck4 = Math.min(chunk / 4, k.tiles.bc / 4);
  return [
    ...lines,
    `const CH4: u32 = ${ch4}u;`,
    `const CK4: u32 = ${ck4}u;`,
    blocks,
    unrollLoops(flashTiles + flashH16Body, bounds),
  ].join("\n");
}

// flash_rt.wgsl's K^T and V tiles: two buffers (K^T[k][keys / 4], V[key][d / 4]) ...
const KV_SEPARATE_TILES = `
var<workgroup> k_t: array<array<vec4<f32>, BC4>, D>;
var<workgroup> v_s: array<array<vec4<f32>, D4>, BC>;
fn k_at(kk: u32, c: u32) -> vec4<f32> { return k_t[kk][c]; }
fn k_put(kk: u32, r: u32, x: f32) { k_t[kk][r / 4u][r % 4u] = x; }
fn v_at(r: u32, c: u32) -> vec4<f32> { return v_s[r][c]; }
fn v_put(r: u32, c: u32, x: vec4<f32>) { v_s[r][c] = x; }
`;

// ... or one, K^T and then V (KV_SHARED).
const KV_SHARED_TILES = `
var<workgroup> kv_s: array<vec4<f32>, D * BC4>;
fn k_at(kk: u32, c: u32) -> vec4<f32> { return kv_s[kk * BC4 + c]; }
fn k_put(kk: u32, r: u32, x: f32) { kv_s[kk * BC4 + r / 4u][r % 4u] = x; }
fn v_at(r: u32, c: u32) -> vec4<f32> { return kv_s[r * D4 + c]; }
fn v_put(r: u32, c: u32, x: vec4<f32>) { kv_s[r * D4 + c] = x; }
`;

// The maximum (sum: the sum) of x over the TX consecutive lanes of a row group. No
// \`enable subgroups;\`: naga in Deno 2.9.6 rejects the directive but compiles the builtins
// once the device has the feature.
const SUBGROUP_COMBINE = `
fn row_combine(x: f32, sum: bool) -> f32 {
  var y = x;
  for (var lane = 1u; lane < TX; lane <<= 1u) {
    let o = subgroupShuffleXor(y, lane);
    y = select(max(y, o), y + o, sum);
  }
  return y;
}
`;

// The portable path combines through workgroup memory (red) in the body; never called.
const PORTABLE_COMBINE = `
fn row_combine(x: f32, sum: bool) -> f32 { return x; }
`;

// Dense: key blocks 0 ..= last_key / BC (the causal diagonal clips \`last_key\`).
const DENSE_BLOCKS = `
fn kv_block_count(qb: u32, last_key: u32, t: u32) -> u32 { return last_key / BC + 1u; }
fn kv_block_at(qb: u32, i: u32, t: u32) -> u32 { return i; }
`;

// Block-sparse: the mask's CSR row (bindings rowptr and colidx). The workgroup copies the row's key-block indices into
// workgroup memory LIST at a time (one coalesced load instead of one dependent global read per
// block), and reads them back through workgroupUniformLoad: values loaded from storage are not
// uniform to WGSL's analysis, and these steer a loop that holds barriers. kv_block_at runs
// right after a workgroupBarrier, so overwriting block_list cannot race with earlier reads.
const SPARSE_BLOCKS = `
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

const UNIFORM_BYTES = 16;

/**
 * Exact bytes per slot the flash program moves (the counting variant must count the same):
 * per query block, its Q rows once, the K and V rows of every key block it visits (all up to the
 * causal diagonal, or the mask's row), O and the f32 log-sum-exp once, the 16-byte uniform once
 * and, with a mask, its CSR row (8 bytes of rowptr, 4 a listed block).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { flashTraffic } from "./mod.ts";
 * const shape = { batch: 1, heads: 1, n: 100, d: 64, dtype: "f32", causal: false } as const;
 * const t = flashTraffic(shape, { br: 32, bc: 32, rm: 4, tx: 8 }, null);
 * assert(t.q!.read === 100 * 64 * 4 && t.k!.read === 4 * 100 * 64 * 4);
 * ```
 */
export function flashTraffic(
  shape: AttentionShape,
  tiles: Tiles,
  mask: BlockMask | null,
): CountedBytes {
  const { n, d } = shape;
  const e = dtypeBytes(shape.dtype);
  const heads = shape.batch * shape.heads;
  const t = emptyTraffic(mask ? SPARSE_SLOTS : DENSE_SLOTS);
  const rowsOf = (start: number, size: number) => Math.min(size, n - start);
  const tr = Math.ceil(n / tiles.br);
  const sparse = mask?.csr() ?? null;
  for (let qb = 0; qb < tr; qb++) {
    const q0 = qb * tiles.br;
    const qrows = rowsOf(q0, tiles.br);
    const qLast = q0 + qrows - 1;
    t.uniform!.read += UNIFORM_BYTES;
    t.q!.read += qrows * d * e;
    if (sparse) {
      const row = [...sparse.colidx.subarray(sparse.rowptr[qb]!, sparse.rowptr[qb + 1]!)];
      t.mask!.read += 8 + 4 * row.length;
      for (const kb of row.filter((kb) => !shape.causal || kb * tiles.bc <= qLast)) {
        const rows = rowsOf(kb * tiles.bc, tiles.bc);
        t.k!.read += rows * d * e;
        t.v!.read += rows * d * e;
      }
    } else {
      // Key blocks 0..⌊last/bc⌋, in closed form (linear in N, so a huge --n cannot hang): their
      // rows add up to min(n, blocks·bc).
      const last = shape.causal ? qLast : n - 1;
      const rows = Math.min(n, (Math.floor(last / tiles.bc) + 1) * tiles.bc);
      t.k!.read += rows * d * e;
      t.v!.read += rows * d * e;
    }
    t.o!.write += qrows * d * e;
    t.lse!.write += qrows * 4;
  }
  for (const slot of Object.values(t)) {
    slot.read *= heads;
    slot.write *= heads;
  }
  return t;
}

/** Counter slots of the dense flash program. */
const DENSE_SLOTS = ["q", "k", "v", "o", "lse", "uniform"] as const;
/** Counter slots of the block-sparse flash program. */
const SPARSE_SLOTS = [...DENSE_SLOTS, "mask"] as const;

/** The program knobs of {@linkcode flashPlan} beyond shape, tiles, scale and mask. */
export interface FlashProgram {
  /** See {@linkcode FlashKnobs.subgroupSize}; 0 or absent: the portable path. */
  subgroupSize?: number;
  /** f16 storage only (see {@linkcode F16Math}); absent: `"f32"`. */
  f16Math?: F16Math;
  /** The packed program's chunk length; absent: {@linkcode F16_CHUNK}. */
  f16Chunk?: number;
  /** See {@linkcode padWorkgroupBytesOf}; absent: 0. */
  padWorkgroupBytes?: number;
  /** The device's workgroup memory limit the pad must fit; absent: no limit. */
  maxWorkgroupBytes?: number;
}

/**
 * The program knobs a problem request asks for: its subgroup size, the device's workgroup
 * memory limit and the kernel options `f16Math`, `f16Chunk` and `padWorkgroupBytes`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { flashProgramOf } from "./mod.ts";
 * const shape = { batch: 1, heads: 1, n: 8, d: 32, dtype: "f32", causal: false } as const;
 * const tiles = { br: 8, bc: 8, rm: 2, tx: 4 };
 * const p = flashProgramOf({ shape, tiles, options: { padWorkgroupBytes: 64 } });
 * assert(p.padWorkgroupBytes === 64 && p.f16Math === "f32");
 * ```
 */
export function flashProgramOf(request: ProblemRequest): FlashProgram {
  const { options } = request;
  return {
    subgroupSize: request.subgroupSize,
    f16Math: f16MathOf(options),
    f16Chunk: f16ChunkOf(options),
    padWorkgroupBytes: padWorkgroupBytesOf(options),
    maxWorkgroupBytes: request.maxWorkgroupBytes,
  };
}

/**
 * The plan of the flash program, dense (`mask` null) or block-sparse: what the flash and the
 * block-sparse registry entries both return. A workgroup-memory pad that would not fit the
 * device's limit (`program.maxWorkgroupBytes`) is a {@linkcode UsageError}.
 */
export function flashPlan(
  kernel: Kernel,
  shape: AttentionShape,
  tiles: Tiles,
  given: number | undefined,
  mask: BlockMask | null,
  program: FlashProgram = {},
): KernelPlan {
  const {
    subgroupSize = 0,
    f16Math = "f32",
    f16Chunk = F16_CHUNK,
    padWorkgroupBytes = 0,
    maxWorkgroupBytes = Infinity,
  } = program;
  const used = flashWorkgroupBytes(shape.d, shape.dtype, tiles);
  if (padWorkgroupBytes > 0 && used + padWorkgroupBytes > maxWorkgroupBytes) {
    throw new UsageError(
      `padWorkgroupBytes ${padWorkgroupBytes}: ${used} + ${padWorkgroupBytes} bytes of ` +
        `workgroup memory exceed the device's ${maxWorkgroupBytes}; at most ` +
        `${Math.floor((maxWorkgroupBytes - used) / 16) * 16} fit with these tiles`,
    );
  }
  const scale = given ?? 1 / Math.sqrt(shape.d);
  const heads = shape.batch * shape.heads;
  const csr = mask?.csr() ?? null;
  const buffers: BufferSpec[] = [
    ...qkvoBuffers(shape),
    { name: "lse", label: "LSE", role: "output", bytes: heads * shape.n * 4, element: "f32" },
  ];
  const bindings: PassBinding[] = [
    { buffer: "q", access: "read" },
    { buffer: "k", access: "read" },
    { buffer: "v", access: "read" },
    { buffer: "o", access: "read_write" },
    { buffer: "lse", access: "read_write" },
  ];
  if (csr) {
    buffers.push(
      {
        name: "rowptr",
        label: "mask rowptr",
        role: "input",
        bytes: csr.rowptr.byteLength,
        element: "u32",
        data: csr.rowptr,
      },
      {
        name: "colidx",
        label: "mask colidx",
        role: "input",
        bytes: csr.colidx.byteLength,
        element: "u32",
        data: csr.colidx,
      },
    );
    bindings.push({ buffer: "rowptr", access: "read" }, { buffer: "colidx", access: "read" });
  }
  const density = mask?.density ?? 1;
  const knobs: FlashKnobs = {
    d: shape.d,
    tiles,
    sparse: mask !== null,
    subgroupSize,
    // The packed source is built for f16 storage only; f32 storage has nothing to pack.
    f16Math: shape.dtype === "f16" ? f16Math : "f32",
    f16Chunk,
    padWorkgroupBytes,
  };
  return {
    kernel,
    shape,
    tiles,
    scale,
    mask,
    density,
    buffers,
    slots: mask ? SPARSE_SLOTS : DENSE_SLOTS,
    passes: () => [{
      name: kernel.name,
      key: flashKey(knobs),
      source: flashSource(knobs),
      bindings,
      uniforms: shapeUniforms(shape, "scale_log2e", scale * Math.LOG2E),
      grid: [Math.ceil(shape.n / tiles.br), heads],
      moves: [["q", "read"], ["k", "read"], ["v", "read"], ["o", "write"], ["lse", "write"]],
    }],
    modeledTraffic: () => flashTraffic(shape, tiles, mask),
    theoreticalBytes: (o) => flashAttentionBytes(shape, { ...o, mask }),
    lowerBoundBytes: () => lowerBoundBytes(shape, mask),
    idealBytes: (): Record<string, number> =>
      mask ? {} : { "query-outer": flashQueryOuterBytes(shape, tiles.br) },
    flops: (mode) => attentionFlops(shape, mode) * density,
    denseFlops: (mode) => attentionFlops(shape, mode),
    randomInputs: (seed) => ({ ...randomInputs(shape, seed) }),
    reference: (inputs) =>
      referenceWithLse(shape, need(inputs, "q"), need(inputs, "k"), need(inputs, "v"), {
        scale,
        mask: mask ?? undefined,
      }),
  };
}

/** The flash kernel's registry entry. */
export const flash: Kernel = {
  name: "flash",
  summary: "FlashAttention forward: one fused dispatch, S and P stay on chip",
  mode: "fwd",
  display: { label: "flash", hue: 212, saturation: 74 },
  sparse: false,
  densitySweep: "once",
  baseline: "standard",
  tunedLike: null,
  threads: tileThreads,
  workgroupBytes: flashWorkgroupBytes,
  tileProblem: tileStructureProblem,
  plan: (request) =>
    flashPlan(flash, request.shape, request.tiles, request.scale, null, flashProgramOf(request)),
};
