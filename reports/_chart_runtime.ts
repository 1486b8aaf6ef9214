/**
 * Runtime against N: one line per kernel configuration, with the spread of the samples as
 * whiskers. Private to `reports/`.
 *
 * @module
 */

import type { ResultsFile } from "../core/schema.ts";
import {
  bestPerX,
  type ChartSpec,
  emptyNote,
  groupRuns,
  N_AXIS,
  positive,
  seriesPerGroup,
  type Timed,
  timedEntries,
  timePoint,
  withLegend,
} from "./_chart_common.ts";

/** Runtime (median, whiskers p10–p90 or min–max) against N, log-log. */
export function runtimeChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const groups = groupRuns(timedEntries(results, "n"));
  const series = seriesPerGroup(
    groups,
    labels,
    (g) => bestPerX(g.runs as Timed[], (r) => r.n).map((r) => timePoint(r.n, r)).filter(positive),
  );
  return withLegend({
    id: "runtime",
    title: "Runtime vs sequence length",
    caption: "Median time of one forward pass; lower is better. Whiskers span p10–p90 of the " +
      "timed samples (min–max with fewer than 10). On log-log axes a slope of 2 means time " +
      "grows as N²; the vertical gap between two lines is a constant factor. Batch and heads " +
      "are in the tooltip.",
    notes: series.length === 0 ? [emptyNote('successful runs of the "n" sweep')] : [],
    x: N_AXIS,
    y: { title: "median time per forward pass", scale: "log", unit: "ms" },
    series,
  });
}
