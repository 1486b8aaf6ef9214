/**
 * Helpers shared by the kernel tests: seeded inputs, one GPU per test file, and the checked run
 * (fresh inputs, poisoned output, one run, max relative error against the float64 reference).
 *
 * For tests only (`*_test.ts`); the tool's own check of a run lives elsewhere.
 *
 * @module
 */

import { AssertionError } from "@std/assert";
import {
  AttentionKernels,
  type AttentionProblem,
  prepareAttention,
  type PreparedAttention,
} from "./attention.ts";
import { openGpu } from "./gpu.ts";
import type { BlockMask } from "./masks.ts";
import { type CompiledProgram, PipelineCache } from "./program.ts";
import { maxRelError, referenceAttention } from "./reference.ts";
import { type AttentionInputs, randomInputs } from "./check.ts";
import { tolerance } from "./tolerances.ts";
import type { AttentionShape, Tiles } from "../core/shapes.ts";

/** Q, K and V of one problem, `[B, H, N, d]` each. */
export type TestInputs = AttentionInputs;

export { randomInputs };

/**
 * A 32-bit seed from a label (FNV-1a), so every case gets its own inputs and the same ones on
 * every run, whatever the order or `--filter` the tests run with.
 *
 * @example
 * ```ts
 * import { seedFor } from "./testing.ts";
 * console.assert(seedFor("a") === seedFor("a") && seedFor("a") !== seedFor("b"));
 * ```
 */
export function seedFor(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A shape in one line, for assertion messages.
 *
 * @example
 * ```ts
 * import { describeShape } from "./testing.ts";
 * const s = { batch: 2, heads: 3, n: 97, d: 64, dtype: "f32", causal: true } as const;
 * console.assert(describeShape(s) === "B=2 H=3 n=97 d=64 f32 causal");
 * ```
 */
export function describeShape(s: AttentionShape): string {
  return `B=${s.batch} H=${s.heads} n=${s.n} d=${s.d} ${s.dtype}${s.causal ? " causal" : ""}`;
}

let kernelsPromise: Promise<AttentionKernels | null> | null = null;

/**
 * The kernels on this machine's adapter, opened once per test module; null when there is no
 * WebGPU adapter (the GPU tests are then ignored). Call it with a top-level `await`, outside any
 * test, so the device does not count as a resource leaked by the first test.
 *
 * @example
 * ```ts ignore
 * import { getKernels } from "./testing.ts";
 * const kernels = await getKernels();
 * Deno.test({ name: "…", ignore: kernels === null, fn() {} });
 * ```
 */
export function getKernels(): Promise<AttentionKernels | null> {
  kernelsPromise ??= (async () => {
    const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
    if (!adapter) return null;
    return new AttentionKernels(await openGpu());
  })();
  return kernelsPromise;
}

/** One checked run: the output, the reference and how far apart they are. */
export interface CheckResult {
  /** max |out − ref| / max |ref|; Infinity when any element of `out` is NaN or ±∞. */
  error: number;
  /** Elements of `out` that are not finite (an unwritten, still poisoned element is NaN). */
  nonFinite: number;
  out: Float32Array;
  ref: Float64Array;
  inputs: TestInputs;
  shape: AttentionShape;
  seed: number;
  /** Everything needed to replay the case, for assertion messages. */
  label: string;
}

/** Options of {@linkcode checkPrepared}. */
export interface CheckOptions {
  /** The softmax scale the kernel was prepared with (1/√d when absent). */
  scale?: number;
  /** Input set to upload into and run. */
  set?: number;
  /** What "run" means; the tests of the check itself replace it (e.g. with nothing). */
  run?: (prepared: PreparedAttention, set: number) => Promise<void>;
}

/**
 * Uploads fresh inputs drawn with `seed`, poisons O with NaN, runs once, reads O back and
 * compares it with the float64 reference (with the kernel's block mask, if any).
 *
 * @example
 * ```ts ignore
 * import { checkPrepared } from "./testing.ts";
 * const { error } = await checkPrepared(prepared, 42);
 * ```
 */
export async function checkPrepared(
  prepared: PreparedAttention,
  seed: number,
  opts: CheckOptions = {},
): Promise<CheckResult> {
  const set = opts.set ?? 0;
  const inputs = randomInputs(prepared.shape, seed);
  prepared.upload(inputs.q, inputs.k, inputs.v, set);
  prepared.poisonOutput();
  await (opts.run ?? ((p, s) => p.run(s)))(prepared, set);
  const out = await prepared.readOutput();
  const ref = referenceAttention(prepared.shape, inputs.q, inputs.k, inputs.v, {
    scale: opts.scale,
    mask: prepared.mask ?? undefined,
  });
  let nonFinite = 0;
  for (const x of out) if (!Number.isFinite(x)) nonFinite++;
  return {
    error: maxRelError(out, ref),
    nonFinite,
    out,
    ref,
    inputs,
    shape: prepared.shape,
    seed,
    label: describeCase(prepared, seed),
  };
}

/**
 * {@linkcode prepareAttention}, then {@linkcode checkPrepared}, then frees the buffers.
 *
 * @example
 * ```ts ignore
 * import { getKernels, runChecked } from "./testing.ts";
 * const shape = { batch: 1, heads: 2, n: 97, d: 64, dtype: "f32", causal: true } as const;
 * const r = await runChecked((await getKernels())!, { kernel: "flash", shape }, 1);
 * ```
 */
export async function runChecked(
  kernels: AttentionKernels,
  problem: AttentionProblem,
  seed: number,
  opts: Omit<CheckOptions, "scale"> = {},
): Promise<CheckResult> {
  const prepared = await prepareAttention(kernels, problem, {
    inputSets: (opts.set ?? 0) + 1,
  });
  try {
    return await checkPrepared(prepared, seed, { ...opts, scale: problem.scale });
  } finally {
    prepared.destroy();
  }
}

/**
 * Throws unless every element of the output is finite and the error is within the dtype's
 * tolerance (or `tol`); the message names the case and its seed.
 *
 * @example
 * ```ts ignore
 * import { assertClose, runChecked } from "./testing.ts";
 * assertClose(await runChecked(kernels, problem, 1));
 * ```
 */
export function assertClose(r: CheckResult, tol?: number): void {
  const bound = tol ?? tolerance(r.shape.dtype);
  if (r.nonFinite > 0) {
    throw new AssertionError(
      `${r.label}: ${r.nonFinite} of ${r.out.length} output elements not finite`,
    );
  }
  if (!(r.error <= bound)) {
    throw new AssertionError(`${r.label}: max relative error ${r.error} exceeds ${bound}`);
  }
}

/**
 * Kernel, shape, tiles, mask and seed in one line.
 *
 * @example
 * ```ts ignore
 * import { describeCase } from "./testing.ts";
 * console.log(describeCase(prepared, 42));
 * ```
 */
export function describeCase(p: PreparedAttention, seed: number): string {
  return `${p.kernel} ${describeShape(p.shape)} tiles ${describeTiles(p.tiles)}` +
    (p.mask ? ` mask ${describeMask(p.mask)}` : "") + ` seed ${seed}`;
}

/**
 * Tiles in one line.
 *
 * @example
 * ```ts
 * import { describeTiles } from "./testing.ts";
 * console.assert(describeTiles({ br: 8, bc: 16, rm: 1, tx: 4 }) === "br8 bc16 rm1 tx4");
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
 * import { makeMask } from "./masks.ts";
 * import { describeMask } from "./testing.ts";
 * const m = makeMask({ kind: "random", n: 16, br: 8, bc: 8, density: 0.5, seed: 1 });
 * console.assert(describeMask(m) === "random 2x2 nnz 2");
 * ```
 */
export function describeMask(m: BlockMask): string {
  return `${m.kind} ${m.rowBlocks}x${m.colBlocks} nnz ${m.nnz}`;
}

/** A pipeline cache that compiles a mutated source: kernels with a deliberate bug. */
export class MutatingCache extends PipelineCache {
  /** How many sources contained `from` (so a test can tell its mutation found its target). */
  mutated = 0;
  readonly #from: string;
  readonly #to: string;

  constructor(device: GPUDevice, from: string, to: string) {
    super(device);
    this.#from = from;
    this.#to = to;
  }

  /**
   * Compiles `source` with every occurrence of `from` replaced (a statement inside an unrolled
   * loop occurs once per iteration); other sources unchanged.
   */
  override get(key: string, source: string): Promise<CompiledProgram> {
    if (!source.includes(this.#from)) return super.get(key, source);
    this.mutated++;
    return super.get(`${key}/mutant`, source.replaceAll(this.#from, this.#to));
  }
}

/**
 * Kernels on the same device whose WGSL has `from` replaced by `to`: a mutant, to show that a
 * check fails when a kernel is wrong. `cache.mutated` tells how many sources `from` occurred in.
 *
 * @example
 * ```ts ignore
 * import { getKernels, mutantKernels } from "./testing.ts";
 * const mutant = mutantKernels((await getKernels())!, "if row < n {", "if row + 1u < n {");
 * ```
 */
export function mutantKernels(
  kernels: AttentionKernels,
  from: string,
  to: string,
): AttentionKernels & { cache: MutatingCache } {
  return {
    gpu: kernels.gpu,
    cache: new MutatingCache(kernels.gpu.device, from, to),
    defaultTiles: (kernel, shape) => kernels.defaultTiles(kernel, shape),
  };
}

/**
 * Runs `fn` with `device.createBuffer` wrapped to count calls, and returns the count: how a test
 * tells that a refusal came before any allocation.
 *
 * @example
 * ```ts ignore
 * import { countingBuffers } from "./testing.ts";
 * const made = await countingBuffers(device, async () => {});
 * console.assert(made === 0);
 * ```
 */
export async function countingBuffers(
  device: GPUDevice,
  fn: () => Promise<void>,
): Promise<number> {
  let made = 0;
  const original = device.createBuffer;
  device.createBuffer = function (this: GPUDevice, desc: GPUBufferDescriptor): GPUBuffer {
    made++;
    return original.call(this, desc);
  };
  try {
    await fn();
  } finally {
    device.createBuffer = original;
  }
  return made;
}
