/**
 * Block-size sweep (paper Fig. 2 middle): runtime (left axis) and modeled bytes (right axis)
 * against the swept tile size. Private to `reports/`.
 *
 * @module
 */

import type { ResultsFile, RunRecord } from "../core/schema.ts";
import { fmtBytes, fmtTile, isTimed } from "./_format.ts";
import {
  autoScale,
  bestPerX,
  type ChartSpec,
  emptyNote,
  entries,
  fullLabel,
  groupLooks,
  groupRuns,
  positive,
  type SeriesSpec,
  type Timed,
  timePoint,
  withLegend,
  yOf,
} from "./_chart_common.ts";

/** Block-size sweep chart. */
export function blockSizeChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const all = entries(results, (r) => r.sweep === "block-size");
  const timed = all.filter((e) => isTimed(e.run));
  // Which tile dimension is swept: per (file, kernel, shape), the one that varies (bc first).
  const coarse = groupRuns(timed, { fixN: true });
  const axisOf = new Map<RunRecord, "br" | "bc">();
  const fixed = new Map<RunRecord, string>();
  for (const g of coarse) {
    const bcVaries = new Set(g.runs.map((r) => r.tile.bc)).size > 1;
    const brVaries = new Set(g.runs.map((r) => r.tile.br)).size > 1;
    for (const r of g.runs) {
      axisOf.set(r, bcVaries ? "bc" : "br");
      fixed.set(r, bcVaries && brVaries ? `Br=${r.tile.br}` : "");
    }
  }
  const groups = groupRuns(timed, {
    fixN: true,
    sub: (r) => [fixed.get(r) ?? "", `vs ${axisOf.get(r) === "bc" ? "Bc" : "Br"}`].join(" ").trim(),
  });
  const axes = new Set([...axisOf.values()]);
  // Drop the "vs Br" suffix when every line sweeps the same dimension.
  if (axes.size === 1) { for (const g of groups) g.sub = g.sub.replace(/ ?vs B[rc]$/, ""); }
  const looks = groupLooks(groups, labels);
  const series: SeriesSpec[] = [];
  const x = (r: RunRecord) => (axisOf.get(r) === "bc" ? r.tile.bc : r.tile.br);
  groups.forEach((g, i) => {
    const runs = bestPerX(g.runs as Timed[], x);
    const look = looks[i]!;
    const name = fullLabel(look.name, look.kind);
    const base = { group: look.name, color: look.color, line: true };
    series.push({
      ...base,
      label: `${name} time`,
      kind: "median time, solid (left axis)",
      dash: [],
      marker: look.marker,
      radius: 4,
      axis: "y",
      points: runs.map((r) => timePoint(x(r), r)).filter(positive),
    });
    series.push({
      ...base,
      label: `${name} modeled bytes`,
      kind: "modeled bytes, dashed (right axis)",
      dash: [6, 4],
      marker: "rect",
      radius: 3,
      axis: "y2",
      points: runs.map((r) => ({
        x: x(r),
        y: r.hbmBytes.modeled,
        tip: `tile ${fmtTile(r.tile)}: ${fmtBytes(r.hbmBytes.modeled)} modeled` +
          (r.hbmBytes.counted !== null ? `, ${fmtBytes(r.hbmBytes.counted)} counted` : ""),
      })).filter(positive),
    });
  });
  const kept = series.filter((s) => s.points.length > 0);
  const notes: string[] = [];
  if (all.length === 0) notes.push(emptyNote('runs of the "block-size" sweep'));
  else if (kept.length === 0) notes.push('No run of the "block-size" sweep was timed.');
  // The IO model's pick (fewest modeled bytes) beside the measured best (fastest), per line.
  groups.forEach((g, i) => {
    const runs = g.runs as Timed[];
    if (runs.length < 2) return;
    const fewest = runs.reduce((a, b) => (b.hbmBytes.modeled < a.hbmBytes.modeled ? b : a));
    const fastest = runs.reduce((a, b) => (b.timeMs.median < a.timeMs.median ? b : a));
    const name = looks[i]?.name ?? g.kernel;
    notes.push(
      `${name}: the IO model's best tile (fewest bytes) is ${fmtTile(fewest.tile)}` +
        ` (${fmtBytes(fewest.hbmBytes.modeled)}, ${fewest.timeMs.median.toPrecision(3)} ms); ` +
        `measured best is ${fmtTile(fastest.tile)} (${fastest.timeMs.median.toPrecision(3)} ms).`,
    );
  });
  const xTitle = axes.size === 1 && axes.has("br")
    ? "tile Br (query rows per workgroup)"
    : axes.size === 1
    ? "tile Bc (key rows per block)"
    : "tile size (Br or Bc, see legend)";
  return withLegend({
    id: "block-size",
    title: "Block-size sweep",
    caption: "Solid lines (left axis): median time for each tile size, whiskers p10–p90 " +
      "(min–max under 10 samples); dashed lines (right axis): the modeled HBM bytes. Bigger " +
      "tiles re-read K and V fewer times but use more registers and workgroup memory, so time " +
      "usually has a sweet spot where bytes keep falling.",
    notes,
    x: { title: xTitle, scale: "log2", unit: "plain" },
    y: { title: "median time", scale: autoScale(kept.flatMap(yOf("y"))), unit: "ms" },
    y2: { title: "modeled HBM bytes", scale: "log", unit: "bytes" },
    series: kept,
  });
}
