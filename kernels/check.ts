/**
 * The reference check, the one the tool and the tests share: fresh random inputs, every output
 * poisoned with NaN, one run, every output compared with the kernel's float64 reference.
 *
 * @module
 */

import type { AttentionShape, Tiles } from "../core/shapes.ts";
import {
  type AttentionKernels,
  type AttentionProblem,
  prepareAttention,
  type PreparedAttention,
} from "./attention.ts";
import { type CountedBytes, inputsToTime, totalBytes } from "./kernel.ts";
import type { BlockMask } from "./masks.ts";
import { maxRelError } from "./reference.ts";

export { type AttentionInputs, randomInputs } from "./common.ts";

/** One checked run: the outputs, their references and how far apart they are. */
export interface CheckResult {
  /** The largest error over every output: max |out − ref| / max |ref|, Infinity on a NaN. */
  error: number;
  /** The error of each output, by name. */
  errors: Record<string, number>;
  /** Output elements that are not finite (an unwritten, still poisoned element is NaN). */
  nonFinite: number;
  /** The first output (O) and its reference, for tests that look at values. */
  out: Float32Array;
  ref: Float64Array;
  outputs: Record<string, Float32Array>;
  refs: Record<string, Float64Array>;
  inputs: Record<string, Float32Array>;
  shape: AttentionShape;
  seed: number;
  /** Everything needed to replay the case, for messages. */
  label: string;
}

/** Options of {@linkcode checkPrepared}. */
export interface CheckOptions {
  /** Input set to upload into and run. */
  set?: number;
  /** What "run" means; the tests of the check itself replace it (e.g. with nothing). */
  run?: (prepared: PreparedAttention, set: number) => Promise<void>;
}

/**
 * Uploads fresh inputs drawn with `seed`, poisons every output with NaN, runs once, reads every
 * output back and compares each with the plan's float64 reference.
 *
 * @example
 * ```ts ignore
 * import { checkPrepared } from "./check.ts";
 * const { error, errors } = await checkPrepared(prepared, 42);
 * ```
 */
export async function checkPrepared(
  prepared: PreparedAttention,
  seed: number,
  opts: CheckOptions = {},
): Promise<CheckResult> {
  const set = opts.set ?? 0;
  const { plan } = prepared;
  const inputs = plan.randomInputs(seed);
  prepared.upload(inputs, set);
  prepared.poisonOutput();
  await (opts.run ?? ((p, s) => p.run(s)))(prepared, set);
  const outputs = await prepared.readOutputs();
  const refs = plan.reference(inputs);
  const errors: Record<string, number> = {};
  let nonFinite = 0;
  const scaleName = plan.zeroReferenceScale;
  const fallback = scaleName ? maxAbs(refs[scaleName] ?? []) : 0;
  for (const name of prepared.outputNames) {
    const ref = refs[name];
    if (!ref) throw new Error(`${prepared.kernel.name}'s reference has no output ${name}`);
    errors[name] = scaleName && maxAbs(ref) === 0 && fallback > 0
      ? zeroReferenceError(outputs[name]!, fallback)
      : maxRelError(outputs[name]!, ref);
    for (const x of outputs[name]!) if (!Number.isFinite(x)) nonFinite++;
  }
  const first = prepared.outputNames[0]!;
  return {
    error: Math.max(...Object.values(errors)),
    errors,
    nonFinite,
    out: outputs[first]!,
    ref: refs[first]!,
    outputs,
    refs,
    inputs,
    shape: prepared.shape,
    seed,
    label: describeCase(prepared, seed),
  };
}

function maxAbs(xs: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]!));
  return m;
}

/**
 * The error of an output whose reference is identically zero, against another output's scale:
 * max |out| / scale, Infinity when any element is not finite.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { zeroReferenceError } from "./check.ts";
 * assert(zeroReferenceError([1e-9, 0], 2) === 5e-10);
 * assert(zeroReferenceError([NaN, 0], 2) === Infinity);
 * ```
 */
export function zeroReferenceError(out: ArrayLike<number>, scale: number): number {
  let m = 0;
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i]!)) return Infinity;
    m = Math.max(m, Math.abs(out[i]!));
  }
  return m / scale;
}

/**
 * The largest relative error over every output of one checked run (Infinity when any element
 * is NaN: unwritten).
 *
 * @example
 * ```ts ignore
 * import { checkAgainstReference } from "./check.ts";
 * const err = await checkAgainstReference(prepared, 42);
 * ```
 */
export async function checkAgainstReference(
  prepared: PreparedAttention,
  seed: number,
): Promise<number> {
  return (await checkPrepared(prepared, seed)).error;
}

/** What {@linkcode countRun} counted. */
export interface CountResult {
  counted: CountedBytes;
  modeled: CountedBytes;
  countedBytes: number;
  modeledBytes: number;
  /** The check of the counted run's outputs; null when not asked for. */
  check: CheckResult | null;
}

/**
 * The counting run, the one `verify` and `bench --count-io` share: builds the counting variant
 * of the problem, runs it once on fresh inputs (checked against the reference when `check`),
 * and returns the counted and the modeled bytes.
 *
 * @example
 * ```ts ignore
 * import { countRun } from "./check.ts";
 * const r = await countRun(kernels, { kernel: "flash", shape }, 7, { check: true });
 * console.assert(r.countedBytes === r.modeledBytes);
 * ```
 */
export async function countRun(
  kernels: AttentionKernels,
  problem: AttentionProblem,
  seed: number,
  opts: { check: boolean },
): Promise<CountResult> {
  const p = await prepareAttention(kernels, { ...problem, count: true });
  try {
    p.resetCounters();
    let check: CheckResult | null = null;
    if (opts.check) {
      check = await checkPrepared(p, seed);
    } else {
      p.upload(inputsToTime(p.plan, seed));
      await p.run();
    }
    const counted = await p.readCounters();
    const modeled = p.plan.modeledTraffic();
    return {
      counted,
      modeled,
      countedBytes: totalBytes(counted),
      modeledBytes: totalBytes(modeled),
      check,
    };
  } finally {
    p.destroy();
  }
}

/**
 * A shape in one line, for messages.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { describeShape } from "./check.ts";
 * const s = { batch: 2, heads: 3, n: 97, d: 64, dtype: "f32", causal: true } as const;
 * assert(describeShape(s) === "B=2 H=3 n=97 d=64 f32 causal");
 * ```
 */
export function describeShape(s: AttentionShape): string {
  return `B=${s.batch} H=${s.heads} n=${s.n} d=${s.d} ${s.dtype}${s.causal ? " causal" : ""}`;
}

/**
 * Kernel, shape, tiles, mask and seed in one line.
 *
 * @example
 * ```ts ignore
 * import { describeCase } from "./check.ts";
 * console.log(describeCase(prepared, 42));
 * ```
 */
export function describeCase(p: PreparedAttention, seed: number): string {
  return `${p.kernel.name} ${describeShape(p.shape)} tiles ${describeTiles(p.tiles)}` +
    (p.mask ? ` mask ${describeMask(p.mask)}` : "") + ` seed ${seed}`;
}

/**
 * Tiles in one line.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { describeTiles } from "./check.ts";
 * assert(describeTiles({ br: 8, bc: 16, rm: 1, tx: 4 }) === "br8 bc16 rm1 tx4");
 * ```
 */
export function describeTiles(t: Tiles): string {
  return `br${t.br} bc${t.bc} rm${t.rm} tx${t.tx}`;
}

/**
 * A block mask in one line: kind, grid, kept blocks.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { makeMask } from "./masks.ts";
 * import { describeMask } from "./check.ts";
 * const m = makeMask({ kind: "random", n: 16, br: 8, bc: 8, density: 0.5, seed: 1 });
 * assert(describeMask(m) === "random 2x2 nnz 2");
 * ```
 */
export function describeMask(m: BlockMask): string {
  return `${m.kind} ${m.rowBlocks}x${m.colBlocks} nnz ${m.nnz}`;
}
