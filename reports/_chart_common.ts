/**
 * What every chart family shares: the chart specification (plain data that the page's client
 * script hands to Chart.js), grouping runs into one series per kernel configuration, labels,
 * legends and small helpers. One file per chart family builds on this (`_chart_*.ts`);
 * `_charts.ts` puts them in page order. Private to `reports/`.
 *
 * @module
 */

import type { ResultsFile, RunRecord } from "../core/schema.ts";
import { percentile } from "../analysis/stats.ts";
import { deviceName, fmtMs, fmtNum, fmtTile, isTimed } from "./_format.ts";
import { kernelColor, kernelOrder, kernelStyle } from "./_kernel_style.ts";

/** How an axis maps values: linear, base-10 log, or log with power-of-two ticks (sizes). */
export type ScaleKind = "linear" | "log" | "log2";
/** How tick labels are written. */
export type TickUnit = "plain" | "ms" | "bytes" | "mem" | "ratio" | "flops";

/** One axis. */
export interface AxisSpec {
  title: string;
  scale: ScaleKind;
  unit: TickUnit;
  min?: number;
  max?: number;
}

/** One point; `tip` is the tooltip text (lines separated by `\n`); `lo`/`hi` a whisker. */
export interface PointSpec {
  x: number;
  y: number;
  tip: string;
  lo?: number;
  hi?: number;
}

/** Chart.js point styles the report uses. */
export type Marker = "circle" | "triangle" | "rect" | "rectRot" | "star" | "crossRot" | "cross";

/** One line or set of points. */
export interface SeriesSpec {
  /** Full name, the tooltip's title. */
  label: string;
  /** The legend's colour entry this series belongs to (a kernel configuration, a reference). */
  group: string;
  /** The legend's style entry (e.g. "theoretical", "peer", a file's label); "" for none. */
  kind: string;
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
  /** Drawn thinner and translucent (peers). */
  light?: boolean;
  points: PointSpec[];
}

/** One legend entry; clicking it shows or hides the series listed. */
export interface LegendItem {
  label: string;
  color: string;
  line: boolean;
  dash: number[];
  marker: Marker;
  series: number[];
}

/** One chart. Charts without series are left out of the page; the notes say why. */
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
  /** A few entries: one per colour (configuration), one per line style. */
  legend: LegendItem[];
}

/** A chart before its legend is derived. */
export type ChartDraft = Omit<ChartSpec, "legend">;

/** A run with a usable timing. */
export type Timed = RunRecord & { timeMs: NonNullable<RunRecord["timeMs"]> };

/** Colour of reference lines (roofs, limits, baselines). */
export const GREY = "hsl(210, 10%, 45%)";
/** Colour of runs that did not fit. */
export const MISS = "hsl(0, 80%, 42%)";
const FILE_DASH: number[][] = [[], [7, 4], [2, 3], [10, 3, 2, 3]];
const FILE_MARKER: Marker[] = ["circle", "triangle", "rect", "rectRot", "star"];

/** The dash of the `file`-th results file where files are told apart. */
export function fileDash(file: number): number[] {
  return FILE_DASH[file % FILE_DASH.length] ?? [];
}

/** The marker of the `file`-th results file where files are told apart. */
export function fileMarker(file: number): Marker {
  return FILE_MARKER[file % FILE_MARKER.length] ?? "circle";
}

/** A fraction as a percentage with 2 significant digits. */
export function pct(x: number): string {
  return `${fmtNum(x * 100, 2)}%`;
}

/** A file and one of its runs. */
export interface Entry {
  file: number;
  run: RunRecord;
}

/**
 * The runs of one line: same file and kernel configuration (kernel, dtype, d, causal, mask and
 * density), across the x value. Batch and heads are not part of it: the default sweep keeps
 * B·N constant, so batch changes with N; they show in the tooltips.
 */
export interface Group {
  file: number;
  kernel: string;
  /** What the runs compute (`--pass`); "fwd" for runs that do not say. */
  pass: string;
  dtype: string;
  d: number;
  causal: boolean;
  /** Mask generator of masked (block-sparse) runs; null for dense kernels. */
  mask: string | null;
  /** Target density of masked runs (rounded: the mask's real density varies a little with N). */
  density: number | null;
  /** Fixed N of a sweep over something else; null when N is the x axis. */
  n: number | null;
  /** Extra distinguishing text (e.g. the tile dimension that is held fixed). */
  sub: string;
  runs: RunRecord[];
}

/** Options of {@linkcode groupRuns}. */
export interface GroupOptions {
  /** Keep N in the key (sweeps over block size or density). */
  fixN?: boolean;
  /** Leave density out of the key (the density sweep has it on the x axis). */
  anyDensity?: boolean;
  sub?: (r: RunRecord) => string;
}

/** A mask's density as the key and label use it: 2 significant digits. */
function roundDensity(d: number): number {
  return Number(d.toPrecision(2));
}

/** The configuration part of a group's key: the pass (`--pass`) is part of it. */
function configOf(g: Omit<Group, "runs">): unknown[] {
  return [g.kernel, g.pass, g.dtype, g.d, g.causal, g.mask, g.density];
}

/** Groups runs into lines; sorted by file, kernel, then configuration. */
export function groupRuns(entries: Entry[], opts: GroupOptions = {}): Group[] {
  const map = new Map<string, Group>();
  for (const { file, run: r } of entries) {
    const masked = r.mask !== null && r.mask !== undefined;
    const head = {
      file,
      kernel: r.kernel,
      pass: r.pass ?? "fwd",
      dtype: r.dtype,
      d: r.d,
      causal: r.causal,
      mask: masked ? r.mask : null,
      density: masked && !opts.anyDensity ? roundDensity(r.density) : null,
      n: opts.fixN ? r.n : null,
      sub: opts.sub ? opts.sub(r) : "",
    };
    const key = JSON.stringify([file, ...configOf(head), head.n, head.sub]);
    const g = map.get(key);
    if (g) g.runs.push(r);
    else map.set(key, { ...head, runs: [r] });
  }
  return [...map.values()].sort((a, b) =>
    a.file - b.file || kernelOrder(a.kernel) - kernelOrder(b.kernel) ||
    a.dtype.localeCompare(b.dtype) || a.d - b.d || Number(a.causal) - Number(b.causal) ||
    (b.density ?? 0) - (a.density ?? 0) || (a.n ?? 0) - (b.n ?? 0) || a.sub.localeCompare(b.sub)
  );
}

function configKey(g: Group): string {
  return JSON.stringify([...configOf(g), g.n, g.sub]);
}

/** Names of the groups: the kernel plus only the configuration parts that differ. */
export function groupNames(groups: Group[]): string[] {
  const dims: [(g: Group) => string, (g: Group) => string][] = [
    [(g) => g.dtype, (g) => g.dtype],
    [(g) => `${g.d}`, (g) => `d=${g.d}`],
    [(g) => `${g.causal}`, (g) => (g.causal ? "causal" : "full")],
    [(g) => `${g.n}`, (g) => `N=${g.n}`],
  ];
  const varying = dims.filter(([key]) => new Set(groups.map(key)).size > 1);
  return groups.map((g) => {
    const parts = varying.map(([, show]) => show(g));
    if (g.mask !== null) {
      parts.unshift(g.density === null ? g.mask : `${g.mask} ${pct(g.density)}`);
    }
    if (g.sub !== "") parts.push(g.sub);
    const name = kernelStyle(g.kernel).label;
    return name + (parts.length > 0 ? ` (${parts.join(", ")})` : "");
  });
}

/** How the series of each group look, and which legend entries they fall under. */
export interface GroupLook {
  name: string;
  /** Legend style entry: the file's label when the same configuration is in several files. */
  kind: string;
  color: string;
  dash: number[];
  marker: Marker;
}

/**
 * One look per group: colour from the kernel (lighter or darker per configuration), and, only
 * where one configuration comes from several results files, a dash and marker per file.
 */
export function groupLooks(groups: Group[], labels: string[]): GroupLook[] {
  const names = groupNames(groups);
  const filesOf = new Map<string, Set<number>>();
  for (const g of groups) {
    const s = filesOf.get(configKey(g)) ?? new Set<number>();
    s.add(g.file);
    filesOf.set(configKey(g), s);
  }
  const variantsOf = new Map<string, string[]>();
  return groups.map((g, i) => {
    const list = variantsOf.get(g.kernel) ?? [];
    variantsOf.set(g.kernel, list);
    const key = configKey(g);
    let v = list.indexOf(key);
    if (v < 0) v = list.push(key) - 1;
    const shared = (filesOf.get(key)?.size ?? 1) > 1;
    return {
      name: names[i] ?? g.kernel,
      kind: shared ? labels[g.file] ?? `file ${g.file + 1}` : "",
      color: kernelColor(g.kernel, v),
      dash: shared ? fileDash(g.file) : [],
      marker: shared ? fileMarker(g.file) : "circle",
    };
  });
}

/** A series' full label: its name and, if any, its style entry. */
export function fullLabel(name: string, kind: string): string {
  return kind === "" ? name : `${name} · ${kind}`;
}

/** Keeps the fastest run per x value and sorts by x. */
export function bestPerX(runs: Timed[], x: (r: Timed) => number): Timed[] {
  const best = new Map<number, Timed>();
  for (const r of runs) {
    const k = x(r);
    const cur = best.get(k);
    if (!cur || r.timeMs.median < cur.timeMs.median) best.set(k, r);
  }
  return [...best.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
}

/** Both coordinates finite. */
export function finite(p: PointSpec): boolean {
  return Number.isFinite(p.x) && Number.isFinite(p.y);
}

/** Both coordinates finite and positive (log axes). */
export function positive(p: PointSpec): boolean {
  return finite(p) && p.x > 0 && p.y > 0;
}

/**
 * The spread drawn as a whisker: p10–p90 of the samples with 10 or more, else min–max.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { spread } from "./_chart_common.ts";
 * const s = spread({ min: 1, max: 3, samples: [1, 2, 3] });
 * assert(s.lo === 1 && s.hi === 3 && s.what === "min–max");
 * ```
 */
export function spread(
  t: { min: number; max: number; samples?: number[] },
): { lo: number; hi: number; what: string } {
  const s = (t.samples ?? []).filter(Number.isFinite);
  if (s.length >= 10) {
    return { lo: percentile(s, 0.1), hi: percentile(s, 0.9), what: "p10–p90" };
  }
  return { lo: t.min, hi: t.max, what: "min–max" };
}

/** The shape line of a tooltip: N, batch × heads, d, dtype, causal, mask. */
export function shapeTip(r: RunRecord): string {
  const mask = r.mask ? ` ${r.mask} ${pct(r.density)}` : "";
  return `N=${r.n}  b×h=${r.batch}×${r.heads}  d=${r.d} ${r.dtype}${
    r.causal ? " causal" : ""
  }${mask}`;
}

/** Tooltip of a timed run: shape, median ± stdev, the spread, the tile. */
export function timeTip(r: Timed): string {
  const t = r.timeMs;
  const s = spread(t);
  return [
    shapeTip(r),
    `median ${fmtMs(t.median)} ± ${fmtMs(t.stdev)} (${t.samples.length} samples)`,
    `${s.what} ${fmtMs(s.lo)} … ${fmtMs(s.hi)}`,
    `tile ${fmtTile(r.tile)}`,
  ].join("\n");
}

/** `log` when positive values span more than `ratio`, else `linear`. */
export function autoScale(values: number[], ratio = 30): ScaleKind {
  const pos = values.filter((v) => Number.isFinite(v) && v > 0);
  if (pos.length === 0) return "linear";
  return Math.max(...pos) / Math.min(...pos) > ratio ? "log" : "linear";
}

/** The x range of the series' points, or null when there are none. */
export function xRange(series: SeriesSpec[]): [number, number] | null {
  const xs = series.flatMap((s) => s.points.map((p) => p.x)).filter(Number.isFinite);
  return xs.length === 0 ? null : [Math.min(...xs), Math.max(...xs)];
}

/** A reference line (grey, dashed, no markers): its own legend entry. */
export function refLine(
  label: string,
  points: PointSpec[],
  opts: { axis?: "y" | "y2"; dash?: number[]; color?: string } = {},
): SeriesSpec {
  return {
    label,
    group: label,
    kind: "",
    color: opts.color ?? GREY,
    line: true,
    dash: opts.dash ?? [5, 5],
    marker: "circle",
    radius: 0,
    axis: opts.axis ?? "y",
    points,
  };
}

/** A horizontal reference line across `x`. */
export function hline(
  label: string,
  y: number,
  x: [number, number],
  tip: string,
  opts: { axis?: "y" | "y2"; dash?: number[]; color?: string } = {},
): SeriesSpec {
  return refLine(label, [{ x: x[0], y, tip }, { x: x[1], y, tip }], opts);
}

/** Every (file, run) the predicate keeps. */
export function entries(results: ResultsFile[], keep: (r: RunRecord) => boolean): Entry[] {
  return results.flatMap((f, file) => f.runs.filter(keep).map((run) => ({ file, run })));
}

/** Timed runs of one sweep. */
export function timedEntries(results: ResultsFile[], sweep: RunRecord["sweep"]): Entry[] {
  return entries(results, (r) => r.sweep === sweep && isTimed(r));
}

/** The sequence-length axis. */
export const N_AXIS: AxisSpec = { title: "sequence length N", scale: "log2", unit: "plain" };

/** "No … in these results." */
export function emptyNote(what: string): string {
  return `No ${what} in these results.`;
}

/** The y values of the series on one axis. */
export function yOf(axis: "y" | "y2"): (s: SeriesSpec) => number[] {
  return (s) => (s.axis === axis ? s.points.map((p) => p.y) : []);
}

/**
 * The legend: one entry per colour group (a configuration or a reference line), then one per
 * line style (kind), in first-seen order. A group with one series shows that series' own style;
 * a group of several shows a plain line in its colour, and the style entries (grey) tell its
 * series apart.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { legendOf } from "./_chart_common.ts";
 * assert(legendOf([]).length === 0);
 * ```
 */
export function legendOf(series: SeriesSpec[]): LegendItem[] {
  const groups = new Map<string, number[]>();
  const kinds = new Map<string, number[]>();
  series.forEach((s, i) => {
    groups.set(s.group, [...(groups.get(s.group) ?? []), i]);
    if (s.kind !== "") kinds.set(s.kind, [...(kinds.get(s.kind) ?? []), i]);
  });
  const items: LegendItem[] = [];
  for (const [label, idx] of groups) {
    const first = series[idx[0] ?? 0];
    if (!first) continue;
    const alone = idx.length === 1;
    items.push({
      label,
      color: first.color,
      line: alone ? first.line : true,
      dash: alone ? first.dash : [],
      marker: alone ? first.marker : "circle",
      series: idx,
    });
  }
  for (const [label, idx] of kinds) {
    const first = series[idx[0] ?? 0];
    if (!first) continue;
    items.push({
      label,
      color: GREY,
      line: first.line,
      dash: first.dash,
      marker: first.marker,
      series: idx,
    });
  }
  return items;
}

/** Adds the legend to a finished chart. */
export function withLegend(c: ChartDraft): ChartSpec {
  return { ...c, legend: legendOf(c.series) };
}

/**
 * One results file per device (the first), for lines that belong to the device rather than to
 * a run (roofs, ceilings): files from one GPU share them. `who` names the device, or is empty
 * when all files come from one.
 */
export function perDevice(results: ResultsFile[]): { file: number; who: string }[] {
  const seen = new Map<string, number>();
  results.forEach((f, i) => {
    const name = deviceName(f.device);
    const first = seen.get(name);
    const c = f.ceilings;
    const usable = c && c.copyGBs !== null && c.fmaTflops !== null;
    // Keep the first file of the device that has measured ceilings.
    if (first === undefined || (usable && !results[first]?.ceilings?.copyGBs)) seen.set(name, i);
  });
  const multi = seen.size > 1;
  return [...seen.entries()].map(([name, file]) => ({ file, who: multi ? name : "" }));
}

/** How {@linkcode seriesPerGroup} draws its lines (defaults: a line, radius 3, left axis). */
export interface LineOptions {
  line?: boolean;
  radius?: number;
  axis?: "y" | "y2";
  /** Solid regardless of the file (when the dash means something else in the chart). */
  solid?: boolean;
}

/**
 * One series per group, in the group's look, with the points `points` gives; groups without
 * points are left out.
 */
export function seriesPerGroup(
  groups: Group[],
  labels: string[],
  points: (g: Group) => PointSpec[],
  opts: LineOptions = {},
): SeriesSpec[] {
  const looks = groupLooks(groups, labels);
  return groups.map((g, i): SeriesSpec => {
    const look = looks[i]!;
    return {
      label: fullLabel(look.name, look.kind),
      group: look.name,
      kind: look.kind,
      color: look.color,
      dash: opts.solid ? [] : look.dash,
      marker: look.marker,
      line: opts.line ?? true,
      radius: opts.radius ?? 3,
      axis: opts.axis ?? "y",
      points: points(g),
    };
  }).filter((s) => s.points.length > 0);
}

/** A timed run's point at `x`: its median, tooltip and whisker. */
export function timePoint(x: number, r: Timed): PointSpec {
  const s = spread(r.timeMs);
  return { x, y: r.timeMs.median, tip: timeTip(r), lo: s.lo, hi: s.hi };
}
