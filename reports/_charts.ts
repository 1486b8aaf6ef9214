/**
 * Turns results files into chart specifications: plain data (axes, series, points with their
 * tooltip text, legends) that the page's small client script hands to Chart.js. All the
 * arithmetic of the report lives in the `_chart_*.ts` files, one per chart family, so it is
 * unit-tested without a browser; this file puts them in page order. Private to `reports/`.
 *
 * @module
 */

import type { ResultsFile, RunPass } from "../core/schema.ts";
import type { ChartSpec } from "./_chart_common.ts";
import { blockSizeChart } from "./_chart_block_size.ts";
import { bytesChart } from "./_chart_bytes.ts";
import { densityChart } from "./_chart_density.ts";
import { decodeBandwidthChart, decodePagingChart, decodeWasteChart } from "./_chart_decode.ts";
import { footprintChart } from "./_chart_footprint.ts";
import { ioBytesChart, ioFlopsChart } from "./_chart_io.ts";
import { rooflineChart } from "./_chart_roofline.ts";
import { runtimeChart } from "./_chart_runtime.ts";
import { speedupChart } from "./_chart_speedup.ts";
import { tflopsChart } from "./_chart_throughput.ts";

export type { AxisSpec, ChartSpec, LegendItem, PointSpec, SeriesSpec } from "./_chart_common.ts";
export { attainableTflops } from "./_chart_roofline.ts";
export { type SpeedupPair, speedupPairs } from "./_chart_speedup.ts";

/** The report's views, in page order: one per pass the results hold. */
const VIEWS: readonly [RunPass, string, string][] = [
  ["fwd", "Forward", "fwd"],
  ["bwd", "Backward", "bwd"],
  ["fwd+bwd", "Forward + backward", "fwdbwd"],
];

/**
 * Every chart of the report, in page order. Charts without data have no series and a note;
 * the page leaves them out. Results holding runs of more than one pass (`--pass`) get a view
 * per pass: the charts of its runs alone, titled "Forward: …", "Backward: …",
 * "Forward + backward: …" (a run without `pass` is forward).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { buildCharts } from "./_charts.ts";
 * const charts = buildCharts([], []);
 * assert(charts.every((c) => c.series.length === 0 && c.notes.length > 0));
 * ```
 */
export function buildCharts(results: ResultsFile[], labels: string[]): ChartSpec[] {
  const passOf = (r: ResultsFile["runs"][number]) => r.pass ?? "fwd";
  const present = VIEWS.filter(([pass]) =>
    results.some((f) => f.runs.some((r) => passOf(r) === pass))
  );
  if (present.length <= 1) {
    return chartsOf(results, labels).map((c) => namedPass(c, present[0]?.[0] ?? "fwd"));
  }
  return present.flatMap(([pass, title, slug]) => {
    const only = results.map((f) => ({ ...f, runs: f.runs.filter((r) => passOf(r) === pass) }));
    return chartsOf(only, labels).map((c) => ({
      ...namedPass(c, pass),
      id: `${c.id}-${slug}`,
      title: `${title}: ${c.title}`,
    }));
  });
}

/** What one timed unit of each pass is called on the axes and in the captions. */
const PASS_UNIT: Readonly<Record<RunPass, string>> = {
  "fwd": "forward pass",
  "bwd": "backward pass",
  "fwd+bwd": "forward + backward step",
};

/**
 * The chart with its captions and axis titles naming the pass its runs time: the chart
 * families write "forward pass", which a backward view must not say.
 */
function namedPass(c: ChartSpec, pass: RunPass): ChartSpec {
  if (pass === "fwd") return c;
  const say = (text: string) => text.replaceAll("forward pass", PASS_UNIT[pass]);
  const axis = <A extends { title: string }>(a: A): A => ({ ...a, title: say(a.title) });
  return {
    ...c,
    caption: say(c.caption),
    x: axis(c.x),
    y: axis(c.y),
    ...(c.y2 ? { y2: axis(c.y2) } : {}),
  };
}

function chartsOf(results: ResultsFile[], labels: string[]): ChartSpec[] {
  return [
    runtimeChart(results, labels),
    speedupChart(results, labels),
    ioBytesChart(results, labels),
    ioFlopsChart(results, labels),
    tflopsChart(results, labels),
    bytesChart(results, labels),
    rooflineChart(results, labels),
    footprintChart(results, labels),
    blockSizeChart(results, labels),
    densityChart(results, labels),
    decodeBandwidthChart(results, labels),
    decodePagingChart(results, labels),
    decodeWasteChart(results, labels),
  ];
}
