/**
 * What `bench` prints when it is done, in the manner of hyperfine: per run the median ± standard
 * deviation and the min…max range, with significant digits (a slow adapter's 0.0021 TFLOP/s is
 * not "0.00"); warnings for statistical outliers and cold first runs; the standard kernel's
 * passes with the run they belong to; and a relative summary ("flash ran 2.75 ± 0.03 times
 * faster than standard at N = 4096"). Pure functions of a results file, so tested without a GPU.
 *
 * @module
 */

import type { ResultsFile, RunDecode, RunRecord, TimeStats } from "../core/schema.ts";
import type { Tiles } from "../core/shapes.ts";
import { median, OUTLIER_Z } from "../analysis/stats.ts";
import { fmtMs, fmtNum, fmtVendor } from "../reports/mod.ts";
import { formatTable } from "../analysis/table.ts";
import { baselineKernel } from "../kernels/registry.ts";

/** The kernel the relative summary measures the others against, when it ran. */
const BASELINE = baselineKernel();

type Timed = RunRecord & { timeMs: TimeStats };

function isTimed(r: RunRecord): r is Timed {
  return r.status === "ok" && r.timeMs !== null && r.timeMs.median > 0;
}

/**
 * The mask column of a run: causal, and for a masked (block-sparse) run its mask and density.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { maskText } from "./bench_summary.ts";
 * import type { RunRecord } from "../core/schema.ts";
 * const r = { causal: true, mask: "random", density: 0.25 } as RunRecord;
 * assert(maskText(r) === "causal, random 25%");
 * ```
 */
export function maskText(r: RunRecord): string {
  const parts = r.causal ? ["causal"] : [];
  if (r.mask !== null) parts.push(`${r.mask} ${fmtNum(r.density * 100, 2)}%`);
  return parts.join(", ");
}

/** What tells a run apart in a message: kernel, N, and what else varies. */
function runName(r: RunRecord): string {
  return `${r.kernel} n=${r.n} d=${r.d} b×h=${r.batch}×${r.heads} ${r.dtype}` +
    `${maskText(r) ? ` ${maskText(r)}` : ""} tile ${tileText(r.tile, r.decode)}`;
}

/**
 * The tiles column of a run: `64x32` (`full`: `64x32 rm4 tx16`). A decode run's tile holds its
 * split pass's knobs (threads × tokens a segment, tokens a lane group and round, lanes a token),
 * always in full, then its KV heads and cache layout: `256x256 rm2 tx8 · kv2 block 16`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { tileText } from "./bench_summary.ts";
 * const tile = { br: 256, bc: 256, rm: 2, tx: 8 };
 * assert(tileText({ br: 64, bc: 32, rm: 4, tx: 16 }) === "64x32");
 * assert(tileText(tile, null, true) === "256x256 rm2 tx8");
 * const decode = { contexts: [9], kvHeads: 2, blockSize: 16, lengths: "list" };
 * assert(tileText(tile, decode) === "256x256 rm2 tx8 · kv2 block 16");
 * ```
 */
export function tileText(tile: Tiles, decode?: RunDecode | null, full = false): string {
  const knobs = `${tile.br}x${tile.bc}` + (full || decode ? ` rm${tile.rm} tx${tile.tx}` : "");
  if (!decode) return knobs;
  const layout = decode.blockSize === null ? "contiguous" : `block ${decode.blockSize}`;
  return `${knobs} · kv${decode.kvHeads} ${layout}`;
}

/**
 * A rate with 3 significant digits (`0.00295`, `18.5`, `3928`), `—` when not known.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { fmtRate } from "./bench_summary.ts";
 * assert(fmtRate(0.002951) === "0.00295" && fmtRate(0.0001734) === "0.000173");
 * assert(fmtRate(3928.2) === "3928" && fmtRate(null) === "—");
 * ```
 */
export function fmtRate(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return "—";
  // Plain decimals down to a millionth (0.000173 reads better than 1.73e-4 in a column).
  const a = Math.abs(x);
  return a > 0 && a < 1e-3 && a >= 1e-6 ? String(Number(x.toPrecision(3))) : fmtNum(x);
}

/** The results table: one row per run, times as median ± σ and min … max. */
export function runsTable(runs: RunRecord[]): string[] {
  const header = [
    "kernel",
    "dtype",
    "n",
    "d",
    "b×h",
    "mask",
    "tile",
    "median ± σ",
    "min … max",
    "TFLOP/s",
    "HBM MB",
    "GB/s",
    "rel err",
  ];
  const rows = runs.map((r) => {
    const t = isTimed(r) ? r.timeMs : null;
    return [
      r.kernel,
      r.dtype,
      String(r.n),
      String(r.d),
      `${r.batch}×${r.heads}`,
      maskText(r),
      tileText(r.tile, r.decode),
      t ? `${fmtMs(t.median)} ± ${fmtMs(t.stdev)}` : r.status,
      t ? `${fmtMs(t.min)} … ${fmtMs(t.max)}` : "",
      t ? fmtRate(r.tflops) : "",
      fmtNum(r.hbmBytes.modeled / 1e6, 4),
      t ? fmtRate(r.achievedGBs) : "",
      r.maxRelError === null ? "" : r.maxRelError.toExponential(1),
    ];
  });
  return formatTable(header, rows);
}

/** Outliers farther than this from the median (relative) are worth a warning. */
const OUTLIER_MATTERS = 0.05;

/**
 * Warnings about how far a run's timing can be trusted: statistical outliers among its samples
 * (modified z-score) when one lies at least 5% from the median (a tight run's "outliers" a few
 * µs off are noise, not news), and the run's own warnings (a cold first run, samples under the
 * timer's resolution, not verified).
 */
export function timingWarnings(runs: RunRecord[]): string[] {
  const out: string[] = [];
  for (const r of runs) {
    const t = r.timeMs;
    const values = (t?.outliers ?? []).map((i) => t?.samples[i]).filter((v) => v !== undefined);
    const far = t ? values.filter((v) => Math.abs(v! / t.median - 1) >= OUTLIER_MATTERS) : [];
    if (t && far.length > 0) {
      const worst = far.reduce((
        a,
        b,
      ) => (Math.abs(b! - t.median) > Math.abs(a! - t.median) ? b : a))!;
      out.push(
        `${runName(r)}: ${values.length} of ${t.samples.length} samples are statistical ` +
          `outliers (modified z-score > ${OUTLIER_Z}), the farthest ${fmtMs(worst)} against a ` +
          `median of ${fmtMs(t.median)}; the median holds, but rerun on a quiet machine if it ` +
          "matters",
      );
    }
    for (const w of r.warnings ?? []) out.push(`${runName(r)}: ${w}`);
  }
  return out;
}

/**
 * A run's relative spread: 1.4826 × the median absolute deviation over the median (the robust
 * counterpart of σ/μ, so a few outliers do not swamp it); σ/μ with fewer than 3 samples.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { relativeSpread } from "./bench_summary.ts";
 * const t = { median: 10, mean: 14, stdev: 9, samples: [10, 10, 10, 11, 30] };
 * assert(Math.abs(relativeSpread(t) - 0) < 1e-12); // MAD = 0: the 30 does not count
 * ```
 */
export function relativeSpread(
  t: Pick<TimeStats, "median" | "mean" | "stdev" | "samples">,
): number {
  const xs = t.samples ?? [];
  if (xs.length >= 3 && t.median > 0) {
    return 1.4826 * median(xs.map((x) => Math.abs(x - t.median))) / t.median;
  }
  return t.mean > 0 ? t.stdev / t.mean : 0;
}

/**
 * A ratio of two medians with its uncertainty propagated from each run's relative spread, as
 * hyperfine propagates σ/μ: r·√(sa² + sb²).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { ratioWithError } from "./bench_summary.ts";
 * const a = { median: 4, mean: 4, stdev: 0, samples: [] }, b = { median: 1, mean: 1, stdev: 0, samples: [] };
 * assert(ratioWithError(a, b).ratio === 4 && ratioWithError(a, b).error === 0);
 * ```
 */
export function ratioWithError(
  slow: Pick<TimeStats, "median" | "mean" | "stdev" | "samples">,
  fast: Pick<TimeStats, "median" | "mean" | "stdev" | "samples">,
): { ratio: number; error: number } {
  const ratio = slow.median / fast.median;
  return { ratio, error: ratio * Math.hypot(relativeSpread(slow), relativeSpread(fast)) };
}

/**
 * A ratio and its error, as hyperfine writes them: the ratio to 3 significant digits, the error
 * to the same decimals (one significant digit more when that would round it to 0).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { fmtRatio } from "./bench_summary.ts";
 * assert(fmtRatio(2.4371, 0.0096) === "2.44 ± 0.01");
 * assert(fmtRatio(16.12, 1.07) === "16.1 ± 1.1" && fmtRatio(3, 0.04) === "3 ± 0.04");
 * ```
 */
export function fmtRatio(ratio: number, error: number): string {
  const r = fmtNum(ratio);
  const decimals = (r.split(".")[1] ?? "").length;
  const e = error.toFixed(decimals);
  return `${r} ± ${Number(e) === 0 && error > 0 ? fmtNum(error, 1) : e}`;
}

function shapeKey(r: RunRecord): string {
  return JSON.stringify([r.dtype, r.batch, r.heads, r.n, r.d, r.causal]);
}

/**
 * The relative summary: at the largest N where the baseline (the registry's, standard) and
 * another kernel both ran at the same shape, how many times faster each other kernel ran;
 * without the baseline, the slowest kernel at the largest shared N is the reference. Sweeps over block size or density
 * are summarized at their best (fastest) tile or density per kernel.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { relativeSummary } from "./bench_summary.ts";
 * assert(relativeSummary([]).length === 0);
 * ```
 */
export function relativeSummary(runs: RunRecord[]): string[] {
  // Fastest run per kernel configuration and shape.
  const best = new Map<string, Timed>();
  for (const r of runs.filter(isTimed)) {
    const key = JSON.stringify([shapeKey(r), r.kernel, r.mask, r.sweep === "density" ? 0 : 1]);
    const cur = best.get(key);
    if (!cur || r.timeMs.median < cur.timeMs.median) best.set(key, r);
  }
  const byShape = new Map<string, Timed[]>();
  for (const r of best.values()) byShape.set(shapeKey(r), [...(byShape.get(shapeKey(r)) ?? []), r]);
  const shapes = [...byShape.values()].filter((rs) => rs.length >= 2)
    .sort((a, b) => (b[0]?.n ?? 0) - (a[0]?.n ?? 0));
  const withBase = shapes.find((rs) => rs.some((r) => r.kernel === BASELINE));
  const pick = withBase ?? shapes[0];
  if (!pick) return [];
  const ref = pick.find((r) => r.kernel === BASELINE) ??
    pick.reduce((a, b) => (b.timeMs.median > a.timeMs.median ? b : a));
  const name = (r: RunRecord) => `${r.kernel}${r.mask ? ` (${maskText(r)})` : ""}`;
  const lines = pick.filter((r) => r !== ref).sort((a, b) => a.timeMs.median - b.timeMs.median)
    .map((r) => {
      const faster = r.timeMs.median <= ref.timeMs.median;
      const { ratio, error } = faster
        ? ratioWithError(ref.timeMs, r.timeMs)
        : ratioWithError(r.timeMs, ref.timeMs);
      return `  ${name(r)} ran ${fmtRatio(ratio, error)} times ` +
        `${faster ? "faster" : "slower"} than ${name(ref)} at N = ${r.n}`;
    });
  const s = pick[0]!;
  return [
    `Summary (b×h ${s.batch}×${s.heads}, d ${s.d}, ${s.dtype}${s.causal ? ", causal" : ""}):`,
    ...lines,
  ];
}

/** The standard kernel's passes, each line naming the run (shape and tile) it belongs to. */
export function passLines(runs: RunRecord[]): string[] {
  return runs.filter((r) => r.passes && r.passes.length > 0).map((r) => {
    const parts = (r.passes ?? []).map((p) =>
      `${p.name} ${fmtMs(p.medianMs)} (${fmtRate(p.achievedGBs)} GB/s)`
    );
    return `${runName(r)} passes: ${parts.join(", ")}`;
  });
}

/**
 * Everything `bench` prints on stdout after the runs: device, ceilings, the table, runs that
 * did not run, passes, warnings and the relative summary.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { summaryLines } from "./bench_summary.ts";
 * import type { ResultsFile } from "../core/schema.ts";
 * const f = { device: { description: "gpu", vendor: "4318" }, ceilings: null, runs: [] };
 * assert(summaryLines(f as unknown as ResultsFile)[0] === "device: gpu · NVIDIA (0x10de)");
 * ```
 */
export function summaryLines(results: ResultsFile): string[] {
  const d = results.device;
  const vendor = fmtVendor(d.vendor ?? "");
  const out = [
    `device: ${d.description}${vendor ? ` · ${vendor}` : ""}` +
    (d.isFallbackAdapter ? " · fallback (software) adapter" : ""),
  ];
  const c = results.ceilings;
  if (c) {
    out.push(
      `ceilings: copy ${fmtRate(c.copyGBs)} GB/s, FMA ${fmtRate(c.fmaTflops)} TFLOP/s, ` +
        `launch ${fmtRate(c.launchOverheadUs)} µs (${c.clock})`,
    );
  }
  out.push(...runsTable(results.runs));
  for (const r of results.runs) {
    if (r.status !== "ok") out.push(`${runName(r)}: ${r.status}: ${r.reason}`);
  }
  const passes = passLines(results.runs);
  if (passes.length > 0) out.push("", ...passes);
  const warnings = timingWarnings(results.runs);
  if (warnings.length > 0) out.push("", ...warnings.map((w) => `Warning: ${w}`));
  const summary = relativeSummary(results.runs);
  if (summary.length > 0) out.push("", ...summary);
  return out;
}

/**
 * A duration in ms as `45s`, `3m05s` or `1h02m`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { fmtDuration } from "./bench_summary.ts";
 * assert(fmtDuration(185_000) === "3m05s" && fmtDuration(900) === "1s");
 * ```
 */
export function fmtDuration(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * The progress text before run `done + 1` of `total`: a bar on a terminal, a plain line
 * otherwise; with an ETA from the time the runs so far took (none before the first is done).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { progressText } from "./bench_summary.ts";
 * const t = progressText(2, 4, "flash n=256", 10_000, false);
 * assert(t === "bench 3/4: flash n=256 (10s so far, about 10s left)");
 * ```
 */
export function progressText(
  done: number,
  total: number,
  label: string,
  elapsedMs: number,
  terminal: boolean,
): string {
  const eta = done > 0
    ? ` (${fmtDuration(elapsedMs)} so far, about ${
      fmtDuration(elapsedMs / done * (total - done))
    } left)`
    : "";
  if (!terminal) return `bench ${done + 1}/${total}: ${label}${eta}`;
  const width = 24;
  const fill = Math.round((done / total) * width);
  return `[${"#".repeat(fill)}${".".repeat(width - fill)}] ${done}/${total} ${label}${eta}`;
}
