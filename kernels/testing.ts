/**
 * Helpers shared by the kernel tests: seeds, one GPU per test file, the checked run (the same
 * check the tool makes, `check.ts`), a tolerance assertion and mutant kernels.
 *
 * For tests only (`*_test.ts`).
 *
 * @module
 */

import { AssertionError } from "@std/assert";
import { AttentionKernels, type AttentionProblem, prepareAttention } from "./attention.ts";
import { type CheckOptions, checkPrepared, type CheckResult } from "./check.ts";
import { openGpu } from "./gpu.ts";
import { type CompiledProgram, PipelineCache } from "./program.ts";
import { tolerance } from "../core/tolerances.ts";
import type { CountedBytes } from "./kernel.ts";

export {
  type CheckOptions,
  checkPrepared,
  type CheckResult,
  describeCase,
  describeMask,
  describeShape,
  describeTiles,
} from "./check.ts";
export { randomInputs } from "./common.ts";

/**
 * A 32-bit seed from a label (FNV-1a), so every case gets its own inputs and the same ones on
 * every run, whatever the order or `--filter` the tests run with.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { seedFor } from "./testing.ts";
 * assert(seedFor("a") === seedFor("a") && seedFor("a") !== seedFor("b"));
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
  opts: CheckOptions = {},
): Promise<CheckResult> {
  const prepared = await prepareAttention(kernels, problem, {
    inputSets: (opts.set ?? 0) + 1,
  });
  try {
    return await checkPrepared(prepared, seed, opts);
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
      `${r.label}: ${r.nonFinite} of ${
        Object.values(r.outputs).reduce((a, o) => a + o.length, 0)
      } output elements not finite`,
    );
  }
  if (!(r.error <= bound)) {
    throw new AssertionError(`${r.label}: max relative error ${r.error} exceeds ${bound}`);
  }
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
  override get(key: string, source: string, entryPoint = "main"): Promise<CompiledProgram> {
    if (!source.includes(this.#from)) return super.get(key, source, entryPoint);
    this.mutated++;
    return super.get(`${key}/mutant`, source.replaceAll(this.#from, this.#to), entryPoint);
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

/**
 * The slots where counted and modeled bytes differ, as readable lines (empty when they agree):
 * a slot present on one side only, then every read or write that differs.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { trafficDifferences } from "./testing.ts";
 * const d = trafficDifferences({ q: { read: 8, write: 0 } }, { q: { read: 4, write: 0 } });
 * assert(d[0] === "q.read: counted 8, modeled 4 (4)");
 * ```
 */
export function trafficDifferences(counted: CountedBytes, modeled: CountedBytes): string[] {
  const out: string[] = [];
  const slots = (x: CountedBytes) => Object.keys(x).sort().join();
  if (slots(counted) !== slots(modeled)) {
    out.push(`slots: counted ${slots(counted)}, modeled ${slots(modeled)}`);
  }
  for (const slot of Object.keys(modeled)) {
    for (const dir of ["read", "write"] as const) {
      const c = counted[slot]?.[dir] ?? NaN;
      const m = modeled[slot]![dir];
      if (c !== m) out.push(`${slot}.${dir}: counted ${c}, modeled ${m} (${c - m})`);
    }
  }
  return out;
}
