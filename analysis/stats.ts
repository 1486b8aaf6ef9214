/**
 * Pure statistics of timing samples: summaries for the results file, warnings about how the
 * samples were taken, and the comparison `check` uses to tell a regression from noise.
 *
 * Method choices, stated once:
 * - **median**: the middle value of the sorted samples; for an even count, the mean of the two
 *   middle values. Never a mean of the whole sample.
 * - **stdev**: sample standard deviation (divisor n − 1) by Welford's one-pass update; 0 for a
 *   single sample.
 * - **percentiles** (p99): linear interpolation between closest ranks (Hyndman & Fan type 7, the
 *   default of R and NumPy): with the samples sorted, position h = (n − 1)·p, interpolated
 *   between the values at ⌊h⌋ and ⌈h⌉.
 * - **outliers**: Iglewicz–Hoaglin modified z-score, z = 0.6745·(x − median) / MAD, flagged when
 *   |z| > 3.5. When MAD is 0 (more than half the samples equal, common with coarse timers) the
 *   mean absolute deviation stands in, z = (x − median) / (1.253314·MeanAD); when that is 0
 *   too, every sample equals the median and none is an outlier.
 * - **comparison**: percentile bootstrap of the ratio of medians, current / baseline. Each
 *   side is resampled with replacement independently, `resamples` times (default 2000), with
 *   a seeded mulberry32 generator, so the same inputs always give the same interval. The
 *   interval is the (α/2, 1 − α/2) percentiles of the resampled ratios (default 95%).
 *
 * @module
 */

import { mulberry32 } from "../core/rng.ts";
import type { TimeStats } from "../core/schema.ts";
import { fmtMs } from "./table.ts";

function requireSamples(xs: readonly number[], what: string): void {
  if (xs.length === 0) throw new RangeError(`${what} of an empty sample`);
}

function sorted(xs: readonly number[]): Float64Array {
  return Float64Array.from(xs).sort();
}

function medianOfSorted(s: Float64Array): number {
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * The median: the middle sorted value, or the mean of the two middle values when the count
 * is even. Throws a `RangeError` on an empty sample.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { median } from "./stats.ts";
 * assert(median([3, 1, 2]) === 2);
 * assert(median([4, 1, 3, 2]) === 2.5);
 * ```
 */
export function median(xs: readonly number[]): number {
  requireSamples(xs, "median");
  return medianOfSorted(sorted(xs));
}

/**
 * The arithmetic mean. Throws a `RangeError` on an empty sample.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { mean } from "./stats.ts";
 * assert(mean([1, 2, 6]) === 3);
 * ```
 */
export function mean(xs: readonly number[]): number {
  requireSamples(xs, "mean");
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * Sample standard deviation (divisor n − 1) by Welford's method; 0 for one sample. Throws a
 * `RangeError` on an empty sample.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { stdev } from "./stats.ts";
 * assert(Math.abs(stdev([2, 4, 4, 4, 5, 5, 7, 9]) - Math.sqrt(32 / 7)) < 1e-12);
 * assert(stdev([5]) === 0);
 * ```
 */
export function stdev(xs: readonly number[]): number {
  requireSamples(xs, "stdev");
  let m = 0;
  let m2 = 0;
  xs.forEach((x, i) => {
    const delta = x - m;
    m += delta / (i + 1);
    m2 += delta * (x - m);
  });
  return xs.length < 2 ? 0 : Math.sqrt(m2 / (xs.length - 1));
}

/**
 * The smallest sample. Throws a `RangeError` on an empty sample.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { min } from "./stats.ts";
 * assert(min([3, 1, 2]) === 1);
 * ```
 */
export function min(xs: readonly number[]): number {
  requireSamples(xs, "min");
  return xs.reduce((a, b) => Math.min(a, b));
}

/**
 * The largest sample. Throws a `RangeError` on an empty sample.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { max } from "./stats.ts";
 * assert(max([3, 1, 2]) === 3);
 * ```
 */
export function max(xs: readonly number[]): number {
  requireSamples(xs, "max");
  return xs.reduce((a, b) => Math.max(a, b));
}

function percentileOfSorted(s: Float64Array, p: number): number {
  const h = (s.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return s[lo]! + (h - lo) * (s[hi]! - s[lo]!);
}

/**
 * The `p`-quantile (0 ≤ p ≤ 1) by linear interpolation between closest ranks (type 7: NumPy's
 * and R's default). Throws a `RangeError` on an empty sample or a `p` outside [0, 1].
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { percentile } from "./stats.ts";
 * assert(percentile([1, 2, 3, 4, 5], 0.5) === 3);
 * assert(percentile([10, 20], 0.25) === 12.5);
 * ```
 */
export function percentile(xs: readonly number[], p: number): number {
  requireSamples(xs, "percentile");
  if (!(p >= 0 && p <= 1)) throw new RangeError(`percentile p must be in [0, 1], got ${p}`);
  return percentileOfSorted(sorted(xs), p);
}

/**
 * The 99th percentile, by {@linkcode percentile}'s linear interpolation.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { p99 } from "./stats.ts";
 * const xs = Array.from({ length: 101 }, (_, i) => i);
 * assert(p99(xs) === 99);
 * ```
 */
export function p99(xs: readonly number[]): number {
  return percentile(xs, 0.99);
}

/**
 * Coefficient of variation, stdev / mean; 0 when every sample is equal.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { coefficientOfVariation } from "./stats.ts";
 * assert(coefficientOfVariation([2, 2, 2]) === 0);
 * assert(coefficientOfVariation([1, 3]) === Math.SQRT2 / 2);
 * ```
 */
export function coefficientOfVariation(xs: readonly number[]): number {
  const s = stdev(xs);
  return s === 0 ? 0 : s / mean(xs);
}

/** Iglewicz–Hoaglin's cut-off: a sample with |modified z| above it is an outlier. */
export const OUTLIER_Z = 3.5;

/**
 * Modified z-scores (Iglewicz–Hoaglin): 0.6745·(x − median) / MAD. When MAD is 0 the mean
 * absolute deviation stands in, (x − median) / (1.253314·MeanAD); when both are 0 every score
 * is 0.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { modifiedZScores } from "./stats.ts";
 * const z = modifiedZScores([1, 2, 3, 4, 100]);
 * assert(z[4]! > 3.5 && Math.abs(z[2]!) < 1e-12);
 * ```
 */
export function modifiedZScores(xs: readonly number[]): number[] {
  const m = median(xs);
  const deviations = xs.map((x) => Math.abs(x - m));
  const mad = median(deviations);
  if (mad > 0) return xs.map((x) => 0.6745 * (x - m) / mad);
  const meanAd = mean(deviations);
  if (meanAd > 0) return xs.map((x) => (x - m) / (1.253314 * meanAd));
  return xs.map(() => 0);
}

/**
 * Indices of the samples whose modified z-score exceeds {@linkcode OUTLIER_Z} in magnitude.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { outlierIndices } from "./stats.ts";
 * assert(outlierIndices([1, 1.1, 0.9, 1, 9])[0] === 4);
 * ```
 */
export function outlierIndices(xs: readonly number[], threshold = OUTLIER_Z): number[] {
  return modifiedZScores(xs).flatMap((z, i) => Math.abs(z) > threshold ? [i] : []);
}

/**
 * Every statistic of {@linkcode TimeStats} from raw samples in milliseconds (kept, in order,
 * in `samples`; outliers are flagged, not removed). Throws a `RangeError` on no samples.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { summarize } from "./stats.ts";
 * const s = summarize([1.0, 1.2, 0.9, 1.1]);
 * assert(s.median === 1.05 && s.min === 0.9 && s.samples.length === 4);
 * ```
 */
export function summarize(samples: readonly number[]): TimeStats {
  return {
    median: median(samples),
    mean: mean(samples),
    stdev: stdev(samples),
    min: min(samples),
    max: max(samples),
    p99: p99(samples),
    cv: coefficientOfVariation(samples),
    samples: [...samples],
    outliers: outlierIndices(samples),
  };
}

/** What {@linkcode timingWarnings} needs besides the samples. */
export interface TimingWarningOptions {
  /** Time of the first (warm-up, compiling) run in ms; null when not measured. */
  firstRunMs: number | null;
  /** The clock's resolution in ms (one tick); 0 when unknown. */
  timerResolutionMs: number;
  /** A first run this many times the median is "much slower". Default 5. */
  slowFirstRunFactor?: number;
}

/**
 * Warnings about how trustworthy the samples are: a first run much slower than the median
 * (caches, lazy compilation — the warm-up matters) and samples shorter than one tick of the
 * timer (their values are mostly quantization). Returns an empty list when all is well.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { timingWarnings } from "./stats.ts";
 * const w = timingWarnings([1, 1, 1], { firstRunMs: 50, timerResolutionMs: 0.001 });
 * assert(w.length === 1 && w[0]!.includes("first run"));
 * ```
 */
export function timingWarnings(samples: readonly number[], opts: TimingWarningOptions): string[] {
  const warnings: string[] = [];
  if (samples.length === 0) return warnings;
  const m = median(samples);
  const factor = opts.slowFirstRunFactor ?? 5;
  if (opts.firstRunMs !== null && opts.firstRunMs > factor * m) {
    warnings.push(
      `first run took ${fmtMs(opts.firstRunMs)}, ${(opts.firstRunMs / m).toFixed(1)}× the ` +
        `median ${fmtMs(m)}: caches or compilation were cold; keep the warm-up runs`,
    );
  }
  const short = samples.filter((s) => s < opts.timerResolutionMs).length;
  if (short > 0) {
    warnings.push(
      `${short} of ${samples.length} samples are shorter than the timer's resolution ` +
        `(${fmtMs(opts.timerResolutionMs)}) and mostly quantization: time more work per sample`,
    );
  }
  return warnings;
}

/** The seeded generator of the bootstrap (mulberry32, shared with the kernels' inputs). */
export { mulberry32 };

/** Settings of the bootstrap. */
export interface BootstrapOptions {
  /** Number of resamples. Default 2000. */
  resamples?: number;
  /** Two-sided confidence level in (0, 1). Default 0.95. */
  confidence?: number;
  /** Seed of the mulberry32 generator. Default {@linkcode DEFAULT_SEED}. */
  seed?: number;
}

/** The bootstrap's default seed: fixed, so `check` is reproducible. */
export const DEFAULT_SEED = 0x5eed;

/** A ratio of medians with its bootstrap confidence interval. */
export interface RatioInterval {
  /** median(current) / median(baseline) of the samples themselves. */
  ratio: number;
  /** Lower end of the interval. */
  low: number;
  /** Upper end of the interval. */
  high: number;
  /** The confidence level of [low, high]. */
  confidence: number;
}

function resampledMedian(s: readonly number[], rand: () => number, buf: Float64Array): number {
  for (let i = 0; i < buf.length; i++) buf[i] = s[Math.floor(rand() * s.length)]!;
  return medianOfSorted(buf.sort());
}

/**
 * Percentile-bootstrap confidence interval of median(current) / median(baseline), each side
 * resampled with replacement independently by a seeded mulberry32: deterministic for given
 * inputs and options. Throws a `RangeError` on an empty side or bad options.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { bootstrapRatioOfMedians } from "./stats.ts";
 * const ci = bootstrapRatioOfMedians([10, 10.1, 9.9, 10, 10.2], [12, 12.1, 11.9, 12, 12.2]);
 * assert(ci.ratio === 1.2 && ci.low > 1);
 * ```
 */
export function bootstrapRatioOfMedians(
  baseline: readonly number[],
  current: readonly number[],
  opts: BootstrapOptions = {},
): RatioInterval {
  requireSamples(baseline, "bootstrap");
  requireSamples(current, "bootstrap");
  const resamples = opts.resamples ?? 2000;
  const confidence = opts.confidence ?? 0.95;
  if (!Number.isInteger(resamples) || resamples < 1) {
    throw new RangeError(`resamples must be a positive integer, got ${resamples}`);
  }
  if (!(confidence > 0 && confidence < 1)) {
    throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  }
  const rand = mulberry32(opts.seed ?? DEFAULT_SEED);
  const baseBuf = new Float64Array(baseline.length);
  const curBuf = new Float64Array(current.length);
  const ratios = new Float64Array(resamples);
  for (let i = 0; i < resamples; i++) {
    const b = resampledMedian(baseline, rand, baseBuf);
    ratios[i] = resampledMedian(current, rand, curBuf) / b;
  }
  ratios.sort();
  const alpha = 1 - confidence;
  return {
    ratio: median(current) / median(baseline),
    low: percentileOfSorted(ratios, alpha / 2),
    high: percentileOfSorted(ratios, 1 - alpha / 2),
    confidence,
  };
}

/** Fewer usable samples than this on either side and `check` will not judge the timing. */
export const MIN_SAMPLES = 5;

/** How a run's timing compares. */
export type TimingVerdict = "regressed" | "improved" | "within noise" | "too few samples";

/** Settings of {@linkcode compareSamples}. */
export interface SampleComparisonOptions extends BootstrapOptions {
  /** A change smaller than this many percent is never a regression or an improvement. */
  thresholdPct: number;
  /** Minimum usable samples per side. Default {@linkcode MIN_SAMPLES}. */
  minSamples?: number;
}

/** The timing comparison of one run. */
export interface SampleComparison {
  verdict: TimingVerdict;
  /** (ratio − 1)·100; null when there were too few samples. */
  changePct: number | null;
  /** The ratio of medians and its interval; null when there were too few samples. */
  interval: RatioInterval | null;
  /** Usable (finite, positive) samples on each side. */
  baselineCount: number;
  currentCount: number;
}

/**
 * Compares two sets of timing samples. Only finite, positive samples count (a 0 ms sample is
 * below the timer's resolution, not a measurement). With fewer than `minSamples` on either
 * side the verdict is "too few samples". Otherwise it is "regressed" (or "improved") only when
 * the median changed by more than `thresholdPct` AND the bootstrap interval of the ratio of
 * medians lies wholly above (or below) 1; anything else is "within noise".
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { compareSamples } from "./stats.ts";
 * const base = [10, 10.1, 9.9, 10, 10.2, 9.8];
 * const cur = base.map((x) => x * 1.2);
 * assert(compareSamples(base, cur, { thresholdPct: 5 }).verdict === "regressed");
 * ```
 */
export function compareSamples(
  baseline: readonly number[],
  current: readonly number[],
  opts: SampleComparisonOptions,
): SampleComparison {
  const usable = (xs: readonly number[]) => xs.filter((x) => Number.isFinite(x) && x > 0);
  const b = usable(baseline);
  const c = usable(current);
  const minSamples = opts.minSamples ?? MIN_SAMPLES;
  const counts = { baselineCount: b.length, currentCount: c.length };
  if (b.length < minSamples || c.length < minSamples) {
    return { verdict: "too few samples", changePct: null, interval: null, ...counts };
  }
  const interval = bootstrapRatioOfMedians(b, c, opts);
  const changePct = (interval.ratio - 1) * 100;
  let verdict: TimingVerdict = "within noise";
  if (changePct > opts.thresholdPct && interval.low > 1) verdict = "regressed";
  else if (changePct < -opts.thresholdPct && interval.high < 1) verdict = "improved";
  return { verdict, changePct, interval, ...counts };
}
