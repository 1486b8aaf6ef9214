/**
 * The IO story: measured time against the bytes the IO model says a kernel moves, and against
 * the FLOPs it computes, each beside the time the device's measured ceiling would need. Where a
 * kernel's points ride the bandwidth line its time follows its bytes; where they ride the FMA
 * line compute has taken over; far above both, something else (latency, occupancy, a slow
 * pass) costs the time. Private to `reports/`.
 *
 * @module
 */

import type { ResultsFile, RunRecord } from "../core/schema.ts";
import { fmtBytes, fmtMs, fmtNum, isTimed } from "./_format.ts";
import {
  bestPerX,
  type ChartSpec,
  emptyNote,
  entries,
  fileDash,
  groupRuns,
  pct,
  perDevice,
  positive,
  refLine,
  seriesPerGroup,
  type SeriesSpec,
  shapeTip,
  type Timed,
  withLegend,
  xRange,
} from "./_chart_common.ts";

interface Measure {
  id: string;
  title: string;
  /** The x value of a run: bytes or FLOPs. */
  x: (r: RunRecord) => number;
  xTitle: string;
  xUnit: "bytes" | "flops";
  /** The ceiling in units of x per ms, or null when not measured. */
  perMs: (f: ResultsFile) => number | null;
  ceiling: string;
  caption: string;
}

const BYTES: Measure = {
  id: "io-bytes",
  title: "Time follows bytes? (time vs modeled HBM bytes)",
  x: (r) => r.hbmBytes.modeled,
  xTitle: "modeled HBM bytes per forward pass",
  xUnit: "bytes",
  perMs: (f) => (f.ceilings?.copyGBs ?? 0) > 0 ? (f.ceilings?.copyGBs ?? 0) * 1e6 : null,
  ceiling: "at the measured copy bandwidth",
  caption: "Each point is one kernel at one N: x the bytes our IO model says it moves, y its " +
    "median time. The grey line is the time those bytes take at the device's measured copy " +
    "bandwidth: points near it are memory-bound (time follows bytes, the paper's argument); " +
    "points far above it spend their time elsewhere (compute, latency, occupancy).",
};

const FLOPS: Measure = {
  id: "io-flops",
  title: "…or FLOPs? (time vs FLOPs computed)",
  x: (r) => r.flops,
  xTitle: "FLOPs per forward pass",
  xUnit: "flops",
  perMs: (f) => (f.ceilings?.fmaTflops ?? 0) > 0 ? (f.ceilings?.fmaTflops ?? 0) * 1e9 : null,
  ceiling: "at the measured FMA peak",
  caption: "The same runs against the FLOPs they compute. The grey line is the time at the " +
    "device's measured FMA peak: a kernel whose points approach it is compute-bound, and " +
    "moving fewer bytes no longer makes it faster.",
};

function ioChart(results: ResultsFile[], labels: string[], m: Measure): ChartSpec {
  const groups = groupRuns(
    entries(results, (r) => r.sweep === "n" && isTimed(r) && m.x(r) > 0),
  );
  const series = seriesPerGroup(groups, labels, (g) => {
    const rate = m.perMs(results[g.file]!);
    return bestPerX(g.runs as Timed[], m.x).map((r) => {
      const x = m.x(r);
      const amount = m.xUnit === "bytes" ? fmtBytes(x) : `${fmtNum(x)} FLOP`;
      let tip = `${shapeTip(r)}\n${amount} in ${fmtMs(r.timeMs.median)}`;
      if (rate !== null) tip += `\n${pct(x / rate / r.timeMs.median)} of the ceiling's pace`;
      return { x, y: r.timeMs.median, tip };
    }).filter(positive);
  }, { radius: 4 });
  const range = xRange(series);
  const refs: SeriesSpec[] = [];
  const notes: string[] = [];
  if (range) {
    perDevice(results).forEach(({ file, who }, i) => {
      const rate = m.perMs(results[file]!);
      if (rate === null) {
        notes.push(`${who || labels[file] || "file"}: no measured ceilings, so no ceiling line.`);
        return;
      }
      const xs = [range[0] / 1.5, range[1] * 1.5];
      refs.push(refLine(
        `${m.ceiling}${who ? ` · ${who}` : ""}`,
        xs.map((x) => ({ x, y: x / rate, tip: `${m.ceiling}: ${fmtMs(x / rate)}` })),
        { dash: i === 0 ? [6, 4] : fileDash(i) },
      ));
    });
  }
  return withLegend({
    id: m.id,
    title: m.title,
    caption: m.caption,
    notes: series.length === 0 ? [emptyNote('timed runs of the "n" sweep')] : notes,
    x: { title: m.xTitle, scale: "log", unit: m.xUnit },
    y: { title: "median time per forward pass", scale: "log", unit: "ms" },
    series: series.length === 0 ? [] : [...series, ...refs],
  });
}

/** Measured time against modeled bytes, with the copy-bandwidth line. */
export function ioBytesChart(results: ResultsFile[], labels: string[]): ChartSpec {
  return ioChart(results, labels, BYTES);
}

/** Measured time against FLOPs, with the FMA-peak line. */
export function ioFlopsChart(results: ResultsFile[], labels: string[]): ChartSpec {
  return ioChart(results, labels, FLOPS);
}
