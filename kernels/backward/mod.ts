/**
 * The backward kernels' registry entries: `standard-bwd` (Algorithm 3: dV, dP, dS, dQ, dK
 * through GPU memory), `flash-bwd` (recomputation from the forward's log-sum-exp: delta, dK/dV
 * with key blocks outer, dQ with query blocks outer) and `block-sparse-bwd` (the flash passes over
 * the blocks a mask keeps).
 *
 * Each is a {@linkcode Kernel} of mode `"bwd"` whose {@linkcode Kernel.forward} names the forward
 * kernel it differentiates; the runner (`../attention.ts`) runs it like any other kernel: inputs
 * Q, K, V, dO and what the forward left (O and the log-sum-exp; standard: P), outputs dQ, dK, dV.
 *
 * @module
 */

import { type AttentionShape, dtypeBytes, type Tiles } from "../../core/shapes.ts";
import { mulberry32, randomNormal } from "../../core/rng.ts";
import { UsageError } from "../../core/errors.ts";
import {
  lowerBoundBackwardBytes,
  theoreticalBackwardBytes,
} from "../../analysis/io_model_backward.ts";
import { need, randomInputs, shapeUniforms, tensorBytes } from "../common.ts";
import {
  attentionFlops,
  type BufferSpec,
  type Kernel,
  type KernelPlan,
  type PassSpec,
} from "../kernel.ts";
import type { BlockMask } from "../masks.ts";
import { blockMaskFor } from "../block_sparse/mod.ts";
import { type StandardChunk, standardChunks } from "../standard/mod.ts";
import { backwardSlots, modeledBackward, modeledBackwardPasses } from "./modeled.ts";
import {
  atomicDq,
  type BackwardFamily,
  DELTA_ROWS,
  DQ_FILL_THREADS,
  DQ_MODES,
  dqAccumulator,
  type DqMode,
  DS_ROWS,
  FLASH_ATOMIC_PASSES,
  FLASH_PASSES,
  flashBackwardKey,
  flashBackwardSource,
  flashBackwardTileProblem,
  flashBindings,
  maskCsc,
  STANDARD_PASSES,
  standardBackwardKey,
  standardBackwardSource,
  standardBindings,
} from "./program.ts";
import { referenceBackward } from "./reference.ts";
import { BACKWARD_TILE_CANDIDATES, backwardFootprints } from "./tiles.ts";

/** The log-sum-exp the forward kernels write for a row whose every key is masked. */
export const MASKED_LSE = -3.0e38;

/**
 * The seeded upstream gradient dO of a problem: N(0, 1), rounded to the dtype.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { randomDout } from "./mod.ts";
 * const shape = { batch: 1, heads: 2, n: 3, d: 4, dtype: "f16", causal: false } as const;
 * assert(randomDout(shape, 1).length === 24);
 * ```
 */
export function randomDout(shape: AttentionShape, seed: number): Float32Array {
  const dout = randomNormal(
    mulberry32(seed ^ 0x2545f491),
    tensorBytes(shape) / dtypeBytes(shape.dtype),
  );
  return shape.dtype === "f16" ? new Float32Array(new Float16Array(dout)) : dout;
}

/**
 * Seeded inputs of a backward problem: Q, K, V from the forward's generator, dO drawn
 * N(0, 1) from the seed, all rounded to the dtype, and what the forward leaves for the backward
 * (O, rounded to the dtype, and the log-sum-exp, as the forward kernels write them; standard: P), computed by the
 * float64 reference (N² work a head: for checks, not for timing large shapes).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { backwardInputs } from "./mod.ts";
 * const shape = { batch: 1, heads: 1, n: 3, d: 4, dtype: "f32", causal: false } as const;
 * const x = backwardInputs("standard", shape, 1, null);
 * assert(x.p!.length === 9 && x.dout!.length === 12 && x.o === undefined);
 * ```
 */
export function backwardInputs(
  family: BackwardFamily,
  shape: AttentionShape,
  seed: number,
  mask: BlockMask | null,
  scale?: number,
): Record<string, Float32Array> {
  const { q, k, v } = randomInputs(shape, seed);
  const dout = randomDout(shape, seed);
  const standard = family === "standard";
  const ref = referenceBackward(shape, q, k, v, dout, {
    mask: mask ?? undefined,
    scale,
    keepP: standard,
  });
  if (standard) return { q, k, v, dout, p: new Float32Array(ref.p!) };
  const lse = new Float32Array(ref.lse.map((x) => x === -Infinity ? MASKED_LSE : x));
  // O rounded as the upload stores it, so the reference's D sees the kernel's O.
  const o = shape.dtype === "f16" ? new Float16Array(ref.o) : new Float32Array(ref.o);
  return { q, k, v, o: new Float32Array(o), dout, lse };
}

/**
 * Inputs to time a backward with, in O(N·d) a head: Q, K, V, dO as {@linkcode backwardInputs}
 * draws them, O drawn N(0, 1), and for each row an upper bound of its log-sum-exp,
 * L_i = τ·|q_i|·max_j |k_j| + ln N, so every recomputed P_ij = exp(τ q_i·k_j − L_i) ≤ 1/N stays
 * finite; standard: P uniform, 1/N a row (N² a head on the host: keep such runs small, or time
 * standard through `--pass fwd+bwd`, where the forward writes P on the GPU).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { backwardTimingInputs } from "./mod.ts";
 * const shape = { batch: 1, heads: 1, n: 4, d: 4, dtype: "f32", causal: false } as const;
 * const x = backwardTimingInputs("flash", shape, 1);
 * assert(x.lse!.length === 4 && x.lse!.every(Number.isFinite));
 * ```
 */
export function backwardTimingInputs(
  family: BackwardFamily,
  shape: AttentionShape,
  seed: number,
  scale = 1 / Math.sqrt(shape.d),
): Record<string, Float32Array> {
  const { q, k, v } = randomInputs(shape, seed);
  const dout = randomDout(shape, seed);
  const { n, d } = shape;
  const heads = shape.batch * shape.heads;
  if (family === "standard") {
    return { q, k, v, dout, p: new Float32Array(heads * n * n).fill(1 / n) };
  }
  const norm = (x: Float32Array, row: number) => {
    let s = 0;
    for (let c = 0; c < d; c++) s += x[row * d + c]! ** 2;
    return Math.sqrt(s);
  };
  const lse = new Float32Array(heads * n);
  for (let h = 0; h < heads; h++) {
    let kMax = 0;
    for (let j = 0; j < n; j++) kMax = Math.max(kMax, norm(k, h * n + j));
    for (let i = 0; i < n; i++) {
      lse[h * n + i] = Math.abs(scale) * norm(q, h * n + i) * kMax + Math.log(n);
    }
  }
  const o = randomNormal(mulberry32(seed ^ 0x5bd1e995), q.length);
  return {
    q,
    k,
    v,
    o: shape.dtype === "f16" ? new Float32Array(new Float16Array(o)) : o,
    dout,
    lse,
  };
}

/** The N×N buffers of the standard backward (split in chunks of whole heads when large). */
const SQUARE = ["p", "dp", "ds"];

/**
 * The chunks of whole heads the standard backward splits P, dP and dS into so that none exceeds
 * `maxBytes` (one binding): the forward's split (`standardChunks`), so a forward+backward
 * composite's backward reads the forward's P chunks. The modeled bytes are those of one unsplit
 * run: each chunk's dispatches are the unsplit ones restricted to its heads. When a single head's
 * N×N exceeds the limit (the forward would split rows of one head, which the transposed products
 * dV = Pᵀ dO and dK = dSᵀ Q cannot read across), one unsplit chunk: the runner then refuses P with
 * its size.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { standardBackwardChunks } from "./mod.ts";
 * const shape = { batch: 64, heads: 16, n: 1024, d: 64, dtype: "f16", causal: false } as const;
 * const tiles = { br: 64, bc: 64, rm: 4, tx: 16 };
 * // P is 2^31 bytes in f16: two chunks, 1023 heads and 1, under a 2 GiB − 4 binding limit.
 * const chunks = standardBackwardChunks(shape, tiles, 2 ** 31 - 4);
 * assert(chunks.length === 2 && chunks[0]!.heads === 1023);
 * assert(standardBackwardChunks(shape, tiles, Infinity).length === 1);
 * ```
 */
export function standardBackwardChunks(
  shape: AttentionShape,
  tiles: Tiles,
  maxBytes = Infinity,
): StandardChunk[] {
  const chunks = standardChunks(shape, tiles, maxBytes);
  if (chunks.length > 0 && chunks.every((c) => c.rows === shape.n)) return chunks;
  return [{ first: 0, heads: shape.batch * shape.heads, rows: shape.n }];
}

/** The plan of one backward problem. */
function backwardPlan(
  kernel: Kernel,
  family: BackwardFamily,
  shape: AttentionShape,
  tiles: Tiles,
  given: number | undefined,
  mask: BlockMask | null,
  maxBindingBytes = Infinity,
  dq: DqMode = "pass",
  prefetch = false,
): KernelPlan {
  const scale = given ?? 1 / Math.sqrt(shape.d);
  const { n } = shape;
  const heads = shape.batch * shape.heads;
  const tensor = tensorBytes(shape);
  const row = heads * n * 4;
  const t4 = (name: string, label: string, role: BufferSpec["role"]): BufferSpec => ({
    name,
    label,
    role,
    bytes: tensor,
    element: "T4",
  });
  const grads = [t4("dq", "dQ", "output"), t4("dk", "dK", "output"), t4("dv", "dV", "output")];
  const uniforms = shapeUniforms(shape, "scale", scale);
  const tr = Math.ceil(n / tiles.br);
  const tc = Math.ceil(n / tiles.bc);
  const knobs = { d: shape.d, tiles, sparse: mask !== null, dq, dtype: shape.dtype, prefetch };
  let buffers: BufferSpec[];
  // Sources are built when asked for (the runner checks the tiles first); the byte models
  // need no source and take any tiles.
  let passes: () => PassSpec[];
  let inputsOf = (seed: number) => backwardInputs(family, shape, seed, mask, scale);
  let timingOf = (seed: number) => backwardTimingInputs(family, shape, seed, scale);
  let perPass = () => modeledBackwardPasses(family, shape, tiles, mask, dq);
  if (family === "standard") {
    // P, dP and dS in chunks of whole heads, each within one binding (the forward's split, so a
    // forward+backward composite shares its P chunks by name); each pass runs once a chunk.
    const chunks = standardBackwardChunks(shape, tiles, maxBindingBytes);
    const split = chunks.length > 1;
    const sq = (name: string, label: string, role: BufferSpec["role"]): BufferSpec[] =>
      chunks.map((c, i) => ({
        name: split ? `${name}${i}` : name,
        label: split ? `${label} (chunk ${i + 1} of ${chunks.length})` : label,
        role,
        bytes: c.heads * n * n * dtypeBytes(shape.dtype),
        element: "T",
      }));
    buffers = [
      t4("q", "Q", "input"),
      t4("k", "K", "input"),
      t4("v", "V", "input"),
      t4("dout", "dO", "input"),
      ...sq("p", "P", "input"),
      ...sq("dp", "dP", "scratch"),
      ...sq("ds", "dS", "scratch"),
      ...grads,
    ];
    passes = () =>
      chunks.flatMap((c, i) => {
        const grids = {
          dv: [tc, c.heads],
          dp: [tc, tr, c.heads],
          ds: [Math.ceil(n / DS_ROWS), c.heads],
          dq: [tr, c.heads],
          dk: [tc, c.heads],
        } as const;
        // The chunk's flattened first row (its first head · n), as the forward's chunks.
        const own = [
          { name: "n", type: "u32", value: n },
          { name: "first", type: "u32", value: c.first },
          { name: "causal", type: "u32", value: shape.causal ? 1 : 0 },
          { name: "scale", type: "f32", value: scale },
        ] as const;
        return STANDARD_PASSES.map((pass) => {
          // dV and dK own key rows (blocks of bc), dQ query rows (blocks of br).
          const passKnobs = pass === "dv" || pass === "dk"
            ? { ...knobs, tiles: { ...tiles, br: tiles.bc } }
            : knobs;
          const bindings = standardBindings(pass).map((b) =>
            split && SQUARE.includes(b.buffer)
              ? { ...b, buffer: `${b.buffer}${i}`, as: b.buffer }
              : b
          );
          return {
            name: split ? `${pass}#${i + 1}` : pass,
            key: standardBackwardKey(passKnobs, pass),
            source: standardBackwardSource(passKnobs, pass),
            bindings,
            uniforms: [...own],
            grid: grids[pass],
            // (Its bytes, a chunk's share of each slot, are the plan's passTraffic.)
            moves: movesOf(bindings),
          };
        });
      });
    const toChunks = (x: Record<string, Float32Array>) => {
      if (!split || !x.p) return x;
      const { p, ...rest } = x;
      return {
        ...rest,
        ...Object.fromEntries(
          chunks.map((c, i) => [`p${i}`, p.subarray(c.first * n, (c.first + c.heads * n) * n)]),
        ),
      };
    };
    inputsOf = (seed) => toChunks(backwardInputs(family, shape, seed, mask, scale));
    // A chunk's passes move exactly what the unsplit passes move for its heads.
    if (split) {
      perPass = () =>
        chunks.flatMap((c) =>
          modeledBackwardPasses(family, { ...shape, batch: 1, heads: c.heads }, tiles, null)
        );
    }
    timingOf = (seed) => toChunks(backwardTimingInputs(family, shape, seed, scale));
  } else {
    buffers = [
      t4("q", "Q", "input"),
      t4("k", "K", "input"),
      t4("v", "V", "input"),
      t4("o", "O", "input"),
      t4("dout", "dO", "input"),
      { name: "lse", label: "LSE", role: "input", bytes: row, element: "f32" },
      { name: "delta", label: "D", role: "scratch", bytes: row, element: "f32" },
      ...grads,
    ];
    if (mask) {
      const csr = mask.csr();
      const csc = maskCsc(mask);
      const lists = [
        ["rowptr", csr.rowptr],
        ["colidx", csr.colidx],
        ["colptr", csc.colptr],
        ["rowidx", csc.rowidx],
      ] as const;
      for (const [name, data] of lists) {
        buffers.push({
          name,
          label: `mask ${name}`,
          role: "input",
          bytes: data.byteLength,
          element: "u32",
          data,
        });
      }
    }
    // The atomic dQ: an f32 accumulator (dq itself in f32; in f16 this scratch, converted to dq).
    if (atomicDq(dq) && dqAccumulator(shape.dtype) === "dqacc") {
      buffers.push({
        name: "dqacc",
        label: "dQ accumulator (f32)",
        role: "scratch",
        bytes: heads * n * shape.d * 4,
        element: "f32",
      });
    }
    const fill = [Math.ceil((n * shape.d) / 4 / DQ_FILL_THREADS), heads] as const;
    const grids = {
      delta: [Math.ceil(n / DELTA_ROWS), heads],
      dkdv: [tc, heads],
      dq: [tr, heads],
      dqzero: fill,
      dqcast: fill,
    } as const;
    const order = dq === "pass"
      ? FLASH_PASSES
      : FLASH_ATOMIC_PASSES.filter((p) => p !== "dqcast" || shape.dtype === "f16");
    passes = () =>
      order.map((pass) => {
        const bindings = flashBindings(pass, knobs.sparse, dq, shape.dtype);
        return {
          name: pass,
          key: flashBackwardKey(knobs, pass),
          source: flashBackwardSource(knobs, pass),
          bindings,
          uniforms,
          grid: grids[pass],
          moves: movesOf(bindings),
        };
      });
  }
  const density = mask?.density ?? 1;
  return {
    kernel,
    shape,
    tiles,
    scale,
    mask,
    density,
    buffers,
    slots: backwardSlots(family, dq, shape.dtype),
    passes,
    modeledTraffic: () => modeledBackward(family, shape, tiles, mask, dq),
    passTraffic: perPass,
    theoreticalBytes: (o) =>
      theoreticalBackwardBytes(family === "standard" ? "standard" : "flash", shape, {
        ...o,
        mask,
      }),
    lowerBoundBytes: () => lowerBoundBackwardBytes(shape, mask),
    idealBytes: () => ({}),
    flops: (mode) => attentionFlops(shape, mode) * density,
    denseFlops: (mode) => attentionFlops(shape, mode),
    randomInputs: inputsOf,
    timingInputs: timingOf,
    reference: (inputs) => {
      const r = referenceBackward(
        shape,
        need(inputs, "q"),
        need(inputs, "k"),
        need(inputs, "v"),
        need(inputs, "dout"),
        // Flash reads D from O as stored (uploaded, or, in a forward+backward composite, as the
        // forward wrote it): the reference mirrors that rounding (`storedO` says why). Standard
        // takes D from P and dP, not from O.
        {
          mask: mask ?? undefined,
          scale,
          storedO: family === "standard" ? undefined : inputs.o ?? shape.dtype,
        },
      );
      return { dq: r.dq, dk: r.dk, dv: r.dv };
    },
    zeroReferenceScale: "dv",
  };
}

/** The counter slots and directions a pass's bindings move (every binding is a slot but masks). */
function movesOf(
  bindings: readonly { buffer: string; access: "read" | "read_write" }[],
): PassSpec["moves"] {
  return bindings
    .filter((b) => !["rowptr", "colidx", "colptr", "rowidx"].includes(b.buffer))
    .map((b) => [b.buffer, b.access === "read" ? "read" : "write"] as const);
}

/** Largest workgroup memory over a backward's passes. */
function workgroupBytes(family: BackwardFamily) {
  return (d: number, dtype: "f32" | "f16", t: Tiles) =>
    Math.max(...backwardFootprints(family, d, dtype, t).map((p) => p.workgroupBytes));
}

/** Largest thread count over a backward's passes. */
function threads(family: BackwardFamily) {
  return (t: Tiles) => Math.max(...backwardFootprints(family, 32, "f32", t).map((p) => p.threads));
}

/** The standard backward's registry entry (Algorithm 3). */
export const standardBwd: Kernel = {
  name: "standard-bwd",
  summary: "standard attention backward (Algorithm 3): P, dP, dS through GPU memory",
  mode: "bwd",
  forward: "standard",
  display: { label: "standard bwd", hue: 8, saturation: 60 },
  sparse: false,
  densitySweep: "none",
  baseline: null,
  tunedLike: null,
  threads: threads("standard"),
  workgroupBytes: workgroupBytes("standard"),
  tileProblem: flashBackwardTileProblem,
  plan: ({ shape, tiles, scale, maxBindingBytes }) =>
    backwardPlan(standardBwd, "standard", shape, tiles, scale, null, maxBindingBytes),
};

/** The flash backward's registry entry. */
export const flashBwd: Kernel = {
  name: "flash-bwd",
  summary: "FlashAttention backward: recomputes P from the log-sum-exp; dK/dV pass, then dQ pass",
  mode: "bwd",
  forward: "flash",
  display: { label: "flash bwd", hue: 232, saturation: 70 },
  sparse: false,
  densitySweep: "none",
  baseline: "standard-bwd",
  tunedLike: null,
  tileCandidates: (fallback) => fallback ? [] : BACKWARD_TILE_CANDIDATES,
  threads: threads("flash"),
  workgroupBytes: workgroupBytes("flash"),
  tileProblem: flashBackwardTileProblem,
  plan: ({ shape, tiles, scale, options }) =>
    backwardPlan(
      flashBwd,
      "flash",
      shape,
      tiles,
      scale,
      null,
      Infinity,
      dqModeOf(options),
      prefetchOf(options),
    ),
};

/**
 * The dQ mode a problem's kernel options ask for (`options.dq`), `"pass"` when absent; a
 * UsageError for any other value. The atomic modes need `wgpu-shader-float32-atomic` on the device
 * (the runner refuses the plan without it, in one line).
 *
 * @example
 * ```ts
 * import { assert, assertThrows } from "@std/assert";
 * import { dqModeOf } from "./mod.ts";
 * assert(dqModeOf(undefined) === "pass" && dqModeOf({ dq: "atomic" }) === "atomic");
 * assertThrows(() => dqModeOf({ dq: "atomics" }));
 * ```
 */
export function dqModeOf(options: Readonly<Record<string, unknown>> | undefined): DqMode {
  const m = options?.dq ?? DQ_MODES[0];
  if (!(DQ_MODES as readonly unknown[]).includes(m)) {
    throw new UsageError(`dq: expected one of ${DQ_MODES.join(", ")}, got ${String(m)}`);
  }
  return m as DqMode;
}

/**
 * Whether a problem's kernel options ask for the prefetching backward (`options.prefetch`,
 * `./prefetch.ts`), false when absent; a UsageError for a value that is not a boolean.
 *
 * @example
 * ```ts
 * import { assert, assertThrows } from "@std/assert";
 * import { prefetchOf } from "./mod.ts";
 * assert(prefetchOf(undefined) === false && prefetchOf({ prefetch: true }) === true);
 * assertThrows(() => prefetchOf({ prefetch: "on" }));
 * ```
 */
export function prefetchOf(options: Readonly<Record<string, unknown>> | undefined): boolean {
  const p = options?.prefetch ?? false;
  if (typeof p !== "boolean") {
    throw new UsageError(`prefetch: expected true or false, got ${String(p)}`);
  }
  return p;
}

/** The block-sparse backward's registry entry. */
export const blockSparseBwd: Kernel = {
  name: "block-sparse-bwd",
  summary: "block-sparse FlashAttention backward: the flash-bwd passes over the kept blocks",
  mode: "bwd",
  forward: "block-sparse",
  display: { label: "block-sparse bwd", hue: 140, saturation: 60 },
  sparse: true,
  densitySweep: "none",
  baseline: "standard-bwd",
  tunedLike: null,
  threads: threads("block-sparse"),
  workgroupBytes: workgroupBytes("block-sparse"),
  tileProblem: flashBackwardTileProblem,
  plan: ({ shape, tiles, scale, mask, options }) => {
    if (prefetchOf(options)) {
      throw new UsageError("prefetch: block-sparse-bwd has no prefetching passes (flash-bwd only)");
    }
    return backwardPlan(
      blockSparseBwd,
      "block-sparse",
      shape,
      tiles,
      scale,
      blockMaskFor(shape, tiles, mask),
    );
  },
};
