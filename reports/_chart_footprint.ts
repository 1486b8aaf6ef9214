/**
 * Peak GPU memory against N, with the runs that did not fit marked. Private to `reports/`.
 *
 * @module
 */

import type { ResultsFile } from "../core/schema.ts";
import { fmtMem, isDoesNotFit, isTimed } from "./_format.ts";
import {
  type ChartSpec,
  emptyNote,
  entries,
  groupRuns,
  hline,
  MISS,
  N_AXIS,
  positive,
  seriesPerGroup,
  withLegend,
  xRange,
} from "./_chart_common.ts";

/** Peak GPU memory against N. */
export function footprintChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const groups = groupRuns(entries(results, (r) => r.sweep === "n" && isTimed(r)));
  const series = seriesPerGroup(
    groups,
    labels,
    (g) =>
      [...new Map(g.runs.map((r) => [r.n, r])).values()].sort((a, b) => a.n - b.n)
        .map((r) => ({
          x: r.n,
          y: r.footprintBytes,
          tip: `N=${r.n} b×h=${r.batch}×${r.heads}: ${fmtMem(r.footprintBytes)}`,
        }))
        .filter(positive),
  );
  const misses = entries(results, (r) => r.sweep === "n" && isDoesNotFit(r));
  const missPoints = misses.map(({ file, run: r }) => ({
    x: r.n,
    y: r.footprintBytes,
    tip: `${r.kernel} N=${r.n} d=${r.d}${results.length > 1 ? ` · ${labels[file]}` : ""}\n` +
      `${fmtMem(r.footprintBytes)} needed\n${r.reason ?? ""}`,
  })).filter(positive);
  if (missPoints.length > 0) {
    series.push({
      label: "does not fit (skipped)",
      group: "does not fit (skipped)",
      kind: "",
      color: MISS,
      line: false,
      dash: [],
      marker: "crossRot",
      radius: 9,
      axis: "y",
      points: missPoints,
    });
  }
  const range = xRange(series);
  if (range) {
    const seen = new Set<number>();
    results.forEach((f, file) => {
      const lim = f.device.limits?.maxStorageBufferBindingSize;
      if (typeof lim !== "number" || !(lim > 0) || lim > 2 ** 50 || seen.has(lim)) return;
      seen.add(lim);
      const who = results.length > 1 ? ` · ${labels[file]}` : "";
      series.push(hline(
        `largest storage buffer ${fmtMem(lim)}${who}`,
        lim,
        range,
        `maxStorageBufferBindingSize = ${lim} bytes`,
        { dash: file === 0 ? [8, 4] : [3, 3], color: MISS },
      ));
    });
  }
  return withLegend({
    id: "footprint",
    title: "GPU memory footprint vs sequence length",
    caption: "Peak bytes of the buffers each kernel allocates; red crosses are runs skipped " +
      "because they do not fit. The red dashed line is the largest storage buffer the device " +
      "binds: standard's N×N score matrix is one buffer and must fit under it.",
    notes: series.length === 0 ? [emptyNote('runs of the "n" sweep')] : [],
    x: N_AXIS,
    y: { title: "peak GPU memory", scale: "log", unit: "mem" },
    series,
  });
}
