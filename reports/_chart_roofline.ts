/**
 * Roofline: arithmetic intensity against achieved TFLOP/s under each device's measured roof.
 * Private to `reports/`.
 *
 * @module
 */

import type { ResultsFile } from "../core/schema.ts";
import { fmtNum, isTimed } from "./_format.ts";
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
  type Timed,
  withLegend,
  xRange,
} from "./_chart_common.ts";

/**
 * The roof of a roofline: the lower of the FMA peak and bandwidth × arithmetic intensity.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { attainableTflops } from "./_chart_roofline.ts";
 * assert(attainableTflops(10, 1000, 50) === 10); // 10 FLOP/B × 1000 GB/s = 10 TFLOP/s
 * ```
 */
export function attainableTflops(intensity: number, copyGBs: number, fmaTflops: number): number {
  return Math.min(fmaTflops, (intensity * copyGBs) / 1000);
}

/** Roofline: one point per kernel configuration and N. */
export function rooflineChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const groups = groupRuns(
    entries(
      results,
      (r) => r.sweep === "n" && isTimed(r) && r.tflops !== null && r.hbmBytes.modeled > 0,
    ),
  );
  const series = seriesPerGroup(groups, labels, (g) => {
    const c = results[g.file]?.ceilings ?? null;
    return bestPerX(g.runs as Timed[], (r) => r.n).map((r) => {
      const ai = r.flops / r.hbmBytes.modeled;
      const tf = r.tflops ?? 0;
      let tip = `N=${r.n} b×h=${r.batch}×${r.heads}: ${fmtNum(ai)} FLOP/byte, ` +
        `${fmtNum(tf)} TFLOP/s`;
      if (c && c.copyGBs !== null && c.fmaTflops !== null) {
        const roof = attainableTflops(ai, c.copyGBs, c.fmaTflops);
        tip += `\n${pct(tf / roof)} of the attainable ${fmtNum(roof)} TFLOP/s`;
        tip += ai * c.copyGBs / 1000 < c.fmaTflops ? " (memory-bound)" : " (compute-bound)";
      }
      return { x: ai, y: tf, tip };
    }).filter(positive);
  }, { line: false, radius: 5, solid: true });
  const notes: string[] = [];
  const range = xRange(series);
  const roofs: SeriesSpec[] = [];
  if (range) {
    perDevice(results).forEach(({ file, who }, i) => {
      const c = results[file]?.ceilings;
      if (!c || c.copyGBs === null || c.fmaTflops === null || !(c.copyGBs > 0)) {
        notes.push(`${who || labels[file] || "file"}: no measured ceilings, so no roof is drawn.`);
        return;
      }
      const ridge = (c.fmaTflops * 1000) / c.copyGBs;
      const lo = Math.min(range[0] / 2, ridge / 4);
      const hi = Math.max(range[1] * 2, ridge * 4);
      const roof = (x: number) => attainableTflops(x, c.copyGBs ?? 0, c.fmaTflops ?? 0);
      const tip = `copy ${fmtNum(c.copyGBs)} GB/s, FMA ${fmtNum(c.fmaTflops)} TFLOP/s\n` +
        `ridge at ${fmtNum(ridge)} FLOP/byte`;
      roofs.push(refLine(
        `roof${who ? ` · ${who}` : ""}`,
        [lo, ridge, hi].map((x) => ({ x, y: roof(x), tip })),
        { dash: fileDash(i) },
      ));
    });
  }
  return withLegend({
    id: "roofline",
    title: "Roofline",
    caption: "Each point is one kernel at one N: x is FLOPs per modeled HBM byte, y the " +
      "achieved TFLOP/s. The grey roof is the device's measured copy bandwidth (slope) and " +
      "FMA peak (flat); the tooltip gives the share of the roof reached. Left of the ridge a " +
      "kernel is memory-bound.",
    notes: series.length === 0 ? [emptyNote('timed runs of the "n" sweep')] : notes,
    x: { title: "arithmetic intensity (FLOP per modeled byte)", scale: "log", unit: "plain" },
    y: { title: "TFLOP/s", scale: "log", unit: "plain" },
    series: series.length === 0 ? [] : [...roofs, ...series],
  });
}
