/**
 * HBM bytes against N: the paper's model, our kernel's model, the counters and the floor.
 * Colour is the kernel configuration; line style is the way the bytes were obtained.
 * Private to `reports/`.
 *
 * @module
 */

import type { ResultsFile } from "../core/schema.ts";
import { fmtBytes, fmtNum } from "./_format.ts";
import {
  type ChartSpec,
  emptyNote,
  entries,
  fullLabel,
  groupLooks,
  groupRuns,
  N_AXIS,
  type PointSpec,
  positive,
  refLine,
  type SeriesSpec,
  withLegend,
} from "./_chart_common.ts";

const MODELED = "modeled (our kernel), solid";
const THEORETICAL = "theoretical (paper), dotted";
const COUNTED = "counted, crosses";

/** HBM bytes against N: modeled, theoretical, counted and the floor. */
export function bytesChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const all = entries(results, (r) => r.sweep === "n" && r.status !== "failed");
  // The two models depend on the shape only: draw them once across files.
  const modelGroups = groupRuns(all.map((e) => ({ ...e, file: 0 })));
  const modelLooks = groupLooks(modelGroups, [labels[0] ?? ""]);
  const series: SeriesSpec[] = [];
  modelGroups.forEach((g, i) => {
    const runs = [...new Map(g.runs.map((r) => [r.n, r])).values()].sort((a, b) => a.n - b.n);
    const look = modelLooks[i]!;
    const mk = (what: "modeled" | "theoretical"): PointSpec[] =>
      runs.map((r) => ({
        x: r.n,
        y: r.hbmBytes[what],
        tip: `N=${r.n} b×h=${r.batch}×${r.heads}: ${fmtBytes(r.hbmBytes[what])} ${what}` +
          (what === "theoretical" && r.hbmBytes.sramBytes !== undefined
            ? ` (M = ${r.hbmBytes.sramBytes} B)`
            : "") +
          `\nfloor (${
            r.mask !== null
              ? "the rows of Q, K, V, O the mask uses"
              : "Q, K, V read once, O written once"
          }) ${fmtBytes(r.hbmBytes.lowerBound)}`,
      })).filter(positive);
    const base = { group: look.name, color: look.color, axis: "y" as const, line: true };
    series.push({
      ...base,
      label: `${look.name} modeled`,
      kind: MODELED,
      dash: [],
      marker: "circle",
      radius: 3,
      points: mk("modeled"),
    });
    series.push({
      ...base,
      label: `${look.name} theoretical`,
      kind: THEORETICAL,
      dash: [2, 4],
      marker: "circle",
      radius: 0,
      points: mk("theoretical"),
    });
  });
  // Counters are measurements: one series per file.
  const counted = groupRuns(all.filter((e) => e.run.hbmBytes.counted !== null));
  const cLooks = groupLooks(counted, labels);
  counted.forEach((g, i) => {
    const look = cLooks[i]!;
    series.push({
      label: `${fullLabel(look.name, look.kind)} counted`,
      group: look.name,
      kind: COUNTED,
      color: look.color,
      line: false,
      dash: [],
      marker: "crossRot",
      radius: 7,
      axis: "y",
      points: g.runs.map((r) => {
        const c = r.hbmBytes.counted ?? 0;
        return {
          x: r.n,
          y: c,
          tip: `N=${r.n}: ${fmtBytes(c)} counted\n${fmtNum(c / r.hbmBytes.modeled, 4)}× modeled`,
        };
      }).filter(positive),
    });
  });
  // The compulsory floor of dense attention depends on the shape only; a masked kernel's depends
  // on its mask too (its tooltips give it).
  const floors = new Map<string, Map<number, number>>();
  for (const { run: r } of all) {
    if (r.mask !== null) continue;
    const key = `${r.dtype} d=${r.d}`;
    const m = floors.get(key) ?? new Map<number, number>();
    m.set(r.n, r.hbmBytes.lowerBound);
    floors.set(key, m);
  }
  for (const [key, m] of floors) {
    series.push(refLine(
      `floor: Q, K, V, O once${floors.size > 1 ? ` (${key})` : ""}`,
      [...m.entries()].sort((a, b) => a[0] - b[0])
        .map(([n, y]) => ({ x: n, y, tip: `N=${n}: ${fmtBytes(y)} compulsory` }))
        .filter(positive),
      { dash: [6, 3] },
    ));
  }
  const kept = series.filter((s) => s.points.length > 0);
  const notes: string[] = [];
  if (kept.length === 0) notes.push(emptyNote('runs of the "n" sweep'));
  else if (counted.length === 0) {
    notes.push("No counted bytes (bench without --count-io): only the two models are drawn.");
  }
  return withLegend({
    id: "bytes",
    title: "HBM traffic vs sequence length",
    caption: "Bytes moved between GPU memory and the chip per forward pass; lower is better. " +
      "Colour is the kernel; solid: our kernel's exact model; dotted: the FlashAttention " +
      "paper's model; crosses: bytes counted by the instrumented kernel; grey dashed: the " +
      "floor (each tensor once). Standard grows as N², flash as N²d²/M.",
    notes,
    x: N_AXIS,
    y: { title: "bytes per forward pass", scale: "log", unit: "bytes" },
    series: kept,
  });
}
