/**
 * Speedup over each kernel's baseline (the registry's `Kernel.baseline`: standard for flash and
 * block-sparse) at the same shape. Private to `reports/`.
 *
 * @module
 */

import type { ResultsFile, RunRecord } from "../core/schema.ts";
import { fmtMs, fmtNum, isTimed } from "./_format.ts";
import { BASELINE_KERNEL, kernelStyle } from "./_kernel_style.ts";
import { findKernel } from "../kernels/registry.ts";
import {
  autoScale,
  bestPerX,
  type ChartSpec,
  groupRuns,
  hline,
  N_AXIS,
  positive,
  seriesPerGroup,
  type Timed,
  withLegend,
  xRange,
} from "./_chart_common.ts";

/** A run paired with the baseline run of the same shape. */
export interface SpeedupPair {
  file: number;
  run: RunRecord;
  base: RunRecord;
  /** The baseline's median time over this run's median time. */
  speedup: number;
}

/**
 * Pairs every timed run of the "n" sweep whose kernel names a baseline in the registry
 * (`Kernel.baseline`; flash and block-sparse: standard) with the fastest timed run of that
 * baseline in the same file and shape (dtype, batch, heads, n, d, causal).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { speedupPairs } from "./_chart_speedup.ts";
 * assert(speedupPairs([]).length === 0);
 * ```
 */
export function speedupPairs(results: ResultsFile[]): SpeedupPair[] {
  const out: SpeedupPair[] = [];
  results.forEach((f, file) => {
    const shape = (r: RunRecord) => JSON.stringify([r.dtype, r.batch, r.heads, r.n, r.d, r.causal]);
    const base = new Map<string, Timed>();
    for (const r of f.runs) {
      if (!isTimed(r)) continue;
      const key = `${r.kernel}/${shape(r)}`;
      const cur = base.get(key);
      if (!cur || r.timeMs.median < cur.timeMs.median) base.set(key, r);
    }
    for (const r of f.runs) {
      const of = findKernel(r.kernel)?.baseline ?? null;
      if (of === null || r.sweep !== "n" || !isTimed(r)) continue;
      const b = base.get(`${of}/${shape(r)}`);
      if (b) out.push({ file, run: r, base: b, speedup: b.timeMs.median / r.timeMs.median });
    }
  });
  return out;
}

/** Speedup of every other kernel over the baseline at the same shape. */
export function speedupChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const pairs = speedupPairs(results);
  const byRun = new Map(pairs.map((p) => [p.run, p]));
  const groups = groupRuns(pairs.map((p) => ({ file: p.file, run: p.run })));
  const base = kernelStyle(BASELINE_KERNEL).label;
  const series = seriesPerGroup(
    groups,
    labels,
    (g) =>
      bestPerX(g.runs as Timed[], (r) => r.n).map((r) => {
        const p = byRun.get(r);
        const s = p?.speedup ?? NaN;
        return {
          x: r.n,
          y: s,
          tip: `N=${r.n} b×h=${r.batch}×${r.heads}: ${fmtNum(s)}× faster than ${base}\n` +
            `${fmtMs(r.timeMs.median)} vs ${fmtMs(p?.base.timeMs?.median ?? NaN)}`,
        };
      }).filter(positive),
  );
  const range = xRange(series);
  if (range) series.push(hline(`${base} (1×)`, 1, range, `same speed as ${base}`));
  return withLegend({
    id: "speedup",
    title: `Speedup over the ${base} kernel`,
    caption: `${base}'s median time divided by each kernel's, at the same shape in the same ` +
      "results file; above the grey line is faster. Block-sparse also skips the masked-out " +
      "blocks, so its speedup includes the sparsity.",
    notes: series.length === 0
      ? [`Needs timed ${base} runs and runs of another kernel at the same shape.`]
      : [],
    x: N_AXIS,
    y: {
      title: "speedup (×)",
      scale: autoScale(series.flatMap((s) => s.points.map((p) => p.y)), 50),
      unit: "ratio",
    },
    series,
  });
}
