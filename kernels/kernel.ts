/**
 * The contract every kernel fulfils, built-in or brought by a user (`--kernel-module`).
 *
 * A kernel is one folder, `kernels/<name>/`: its `.wgsl` files, a `mod.ts` that exports one
 * {@linkcode Kernel}, and its tests. The registry (`registry.ts`) lists the built-in ones; the
 * runner (`attention.ts`), the bench, `verify`, `tune`, `model`, the IO model and the report only
 * ever ask a kernel, never branch on its name.
 *
 * ## Two steps: a kernel, then a plan
 *
 * A {@linkcode Kernel} says what a kernel is (name, display style, tile rules). Given one problem
 * ({@linkcode ProblemRequest}: the attention shape, the tiles, the kernel's own options) its
 * {@linkcode Kernel.plan} returns a {@linkcode KernelPlan}: pure data and pure functions, no GPU.
 * The plan is everything the rest of the tool needs:
 *
 * - **buffers** ({@linkcode BufferSpec}): name, size in bytes, WGSL element type and role.
 *   `input` buffers are filled by the caller (Q, K, V; a backward kernel's O, dO, LSE) or, when
 *   the plan gives `data`, once by the runner (a block mask, a decode kernel's block tables);
 *   `output` buffers are what the kernel computes (O and LSE; dQ, dK, dV): poisoned with NaN
 *   before every checked run, read back and compared with the reference, every one of them;
 *   `scratch` buffers are intermediates (standard's S and P; a decode kernel's split-KV partials).
 * - **passes** ({@linkcode PassSpec}), dispatched in order: each names its WGSL body and cache
 *   key, the buffers it binds (in order: the binding numbers and the `Params` uniform struct are
 *   generated from this list by `program.ts`, never written by hand), its uniforms and its grid.
 * - **counter slots**: the names the counting variant counts bytes under (`count_read(SLOT_Q, …)`
 *   in WGSL). A kernel that does not count declares none; `--count-io` then records nothing.
 * - **modeledTraffic()**: the exact bytes each slot reads and writes, from the loop structure; the
 *   counting variant must count the same (generic tests hold every kernel to it).
 * - **theoreticalBytes()**: the paper's (or the author's) idealized HBM traffic, and
 *   **lowerBoundBytes()**, the compulsory traffic of the problem.
 * - **flops(mode)**: FLOPs of the problem this kernel computes, per {@linkcode FlopMode}
 *   (`"fwd"`: 4·B·H·N²·d, halved when causal; `"bwd"`: 2.5× that; a sparse kernel scales by its
 *   density), and **denseFlops** for the "dense-equivalent" rate.
 * - **randomInputs(seed)** and **reference(inputs)**: fresh inputs for every caller-filled input
 *   buffer, and the float64 oracle that returns every output buffer by name.
 *
 * The problem's shape is the {@linkcode AttentionShape} (B, H, N, d, dtype, causal); anything
 * else a kernel needs (a KV length ≠ N, a page size, a mask) comes in
 * {@linkcode ProblemRequest.mask} or {@linkcode ProblemRequest.options} and lives in the plan's
 * closure, as do structural inputs (block tables: an `input` buffer with `data`). A backward
 * kernel declares `mode: "bwd"`, inputs Q, K, V, O, dO, LSE and outputs dQ, dK, dV; a decode
 * kernel several passes (split-KV partials into `scratch`, then a combine pass), each with its
 * own bindings, grid and uniforms. Dimensions of a grid that exceed the device's limit, or buffers larger than it
 * allows, make the runner refuse the problem before allocating anything.
 *
 * @module
 */

import type { AttentionShape, Dtype, MaskKind, Tiles } from "../core/shapes.ts";
import type { TheoreticalTraffic } from "../analysis/io_model.ts";
import type { BlockMask } from "./masks.ts";

/** What a buffer is for. */
export type BufferRole = "input" | "output" | "scratch";

/**
 * WGSL element type of a storage buffer: `T` / `T4` are the storage dtype (f32 or f16) as a
 * scalar or a vec4; `f32`, `u32` and the f32 vectors (a decode kernel's partial states) are
 * fixed. `atomic<f32>` (an f32 accumulator added to with `atomicAdd`) needs the device feature
 * `wgpu-shader-float32-atomic`: the runner refuses a plan that binds one on a device without it.
 */
export type WgslElement =
  | "T"
  | "T4"
  | "f32"
  | "u32"
  | "vec2<f32>"
  | "vec4<f32>"
  | "atomic<f32>";

/** One storage buffer of a plan. */
export interface BufferSpec {
  /** WGSL variable name, key of inputs, outputs and the reference: `q`, `o`, `lse`, `rowptr`. */
  name: string;
  /** Name in messages and the footprint ("S is 17.2 GB"); default `name`. */
  label?: string;
  role: BufferRole;
  /** Size in bytes (the runner rounds the allocation up to 16). */
  bytes: number;
  element: WgslElement;
  /** Contents the runner writes once (an input that is the problem's structure, not data). */
  data?: Uint32Array | Float32Array;
}

/** One buffer a pass binds, and how. */
export interface PassBinding {
  buffer: string;
  access: "read" | "read_write";
  /**
   * The WGSL variable name (default: the buffer's name): passes that run one source over
   * several buffers (standard's S and P in chunks) bind each under the source's name.
   */
  as?: string;
  /**
   * The WGSL element type this pass sees (default: the buffer's): flash-bwd's atomic dQ binds its
   * f32 accumulator as `atomic<f32>` where it adds and as `vec4<f32>` where it zeroes it.
   */
  element?: WgslElement;
}

/** One scalar of a pass's `Params` uniform struct (fields in this order, 4 bytes each). */
export interface Uniform {
  name: string;
  type: "u32" | "i32" | "f32";
  value: number;
}

/** One dispatch of a plan. */
export interface PassSpec {
  /** Short name (`scores`, `softmax`, `pv`; `flash`); per-pass timings are recorded by it. */
  name: string;
  /**
   * Cache key: every knob that changes {@linkcode source}. The runner appends the dtype, the
   * counting flag and the generated declarations' signature; a key reused for another source
   * is an error, never a silently wrong pipeline.
   */
  key: string;
  /**
   * The WGSL after the generated header: compile-time constants and the body with an entry
   * point `main`. The header (from `program.ts`) defines `T`, `T4`, `T_BYTES`, `SLOT_<NAME>`,
   * `count_read`/`count_write`/`count_flush`, `struct Params` from {@linkcode uniforms}, `params`
   * at binding 0 and each of {@linkcode bindings} at bindings 1, 2, … in order.
   */
  source: string;
  /**
   * The buffers this pass binds, in binding order. Every one must be used by the source: the
   * pipeline layout is derived from the shader, which drops unused bindings.
   */
  bindings: readonly PassBinding[];
  uniforms: readonly Uniform[];
  /** Workgroups along x, y, z. */
  grid: readonly [number, number?, number?];
  /** Counter slots and directions whose modeled bytes this pass moves (for per-pass GB/s). */
  moves: readonly (readonly [slot: string, dir: "read" | "write"])[];
}

/** Bytes read and written, per counter slot. */
export type CountedBytes = Record<string, { read: number; write: number }>;

/** Which computation FLOPs are counted for (as flash-attention's benchmarks). */
export type FlopMode = "fwd" | "bwd" | "fwd_bwd";

export type { TheoreticalTraffic };

/** Block-mask generator options (sparse kernels); a kernel without a mask ignores them. */
export interface MaskRequest {
  kind: MaskKind;
  density: number;
  seed: number;
}

/** One problem for a kernel. */
export interface ProblemRequest {
  shape: AttentionShape;
  tiles: Tiles;
  /** Softmax scale; 1/√d when absent. */
  scale?: number;
  /** Block-sparse kernels: the mask to build on the tiles, or one already built. */
  mask?: MaskRequest | BlockMask;
  /** Kernel-specific parameters (e.g. a decode kernel's KV length and page size). */
  options?: Readonly<Record<string, unknown>>;
  /**
   * Lanes per subgroup when the device runs subgroup operations with lanes in
   * local_invocation_index order (`Gpu.subgroupSize`); 0 or absent: the portable path. A
   * kernel may ignore it.
   */
  subgroupSize?: number;
  /**
   * The largest buffer the device can bind, in bytes (the smaller of its
   * maxStorageBufferBindingSize and maxBufferSize); a kernel may split a large scratch buffer
   * into chunks of at most this. Absent: no limit (planning without a device).
   */
  maxBindingBytes?: number;
  /**
   * The device's workgroup memory limit in bytes (`maxComputeWorkgroupStorageSize`), for knobs
   * that add workgroup memory beyond the tiles' (flash's `padWorkgroupBytes`). Absent: no limit
   * (planning without a device).
   */
  maxWorkgroupBytes?: number;
}

/** A kernel applied to one problem: pure data, no GPU. */
export interface KernelPlan {
  readonly kernel: Kernel;
  readonly shape: AttentionShape;
  readonly tiles: Tiles;
  /** Softmax scale in use. */
  readonly scale: number;
  /** The block mask (sparse kernels), else null. */
  readonly mask: BlockMask | null;
  /** Fraction of the dense work done: the mask's density, 1 for dense kernels. */
  readonly density: number;
  readonly buffers: readonly BufferSpec[];
  /** Counter slots of the counting variant, e.g. `["q", "k", "v", "o", "lse", "uniform"]`. */
  readonly slots: readonly string[];
  /** The dispatches, in order. */
  passes(): readonly PassSpec[];
  /** Exact bytes per slot and direction that one run moves (every slot of {@linkcode slots}). */
  modeledTraffic(): CountedBytes;
  /**
   * The same bytes split by pass, in dispatch order (they add up to `modeledTraffic`), for a
   * kernel whose passes share slots (a backward's Q is read by two passes; standard's chunks of
   * S and P each move part of every slot). Absent: a single pass moves all of it, else each pass
   * moves the whole traffic of the slots its `moves` name ({@linkcode passTrafficOf}).
   */
  passTraffic?(): CountedBytes[];
  /** Idealized traffic for an on-chip memory of `sramBytes`; `bc`/`br` override its blocks. */
  theoreticalBytes(opts: { sramBytes: number; bc?: number; br?: number }): TheoreticalTraffic;
  /**
   * The compulsory traffic of the problem: what any kernel must read and write once (attention:
   * Q, K, V and O, `lowerBoundBytes` of the IO model).
   */
  lowerBoundBytes(): number;
  /** Other idealized counts worth printing (flash: its query-outer loop order), by label. */
  idealBytes(): Readonly<Record<string, number>>;
  /** FLOPs of this problem as this kernel computes it (× density when sparse). */
  flops(mode: FlopMode): number;
  /** FLOPs of the same problem without sparsity. */
  denseFlops(mode: FlopMode): number;
  /** Fresh inputs (f32 values, rounded to the dtype) for every input buffer without `data`. */
  randomInputs(seed: number): Record<string, Float32Array>;
  /**
   * Inputs to time with, when {@linkcode randomInputs} is costly (a backward's O and LSE come
   * from the float64 forward, N² work a head): plausible values of the same shapes, not checked
   * against anything. Absent: the timing runs use `randomInputs`.
   */
  timingInputs?(seed: number): Record<string, Float32Array>;
  /** The float64 oracle: every output buffer by name, from the same inputs. */
  reference(inputs: Readonly<Record<string, Float32Array>>): Record<string, Float64Array>;
  /**
   * An output whose reference can be identically zero where the kernel's rounding is not (a
   * backward's dQ and dK when each row sees one key: the softmax is constant) is measured against
   * the largest |reference| of this output instead (a backward: `dv`). Absent: such an output
   * must come out exactly zero.
   */
  readonly zeroReferenceScale?: string;
}

/** Colour and label a kernel is drawn with in reports. */
export interface DisplayStyle {
  label: string;
  /** Hue and saturation (HSL) of the kernel's series; lightness varies per series. */
  hue: number;
  saturation: number;
}

/** The device limits tile rules see. */
export interface TileLimits {
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
}

/** A kernel: what it is, and how to plan one problem. */
export interface Kernel {
  /** Name on the command line and in results (`--kernels`, `RunRecord.kernel`). */
  readonly name: string;
  /** One line for `--help`. */
  readonly summary: string;
  /** What one run computes, for its FLOPs. */
  readonly mode: FlopMode;
  /**
   * Which problem the shape describes (absent: `"attention"`). `"attention"`: `[B, H, N, d]`
   * queries against as many keys. `"decode"`: one query token for each of `batch` sequences and
   * `heads` query heads against a KV cache of up to `n` tokens; the context lengths, KV heads
   * and cache layout come in `ProblemRequest.options` (see `kernels/decode/program.ts`); the
   * tiles carry the split pass's knobs (threads, lanes per token, tokens per round, segment).
   */
  readonly problem?: "attention" | "decode";
  /**
   * A backward kernel (`mode: "bwd"`): the forward kernel it differentiates (`--pass bwd
   * --kernels flash` runs the backward whose `forward` is `flash`).
   */
  readonly forward?: string;
  readonly display: DisplayStyle;
  /** Whether the kernel's work follows a block mask (density sweeps vary it; reports show it). */
  readonly sparse: boolean;
  /** How `bench --sweep density` runs it: per density, once as the dense reference, or not. */
  readonly densitySweep: "each" | "once" | "none";
  /** The kernel this one is compared with in ratios and speedup charts (flash: standard). */
  readonly baseline: string | null;
  /** Another kernel whose tuned tiles this one may use when it has none of its own. */
  readonly tunedLike: string | null;
  /** Threads per workgroup with these tiles. */
  threads(tiles: Tiles): number;
  /** Bytes of workgroup memory with these tiles (for the device's limit). */
  workgroupBytes(d: number, dtype: Dtype, tiles: Tiles): number;
  /** Why these tiles cannot build the kernel at head dim `d` (structure only); null if they can. */
  tileProblem(d: number, tiles: Tiles): string | null;
  /**
   * The kernel's own default tile candidates, best first (on a software adapter when `fallback`),
   * tried before the shared lists of `tiles.ts` (`TILE_CANDIDATES`, `FALLBACK_TILE_CANDIDATES`).
   */
  tileCandidates?(fallback: boolean): readonly Tiles[];
  /** The plan of one problem. Throws a UsageError for a request it cannot serve. */
  plan(request: ProblemRequest): KernelPlan;
}

/**
 * The inputs a timed (unchecked) run uploads: the plan's `timingInputs` when it has them, else
 * its `randomInputs`.
 *
 * @example
 * ```ts ignore
 * import { inputsToTime } from "./kernel.ts";
 * prepared.upload(inputsToTime(prepared.plan, 1));
 * ```
 */
export function inputsToTime(plan: KernelPlan, seed: number): Record<string, Float32Array> {
  return plan.timingInputs?.(seed) ?? plan.randomInputs(seed);
}

/**
 * The modeled bytes of each pass of a plan, in dispatch order: its `passTraffic`; else, for a
 * plan of one pass, all of its traffic; else, for each pass, the plan's traffic of the slots and
 * directions the pass's `moves` name.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { passTrafficOf } from "./kernel.ts";
 * import { planFor } from "./registry.ts";
 * const shape = { batch: 1, heads: 1, n: 8, d: 32, dtype: "f32", causal: false } as const;
 * const plan = planFor("standard", { shape, tiles: { br: 8, bc: 8, rm: 2, tx: 4 } });
 * assert(passTrafficOf(plan)[1]!.s!.read === plan.modeledTraffic().s!.read);
 * ```
 */
export function passTrafficOf(plan: KernelPlan): CountedBytes[] {
  if (plan.passTraffic) return plan.passTraffic();
  const all = plan.modeledTraffic();
  const passes = plan.passes();
  // One pass moves everything, its workgroups' uniform reads included.
  if (passes.length === 1) return [all];
  return passes.map((pass) => {
    const t = emptyTraffic(plan.slots);
    for (const [slot, dir] of pass.moves) t[slot]![dir] += all[slot]?.[dir] ?? 0;
    return t;
  });
}

/**
 * Total bytes read plus written.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { totalBytes } from "./kernel.ts";
 * assert(totalBytes({ q: { read: 4, write: 0 }, o: { read: 0, write: 4 } }) === 8);
 * ```
 */
export function totalBytes(t: CountedBytes): number {
  return Object.values(t).reduce((a, s) => a + s.read + s.write, 0);
}

/**
 * Zero traffic for every slot.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { emptyTraffic } from "./kernel.ts";
 * assert(emptyTraffic(["q"]).q!.read === 0);
 * ```
 */
export function emptyTraffic(slots: readonly string[]): CountedBytes {
  return Object.fromEntries(slots.map((s) => [s, { read: 0, write: 0 }]));
}

/**
 * FLOPs of dense attention: forward `4 · B · H · N² · d` (QKᵀ and PV, one FMA = 2 FLOPs), halved
 * when causal; backward 2.5× the forward; both 3.5× (flash-attention's `flops(mode)`).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { attentionFlops } from "./kernel.ts";
 * const shape = { batch: 1, heads: 2, n: 8, d: 4, dtype: "f32" as const, causal: true };
 * assert(attentionFlops(shape, "fwd") === 1024 && attentionFlops(shape, "bwd") === 2560);
 * ```
 */
export function attentionFlops(shape: AttentionShape, mode: FlopMode): number {
  const full = 4 * shape.batch * shape.heads * shape.n * shape.n * shape.d;
  const fwd = shape.causal ? full / 2 : full;
  return mode === "fwd" ? fwd : mode === "bwd" ? 2.5 * fwd : 3.5 * fwd;
}
