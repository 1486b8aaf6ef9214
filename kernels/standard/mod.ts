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
import pvBody from "./pv.wgsl" with { type: "text" };
import { type AttentionShape, type Dtype, dtypeBytes, type Tiles } from "../../core/shapes.ts";
import { lowerBoundBytes, standardAttentionBytes } from "../../analysis/io_model.ts";
import { need, qkvoBuffers, randomInputs } from "../common.ts";
import {
  attentionFlops,
  emptyTraffic,
  type Kernel,
  type KernelPlan,
  type PassSpec,
} from "../kernel.ts";
import { tileConstants, tileStructureProblem, tileThreads, unrollLoops } from "../program.ts";
import { referenceAttention } from "../reference.ts";

/** Threads a row of the softmax pass (a power of two: the reduction is a tree). */
export const SOFTMAX_THREADS = 32;
/** Rows a workgroup of the softmax pass. */
export const SOFTMAX_ROWS = 8;
/** Row elements each softmax thread keeps in registers; the tail of a longer row is re-read. */
export const SOFTMAX_CACHE = 64;

/** Compile-time knobs of the standard kernel's tiled passes. */
export interface StandardKnobs {
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
 * import { standardWorkgroupBytes } from "./mod.ts";
 * console.assert(standardWorkgroupBytes(64, "f32", { br: 32, bc: 32, rm: 4, tx: 8 }) === 17408);
 * ```
 */
export function standardWorkgroupBytes(d: number, dtype: Dtype, t: Tiles): number {
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
  return `standard-${pass}/${tiles}`;
}

/**
 * The WGSL source of one pass, after the generated header: its constants, then its body.
 *
 * @example
 * ```ts
 * import { standardSource } from "./mod.ts";
 * const knobs = { d: 64, tiles: { br: 32, bc: 32, rm: 4, tx: 8 } };
 * console.assert(standardSource(knobs, "softmax").includes("const CACHE"));
 * ```
 */
export function standardSource(k: StandardKnobs, pass: StandardPass): string {
  const t = k.tiles;
  if (pass === "softmax") {
    return [
      `const TPR: u32 = ${SOFTMAX_THREADS}u;`,
      `const ROWS: u32 = ${SOFTMAX_ROWS}u;`,
      "const WG: u32 = TPR * ROWS;",
      `const CACHE: u32 = ${SOFTMAX_CACHE}u;`,
      unrollLoops(softmaxBody, { CACHE: SOFTMAX_CACHE }),
    ].join("\n");
  }
  const { lines, bounds } = tileConstants(k.d, t);
  const body = unrollLoops(pass === "scores" ? scoresBody : pvBody, bounds);
  return [...lines, body].join("\n");
}

const UNIFORM_BYTES = 16;

/**
 * Exact bytes per slot the three passes move (the counting variant must count the same):
 * scores read Q once per key tile column and K once per query tile row and write S; the
 * softmax reads each row of S (the tail past its register cache three times, the last two only
 * up to the causal end) and writes P; P·V reads P and V once per row block and writes O; every
 * workgroup reads the 16-byte uniform once.
 *
 * @example
 * ```ts
 * import { standardTraffic } from "./mod.ts";
 * const shape = { batch: 1, heads: 1, n: 10, d: 32, dtype: "f32", causal: true } as const;
 * console.assert(standardTraffic(shape, { br: 8, bc: 8, rm: 2, tx: 4 }).s!.write === 400);
 * ```
 */
export function standardTraffic(shape: AttentionShape, tiles: Tiles) {
  const { n, d } = shape;
  const e = dtypeBytes(shape.dtype);
  const heads = shape.batch * shape.heads;
  const t = emptyTraffic(SLOTS);
  const tr = Math.ceil(n / tiles.br);
  const tc = Math.ceil(n / tiles.bc);
  t.uniform!.read += UNIFORM_BYTES * (tc * tr + Math.ceil(n / SOFTMAX_ROWS) + tr);
  t.q!.read += tc * n * d * e;
  t.k!.read += tr * n * d * e;
  t.s!.write += n * n * e;
  const cached = SOFTMAX_CACHE * SOFTMAX_THREADS;
  for (let row = 0; row < n; row++) {
    const end = shape.causal ? row + 1 : n;
    let reads = Math.min(n, cached);
    if (n > cached) reads += n - cached + 2 * Math.max(0, end - cached);
    t.s!.read += reads * e;
  }
  t.p!.write += n * n * e;
  t.p!.read += n * n * e;
  t.v!.read += tr * n * d * e;
  t.o!.write += n * d * e;
  for (const slot of Object.values(t)) {
    slot.read *= heads;
    slot.write *= heads;
  }
  return t;
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
 * heads a chunk as fit, else rows of one head a chunk (a multiple of the query tile and of the
 * softmax pass's rows, so the dispatches' workgroups, and so the modeled bytes, are those of
 * one unsplit dispatch). Empty when not even those rows fit.
 *
 * @example
 * ```ts
 * import { standardChunks } from "./mod.ts";
 * const shape = { batch: 1, heads: 16, n: 16384, d: 64, dtype: "f32", causal: false } as const;
 * const tiles = { br: 64, bc: 32, rm: 4, tx: 16 };
 * console.assert(standardChunks(shape, tiles, 2 ** 31 - 4).length === 16);
 * console.assert(standardChunks({ ...shape, n: 32768 }, tiles, 2 ** 31 - 4).length === 48);
 * ```
 */
export function standardChunks(
  shape: AttentionShape,
  tiles: Tiles,
  maxBytes: number,
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
  const unit = lcm(tiles.br, SOFTMAX_ROWS);
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

/** Counter slots of the standard kernel. */
const SLOTS = ["q", "k", "v", "o", "s", "p", "uniform"] as const;

/** The standard kernel's registry entry. */
export const standard: Kernel = {
  name: "standard",
  summary: "Algorithm 0: scores, softmax and P·V, three dispatches through S and P in memory",
  mode: "fwd",
  display: { label: "standard", hue: 8, saturation: 72 },
  sparse: false,
  densitySweep: "none",
  baseline: null,
  tunedLike: null,
  threads: tileThreads,
  workgroupBytes: standardWorkgroupBytes,
  tileProblem: tileStructureProblem,
  plan({ shape, tiles, scale: given, maxBindingBytes }): KernelPlan {
    const scale = given ?? 1 / Math.sqrt(shape.d);
    const knobs = { d: shape.d, tiles };
    const tc = Math.ceil(shape.n / tiles.bc);
    const fitted = standardChunks(shape, tiles, maxBindingBytes ?? Infinity);
    // Not even a chunk of rows fits: one chunk, which the runner refuses with S's size.
    const chunks = fitted.length > 0 ? fitted : standardChunks(shape, tiles, Infinity);
    const split = chunks.length > 1;
    const e = dtypeBytes(shape.dtype);
    const scratch = chunks.flatMap((c, i) => {
      const bytes = c.heads * c.rows * shape.n * e;
      const at = split ? ` (chunk ${i + 1} of ${chunks.length})` : "";
      return [
        { name: split ? `s${i}` : "s", label: `S${at}`, role: "scratch", bytes, element: "T" },
        { name: split ? `p${i}` : "p", label: `P${at}`, role: "scratch", bytes, element: "T" },
      ] as const;
    });
    const pass = (
      name: StandardPass,
      i: number,
      bindings: PassSpec["bindings"],
      grid: PassSpec["grid"],
      moves: PassSpec["moves"],
    ): PassSpec => ({
      name: split ? `${name}#${i + 1}` : name,
      key: standardKey(knobs, name),
      source: sourceOf(name),
      bindings,
      uniforms: [
        { name: "n", type: "u32", value: shape.n },
        { name: "first", type: "u32", value: chunks[i]!.first },
        { name: "causal", type: "u32", value: shape.causal ? 1 : 0 },
        { name: "scale", type: "f32", value: scale },
      ],
      grid,
      // A chunk's pass moves part of each slot's bytes: per-pass GB/s only when unsplit.
      moves: split ? [] : moves,
    });
    // One source per pass kind, however many chunks run it.
    const sources = new Map<StandardPass, string>();
    const sourceOf = (name: StandardPass) => {
      if (!sources.has(name)) sources.set(name, standardSource(knobs, name));
      return sources.get(name)!;
    };
    const sOf = (i: number) => (split ? `s${i}` : "s");
    const pOf = (i: number) => (split ? `p${i}` : "p");
    return {
      kernel: standard,
      shape,
      tiles,
      scale,
      mask: null,
      density: 1,
      buffers: [...qkvoBuffers(shape), ...scratch],
      slots: SLOTS,
      passes: () => [
        ...chunks.flatMap((c, i) => {
          const tr = Math.ceil(c.rows / tiles.br);
          return [
            pass(
              "scores",
              i,
              [
                { buffer: "q", access: "read" },
                { buffer: "k", access: "read" },
                { buffer: sOf(i), access: "read_write", as: "s" },
              ],
              [tc, tr, c.heads],
              [["q", "read"], ["k", "read"], ["s", "write"]],
            ),
            pass(
              "softmax",
              i,
              [
                { buffer: sOf(i), access: "read", as: "s" },
                { buffer: pOf(i), access: "read_write", as: "p" },
              ],
              [Math.ceil(c.rows / SOFTMAX_ROWS), c.heads],
              [["s", "read"], ["p", "write"]],
            ),
            pass(
              "pv",
              i,
              [
                { buffer: "v", access: "read" },
                { buffer: pOf(i), access: "read", as: "p" },
                { buffer: "o", access: "read_write" },
              ],
              [tr, c.heads],
              [["p", "read"], ["v", "read"], ["o", "write"]],
            ),
          ];
        }),
      ],
      modeledTraffic: () => standardTraffic(shape, tiles),
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
  },
};
