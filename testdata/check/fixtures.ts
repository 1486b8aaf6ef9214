/**
 * Builders of crafted results files for the tests of `analysis/compare.ts` and the `check`
 * command: a plausible run and file with every field set, overridable field by field.
 *
 * @module
 */

import { RESULTS_SCHEMA, type ResultsFile, type RunRecord } from "../../core/schema.ts";
import { mulberry32, summarize } from "../../analysis/stats.ts";

/**
 * `n` samples around `center` ms with Gaussian noise of relative size `rel`, deterministic
 * for a given `seed`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { noisySamples } from "./fixtures.ts";
 * assert(noisySamples(20, 10, 0.01, 1).length === 20);
 * ```
 */
export function noisySamples(n: number, center: number, rel: number, seed: number): number[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const gauss = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    return center * (1 + rel * gauss);
  });
}

/** Fields of a run to override; `samples` replaces the timing (null: no timing). */
export type RunOverrides = Partial<Omit<RunRecord, "timeMs">> & { samples?: number[] | null };

/**
 * An ok flash-attention f32 run with 20 samples around 2 ms (1% noise), overridden by `over`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { makeRun } from "./fixtures.ts";
 * assert(makeRun({ n: 2048 }).n === 2048);
 * ```
 */
export function makeRun(over: RunOverrides = {}): RunRecord {
  const { samples = noisySamples(20, 2, 0.01, 1), ...fields } = over;
  return {
    kernel: "flash",
    dtype: "f32",
    batch: 1,
    heads: 8,
    n: 1024,
    d: 64,
    causal: false,
    density: 1,
    mask: null,
    tile: { br: 64, bc: 64, rm: 4, tx: 16 },
    sweep: "n",
    status: "ok",
    reason: null,
    clock: "timestamp-query",
    compileMs: 12.5,
    timeMs: samples === null ? null : summarize(samples),
    flops: 4 * 8 * 1024 * 1024 * 64,
    tflops: 1.07,
    tflopsDenseEquivalent: 1.07,
    hbmBytes: { theoretical: 2_000_000, modeled: 1_048_576, lowerBound: 1_048_576, counted: null },
    achievedGBs: 524,
    footprintBytes: 4_194_304,
    maxRelError: 2e-6,
    warnings: [],
    ...fields,
  };
}

/**
 * A results file of `runs` on an NVIDIA H100, overridden by `over`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { makeResults, makeRun } from "./fixtures.ts";
 * assert(makeResults([makeRun()]).runs.length === 1);
 * ```
 */
export function makeResults(runs: RunRecord[], over: Partial<ResultsFile> = {}): ResultsFile {
  return {
    schema: RESULTS_SCHEMA,
    createdAt: "2025-01-01T00:00:00.000Z",
    tool: { name: "attnbench", version: "0.1.0" },
    denoVersion: "2.9.6",
    gitCommit: "d3dc20d",
    device: {
      vendor: "nvidia",
      architecture: "hopper",
      description: "NVIDIA H100",
      device: "",
      isFallbackAdapter: false,
      limits: { maxStorageBufferBindingSize: 2147483648 },
      features: ["timestamp-query", "shader-f16"],
    },
    ceilings: { copyGBs: 2800, fmaTflops: 50, launchOverheadUs: 8, clock: "timestamp-query" },
    config: { command: "bench" },
    runs,
    ...over,
  };
}
