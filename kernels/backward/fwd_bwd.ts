/**
 * Forward then backward as one kernel (`--pass fwd+bwd`): a forward kernel's passes, then its
 * backward's, back to back in one compute pass, sharing buffers by name: what the forward writes
 * (O and the log-sum-exp; standard: P) is what the backward reads, on the GPU, as in training.
 *
 * The composite's inputs are Q, K, V and dO; its outputs are the forward's (O, LSE) and the
 * gradients, all checked against the float64 references; a buffer one half writes and the other
 * reads is an output when the forward's output (checked too), scratch otherwise. Its counter
 * slots are the union of both halves' (a slot both count adds up), so counted == modeled holds
 * for the sum. FLOPs: 3.5× the forward's (flash-attention's `fwd_bwd`).
 *
 * @module
 */

import { type AttentionShape, type Dtype, dtypeBytes, type Tiles } from "../../core/shapes.ts";
import type { TheoreticalTraffic } from "../../analysis/io_model.ts";
import { usedRows } from "../../analysis/io_model.ts";
import { randomInputs } from "../common.ts";
import {
  type BufferSpec,
  type CountedBytes,
  emptyTraffic,
  type Kernel,
  type KernelPlan,
  passTrafficOf,
} from "../kernel.ts";
import { randomDout } from "./mod.ts";

/**
 * The compulsory traffic of forward + backward: read Q, K, V and dO, write O, dQ, dK and dV once
 * each, `8 · N · d` elements a head (with a block mask: 4 per query row used, 4 per key row).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { lowerBoundForwardBackwardBytes } from "./fwd_bwd.ts";
 * const shape = { batch: 1, heads: 2, n: 16, d: 32, dtype: "f16" as const, causal: false };
 * assert(lowerBoundForwardBackwardBytes(shape, null) === 8 * 16 * 32 * 2 * 2);
 * ```
 */
export function lowerBoundForwardBackwardBytes(
  shape: AttentionShape,
  mask: KernelPlan["mask"],
): number {
  const { n, d } = shape;
  const used = mask ? usedRows(n, mask, shape.causal) : { queryRows: n, keyRows: n };
  return 4 * (used.queryRows + used.keyRows) * d * dtypeBytes(shape.dtype) * shape.batch *
    shape.heads;
}

/**
 * The tiles a backward half runs with, given its forward's (identity: the same tiles, as
 * block-sparse needs, the mask living on them).
 */
export type BackwardTiles = (
  d: number,
  dtype: Dtype,
  forwardTiles: Tiles,
  budget?: number,
) => Tiles;

const SAME_TILES: BackwardTiles = (_d, _dtype, t) => t;

function addTraffic(a: CountedBytes, b: CountedBytes): CountedBytes {
  const out: CountedBytes = {};
  for (const t of [a, b]) {
    for (const [slot, x] of Object.entries(t)) {
      const s = out[slot] ?? { read: 0, write: 0 };
      out[slot] = { read: s.read + x.read, write: s.write + x.write };
    }
  }
  return out;
}

function sumTheory(f: TheoreticalTraffic, b: TheoreticalTraffic): TheoreticalTraffic {
  return {
    ...b,
    algorithm: `${f.algorithm} + ${b.algorithm}`,
    bytes: f.bytes + b.bytes,
    elementsPerHead: f.elementsPerHead + b.elementsPerHead,
  };
}

/**
 * The forward + backward kernel of a forward kernel and its backward (named
 * `<forward>-fwd+bwd`).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { forwardBackward } from "./fwd_bwd.ts";
 * import { flash } from "../flash/mod.ts";
 * import { flashBwd } from "./mod.ts";
 * const k = forwardBackward(flash, flashBwd);
 * const shape = { batch: 1, heads: 1, n: 8, d: 32, dtype: "f32", causal: false } as const;
 * const plan = k.plan({ shape, tiles: { br: 8, bc: 8, rm: 2, tx: 4 } });
 * assert(k.name === "flash-fwd+bwd" && plan.passes().map((p) => p.name).join() === "flash,delta,dkdv,dq");
 * ```
 */
export function forwardBackward(
  fwd: Kernel,
  bwd: Kernel,
  backwardTiles: BackwardTiles = SAME_TILES,
): Kernel {
  const half = backwardTiles;
  const kernel: Kernel = {
    name: `${fwd.name}-fwd+bwd`,
    summary: `${fwd.name} forward, then ${bwd.name}, back to back`,
    mode: "fwd_bwd",
    forward: fwd.name,
    display: { ...fwd.display, label: `${fwd.display.label} fwd+bwd` },
    sparse: fwd.sparse,
    densitySweep: "none",
    baseline: fwd.baseline === null ? null : `${fwd.baseline}-fwd+bwd`,
    // With its own backward tiles, the forward half runs the forward's tuned tiles.
    tunedLike: half === SAME_TILES ? null : fwd.name,
    // Threads: the backward half's first choice, before it halves its tile for memory (at the
    // smallest head dim these tiles build), the most it can take.
    threads: (t) => Math.max(fwd.threads(t), bwd.threads(half(4 * t.tx, "f32", t, Infinity))),
    workgroupBytes: (d, dtype, t) =>
      Math.max(fwd.workgroupBytes(d, dtype, t), bwd.workgroupBytes(d, dtype, half(d, dtype, t))),
    tileProblem: (d, t) => fwd.tileProblem(d, t) ?? bwd.tileProblem(d, half(d, "f32", t)),
    plan(request) {
      const f = fwd.plan(request);
      const { d, dtype } = request.shape;
      const b = bwd.plan({
        ...request,
        tiles: half(d, dtype, request.tiles),
        mask: f.mask ?? undefined,
        scale: f.scale,
      });
      return combine(kernel, f, b, request.shape, request.tiles);
    },
  };
  return kernel;
}

function combine(
  kernel: Kernel,
  f: KernelPlan,
  b: KernelPlan,
  shape: AttentionShape,
  tiles: Tiles,
): KernelPlan {
  const written = new Set(f.buffers.filter((x) => x.role !== "input").map((x) => x.name));
  const buffers: BufferSpec[] = [...f.buffers];
  for (const x of b.buffers) {
    const mine = buffers.find((y) => y.name === x.name);
    if (!mine) {
      buffers.push(x);
      continue;
    }
    if (mine.bytes !== x.bytes || mine.element !== x.element) {
      throw new Error(`${kernel.name}: buffer ${x.name} differs between the two halves`);
    }
    // What the backward reads of the forward's results stays the forward's (output or scratch).
    if (x.role !== "input" && !written.has(x.name)) {
      throw new Error(`${kernel.name}: both halves write ${x.name}`);
    }
  }
  const slots = [...new Set([...f.slots, ...b.slots])];
  const inputs = buffers.filter((x) => x.role === "input" && !x.data).map((x) => x.name);
  return {
    kernel,
    shape,
    tiles,
    scale: f.scale,
    mask: f.mask,
    density: f.density,
    buffers,
    slots,
    passes: () => [...f.passes(), ...b.passes()],
    modeledTraffic: () => addTraffic(f.modeledTraffic(), b.modeledTraffic()),
    // Every slot of the composite in each pass (what its counters read back), 0 where the
    // pass's half has no such slot.
    passTraffic: () =>
      [...passTrafficOf(f), ...passTrafficOf(b)].map((t) => addTraffic(emptyTraffic(slots), t)),
    theoreticalBytes: (o) => sumTheory(f.theoreticalBytes(o), b.theoreticalBytes(o)),
    lowerBoundBytes: () => lowerBoundForwardBackwardBytes(shape, f.mask),
    idealBytes: () => ({}),
    flops: (mode) => f.flops(mode),
    denseFlops: (mode) => f.denseFlops(mode),
    randomInputs(seed) {
      const all: Record<string, Float32Array> = {
        ...randomInputs(shape, seed),
        dout: randomDout(shape, seed),
      };
      return Object.fromEntries(inputs.map((name) => [name, all[name]!]));
    },
    reference: (x) => ({ ...f.reference(x), ...b.reference(x) }),
    zeroReferenceScale: b.zeroReferenceScale,
  };
}
