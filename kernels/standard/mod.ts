/**
 * The standard kernel (Algorithm 0 of the FlashAttention paper, as a framework's unfused
 * attention runs it): scores, softmax and P·V, three dispatches through S and P in GPU memory.
 *
 * Its registry entry {@linkcode standard}: passes and their WGSL, buffers, exact modeled
 * traffic, the paper's Algorithm 0 bytes, FLOPs and the float64 reference.
 *
 * @module
 */

import scoresBody from "./scores.wgsl" with { type: "text" };
import softmaxBody from "./softmax.wgsl" with { type: "text" };
import softmaxTree from "./softmax_tree.wgsl" with { type: "text" };
import softmaxSubgroup from "./softmax_subgroup.wgsl" with { type: "text" };
import pvBody from "./pv.wgsl" with { type: "text" };
import pvSumBody from "./pv_sum.wgsl" with { type: "text" };
import { type AttentionShape, type Dtype, dtypeBytes, type Tiles } from "../../core/shapes.ts";
import { lowerBoundBytes, standardAttentionBytes } from "../../analysis/io_model.ts";
import { need, qkvoBuffers, randomInputs } from "../common.ts";
import {
  attentionFlops,
  type BufferSpec,
  type CountedBytes,
  emptyTraffic,
  type Kernel,
  type KernelPlan,
  type PassSpec,
} from "../kernel.ts";
import { tileConstants, tileStructureProblem, tileThreads, unrollLoops } from "../program.ts";
import { referenceAttention } from "../reference.ts";

/** Threads a workgroup of the softmax pass (ROWS rows of TPR threads). */
export const SOFTMAX_WG = 256;
/** Rows of S a dispatch chunk of rows is a multiple of (every softmax ROWS divides it). */
export const SOFTMAX_ROWS = 8;
/** Workgroups the P·V pass aims for when it picks its key splits itself (about 8 an SM). */
export const PV_TARGET_WORKGROUPS = 1024;
/** Rows of O a workgroup of the P·V sum pass adds up (one thread a vec4 of each). */
export const SUM_ROWS = 8;
/** Fewest keys a P·V split takes when the pass picks its splits itself. */
export const PV_MIN_KEYS = 256;

/**
 * Knobs of the standard kernel beyond its tiles, for comparing variants in one run
 * ({@linkcode standardWith}); the registry's `standard` uses the defaults.
 */
export interface StandardOptions {
  /** Tiles of the scores pass (default: the plan's tiles, which the P·V pass uses). */
  scoresTiles?: Tiles;
  /** Key ranges the P·V pass splits into (split-K); 0 or absent: picked from the grid. */
  pvSplits?: number;
  /** Most threads a softmax row takes (a power of two, at most 256; default 256). */
  softmaxThreads?: number;
  /** Most row elements a softmax thread keeps in registers (a power of two; default 64). */
  softmaxCache?: number;
  /** Use subgroup reductions in the softmax where the device has them (default true). */
  subgroups?: boolean;
}

/** Compile-time knobs of the standard kernel's tiled passes. */
export interface StandardKnobs {
  d: number;
  /** Tiles of the P·V pass. */
  tiles: Tiles;
  /** Tiles of the scores pass. */
  scoresTiles: Tiles;
  /** Key splits of the P·V pass (1: no split, O written directly). */
  splits: number;
  softmax: SoftmaxShape;
}

/** The softmax pass's layout at one N: threads a row, rows a workgroup, registers a thread. */
export interface SoftmaxShape {
  /** Threads a row (a power of two). */
  tpr: number;
  /** Rows a workgroup: SOFTMAX_WG / tpr. */
  rows: number;
  /** Row elements each thread keeps in registers; the rest of a longer row is read twice. */
  cache: number;
  /** Subgroup size the reductions use; 0: the portable tree in workgroup memory. */
  sg: number;
}

/** The three passes (and the sum of P·V's splits), in dispatch order. */
export type StandardPass = "scores" | "softmax" | "pv" | "pvsum";

const pow2 = (x: number) => 2 ** Math.ceil(Math.log2(Math.max(1, x)));

/**
 * The softmax layout for rows of `n`: 32 threads a row (8 rows a workgroup) while a row fits in
 * 32 threads' registers, then twice the threads until it fits or the cap is reached; each
 * thread caches the next power of two of its share, up to the cap. Subgroups when the device
 * has them and a row is whole subgroups.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { softmaxShape } from "./mod.ts";
 * assert(softmaxShape(1024, {}, 32).tpr === 32 && softmaxShape(1024, {}, 32).cache === 32);
 * assert(softmaxShape(16384, {}, 0).tpr === 256 && softmaxShape(16384, {}, 0).cache === 64);
 * assert(softmaxShape(100, { softmaxThreads: 4 }, 8).sg === 0);
 * ```
 */
export function softmaxShape(n: number, o: StandardOptions, subgroupSize: number): SoftmaxShape {
  const most = o.softmaxThreads ?? SOFTMAX_WG;
  const cacheMost = o.softmaxCache ?? 64;
  let tpr = Math.min(32, most);
  while (tpr < most && tpr * cacheMost < n) tpr *= 2;
  const cache = Math.min(cacheMost, pow2(Math.ceil(n / tpr)));
  const useSg = (o.subgroups ?? true) && subgroupSize > 0 && tpr % subgroupSize === 0;
  return { tpr, rows: SOFTMAX_WG / tpr, cache, sg: useSg ? subgroupSize : 0 };
}

/**
 * Key splits of the P·V pass: the requested number, or enough for about
 * {@linkcode PV_TARGET_WORKGROUPS} workgroups a dispatch (a chunk of one head at large N has
 * only N / br of them) with at least {@linkcode PV_MIN_KEYS} keys a split; never more than the
 * key blocks, and 1 when the partial sums (`B·H·splits·N·d` f32) would exceed one binding.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { pvSplits } from "./mod.ts";
 * const shape = { batch: 1, heads: 16, n: 16384, d: 64, dtype: "f32", causal: false } as const;
 * const tiles = { br: 128, bc: 32, rm: 8, tx: 4 };
 * assert(pvSplits(shape, tiles, 1, 0, 2 ** 31) === 8);
 * assert(pvSplits(shape, tiles, 1, 3, 2 ** 31) === 3);
 * ```
 */
export function pvSplits(
  shape: AttentionShape,
  tiles: Tiles,
  chunkHeads: number,
  requested: number,
  maxBindingBytes: number,
): number {
  const { n, d } = shape;
  const blocks = Math.ceil(n / tiles.bc);
  const workgroups = Math.ceil(n / tiles.br) * chunkHeads;
  let ks = requested > 0 ? requested : Math.min(
    Math.ceil(PV_TARGET_WORKGROUPS / workgroups),
    Math.max(1, Math.floor(n / PV_MIN_KEYS)),
  );
  ks = Math.max(1, Math.min(ks, blocks));
  // No empty split: as many as the key blocks a split needs.
  ks = Math.ceil(blocks / Math.ceil(blocks / ks));
  const partBytes = shape.batch * shape.heads * n * d * 4;
  if (ks > 1 && ks * partBytes > maxBindingBytes) {
    ks = Math.max(1, Math.floor(maxBindingBytes / partBytes));
  }
  return ks;
}

/**
 * Bytes of workgroup memory the larger of the two tiled passes declares (both with `t`).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { standardWorkgroupBytes } from "./mod.ts";
 * assert(standardWorkgroupBytes(64, "f32", { br: 32, bc: 32, rm: 4, tx: 8 }) === 17408);
 * ```
 */
export function standardWorkgroupBytes(d: number, dtype: Dtype, t: Tiles): number {
  const e = dtype === "f16" ? 2 : 4;
  const scores = (t.br + t.bc) * (d + 4) * e;
  const pv = t.br * (t.bc + 4) * 4 + t.bc * d * e;
  return Math.max(scores, pv, SOFTMAX_WG * 4);
}

/** The cache key of one pass: every knob that changes its source. */
export function standardKey(k: StandardKnobs, pass: StandardPass): string {
  const tiles = (t: Tiles) => `d${k.d}/br${t.br}-bc${t.bc}-rm${t.rm}-tx${t.tx}`;
  const m = k.softmax;
  const what = pass === "softmax"
    ? `tpr${m.tpr}-rows${m.rows}-cache${m.cache}-sg${m.sg}`
    : pass === "scores"
    ? tiles(k.scoresTiles)
    : pass === "pv"
    ? `${tiles(k.tiles)}-ks${k.splits}`
    : `d${k.d}-ks${k.splits}`;
  return `standard-${pass}/${what}`;
}

// How pv.wgsl stores one vec4 of its result: to O when unsplit, else to its split's partial.
const STORE_O = `fn store(bh: u32, split: u32, row: u32, c4: u32, x: vec4<f32>) {
  o[(bh * params.n + row) * D4 + c4] = T4(x);
  count_write(SLOT_O, 4u * T_BYTES);
}`;
const STORE_PART = `fn store(bh: u32, split: u32, row: u32, c4: u32, x: vec4<f32>) {
  part[((bh * KS + split) * params.n + row) * D4 + c4] = x;
  count_write(SLOT_PART_O, 16u);
}`;

/**
 * The WGSL source of one pass, after the generated header: its constants, then its body.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { softmaxShape, standardSource } from "./mod.ts";
 * const tiles = { br: 32, bc: 32, rm: 4, tx: 8 };
 * const knobs = { d: 64, tiles, scoresTiles: tiles, splits: 1, softmax: softmaxShape(77, {}, 0) };
 * assert(standardSource(knobs, "softmax").includes("const CACHE"));
 * ```
 */
export function standardSource(k: StandardKnobs, pass: StandardPass): string {
  if (pass === "softmax") {
    const m = k.softmax;
    return [
      `const TPR: u32 = ${m.tpr}u;`,
      `const ROWS: u32 = ${m.rows}u;`,
      "const WG: u32 = TPR * ROWS;",
      `const CACHE: u32 = ${m.cache}u;`,
      ...(m.sg > 0 ? [`const SG: u32 = ${m.sg}u;`] : []),
      unrollLoops(softmaxBody, { CACHE: m.cache }),
      m.sg > 0 ? softmaxSubgroup : softmaxTree,
    ].join("\n");
  }
  if (pass === "pvsum") {
    return [
      `const D4: u32 = ${k.d / 4}u;`,
      `const KS: u32 = ${k.splits}u;`,
      `const WG: u32 = ${2 * k.d}u;`,
      pvSumBody,
    ].join("\n");
  }
  const t = pass === "scores" ? k.scoresTiles : k.tiles;
  const { lines, bounds } = tileConstants(k.d, t);
  // Staging loads a thread: scores, Q (BR x D4 vec4) and K (BC x D4); P·V, P (BR x BC scalars)
  // and V (BC x D4 vec4).
  const wg = tileThreads(t);
  const loads = pass === "scores"
    ? { LOADS_A: (t.br * k.d) / 4 / wg, LOADS_B: Math.ceil((t.bc * k.d) / 4 / wg) }
    : { LOADS_A: (t.br * t.bc) / wg, LOADS_B: Math.ceil((t.bc * k.d) / 4 / wg) };
  const body = unrollLoops(pass === "scores" ? scoresBody : pvBody, { ...bounds, ...loads });
  const consts = [
    ...lines,
    `const LOADS_A: u32 = ${loads.LOADS_A}u;`,
    `const LOADS_B: u32 = ${loads.LOADS_B}u;`,
  ];
  if (pass === "scores") return [...consts, body].join("\n");
  return [
    ...consts,
    `const KS: u32 = ${k.splits}u;`,
    body,
    k.splits > 1 ? STORE_PART : STORE_O,
  ].join("\n");
}

const UNIFORM_BYTES = 16;

/**
 * Exact bytes per slot the passes move (the counting variant must count the same): scores read
 * Q once per key tile column and K once per query tile row of the scores tiles and write S; the
 * softmax reads each row of S up to its causal end (the part past its register cache twice) and
 * writes P; P·V reads P and, per row block of the P·V tiles, V once over all its splits; unsplit
 * it writes O, split each split writes a partial (f32) that the sum pass reads back before it
 * writes O; every workgroup reads the 16-byte uniform once.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { softmaxShape, standardTraffic } from "./mod.ts";
 * const shape = { batch: 1, heads: 1, n: 10, d: 32, dtype: "f32", causal: true } as const;
 * const tiles = { br: 8, bc: 8, rm: 2, tx: 4 };
 * const knobs = { d: 32, tiles, scoresTiles: tiles, splits: 1, softmax: softmaxShape(10, {}, 0) };
 * assert(standardTraffic(shape, knobs).s!.write === 400);
 * ```
 */
export function standardTraffic(shape: AttentionShape, k: StandardKnobs) {
  const { n, d } = shape;
  const e = dtypeBytes(shape.dtype);
  const heads = shape.batch * shape.heads;
  const t = emptyTraffic(standardSlots(k.splits));
  const tr = Math.ceil(n / k.tiles.br);
  const trS = Math.ceil(n / k.scoresTiles.br);
  const tcS = Math.ceil(n / k.scoresTiles.bc);
  const sum = k.splits > 1 ? Math.ceil(n / SUM_ROWS) : 0;
  t.uniform!.read += UNIFORM_BYTES *
    (tcS * trS + Math.ceil(n / k.softmax.rows) + tr * k.splits + sum);
  t.q!.read += tcS * n * d * e;
  t.k!.read += trS * n * d * e;
  t.s!.write += n * n * e;
  const cached = k.softmax.cache * k.softmax.tpr;
  for (let row = 0; row < n; row++) {
    const end = shape.causal ? row + 1 : n;
    t.s!.read += (Math.min(end, cached) + 2 * Math.max(0, end - cached)) * e;
  }
  t.p!.write += n * n * e;
  t.p!.read += n * n * e;
  t.v!.read += tr * n * d * e;
  if (k.splits > 1) {
    t.part_o!.write += k.splits * n * d * 4;
    t.part_o!.read += k.splits * n * d * 4;
  }
  t.o!.write += n * d * e;
  for (const slot of Object.values(t)) {
    slot.read *= heads;
    slot.write *= heads;
  }
  return t;
}

/**
 * The bytes of each pass of a plan over these chunks, in dispatch order (each chunk's scores,
 * softmax and P·V, then the sum of P·V's splits): what that one dispatch reads and writes of
 * every slot, its workgroups' uniform reads included. A chunk's passes move the unsplit passes'
 * bytes for its heads and rows (its rows are whole query tiles of both tiled passes and whole
 * softmax workgroups, but the last rows of a head), so the passes add up to
 * {@linkcode standardTraffic}.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { softmaxShape, standardPassTraffic, standardTraffic } from "./mod.ts";
 * const shape = { batch: 1, heads: 1, n: 10, d: 32, dtype: "f32", causal: true } as const;
 * const tiles = { br: 8, bc: 8, rm: 2, tx: 4 };
 * const knobs = { d: 32, tiles, scoresTiles: tiles, splits: 1, softmax: softmaxShape(10, {}, 0) };
 * const chunks = [{ first: 0, heads: 1, rows: 8 }, { first: 8, heads: 1, rows: 2 }];
 * const passes = standardPassTraffic(shape, knobs, chunks);
 * assert(passes.length === 6 && passes[3]!.s!.write === 2 * 10 * 4);
 * assert(passes[1]!.s!.read + passes[4]!.s!.read === standardTraffic(shape, knobs).s!.read);
 * ```
 */
export function standardPassTraffic(
  shape: AttentionShape,
  k: StandardKnobs,
  chunks: readonly StandardChunk[],
): CountedBytes[] {
  const { n, d } = shape;
  const e = dtypeBytes(shape.dtype);
  const slots = standardSlots(k.splits);
  const cached = k.softmax.cache * k.softmax.tpr;
  const out = chunks.flatMap((c) => {
    const r0 = c.first % n;
    const rows = c.rows;
    const trS = Math.ceil(rows / k.scoresTiles.br);
    const tcS = Math.ceil(n / k.scoresTiles.bc);
    const tr = Math.ceil(rows / k.tiles.br);
    const scores = emptyTraffic(slots);
    scores.uniform!.read = UNIFORM_BYTES * tcS * trS;
    scores.q!.read = tcS * rows * d * e;
    scores.k!.read = trS * n * d * e;
    scores.s!.write = rows * n * e;
    const softmax = emptyTraffic(slots);
    softmax.uniform!.read = UNIFORM_BYTES * Math.ceil(rows / k.softmax.rows);
    for (let row = r0; row < r0 + rows; row++) {
      const end = shape.causal ? row + 1 : n;
      softmax.s!.read += (Math.min(end, cached) + 2 * Math.max(0, end - cached)) * e;
    }
    softmax.p!.write = rows * n * e;
    const pv = emptyTraffic(slots);
    pv.uniform!.read = UNIFORM_BYTES * tr * k.splits;
    pv.p!.read = rows * n * e;
    pv.v!.read = tr * n * d * e;
    if (k.splits > 1) pv.part_o!.write = k.splits * rows * d * 4;
    else pv.o!.write = rows * d * e;
    return [scores, softmax, pv].map((t) => scaled(t, c.heads));
  });
  if (k.splits > 1) {
    const sum = emptyTraffic(slots);
    sum.uniform!.read = UNIFORM_BYTES * Math.ceil(n / SUM_ROWS);
    sum.part_o!.read = k.splits * n * d * 4;
    sum.o!.write = n * d * e;
    out.push(scaled(sum, shape.batch * shape.heads));
  }
  return out;
}

/** Traffic times `heads` (bytes a head to bytes of `heads` heads). */
function scaled(t: CountedBytes, heads: number): CountedBytes {
  return Object.fromEntries(
    Object.entries(t).map(([slot, x]) => [slot, { read: x.read * heads, write: x.write * heads }]),
  );
}

/** One dispatch chunk of S and P: `heads` whole heads, or `rows` rows of one head. */
export interface StandardChunk {
  /** Flattened first row (head · n + row) of the chunk. */
  first: number;
  /** Heads in the chunk (1 when the chunk is rows of one head). */
  heads: number;
  /** Rows of S per head in the chunk (n for whole heads). */
  rows: number;
}

/**
 * How standard splits S and P so that no buffer exceeds `maxBytes` (a WebGPU binding limit,
 * 2 GiB on the H200, not the GPU's memory): one chunk when all of S fits, else as many whole
 * heads a chunk as fit, else rows of one head a chunk (a multiple of the query tiles of both
 * tiled passes and of the softmax pass's rows, so the dispatches' workgroups, and so the modeled
 * bytes, are those of one unsplit dispatch). Empty when not even those rows fit.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { standardChunks } from "./mod.ts";
 * const shape = { batch: 1, heads: 16, n: 16384, d: 64, dtype: "f32", causal: false } as const;
 * const tiles = { br: 64, bc: 32, rm: 4, tx: 16 };
 * assert(standardChunks(shape, tiles, 2 ** 31 - 4).length === 16);
 * assert(standardChunks({ ...shape, n: 32768 }, tiles, 2 ** 31 - 4).length === 48);
 * ```
 */
export function standardChunks(
  shape: AttentionShape,
  tiles: Tiles,
  maxBytes: number,
  scoresTiles: Tiles = tiles,
): StandardChunk[] {
  const { n } = shape;
  const heads = shape.batch * shape.heads;
  const rowBytes = n * dtypeBytes(shape.dtype);
  const maxRows = Math.floor(maxBytes / rowBytes);
  if (maxRows >= heads * n) return [{ first: 0, heads, rows: n }];
  if (maxRows >= n) {
    const per = Math.floor(maxRows / n);
    return Array.from({ length: Math.ceil(heads / per) }, (_, i) => ({
      first: i * per * n,
      heads: Math.min(per, heads - i * per),
      rows: n,
    }));
  }
  const unit = lcm(lcm(tiles.br, scoresTiles.br), SOFTMAX_ROWS);
  const rows = Math.floor(maxRows / unit) * unit;
  if (rows === 0) return [];
  const out: StandardChunk[] = [];
  for (let h = 0; h < heads; h++) {
    for (let r = 0; r < n; r += rows) {
      out.push({ first: h * n + r, heads: 1, rows: Math.min(rows, n - r) });
    }
  }
  return out;
}

function lcm(a: number, b: number): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  return (a / gcd(a, b)) * b;
}

/** Counter slots of the standard kernel (P·V's partial sums only when it splits). */
function standardSlots(splits: number): readonly string[] {
  const slots = ["q", "k", "v", "o", "s", "p", "uniform"];
  return splits > 1 ? [...slots, "part_o"] : slots;
}

/**
 * A standard kernel with these knobs, named `name` (the registry's {@linkcode standard} is
 * `standardWith("standard", {})`): how one run compares scores tiles, P·V splits and softmax
 * layouts side by side.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { standardWith } from "./mod.ts";
 * const k = standardWith("standard-ks1", { pvSplits: 1 });
 * const shape = { batch: 1, heads: 1, n: 77, d: 32, dtype: "f32", causal: false } as const;
 * const plan = k.plan({ shape, tiles: { br: 8, bc: 8, rm: 2, tx: 4 } });
 * assert(plan.passes().map((p) => p.name).join() === "scores,softmax,pv");
 * ```
 */
export function standardWith(name: string, o: StandardOptions): Kernel {
  const scoresOf = (t: Tiles) => o.scoresTiles ?? t;
  const kernel: Kernel = {
    name,
    summary: "Algorithm 0: scores, softmax and P·V, three dispatches through S and P in memory",
    mode: "fwd",
    display: { label: name, hue: 8, saturation: 72 },
    sparse: false,
    densitySweep: "none",
    baseline: null,
    tunedLike: null,
    threads: (t) => Math.max(tileThreads(t), tileThreads(scoresOf(t)), SOFTMAX_WG),
    workgroupBytes: (d, dtype, t) =>
      Math.max(standardWorkgroupBytes(d, dtype, t), standardWorkgroupBytes(d, dtype, scoresOf(t))),
    tileProblem: (d, t) => tileStructureProblem(d, t) ?? tileStructureProblem(d, scoresOf(t)),
    plan: (request) => standardPlan(kernel, o, request),
  };
  return kernel;
}

function standardPlan(
  kernel: Kernel,
  o: StandardOptions,
  { shape, tiles, scale: given, maxBindingBytes, subgroupSize }: Parameters<Kernel["plan"]>[0],
): KernelPlan {
  const scale = given ?? 1 / Math.sqrt(shape.d);
  const scoresTiles = o.scoresTiles ?? tiles;
  const limit = maxBindingBytes ?? Infinity;
  const fitted = standardChunks(shape, tiles, limit, scoresTiles);
  // Not even a chunk of rows fits: one chunk, which the runner refuses with S's size.
  const chunks = fitted.length > 0 ? fitted : standardChunks(shape, tiles, Infinity, scoresTiles);
  const split = chunks.length > 1;
  const chunkHeads = Math.max(...chunks.map((c) => c.heads));
  const splits = pvSplits(shape, tiles, chunkHeads, o.pvSplits ?? 0, limit);
  const knobs: StandardKnobs = {
    d: shape.d,
    tiles,
    scoresTiles,
    splits,
    softmax: softmaxShape(shape.n, o, subgroupSize ?? 0),
  };
  const heads = shape.batch * shape.heads;
  const tc = Math.ceil(shape.n / scoresTiles.bc);
  const e = dtypeBytes(shape.dtype);
  const scratch: BufferSpec[] = chunks.flatMap((c, i) => {
    const bytes = c.heads * c.rows * shape.n * e;
    const at = split ? ` (chunk ${i + 1} of ${chunks.length})` : "";
    return [
      { name: split ? `s${i}` : "s", label: `S${at}`, role: "scratch", bytes, element: "T" },
      { name: split ? `p${i}` : "p", label: `P${at}`, role: "scratch", bytes, element: "T" },
    ] as const;
  });
  if (splits > 1) {
    scratch.push({
      name: "part",
      label: `P·V's ${splits} partial sums`,
      role: "scratch",
      bytes: heads * splits * shape.n * shape.d * 4,
      element: "vec4<f32>",
    });
  }
  // One source per pass kind, however many chunks run it.
  const sources = new Map<StandardPass, string>();
  const sourceOf = (name: StandardPass) => {
    if (!sources.has(name)) sources.set(name, standardSource(knobs, name));
    return sources.get(name)!;
  };
  const pass = (
    name: StandardPass,
    i: number,
    bindings: PassSpec["bindings"],
    grid: PassSpec["grid"],
    moves: PassSpec["moves"],
  ): PassSpec => ({
    name: split && name !== "pvsum" ? `${name}#${i + 1}` : name,
    key: standardKey(knobs, name),
    source: sourceOf(name),
    bindings,
    uniforms: [
      { name: "n", type: "u32", value: shape.n },
      { name: "first", type: "u32", value: chunks[i]?.first ?? 0 },
      { name: "causal", type: "u32", value: shape.causal ? 1 : 0 },
      { name: "scale", type: "f32", value: scale },
    ],
    grid,
    moves,
  });
  const sOf = (i: number) => (split ? `s${i}` : "s");
  const pOf = (i: number) => (split ? `p${i}` : "p");
  const out = splits > 1 ? "part" : "o";
  const outSlot = splits > 1 ? "part_o" : "o";
  return {
    kernel,
    shape,
    tiles,
    scale,
    mask: null,
    density: 1,
    buffers: [...qkvoBuffers(shape), ...scratch],
    slots: standardSlots(splits),
    passes: () => [
      ...chunks.flatMap((c, i) => [
        pass(
          "scores",
          i,
          [
            { buffer: "q", access: "read" },
            { buffer: "k", access: "read" },
            { buffer: sOf(i), access: "read_write", as: "s" },
          ],
          [tc, Math.ceil(c.rows / scoresTiles.br), c.heads],
          [["q", "read"], ["k", "read"], ["s", "write"]],
        ),
        pass(
          "softmax",
          i,
          [
            { buffer: sOf(i), access: "read", as: "s" },
            { buffer: pOf(i), access: "read_write", as: "p" },
          ],
          [Math.ceil(c.rows / knobs.softmax.rows), c.heads],
          [["s", "read"], ["p", "write"]],
        ),
        pass(
          "pv",
          i,
          [
            { buffer: "v", access: "read" },
            { buffer: pOf(i), access: "read", as: "p" },
            { buffer: out, access: "read_write" },
          ],
          [Math.ceil(c.rows / tiles.br), splits, c.heads],
          [["p", "read"], ["v", "read"], [outSlot, "write"]],
        ),
      ]),
      ...(splits > 1
        ? [pass(
          "pvsum",
          chunks.length,
          [{ buffer: "part", access: "read" }, { buffer: "o", access: "read_write" }],
          [Math.ceil(shape.n / SUM_ROWS), heads],
          [["part_o", "read"], ["o", "write"]],
        )]
        : []),
    ],
    modeledTraffic: () => standardTraffic(shape, knobs),
    // A chunk's pass moves part of each slot's bytes: its own, per pass.
    passTraffic: () => standardPassTraffic(shape, knobs, chunks),
    theoreticalBytes: () => standardAttentionBytes(shape),
    lowerBoundBytes: () => lowerBoundBytes(shape),
    idealBytes: () => ({}),
    flops: (mode) => attentionFlops(shape, mode),
    denseFlops: (mode) => attentionFlops(shape, mode),
    randomInputs: (seed) => ({ ...randomInputs(shape, seed) }),
    reference: (inputs) => ({
      o: referenceAttention(shape, need(inputs, "q"), need(inputs, "k"), need(inputs, "v"), {
        scale,
      }),
    }),
  };
}

/** The standard kernel's registry entry. */
export const standard: Kernel = standardWith("standard", {});
