/**
 * Density sweep (paper Fig. 2 right): block-sparse runtime against the kept fraction of blocks,
 * with the dense kernel at the same shape as the reference. Private to `reports/`.
 *
 * @module
 */

import type { ResultsFile } from "../core/schema.ts";
import { fmtMs, isTimed } from "./_format.ts";
import { DENSE_KERNEL, kernelColor, kernelStyle } from "./_kernel_style.ts";
import {
  bestPerX,
  type ChartSpec,
  emptyNote,
  entries,
  finite,
  groupRuns,
  hline,
  seriesPerGroup,
  type SeriesSpec,
  type Timed,
  timePoint,
  withLegend,
} from "./_chart_common.ts";

/** Density sweep chart. */
export function densityChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const all = entries(results, (r) => r.sweep === "density");
  const timed = all.filter((e) => isTimed(e.run) && e.run.mask !== null);
  const groups = groupRuns(timed, { fixN: true, anyDensity: true });
  const series = seriesPerGroup(
    groups,
    labels,
    (g) =>
      bestPerX(g.runs as Timed[], (r) => r.density).map((r) => timePoint(r.density, r)).filter(
        finite,
      ),
    { radius: 4 },
  );
  // The dense kernel at the same shape as a reference: where sparsity stops paying.
  const refs: SeriesSpec[] = [];
  const done = new Set<string>();
  const dense = kernelStyle(DENSE_KERNEL).label;
  for (const g of groups) {
    const f = results[g.file];
    if (!f) continue;
    const ref = f.runs.filter((r): r is Timed =>
      r.kernel === DENSE_KERNEL && isTimed(r) && r.n === g.n && r.d === g.d &&
      r.dtype === g.dtype && r.causal === g.causal
    ).sort((a, b) =>
      a.timeMs.median - b.timeMs.median
    )[0];
    const key = `${g.file}/${ref?.n}/${ref?.d}`;
    if (!ref || done.has(key)) continue;
    done.add(key);
    const who = results.length > 1 ? ` · ${labels[g.file]}` : "";
    refs.push(hline(
      `${dense}, dense (N=${ref.n})${who}`,
      ref.timeMs.median,
      [0, 1],
      `dense ${dense}: ${fmtMs(ref.timeMs.median)}`,
      { dash: [6, 4], color: kernelColor(DENSE_KERNEL, 0) },
    ));
  }
  const notes: string[] = [];
  if (all.length === 0) notes.push(emptyNote('runs of the "density" sweep'));
  else if (series.length === 0) notes.push('No run of the "density" sweep was timed.');
  return withLegend({
    id: "density",
    title: "Density sweep (block-sparse)",
    caption: "Median time against the fraction of key blocks each query block attends to, " +
      "whiskers p10–p90 (min–max under 10 samples). Ideally a straight line through the " +
      `origin; the dashed line is dense ${dense} at the same shape, so the crossing shows the ` +
      "density below which sparsity pays.",
    notes,
    x: {
      title: "density (fraction of blocks kept)",
      scale: "linear",
      unit: "plain",
      min: 0,
      max: 1,
    },
    y: { title: "median time", scale: "linear", unit: "ms", min: 0 },
    series: series.length === 0 ? [] : [...series, ...refs],
  });
}
