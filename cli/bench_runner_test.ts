// The measuring loop of `bench` without a GPU: the preparation and the timer are mocks (as
// hyperfine's MockExecutor), the plans are the kernels' real ones. What is checked is what
// measureRun makes of the samples: the statistics, the rates, the warm-up it asks for, the
// per-pass bytes, and how a refusal or a failure is recorded.

import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { UsageError } from "../core/errors.ts";
import type { AttentionShape } from "../core/shapes.ts";
import type { TimingOptions, TimingResult } from "../kernels/timing.ts";
import {
  type AttentionKernels,
  type AttentionProblem,
  DoesNotFitError,
  type PreparedAttention,
} from "../kernels/attention.ts";
import { type Kernel, type KernelPlan, totalBytes } from "../kernels/kernel.ts";
import { KERNELS } from "../kernels/registry.ts";
import { type MeasureOptions, measureRun, type RunSpec } from "./bench_runner.ts";

const SHAPE: AttentionShape = { batch: 2, heads: 2, n: 37, d: 32, dtype: "f32", causal: true };
const TILES = { br: 8, bc: 8, rm: 2, tx: 4 };
const OPTS: MeasureOptions = {
  warmup: 3,
  warmupMs: 0,
  reps: 5,
  minTimeMs: 0,
  countIo: false,
  verify: false,
  sramBytes: 49152,
};
/** Nobody looks inside: the mocks stand in for everything that would use it. */
const NO_GPU = { gpu: {} } as unknown as AttentionKernels;

function spec(kernel: Kernel, over: Partial<RunSpec> = {}): RunSpec {
  return {
    kernel,
    shape: SHAPE,
    tiles: TILES,
    mask: { kind: "random", density: 0.5, seed: 3 },
    sweep: "n",
    seed: 1,
    ...over,
  };
}

/** A timer that hands out the given samples, call after call, and records what it was asked. */
function mockTimer(samples: number[][], extra: Partial<TimingResult> = {}) {
  const calls: TimingOptions[] = [];
  let encoded = 0;
  const timeDispatches = (
    _gpu: unknown,
    encodeRep: (pass: GPUComputePassEncoder, rep: number) => void,
    opts: TimingOptions,
  ): Promise<TimingResult> => {
    calls.push(opts);
    encodeRep({} as GPUComputePassEncoder, calls.length);
    encoded++;
    const samplesMs = samples[Math.min(calls.length - 1, samples.length - 1)]!;
    return Promise.resolve({
      samplesMs,
      clock: "timestamp-query",
      firstRunMs: samplesMs[0]!,
      resolutionMs: 1e-6,
      discarded: 0,
      roundTripMs: 0,
      ...extra,
    });
  };
  return { timeDispatches, calls, encoded: () => encoded };
}

/** A prepared kernel that records what is done to it; nothing runs. */
function mockPrepare(fail?: Error) {
  const log: string[] = [];
  const prepare = (
    _kernels: AttentionKernels,
    problem: AttentionProblem,
    opts: { inputSets?: number } = {},
  ): Promise<PreparedAttention> => {
    if (fail) return Promise.reject(fail);
    const kernel = problem.kernel as Kernel;
    const plan: KernelPlan = kernel.plan({ ...problem, tiles: problem.tiles! });
    const inputSets = opts.inputSets ?? 1;
    const p: PreparedAttention = {
      kernel,
      plan,
      shape: plan.shape,
      tiles: plan.tiles,
      mask: plan.mask,
      footprintBytes: 0,
      compileMs: 12.5,
      inputSets,
      inputNames: ["q", "k", "v"],
      outputNames: ["o"],
      upload: (_inputs, set = 0) => void log.push(`upload ${set}`),
      poisonOutput: () => {},
      encode: (_pass, set = 0) => void log.push(`encode ${set}`),
      passNames: plan.passes().map((x) => x.name),
      encodePass: (_pass, index) => void log.push(`pass ${index}`),
      run: () => Promise.resolve(),
      readOutput: () => Promise.resolve(new Float32Array()),
      readOutputs: () => Promise.resolve({}),
      readCounters: () => Promise.resolve({}),
      resetCounters: () => {},
      destroy: () => void log.push("destroy"),
    };
    return Promise.resolve(p);
  };
  return { prepare, log };
}

Deno.test("an ok run: statistics, rates and byte models from the samples and the plan", async () => {
  const timer = mockTimer([[2, 1, 4, 3, 5]]);
  const prep = mockPrepare();
  const r = await measureRun(NO_GPU, spec(KERNELS.flash), OPTS, { ...timer, ...prep });
  assertEquals([r.status, r.reason, r.clock, r.compileMs], ["ok", null, "timestamp-query", 12.5]);
  assertEquals(r.timeMs?.median, 3);
  assertEquals(r.timeMs?.samples, [2, 1, 4, 3, 5]);
  const plan = KERNELS.flash.plan({ shape: SHAPE, tiles: TILES });
  assertEquals(r.hbmBytes.modeled, totalBytes(plan.modeledTraffic()));
  assertEquals(r.hbmBytes.theoretical, plan.theoreticalBytes({ sramBytes: 49152 }).bytes);
  assertEquals(r.flops, 4 * 2 * 2 * 37 * 37 * 32 / 2);
  assertAlmostEquals(r.tflops!, r.flops / (3 * 1e9), 1e-15);
  assertAlmostEquals(r.achievedGBs!, r.hbmBytes.modeled / (3 * 1e6), 1e-9);
  assertEquals(r.passes, undefined, "one pass: no per-pass times");
  // One timing call (no warm-up time asked), with the options given; inputs rotated.
  assertEquals(timer.calls, [{ warmup: 3, reps: 5, minTimeMs: 0 }]);
  // Small inputs: four input sets, each uploaded once, the timed runs rotating among them.
  const uploads = prep.log.filter((l) => l.startsWith("upload"));
  assertEquals(uploads, [0, 1, 2, 3].map((i) => `upload ${i}`));
  assertEquals(prep.log.filter((l) => l.startsWith("encode")), ["encode 1"]);
  assertEquals(prep.log.at(-1), "destroy");
});

Deno.test("warm-up time: a probe, then enough runs to fill it (at most 5000)", async () => {
  for (const [probe, warmupMs, expected] of [[0.5, 100, 200], [0.001, 100, 5000]] as const) {
    const timer = mockTimer([[probe, probe, probe], [1, 1, 1]]);
    await measureRun(NO_GPU, spec(KERNELS.flash), { ...OPTS, warmupMs }, {
      ...timer,
      ...mockPrepare(),
    });
    assertEquals(timer.calls[0], { warmup: 1, reps: 3 });
    assertEquals(timer.calls[1]?.warmup, expected);
    // Then the clocks settle: warmupMs more GPU time, until two batches agree.
    assertEquals(timer.calls[1]?.settleMs, warmupMs);
  }
});

Deno.test("clocks that did not settle become a warning; passes settle after the whole run", async () => {
  const settle = { busyMs: 2400, batchMediansMs: [1.1, 0.8, 0.62], settled: false };
  const timer = mockTimer([[4], [4, 4, 4], [1], [2], [1]], { settle });
  const r = await measureRun(NO_GPU, spec(KERNELS.standard), { ...OPTS, warmupMs: 200 }, {
    ...timer,
    ...mockPrepare(),
  });
  assertEquals(timer.calls.map((c) => c.settleMs), [undefined, 200, 0, 0, 0]);
  const warned = r.warnings.filter((w) => w.includes("clocks did not settle in 2400 ms"));
  // The whole run's and each of its three passes'.
  assertEquals(warned.length, 4, r.warnings.join("\n"));
  assert(warned[1]!.startsWith("pass scores: "), warned[1]);
});

Deno.test("a multi-pass kernel: each pass timed alone, with the bytes its slots move", async () => {
  const timer = mockTimer([[4, 4, 4], [1], [2], [1]]);
  const prep = mockPrepare();
  const r = await measureRun(NO_GPU, spec(KERNELS.standard), OPTS, { ...timer, ...prep });
  const t = KERNELS.standard.plan({ shape: SHAPE, tiles: TILES }).modeledTraffic();
  assertEquals(r.passes?.map((p) => [p.name, p.medianMs, p.bytes]), [
    ["scores", 1, t.q!.read + t.k!.read + t.s!.write],
    ["softmax", 2, t.s!.read + t.p!.write],
    ["pv", 1, t.p!.read + t.v!.read + t.o!.write],
  ]);
  assertEquals(r.passes?.[1]?.achievedGBs, (t.s!.read + t.p!.write) / (2 * 1e6));
  assertEquals(prep.log.filter((l) => l.startsWith("pass")), ["pass 0", "pass 1", "pass 2"]);
  assertEquals(timer.calls.slice(1).map((c) => c.reps), [5, 5, 5]);
});

Deno.test("a sparse kernel records its mask's real density and FLOPs", async () => {
  const r = await measureRun(NO_GPU, spec(KERNELS["block-sparse"]), OPTS, {
    ...mockTimer([[1]]),
    ...mockPrepare(),
  });
  const plan = KERNELS["block-sparse"].plan({
    shape: SHAPE,
    tiles: TILES,
    mask: { kind: "random", density: 0.5, seed: 3 },
  });
  assertEquals([r.mask, r.density], ["random", plan.density]);
  assertEquals(r.flops, plan.flops("fwd"));
  assert(r.density < 1);
});

Deno.test("discarded samples and a slow first run become warnings", async () => {
  const timer = mockTimer([[1, 1, 1, 1, 1]], { discarded: 2, firstRunMs: 900 });
  const r = await measureRun(NO_GPU, spec(KERNELS.flash), OPTS, { ...timer, ...mockPrepare() });
  assert(
    r.warnings.some((w) => w.startsWith("2 samples with a non-positive time")),
    r.warnings.join(),
  );
  assert(r.warnings.some((w) => w.includes("first run took 900 ms")), r.warnings.join());
});

Deno.test("refusals are skipped with their reason, failures are failed, nothing is timed", async () => {
  const cases: [Error, string, string][] = [
    [new DoesNotFitError("flash n=37: buffer S is huge"), "skipped", "does not fit: flash n=37"],
    [new UsageError("tiles {}: br 3 is not a multiple of rm 2"), "skipped", "tiles {}: br 3"],
    [new Error("device lost\nat somewhere"), "failed", "device lost"],
  ];
  for (const [error, status, reason] of cases) {
    const timer = mockTimer([[1]]);
    const r = await measureRun(NO_GPU, spec(KERNELS.flash), OPTS, {
      ...timer,
      ...mockPrepare(error),
    });
    assertEquals(r.status, status);
    assert(r.reason?.startsWith(reason), `${r.reason}`);
    assertEquals([r.timeMs, r.tflops, timer.calls.length], [null, null, 0]);
    // What the run would have moved is still recorded.
    assert(r.hbmBytes.modeled > 0 && r.flops > 0 && r.footprintBytes > 0);
  }
  // A kernel whose plan refuses the problem: skipped, with the kernel's reason.
  const picky: Kernel = {
    ...KERNELS.flash,
    name: "picky",
    plan: () => {
      throw new UsageError("picky takes n ≥ 64 only");
    },
  };
  const r = await measureRun(NO_GPU, spec(picky), OPTS, { ...mockTimer([[1]]), ...mockPrepare() });
  assertEquals([r.kernel, r.status, r.reason], ["picky", "skipped", "picky takes n ≥ 64 only"]);
});
