/**
 * Turns results files into chart specifications: plain data (axes, series, points with their
 * tooltip text) that the page's small client script hands to Chart.js. All the arithmetic of the
 * report (grouping, speedups, the roofline) lives here, so it is unit-tested without a browser.
 * Private to `reports/`.
 *
 * @module
 */

import type { PeerRecord, ResultsFile, RunRecord } from "../analysis/schema.ts";
import { KERNELS } from "../kernels/types.ts";
import { fmtBytes, fmtMem, fmtMs, fmtNum, fmtTile, isDoesNotFit, isTimed } from "./_format.ts";

/** How an axis maps values: linear, base-10 log, or log with power-of-two ticks (sizes). */
export type ScaleKind = "linear" | "log" | "log2";
/** How tick labels are written. */
export type TickUnit = "plain" | "ms" | "bytes" | "mem" | "ratio";

/** One axis. */
export interface AxisSpec {
  title: string;
  scale: ScaleKind;
  unit: TickUnit;
  min?: number;
  max?: number;
}

/** One point; `tip` is the tooltip text (lines separated by `\n`). */
export interface PointSpec {
  x: number;
  y: number;
  tip: string;
}

/** Chart.js point styles the report uses. */
export type Marker = "circle" | "triangle" | "rect" | "rectRot" | "star" | "crossRot" | "cross";

/** One legend entry. */
export interface SeriesSpec {
  label: string;
  color: string;
  /** Draw a line through the points (else points only). */
  line: boolean;
  /** Line dash pattern in px; empty for solid. */
  dash: number[];
  marker: Marker;
  /** Point radius in px; 0 hides points of reference lines. */
  radius: number;
  /** Which y axis: the left `y` or the right `y2`. */
  axis: "y" | "y2";
  points: PointSpec[];
}

/** One chart. With no series the page shows the notes instead of a canvas. */
export interface ChartSpec {
  id: string;
  title: string;
  /** A short "how to read" caption shown under the chart. */
  caption: string;
  /** Remarks about missing or partial data. */
  notes: string[];
  x: AxisSpec;
  y: AxisSpec;
  y2?: AxisSpec;
  series: SeriesSpec[];
}

/** A flash or block-sparse run paired with the standard run of the same shape. */
export interface SpeedupPair {
  file: number;
  run: RunRecord;
  base: RunRecord;
  /** Standard's median time over this run's median time. */
  speedup: number;
}

type Timed = RunRecord & { timeMs: NonNullable<RunRecord["timeMs"]> };

const HUE: Record<string, [number, number]> = {
  standard: [8, 72],
  flash: [212, 74],
  "block-sparse": [158, 64],
};
const LIGHTNESS = [44, 30, 58, 22, 68];
const FILE_DASH: number[][] = [[], [7, 4], [2, 3], [10, 3, 2, 3]];
const FILE_MARKER: Marker[] = ["circle", "triangle", "rect", "rectRot", "star"];
/** Colour of reference lines (roofs, limits, baselines). */
const GREY = "hsl(210, 10%, 45%)";
/** Colour of peers (PyTorch SDPA). */
const PEER = "hsl(282, 55%, 48%)";
/** Colour of runs that did not fit. */
const MISS = "hsl(0, 80%, 42%)";

function kernelColor(kernel: string, variant: number): string {
  const [h, s] = HUE[kernel] ?? [40, 60];
  return `hsl(${h}, ${s}%, ${LIGHTNESS[variant % LIGHTNESS.length]}%)`;
}

function fileDash(file: number): number[] {
  return FILE_DASH[file % FILE_DASH.length] ?? [];
}

function fileMarker(file: number): Marker {
  return FILE_MARKER[file % FILE_MARKER.length] ?? "circle";
}

function kernelOrder(k: string): number {
  const i = (KERNELS as readonly string[]).indexOf(k);
  return i < 0 ? KERNELS.length : i;
}

function pct(x: number): string {
  return `${fmtNum(x * 100, 2)}%`;
}

/** A set of runs that becomes one line: same file, kernel and shape apart from the x value. */
interface Group {
  file: number;
  kernel: string;
  dtype: string;
  batch: number;
  heads: number;
  d: number;
  causal: boolean;
  mask: string | null;
  /** Fixed N of a sweep over something else; null when N is the x axis. */
  n: number | null;
  /** Extra distinguishing text (e.g. the tile dimension that is held fixed). */
  sub: string;
  runs: RunRecord[];
}

interface Entry {
  file: number;
  run: RunRecord;
}

function groupKey(g: Omit<Group, "runs">): string {
  return JSON.stringify([
    g.file,
    g.kernel,
    g.dtype,
    g.batch,
    g.heads,
    g.d,
    g.causal,
    g.mask,
    g.n,
    g.sub,
  ]);
}

function groupRuns(
  entries: Entry[],
  opts: { fixN?: boolean; sub?: (r: RunRecord) => string } = {},
): Group[] {
  const map = new Map<string, Group>();
  for (const { file, run: r } of entries) {
    const head = {
      file,
      kernel: r.kernel,
      dtype: r.dtype,
      batch: r.batch,
      heads: r.heads,
      d: r.d,
      causal: r.causal,
      mask: r.kernel === "block-sparse" ? (r.mask ?? "mask") : null,
      n: opts.fixN ? r.n : null,
      sub: opts.sub ? opts.sub(r) : "",
    };
    const key = groupKey(head);
    const g = map.get(key);
    if (g) g.runs.push(r);
    else map.set(key, { ...head, runs: [r] });
  }
  return [...map.values()].sort((a, b) =>
    a.file - b.file || kernelOrder(a.kernel) - kernelOrder(b.kernel) ||
    a.dtype.localeCompare(b.dtype) || a.d - b.d || a.batch * a.heads - b.batch * b.heads ||
    Number(a.causal) - Number(b.causal) || (a.n ?? 0) - (b.n ?? 0) || a.sub.localeCompare(b.sub)
  );
}

/** Shape parts that differ between groups, so labels say only what tells lines apart. */
function groupLabels(
  groups: Group[],
  labels: string[],
  opts: { density?: boolean } = {},
): string[] {
  const dims: [(g: Group) => string, (g: Group) => string][] = [
    [(g) => g.dtype, (g) => g.dtype],
    [(g) => `${g.d}`, (g) => `d=${g.d}`],
    [(g) => `${g.batch}/${g.heads}`, (g) => `b=${g.batch} h=${g.heads}`],
    [(g) => `${g.causal}`, (g) => (g.causal ? "causal" : "full")],
    [(g) => `${g.n}`, (g) => `n=${g.n}`],
  ];
  const varying = dims.filter(([key]) => new Set(groups.map(key)).size > 1);
  const multi = new Set(groups.map((g) => g.file)).size > 1 || labels.length > 1;
  return groups.map((g) => {
    const parts = varying.map(([, show]) => show(g));
    if (g.mask !== null) {
      const dens = g.runs.reduce((s, r) => s + r.density, 0) / g.runs.length;
      parts.unshift(opts.density === false ? g.mask : `${g.mask} ${pct(dens)}`);
    }
    if (g.sub !== "") parts.push(g.sub);
    const text = g.kernel + (parts.length > 0 ? ` (${parts.join(", ")})` : "");
    return multi ? `${text} · ${labels[g.file] ?? `file ${g.file + 1}`}` : text;
  });
}

/** Colour variants: groups of one kernel with different shapes get different lightness. */
function variants(groups: Group[]): number[] {
  const seen = new Map<string, string[]>();
  return groups.map((g) => {
    const shape = JSON.stringify([g.dtype, g.d, g.batch, g.heads, g.causal, g.mask, g.n, g.sub]);
    const list = seen.get(g.kernel) ?? [];
    if (!seen.has(g.kernel)) seen.set(g.kernel, list);
    let i = list.indexOf(shape);
    if (i < 0) i = list.push(shape) - 1;
    return i;
  });
}

function style(g: Group, variant: number): Pick<SeriesSpec, "color" | "dash" | "marker"> {
  return {
    color: kernelColor(g.kernel, variant),
    dash: fileDash(g.file),
    marker: fileMarker(g.file),
  };
}

/** Keeps the fastest run per x value and sorts by x. */
function bestPerX(runs: Timed[], x: (r: Timed) => number): Timed[] {
  const best = new Map<number, Timed>();
  for (const r of runs) {
    const k = x(r);
    const cur = best.get(k);
    if (!cur || r.timeMs.median < cur.timeMs.median) best.set(k, r);
  }
  return [...best.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
}

function finite(p: PointSpec): boolean {
  return Number.isFinite(p.x) && Number.isFinite(p.y);
}

function positive(p: PointSpec): boolean {
  return finite(p) && p.x > 0 && p.y > 0;
}

function timeTip(r: Timed): string {
  const t = r.timeMs;
  const lines = [
    `n=${r.n} d=${r.d} b=${r.batch} h=${r.heads} ${r.dtype}${r.causal ? " causal" : ""}`,
    `median ${fmtMs(t.median)} ± ${fmtMs(t.stdev)} (${t.samples.length} samples)`,
    `tile ${fmtTile(r.tile)}`,
  ];
  if (r.kernel === "block-sparse") lines.push(`density ${pct(r.density)} (${r.mask ?? "mask"})`);
  return lines.join("\n");
}

/** `log` when positive values span more than `ratio`, else `linear`. */
function autoScale(values: number[], ratio = 30): ScaleKind {
  const pos = values.filter((v) => Number.isFinite(v) && v > 0);
  if (pos.length === 0) return "linear";
  return Math.max(...pos) / Math.min(...pos) > ratio ? "log" : "linear";
}

function xRange(series: SeriesSpec[]): [number, number] | null {
  const xs = series.flatMap((s) => s.points.map((p) => p.x)).filter(Number.isFinite);
  return xs.length === 0 ? null : [Math.min(...xs), Math.max(...xs)];
}

function hline(
  label: string,
  y: number,
  x: [number, number],
  tip: string,
  axis: "y" | "y2" = "y",
  dash: number[] = [5, 5],
  color = GREY,
): SeriesSpec {
  return {
    label,
    color,
    line: true,
    dash,
    marker: "circle",
    radius: 0,
    axis,
    points: [{ x: x[0], y, tip }, { x: x[1], y, tip }],
  };
}

function entries(results: ResultsFile[], keep: (r: RunRecord) => boolean): Entry[] {
  return results.flatMap((f, file) => f.runs.filter(keep).map((run) => ({ file, run })));
}

function timedEntries(results: ResultsFile[], sweep: RunRecord["sweep"]): Entry[] {
  return entries(results, (r) => r.sweep === sweep && isTimed(r));
}

const N_AXIS: AxisSpec = { title: "sequence length N", scale: "log2", unit: "plain" };

function emptyNote(what: string): string {
  return `No ${what} in these results.`;
}

/** Runtime (median) against N, log-log, one line per kernel × shape × file. */
function runtimeChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const groups = groupRuns(timedEntries(results, "n"));
  const names = groupLabels(groups, labels);
  const vars = variants(groups);
  const series = groups.map((g, i): SeriesSpec => ({
    label: names[i] ?? g.kernel,
    ...style(g, vars[i] ?? 0),
    line: true,
    radius: 3,
    axis: "y",
    points: bestPerX(g.runs as Timed[], (r) => r.n)
      .map((r) => ({ x: r.n, y: r.timeMs.median, tip: timeTip(r) }))
      .filter(positive),
  })).filter((s) => s.points.length > 0);
  return {
    id: "runtime",
    title: "Runtime vs sequence length",
    caption: "Median time of one forward pass; lower is better. On log-log axes a slope of 2 " +
      "means time grows as N²; the vertical gap between two lines is a constant factor.",
    notes: series.length === 0 ? [emptyNote('successful runs of the "n" sweep')] : [],
    x: N_AXIS,
    y: { title: "median time per forward pass", scale: "log", unit: "ms" },
    series,
  };
}

/** Peers as a series per backend × shape, for the TFLOP/s chart. */
function peerSeries(results: ResultsFile[], labels: string[]): SeriesSpec[] {
  const multi = results.length > 1;
  const out: SeriesSpec[] = [];
  results.forEach((f, file) => {
    const by = new Map<string, PeerRecord[]>();
    for (const p of f.peers ?? []) {
      if (p.tflops === null || !(p.tflops > 0)) continue;
      const key = `${p.backend} (d=${p.d}${p.causal ? ", causal" : ""}, ${p.dtype})`;
      const list = by.get(key) ?? [];
      list.push(p);
      by.set(key, list);
    }
    for (const [key, list] of by) {
      list.sort((a, b) => a.n - b.n);
      out.push({
        label: `${key}${multi ? ` · ${labels[file]}` : ""}`,
        color: PEER,
        line: true,
        dash: [3, 3],
        marker: "star",
        radius: 4,
        axis: "y",
        points: list.map((p) => ({
          x: p.n,
          y: p.tflops ?? 0,
          tip: `${p.backend} on ${p.gpu}\nn=${p.n} d=${p.d} batch·heads=${p.batchHeads}\n` +
            `${p.ms === null ? "" : fmtMs(p.ms) + ", "}${fmtNum(p.tflops ?? 0)} TFLOP/s`,
        })).filter(positive),
      });
    }
  });
  return out;
}

/** Achieved TFLOP/s against N, with peers overlaid when present. */
function tflopsChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const groups = groupRuns(
    entries(results, (r) => r.sweep === "n" && isTimed(r) && r.tflops !== null),
  );
  const names = groupLabels(groups, labels);
  const vars = variants(groups);
  const series = groups.map((g, i): SeriesSpec => ({
    label: names[i] ?? g.kernel,
    ...style(g, vars[i] ?? 0),
    line: true,
    radius: 3,
    axis: "y",
    points: bestPerX(g.runs as Timed[], (r) => r.n).map((r) => ({
      x: r.n,
      y: r.tflops ?? 0,
      tip: `${timeTip(r)}\n${fmtNum(r.tflops ?? 0)} TFLOP/s` +
        (r.kernel === "block-sparse" && r.tflopsDenseEquivalent !== null
          ? ` (${fmtNum(r.tflopsDenseEquivalent)} dense-equivalent)`
          : ""),
    })).filter(positive),
  })).filter((s) => s.points.length > 0);
  const peers = series.length > 0 ? peerSeries(results, labels) : [];
  const all = [...series, ...peers.filter((s) => s.points.length > 0)];
  const notes = series.length === 0 ? [emptyNote('timed runs of the "n" sweep')] : [];
  return {
    id: "tflops",
    title: "Throughput vs sequence length",
    caption: "FLOPs actually computed (4·B·H·N²·d, × density for block-sparse) per second; " +
      "higher is better. A flat line means the kernel is compute-bound at that size. Purple " +
      "stars are the peer (PyTorch SDPA) measured in the same session.",
    notes,
    x: N_AXIS,
    y: {
      title: "TFLOP/s",
      scale: autoScale(all.flatMap((s) => s.points.map((p) => p.y)), 8),
      unit: "plain",
    },
    series: all,
  };
}

/** HBM bytes against N: the paper's model, our kernel's model, the counters, the floor. */
function bytesChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const all = entries(results, (r) => r.sweep === "n" && r.status !== "failed");
  // The two models depend on the shape only: draw them once across files.
  const modelGroups = groupRuns(all.map((e) => ({ ...e, file: 0 })));
  const names = groupLabels(modelGroups, [labels[0] ?? ""], {});
  const vars = variants(modelGroups);
  const series: SeriesSpec[] = [];
  modelGroups.forEach((g, i) => {
    const runs = [...new Map(g.runs.map((r) => [r.n, r])).values()].sort((a, b) => a.n - b.n);
    const color = kernelColor(g.kernel, vars[i] ?? 0);
    const name = names[i] ?? g.kernel;
    const mk = (what: "modeled" | "theoretical"): PointSpec[] =>
      runs.map((r) => ({
        x: r.n,
        y: r.hbmBytes[what],
        tip: `n=${r.n}: ${fmtBytes(r.hbmBytes[what])} ${what}` +
          (what === "theoretical" && r.hbmBytes.sramBytes !== undefined
            ? ` (M = ${r.hbmBytes.sramBytes} B)`
            : "") +
          `\nfloor (${
            r.kernel === "block-sparse"
              ? "the rows of Q, K, V, O the mask uses"
              : "Q, K, V read once, O written once"
          }) ${fmtBytes(r.hbmBytes.lowerBound)}`,
      })).filter(positive);
    series.push({
      label: `${name} modeled`,
      color,
      line: true,
      dash: [],
      marker: "circle",
      radius: 3,
      axis: "y",
      points: mk("modeled"),
    });
    series.push({
      label: `${name} theoretical`,
      color,
      line: true,
      dash: [2, 4],
      marker: "circle",
      radius: 2,
      axis: "y",
      points: mk("theoretical"),
    });
  });
  // Counters are measurements: one series per file.
  const counted = groupRuns(all.filter((e) => e.run.hbmBytes.counted !== null));
  const cNames = groupLabels(counted, labels);
  const cVars = variants(counted.map((g) => ({ ...g, file: 0 })));
  counted.forEach((g, i) => {
    series.push({
      label: `${cNames[i] ?? g.kernel} counted`,
      color: kernelColor(g.kernel, cVars[i] ?? 0),
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
          tip: `n=${r.n}: ${fmtBytes(c)} counted\n${fmtNum(c / r.hbmBytes.modeled, 4)}× modeled`,
        };
      }).filter(positive),
    });
  });
  // The compulsory floor of dense attention depends on the shape only; block-sparse's depends on
  // its mask too (its tooltips give it).
  const floors = new Map<string, Map<number, number>>();
  for (const { run: r } of all) {
    if (r.kernel === "block-sparse") continue;
    const key = `${r.dtype} d=${r.d} b=${r.batch} h=${r.heads}`;
    const m = floors.get(key) ?? new Map<number, number>();
    m.set(r.n, r.hbmBytes.lowerBound);
    floors.set(key, m);
  }
  for (const [key, m] of floors) {
    series.push({
      label: `floor: Q, K, V, O once${floors.size > 1 ? ` (${key})` : ""}`,
      color: GREY,
      line: true,
      dash: [6, 3],
      marker: "circle",
      radius: 0,
      axis: "y",
      points: [...m.entries()].sort((a, b) => a[0] - b[0])
        .map(([n, y]) => ({ x: n, y, tip: `n=${n}: ${fmtBytes(y)} compulsory` }))
        .filter(positive),
    });
  }
  const kept = series.filter((s) => s.points.length > 0);
  const notes: string[] = [];
  if (kept.length === 0) notes.push(emptyNote('runs of the "n" sweep'));
  else if (counted.length === 0) {
    notes.push("No counted bytes (bench without --count-io): only the two models are drawn.");
  }
  return {
    id: "bytes",
    title: "HBM traffic vs sequence length",
    caption: "Bytes moved between GPU memory and the chip per forward pass; lower is better. " +
      "Solid: our kernel's exact model; dotted: the FlashAttention paper's model; crosses: " +
      "bytes counted by the instrumented kernel; grey dashed: the floor (each tensor once). " +
      "Standard grows as N², flash as N²d²/M.",
    notes,
    x: N_AXIS,
    y: { title: "bytes per forward pass", scale: "log", unit: "bytes" },
    series: kept,
  };
}

/**
 * Pairs every timed flash and block-sparse run of the "n" sweep with the fastest timed standard
 * run of the same file and shape (dtype, batch, heads, n, d, causal).
 *
 * @example
 * ```ts
 * import { speedupPairs } from "./_charts.ts";
 * console.assert(speedupPairs([]).length === 0);
 * ```
 */
export function speedupPairs(results: ResultsFile[]): SpeedupPair[] {
  const out: SpeedupPair[] = [];
  results.forEach((f, file) => {
    const shape = (r: RunRecord) => JSON.stringify([r.dtype, r.batch, r.heads, r.n, r.d, r.causal]);
    const base = new Map<string, Timed>();
    for (const r of f.runs) {
      if (r.kernel !== "standard" || !isTimed(r)) continue;
      const cur = base.get(shape(r));
      if (!cur || r.timeMs.median < cur.timeMs.median) base.set(shape(r), r);
    }
    for (const r of f.runs) {
      if (r.kernel === "standard" || r.sweep !== "n" || !isTimed(r)) continue;
      const b = base.get(shape(r));
      if (b) out.push({ file, run: r, base: b, speedup: b.timeMs.median / r.timeMs.median });
    }
  });
  return out;
}

/** Speedup of flash and block-sparse over standard at the same shape. */
function speedupChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const pairs = speedupPairs(results);
  const byRun = new Map(pairs.map((p) => [p.run, p]));
  const groups = groupRuns(pairs.map((p) => ({ file: p.file, run: p.run })));
  const names = groupLabels(groups, labels);
  const vars = variants(groups);
  const series = groups.map((g, i): SeriesSpec => ({
    label: names[i] ?? g.kernel,
    ...style(g, vars[i] ?? 0),
    line: true,
    radius: 3,
    axis: "y",
    points: bestPerX(g.runs as Timed[], (r) => r.n).map((r) => {
      const p = byRun.get(r);
      const s = p?.speedup ?? NaN;
      return {
        x: r.n,
        y: s,
        tip: `n=${r.n}: ${fmtNum(s)}× faster than standard\n` +
          `${fmtMs(r.timeMs.median)} vs ${fmtMs(p?.base.timeMs?.median ?? NaN)}`,
      };
    }).filter(positive),
  })).filter((s) => s.points.length > 0);
  const range = xRange(series);
  if (range) series.push(hline("standard (1×)", 1, range, "same speed as standard"));
  return {
    id: "speedup",
    title: "Speedup over the standard kernel",
    caption: "Standard's median time divided by each kernel's, at the same shape in the same " +
      "results file; above the grey line is faster. Block-sparse also skips the masked-out " +
      "blocks, so its speedup includes the sparsity.",
    notes: series.length === 0
      ? ["Needs timed standard runs and flash or block-sparse runs at the same shape."]
      : [],
    x: N_AXIS,
    y: {
      title: "speedup (×)",
      scale: autoScale(series.flatMap((s) => s.points.map((p) => p.y)), 50),
      unit: "ratio",
    },
    series,
  };
}

/**
 * The roof of a roofline: the lower of the FMA peak and bandwidth × arithmetic intensity.
 *
 * @example
 * ```ts
 * import { attainableTflops } from "./_charts.ts";
 * console.assert(attainableTflops(10, 1000, 50) === 10); // 10 FLOP/B × 1000 GB/s = 10 TFLOP/s
 * ```
 */
export function attainableTflops(intensity: number, copyGBs: number, fmaTflops: number): number {
  return Math.min(fmaTflops, (intensity * copyGBs) / 1000);
}

/** Roofline: arithmetic intensity against TFLOP/s under each device's measured roof. */
function rooflineChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const groups = groupRuns(
    entries(
      results,
      (r) => r.sweep === "n" && isTimed(r) && r.tflops !== null && r.hbmBytes.modeled > 0,
    ),
  );
  const names = groupLabels(groups, labels);
  const vars = variants(groups);
  const series = groups.map((g, i): SeriesSpec => {
    const c = results[g.file]?.ceilings ?? null;
    return {
      label: names[i] ?? g.kernel,
      ...style(g, vars[i] ?? 0),
      dash: [],
      line: false,
      radius: 5,
      axis: "y",
      points: bestPerX(g.runs as Timed[], (r) => r.n).map((r) => {
        const ai = r.flops / r.hbmBytes.modeled;
        const tf = r.tflops ?? 0;
        let tip = `n=${r.n}: ${fmtNum(ai)} FLOP/byte, ${fmtNum(tf)} TFLOP/s`;
        if (c && c.copyGBs !== null && c.fmaTflops !== null) {
          const roof = attainableTflops(ai, c.copyGBs, c.fmaTflops);
          tip += `\n${pct(tf / roof)} of the attainable ${fmtNum(roof)} TFLOP/s`;
          tip += ai * c.copyGBs / 1000 < c.fmaTflops ? " (memory-bound)" : " (compute-bound)";
        }
        return { x: ai, y: tf, tip };
      }).filter(positive),
    };
  }).filter((s) => s.points.length > 0);
  const notes: string[] = [];
  const range = xRange(series);
  const roofs: SeriesSpec[] = [];
  if (range) {
    results.forEach((f, file) => {
      const c = f.ceilings;
      if (!c || c.copyGBs === null || c.fmaTflops === null || !(c.copyGBs > 0)) {
        notes.push(`${labels[file] ?? "file"}: no measured ceilings, so no roof is drawn.`);
        return;
      }
      const ridge = (c.fmaTflops * 1000) / c.copyGBs;
      const lo = Math.min(range[0] / 2, ridge / 4);
      const hi = Math.max(range[1] * 2, ridge * 4);
      const roof = (x: number) => attainableTflops(x, c.copyGBs ?? 0, c.fmaTflops ?? 0);
      const tip = `copy ${fmtNum(c.copyGBs)} GB/s, FMA ${fmtNum(c.fmaTflops)} TFLOP/s\n` +
        `ridge at ${fmtNum(ridge)} FLOP/byte`;
      roofs.push({
        label: `roof${results.length > 1 ? ` · ${labels[file]}` : ""}`,
        color: GREY,
        line: true,
        dash: fileDash(file),
        marker: "circle",
        radius: 0,
        axis: "y",
        points: [lo, ridge, hi].map((x) => ({ x, y: roof(x), tip })),
      });
    });
  }
  return {
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
  };
}

/** Peak GPU memory against N, with the runs that did not fit marked. */
function footprintChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const groups = groupRuns(entries(results, (r) => r.sweep === "n" && isTimed(r)));
  const names = groupLabels(groups, labels);
  const vars = variants(groups);
  const series = groups.map((g, i): SeriesSpec => ({
    label: names[i] ?? g.kernel,
    ...style(g, vars[i] ?? 0),
    line: true,
    radius: 3,
    axis: "y",
    points: [...new Map(g.runs.map((r) => [r.n, r])).values()].sort((a, b) => a.n - b.n)
      .map((r) => ({ x: r.n, y: r.footprintBytes, tip: `n=${r.n}: ${fmtMem(r.footprintBytes)}` }))
      .filter(positive),
  })).filter((s) => s.points.length > 0);
  const misses = entries(results, (r) => r.sweep === "n" && isDoesNotFit(r));
  if (misses.length > 0) {
    series.push({
      label: "does not fit (skipped)",
      color: MISS,
      line: false,
      dash: [],
      marker: "crossRot",
      radius: 9,
      axis: "y",
      points: misses.map(({ file, run: r }) => ({
        x: r.n,
        y: r.footprintBytes,
        tip: `${r.kernel} n=${r.n} d=${r.d}${results.length > 1 ? ` · ${labels[file]}` : ""}\n` +
          `${fmtMem(r.footprintBytes)} needed\n${r.reason ?? ""}`,
      })).filter(positive),
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
        "y",
        file === 0 ? [8, 4] : [3, 3],
        MISS,
      ));
    });
  }
  return {
    id: "footprint",
    title: "GPU memory footprint vs sequence length",
    caption: "Peak bytes of the buffers each kernel allocates; red crosses are runs skipped " +
      "because they do not fit. The red dashed line is the largest storage buffer the device " +
      "binds: standard's N×N score matrix is one buffer and must fit under it.",
    notes: series.length === 0 ? [emptyNote('runs of the "n" sweep')] : [],
    x: N_AXIS,
    y: { title: "peak GPU memory", scale: "log", unit: "mem" },
    series,
  };
}

/** Block-size sweep: runtime (left) and modeled bytes (right) against the swept tile size. */
function blockSizeChart(results: ResultsFile[], labels: string[]): ChartSpec {
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
  const names = groupLabels(groups, labels);
  const vars = variants(groups);
  const series: SeriesSpec[] = [];
  groups.forEach((g, i) => {
    const x = (r: RunRecord) => (axisOf.get(r) === "bc" ? r.tile.bc : r.tile.br);
    const runs = bestPerX(g.runs as Timed[], x);
    const st = style(g, vars[i] ?? 0);
    const name = names[i] ?? g.kernel;
    series.push({
      label: `${name} time`,
      ...st,
      dash: [],
      line: true,
      radius: 4,
      axis: "y",
      points: runs.map((r) => ({ x: x(r), y: r.timeMs.median, tip: timeTip(r) })).filter(positive),
    });
    series.push({
      label: `${name} modeled bytes`,
      ...st,
      dash: [6, 4],
      marker: "rect",
      line: true,
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
    notes.push(
      `${names[i] ?? g.kernel}: the IO model's best tile (fewest bytes) is ${
        fmtTile(fewest.tile)
      }` +
        ` (${fmtBytes(fewest.hbmBytes.modeled)}, ${fewest.timeMs.median.toPrecision(3)} ms); ` +
        `measured best is ${fmtTile(fastest.tile)} (${fastest.timeMs.median.toPrecision(3)} ms).`,
    );
  });
  const xTitle = axes.size === 1 && axes.has("br")
    ? "tile Br (query rows per workgroup)"
    : axes.size === 1
    ? "tile Bc (key rows per block)"
    : "tile size (Br or Bc, see legend)";
  return {
    id: "block-size",
    title: "Block-size sweep",
    caption: "Solid lines (left axis): median time for each tile size; dashed lines (right " +
      "axis): the modeled HBM bytes. Bigger tiles re-read K and V fewer times but use more " +
      "registers and workgroup memory, so time usually has a sweet spot where bytes keep falling.",
    notes,
    x: { title: xTitle, scale: "log2", unit: "plain" },
    y: { title: "median time", scale: autoScale(kept.flatMap(yOf("y"))), unit: "ms" },
    y2: { title: "modeled HBM bytes", scale: "log", unit: "bytes" },
    series: kept,
  };
}

function yOf(axis: "y" | "y2"): (s: SeriesSpec) => number[] {
  return (s) => (s.axis === axis ? s.points.map((p) => p.y) : []);
}

/** Density sweep: block-sparse runtime against the kept fraction of blocks. */
function densityChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const all = entries(results, (r) => r.sweep === "density");
  const timed = all.filter((e) => isTimed(e.run));
  const groups = groupRuns(timed, { fixN: true });
  const names = groupLabels(groups, labels, { density: false });
  const vars = variants(groups);
  const series: SeriesSpec[] = groups.map((g, i): SeriesSpec => ({
    label: names[i] ?? g.kernel,
    ...style(g, vars[i] ?? 0),
    line: true,
    radius: 4,
    axis: "y",
    points: bestPerX(g.runs as Timed[], (r) => r.density)
      .map((r) => ({ x: r.density, y: r.timeMs.median, tip: timeTip(r) }))
      .filter(finite),
  })).filter((s) => s.points.length > 0);
  // Dense flash at the same shape as a reference: where sparsity stops paying.
  const refs: SeriesSpec[] = [];
  const done = new Set<string>();
  for (const g of groups) {
    const f = results[g.file];
    if (!f) continue;
    const flash = f.runs.filter((r): r is Timed =>
      r.kernel === "flash" && isTimed(r) && r.n === g.n && r.d === g.d && r.dtype === g.dtype &&
      r.batch === g.batch && r.heads === g.heads && r.causal === g.causal
    ).sort((a, b) =>
      a.timeMs.median - b.timeMs.median
    )[0];
    const key = `${g.file}/${flash?.n}/${flash?.d}`;
    if (!flash || done.has(key)) continue;
    done.add(key);
    const who = results.length > 1 ? ` · ${labels[g.file]}` : "";
    refs.push(hline(
      `flash, dense (n=${flash.n})${who}`,
      flash.timeMs.median,
      [0, 1],
      `dense flash: ${fmtMs(flash.timeMs.median)}`,
      "y",
      [6, 4],
      kernelColor("flash", 0),
    ));
  }
  const notes: string[] = [];
  if (all.length === 0) notes.push(emptyNote('runs of the "density" sweep'));
  else if (series.length === 0) notes.push('No run of the "density" sweep was timed.');
  return {
    id: "density",
    title: "Density sweep (block-sparse)",
    caption: "Median time against the fraction of key blocks each query block attends to. " +
      "Ideally a straight line through the origin; the dashed line is dense flash at the same " +
      "shape, so the crossing shows the density below which sparsity pays.",
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
  };
}

/**
 * Every chart of the report, in page order. Charts without data have no series and a note.
 *
 * @example
 * ```ts
 * import { buildCharts } from "./_charts.ts";
 * const charts = buildCharts([], []);
 * console.assert(charts.every((c) => c.series.length === 0 && c.notes.length > 0));
 * ```
 */
export function buildCharts(results: ResultsFile[], labels: string[]): ChartSpec[] {
  return [
    runtimeChart(results, labels),
    tflopsChart(results, labels),
    speedupChart(results, labels),
    bytesChart(results, labels),
    rooflineChart(results, labels),
    footprintChart(results, labels),
    blockSizeChart(results, labels),
    densityChart(results, labels),
  ];
}
