import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  bootstrapRatioOfMedians,
  coefficientOfVariation,
  compareSamples,
  max,
  mean,
  median,
  min,
  modifiedZScores,
  mulberry32,
  outlierIndices,
  p99,
  percentile,
  stdev,
  summarize,
  timingWarnings,
} from "./stats.ts";
import { noisySamples as noisy } from "../testdata/check/fixtures.ts";

Deno.test("median takes the middle value of an odd count, unsorted input", () => {
  assertEquals(median([5, 1, 4, 2, 3]), 3);
  assertEquals(median([7]), 7);
});

Deno.test("median averages the two middle values of an even count, not the whole mean", () => {
  assertEquals(median([100, 1, 3, 2]), 2.5);
  assertEquals(median([1, 2]), 1.5);
});

Deno.test("median does not reorder its input", () => {
  const xs = [3, 1, 2];
  median(xs);
  assertEquals(xs, [3, 1, 2]);
});

Deno.test("every statistic refuses an empty sample", () => {
  for (const f of [median, mean, stdev, min, max, p99, summarize]) {
    assertThrows(() => f([]), RangeError);
  }
});

Deno.test("mean, min and max", () => {
  assertEquals(mean([1, 2, 6]), 3);
  assertEquals(min([3, -1, 2]), -1);
  assertEquals(max([3, -1, 2]), 3);
});

Deno.test("stdev is the sample standard deviation (n − 1) and 0 for one sample", () => {
  assertAlmostEquals(stdev([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7), 1e-12);
  assertEquals(stdev([42]), 0);
  assertEquals(stdev([3, 3, 3]), 0);
});

Deno.test("stdev stays exact on a large offset (no mean-of-squares cancellation)", () => {
  const xs = [4, 7, 13, 16].map((x) => 1e9 + x);
  assertAlmostEquals(stdev(xs), Math.sqrt(30), 1e-6);
});

Deno.test("percentile interpolates linearly between closest ranks", () => {
  assertEquals(percentile([10, 20], 0.25), 12.5);
  assertEquals(percentile([3, 1, 2], 0), 1);
  assertEquals(percentile([3, 1, 2], 1), 3);
  const oneToHundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assertAlmostEquals(p99(oneToHundred), 99.01, 1e-9);
  assertThrows(() => percentile([1], 1.5), RangeError);
  assertThrows(() => percentile([1], NaN), RangeError);
});

Deno.test("coefficient of variation is stdev over mean, 0 for constant samples", () => {
  assertEquals(coefficientOfVariation([5, 5, 5]), 0);
  assertAlmostEquals(coefficientOfVariation([1, 3]), Math.SQRT2 / 2, 1e-15);
});

Deno.test("modified z-score matches Iglewicz–Hoaglin by hand", () => {
  // median 3, |deviations| 2,1,0,1,97 → MAD 1; z = 0.6745·(x − 3).
  const z = modifiedZScores([1, 2, 3, 4, 100]);
  assertAlmostEquals(z[0]!, -1.349, 1e-12);
  assertAlmostEquals(z[4]!, 0.6745 * 97, 1e-9);
  assertEquals(outlierIndices([1, 2, 3, 4, 100]), [4]);
  assertEquals(outlierIndices([1, 2, 3, 4, 5]), []);
});

Deno.test("modified z-score falls back to the mean absolute deviation when MAD is 0", () => {
  // MAD = 0; MeanAD = 4/7, so z(5) = 4 / (1.253314 · 4/7) ≈ 5.59 > 3.5.
  assertEquals(outlierIndices([1, 1, 1, 1, 1, 1, 5]), [6]);
  // MAD = 0 but the spread is wide: z(2) = 1 / (1.253314 · 3/7) ≈ 1.86, no outlier.
  assertEquals(outlierIndices([1, 1, 1, 1, 2, 2, 2]), []);
  // Every sample equal: no division by zero, no outlier.
  assertEquals(modifiedZScores([2, 2, 2]), [0, 0, 0]);
});

Deno.test("summarize fills every TimeStats field and keeps the samples in order", () => {
  const samples = [1.0, 1.2, 0.9, 1.1, 9.0];
  const s = summarize(samples);
  assertEquals(s.median, 1.1);
  assertAlmostEquals(s.mean, 2.64, 1e-12);
  assertEquals(s.min, 0.9);
  assertEquals(s.max, 9.0);
  assertAlmostEquals(s.p99, 9.0 - 0.04 * (9.0 - 1.2), 1e-12);
  assertAlmostEquals(s.cv, s.stdev / s.mean, 1e-15);
  assertEquals(s.samples, samples);
  assert(s.samples !== samples, "samples must be copied");
  assertEquals(s.outliers, [4]);
});

Deno.test("timingWarnings flags a first run much slower than the median", () => {
  const opts = { timerResolutionMs: 0.001 };
  const slow = timingWarnings([2, 2, 2], { ...opts, firstRunMs: 40 });
  assertEquals(slow.length, 1);
  assert(slow[0]!.includes("first run took 40 ms, 20.0× the median 2 ms"), slow[0]);
  assertEquals(timingWarnings([2, 2, 2], { ...opts, firstRunMs: 9 }), []);
  assertEquals(
    timingWarnings([2, 2, 2], { ...opts, firstRunMs: 9, slowFirstRunFactor: 4 }).length,
    1,
  );
  assertEquals(timingWarnings([2, 2, 2], { ...opts, firstRunMs: null }), []);
});

Deno.test("timingWarnings flags samples shorter than the timer's resolution", () => {
  const w = timingWarnings([0.05, 0.2, 0.08], { firstRunMs: null, timerResolutionMs: 0.1 });
  assertEquals(w.length, 1);
  assert(w[0]!.startsWith("2 of 3 samples are shorter than the timer's resolution (0.1 ms)"), w[0]);
  assertEquals(timingWarnings([0.2, 0.3], { firstRunMs: null, timerResolutionMs: 0.1 }), []);
  assertEquals(timingWarnings([], { firstRunMs: 100, timerResolutionMs: 1 }), []);
});

Deno.test("mulberry32 is deterministic per seed and uniform in [0, 1)", () => {
  const a = mulberry32(7);
  const b = mulberry32(7);
  const c = mulberry32(8);
  const xs = Array.from({ length: 10_000 }, () => a());
  assertEquals(xs.slice(0, 5), Array.from({ length: 5 }, () => b()));
  assert(xs[0] !== c());
  assert(xs.every((x) => x >= 0 && x < 1));
  assertAlmostEquals(mean(xs), 0.5, 0.01);
});

Deno.test("bootstrap interval is reproducible and brackets the ratio of medians", () => {
  const base = noisy(30, 10, 0.02, 1);
  const cur = noisy(30, 11, 0.02, 2);
  const ci = bootstrapRatioOfMedians(base, cur);
  assertEquals(bootstrapRatioOfMedians(base, cur), ci);
  assertEquals(ci.ratio, median(cur) / median(base));
  assertEquals(ci.confidence, 0.95);
  assert(ci.low <= ci.ratio && ci.ratio <= ci.high, JSON.stringify(ci));
  assert(ci.low > 1.05 && ci.high < 1.15, JSON.stringify(ci));
  const other = bootstrapRatioOfMedians(base, cur, { seed: 99 });
  assert(other.low !== ci.low || other.high !== ci.high, "the seed must matter");
  const wider = bootstrapRatioOfMedians(base, cur, { confidence: 0.99 });
  assert(wider.low <= ci.low && wider.high >= ci.high);
});

Deno.test("bootstrap rejects bad settings", () => {
  assertThrows(() => bootstrapRatioOfMedians([1], [1], { resamples: 0 }), RangeError);
  assertThrows(() => bootstrapRatioOfMedians([1], [1], { confidence: 1 }), RangeError);
  assertThrows(() => bootstrapRatioOfMedians([], [1]), RangeError);
});

Deno.test("a 20% slowdown with 1% noise is a regression", () => {
  const r = compareSamples(noisy(20, 10, 0.01, 1), noisy(20, 12, 0.01, 2), { thresholdPct: 5 });
  assertEquals(r.verdict, "regressed");
  assertAlmostEquals(r.changePct!, 20, 2);
  assert(r.interval!.low > 1.15, JSON.stringify(r.interval));
});

Deno.test("a 20% speed-up with 1% noise is an improvement", () => {
  const r = compareSamples(noisy(20, 10, 0.01, 3), noisy(20, 8, 0.01, 4), { thresholdPct: 5 });
  assertEquals(r.verdict, "improved");
  assert(r.interval!.high < 1);
});

Deno.test("a 2% change inside 5% noise is within noise", () => {
  const r = compareSamples(noisy(20, 10, 0.05, 5), noisy(20, 10.2, 0.05, 6), { thresholdPct: 5 });
  assertEquals(r.verdict, "within noise");
});

Deno.test("a significant change smaller than the threshold is within noise", () => {
  const r = compareSamples(noisy(50, 10, 0.001, 7), noisy(50, 10.3, 0.001, 8), { thresholdPct: 5 });
  assert(r.interval!.low > 1, "the interval excludes 1 ...");
  assertEquals(r.verdict, "within noise", "... but 3% is under the 5% threshold");
});

Deno.test("a change above the threshold whose interval includes 1 is within noise", () => {
  // Medians differ by 10%, but with a wild spread and few samples the interval straddles 1.
  const base = [10, 4, 16, 10, 25, 5, 10];
  const cur = base.map((x) => x * 1.1);
  const r = compareSamples(base, cur, { thresholdPct: 5 });
  assertAlmostEquals(r.changePct!, 10, 1e-9);
  assert(r.interval!.low < 1, JSON.stringify(r.interval));
  assertEquals(r.verdict, "within noise");
});

Deno.test("identical samples are within noise with no change", () => {
  const xs = noisy(20, 10, 0.02, 9);
  const r = compareSamples(xs, [...xs], { thresholdPct: 5 });
  assertEquals(r.verdict, "within noise");
  assertEquals(r.changePct, 0);
});

Deno.test("fewer than 5 usable samples on either side is 'too few samples'", () => {
  const many = noisy(20, 10, 0.01, 10);
  const few = [12, 12, 12, 12];
  assertEquals(compareSamples(many, few, { thresholdPct: 5 }).verdict, "too few samples");
  assertEquals(compareSamples(few, many, { thresholdPct: 5 }).verdict, "too few samples");
  // Zero and non-finite samples are not measurements.
  const zeros = [12, 12, 12, 12, 0, NaN];
  const r = compareSamples(many, zeros, { thresholdPct: 5 });
  assertEquals([r.verdict, r.currentCount, r.interval], ["too few samples", 4, null]);
  assertEquals(
    compareSamples(many, [12, 12, 12, 12, 12], { thresholdPct: 5 }).verdict,
    "regressed",
  );
  assertEquals(
    compareSamples(many, few, { thresholdPct: 5, minSamples: 4 }).verdict,
    "regressed",
  );
});
