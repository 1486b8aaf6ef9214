/**
 * Compares a current results file against a baseline, run by run: what `check` judges and
 * prints. Pure: files in, a {@linkcode CompareReport} out; the renderers turn it into a text
 * table or Markdown, and JSON is the report itself.
 *
 * Runs are matched by {@linkcode runKey}. Each matched run is judged on three axes:
 * - timing, by {@linkcode compareSamples}: "regressed" or "improved" only when the median
 *   moved by more than the threshold and the bootstrap interval of the ratio of medians
 *   excludes 1; "too few samples" under the minimum count; "device mismatch" when the two
 *   files ran on different adapters and the caller did not allow it.
 * - bytes: any change of `hbmBytes.modeled`, `hbmBytes.counted` (when both are recorded) or
 *   `footprintBytes`, exactly; an increase fails, a decrease is an improvement.
 * - correctness: the current `maxRelError` above the dtype's tolerance fails.
 *
 * A run ok in the baseline but skipped, failed or missing in the current file fails; so does a
 * gated number (`maxRelError`, the byte counts) that the baseline has and the current run lacks
 * or holds as a non-number. Runs new in the current file are listed.
 *
 * @module
 */

import type { Dtype } from "../core/shapes.ts";
import { TOLERANCES } from "../core/tolerances.ts";
import { fmtMs, formatTable } from "./table.ts";
import {
  type DeviceRecord,
  type ResultsFile,
  runKey,
  type RunRecord,
  type RunStatus,
} from "../core/schema.ts";
import {
  type BootstrapOptions,
  compareSamples,
  median,
  MIN_SAMPLES,
  type RatioInterval,
  type TimingVerdict,
} from "./stats.ts";

/** How bad a finding is; a report regresses when any row is "fail". */
export type Severity = "fail" | "warn" | "info" | "ok";

/** Severities from worst to best: the order rows are sorted in. */
export const SEVERITIES: readonly Severity[] = ["fail", "warn", "info", "ok"];

/** Largest acceptable `maxRelError` per dtype, unless the caller gives its own: the kernels'. */
export const DEFAULT_TOLERANCES: Readonly<Record<Dtype, number>> = TOLERANCES;

/**
 * The default tolerance of a dtype: 1e-4 for f32, 1e-2 for f16 (the strictest, f32's, for a
 * dtype it does not know).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { defaultTolerance } from "./compare.ts";
 * assert(defaultTolerance("f16") === 1e-2);
 * ```
 */
export function defaultTolerance(dtype: Dtype): number {
  return DEFAULT_TOLERANCES[dtype] ?? DEFAULT_TOLERANCES.f32;
}

/** Settings of {@linkcode compareResults}. */
export interface CompareOptions extends BootstrapOptions {
  /** Timing changes of at most this many percent never fail. */
  thresholdPct: number;
  /** Judge timings even when the two files ran on different adapters. */
  allowDeviceMismatch: boolean;
  /** Give no timing verdicts at all (for noisy clocks, e.g. a software adapter in CI). */
  noTiming?: boolean;
  /** Largest acceptable `maxRelError` of a dtype. Default {@linkcode defaultTolerance}. */
  tolerance?: (dtype: Dtype) => number;
  /** Minimum usable timing samples per side. Default 5. */
  minSamples?: number;
}

/** What a finding is about. */
export type FindingKind = "status" | "timing" | "bytes" | "correctness" | "clock";

/** One thing `check` noticed about a run. */
export interface Finding {
  kind: FindingKind;
  severity: Severity;
  /** A short verdict: "regressed", "missing", "bytes increased", … */
  label: string;
  /** One line for people. */
  detail: string;
}

/** The timing side of a run's comparison. */
export interface TimingComparison {
  verdict: TimingVerdict | "device mismatch" | "not judged";
  baselineMedianMs: number | null;
  currentMedianMs: number | null;
  /** Change of the median in percent (positive is slower); null with too few samples. */
  changePct: number | null;
  /** Ratio of medians current / baseline with its bootstrap interval. */
  interval: RatioInterval | null;
}

/** A byte count that changed, reported exactly. */
export interface BytesChange {
  field: "hbmBytes.modeled" | "hbmBytes.counted" | "footprintBytes";
  baseline: number;
  current: number;
  /** current − baseline. */
  delta: number;
}

/** The current run's error against its dtype's tolerance. */
export interface CorrectnessCheck {
  maxRelError: number;
  tolerance: number;
  pass: boolean;
}

/** Everything `check` says about one run key. */
export interface RunComparison {
  key: string;
  /** Status in the baseline; null when the run is not there. */
  baselineStatus: RunStatus | null;
  /** Status in the current file; null when the run is not there. */
  currentStatus: RunStatus | null;
  /** The worst severity among the findings. */
  severity: Severity;
  /** The label of the worst finding. */
  verdict: string;
  timing: TimingComparison | null;
  bytes: BytesChange[];
  correctness: CorrectnessCheck | null;
  /** Every finding, worst first. */
  findings: Finding[];
}

/** Where a results file came from, for the report's header. */
export interface FileSummary {
  createdAt: string;
  gitCommit: string | null;
  device: string;
  runs: number;
}

/** The outcome of {@linkcode compareResults}; serializes as `check --json`. */
export interface CompareReport {
  thresholdPct: number;
  /** Confidence level of the timing intervals. */
  confidence: number;
  baseline: FileSummary;
  current: FileSummary;
  /** Whether the adapters differ (vendor, architecture or description). */
  deviceMismatch: boolean;
  /** Whether timing verdicts were given (false on a device mismatch unless allowed). */
  timingCompared: boolean;
  /** True when any row failed. */
  regressed: boolean;
  /** Rows per severity. */
  counts: Record<Severity, number>;
  /** File-level problems: device mismatch, schema or tool difference, duplicate keys. */
  warnings: string[];
  /** One row per run key, worst first. */
  rows: RunComparison[];
}

const RANK: Record<Severity, number> = { fail: 3, warn: 2, info: 1, ok: 0 };

function worstFirst(a: Finding, b: Finding): number {
  return RANK[b.severity] - RANK[a.severity];
}

/**
 * A one-line description of an adapter.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { describeDevice } from "./compare.ts";
 * const d = { vendor: "nvidia", architecture: "hopper", description: "H100" };
 * assert(describeDevice(d) === "nvidia hopper (H100)");
 * ```
 */
export function describeDevice(
  d: Pick<DeviceRecord, "vendor" | "architecture" | "description">,
): string {
  const name = [d.vendor, d.architecture].filter((s) => s).join(" ") || "unknown adapter";
  return d.description ? `${name} (${d.description})` : name;
}

function sameDevice(a: DeviceRecord, b: DeviceRecord): boolean {
  return a.vendor === b.vendor && a.architecture === b.architecture &&
    a.description === b.description;
}

function summarizeFile(f: ResultsFile): FileSummary {
  return {
    createdAt: String(f.createdAt),
    gitCommit: f.gitCommit ?? null,
    device: describeDevice(f.device),
    runs: f.runs.length,
  };
}

/** Runs by key, first occurrence wins; duplicate keys are reported in `warnings`. */
function indexRuns(f: ResultsFile, name: string, warnings: string[]): Map<string, RunRecord> {
  const byKey = new Map<string, RunRecord>();
  for (const r of f.runs) {
    const key = runKey(r);
    if (byKey.has(key)) warnings.push(`${name} has more than one run ${key}; compared the first`);
    else byKey.set(key, r);
  }
  return byKey;
}

function fileWarnings(baseline: ResultsFile, current: ResultsFile, opts: CompareOptions) {
  const warnings: string[] = [];
  if (baseline.schema !== current.schema) {
    warnings.push(
      `SCHEMA MISMATCH: baseline is ${baseline.schema}, current is ${current.schema}; ` +
        `fields may not mean the same`,
    );
  }
  const [bv, cv] = [baseline.tool?.version, current.tool?.version];
  if (bv !== cv) {
    warnings.push(`tool version differs: baseline ${bv}, current ${cv}; models may have changed`);
  }
  const deviceMismatch = !sameDevice(baseline.device, current.device);
  if (deviceMismatch) {
    const both = `baseline ran on ${describeDevice(baseline.device)}, current on ` +
      describeDevice(current.device);
    warnings.push(
      opts.allowDeviceMismatch
        ? `DEVICE MISMATCH: ${both}; timings compared anyway, as allowed`
        : `DEVICE MISMATCH: ${both}; timing verdicts disabled (allow the mismatch to judge them)`,
    );
  }
  return { warnings, deviceMismatch };
}

function timeSamples(r: RunRecord): number[] {
  return Array.isArray(r.timeMs?.samples) ? r.timeMs.samples : [];
}

function signedPct(pct: number): string {
  return `${pct >= 0 ? "+" : ""}${pct.toFixed(1)}%`;
}

/**
 * A ratio interval as percent changes, e.g. "[+18.1%, +21.9%]".
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { formatInterval } from "./compare.ts";
 * assert(formatInterval({ ratio: 1.2, low: 1.181, high: 1.219, confidence: 0.95 }) ===
 *   "[+18.1%, +21.9%]");
 * ```
 */
export function formatInterval(i: RatioInterval): string {
  return `[${signedPct((i.low - 1) * 100)}, ${signedPct((i.high - 1) * 100)}]`;
}

const TIMING_SEVERITY: Record<TimingComparison["verdict"], Severity> = {
  "regressed": "fail",
  "too few samples": "warn",
  "device mismatch": "warn",
  "not judged": "ok",
  "improved": "info",
  "within noise": "ok",
};

function compareTiming(
  b: RunRecord,
  c: RunRecord,
  judge: boolean,
  opts: CompareOptions,
): { timing: TimingComparison; finding: Finding } {
  const [bs, cs] = [timeSamples(b), timeSamples(c)];
  const s = compareSamples(bs, cs, opts);
  const timing: TimingComparison = {
    verdict: opts.noTiming ? "not judged" : judge ? s.verdict : "device mismatch",
    baselineMedianMs: bs.length > 0 ? median(bs) : null,
    currentMedianMs: cs.length > 0 ? median(cs) : null,
    changePct: s.changePct,
    interval: s.interval,
  };
  const moved = s.changePct === null || s.interval === null
    ? ""
    : `${signedPct(s.changePct)} ${formatInterval(s.interval)}`;
  const detail = timing.verdict === "too few samples"
    ? `too few samples: ${s.baselineCount} baseline, ${s.currentCount} current ` +
      `(need ${opts.minSamples ?? MIN_SAMPLES} each)`
    : timing.verdict === "device mismatch"
    ? `time ${moved || "not compared"}, not judged across devices`
    : timing.verdict === "not judged"
    ? `time ${moved || "not compared"}, not judged (--no-timing)`
    : `time ${timing.verdict}: ${moved}`;
  return {
    timing,
    finding: {
      kind: "timing",
      severity: TIMING_SEVERITY[timing.verdict],
      label: timing.verdict,
      detail,
    },
  };
}

function compareBytes(b: RunRecord, c: RunRecord): BytesChange[] {
  const pairs: [BytesChange["field"], unknown, unknown][] = [
    ["hbmBytes.modeled", b.hbmBytes?.modeled, c.hbmBytes?.modeled],
    ["hbmBytes.counted", b.hbmBytes?.counted, c.hbmBytes?.counted],
    ["footprintBytes", b.footprintBytes, c.footprintBytes],
  ];
  return pairs.flatMap(([field, old, now]) =>
    typeof old === "number" && typeof now === "number" && old !== now
      ? [{ field, baseline: old, current: now, delta: now - old }]
      : []
  );
}

function bytesFinding(change: BytesChange): Finding {
  const up = change.delta > 0;
  return {
    kind: "bytes",
    severity: up ? "fail" : "info",
    label: up ? "bytes increased" : "bytes decreased",
    detail: `${change.field} ${change.baseline} → ${change.current} ` +
      `(${up ? "+" : ""}${change.delta})`,
  };
}

/**
 * A gated number the baseline had and the current run lacks (not a finite number: null, a
 * string, missing) fails: a check that silently stops being made is a regression.
 */
function lostChecks(b: RunRecord, c: RunRecord): Finding[] {
  const gated: [string, unknown, unknown][] = [
    ["maxRelError", b.maxRelError, c.maxRelError],
    ["hbmBytes.modeled", b.hbmBytes?.modeled, c.hbmBytes?.modeled],
    ["hbmBytes.counted", b.hbmBytes?.counted, c.hbmBytes?.counted],
    ["footprintBytes", b.footprintBytes, c.footprintBytes],
  ];
  return gated.flatMap(([field, old, now]) =>
    typeof old === "number" && Number.isFinite(old) &&
      !(typeof now === "number" && Number.isFinite(now))
      ? [{
        kind: (field === "maxRelError" ? "correctness" : "bytes") as FindingKind,
        severity: "fail" as const,
        label: `${field} missing`,
        detail: `baseline has ${field} ${old}, current has ${JSON.stringify(now) ?? "none"}`,
      }]
      : []
  );
}

function checkCorrectness(c: RunRecord, opts: CompareOptions): CorrectnessCheck | null {
  if (c.status !== "ok" || typeof c.maxRelError !== "number") return null;
  // A NaN or infinite error never passes (a comparison with NaN is false either way).
  const tolerance = (opts.tolerance ?? defaultTolerance)(c.dtype);
  return {
    maxRelError: c.maxRelError,
    tolerance,
    pass: Number.isFinite(c.maxRelError) && c.maxRelError <= tolerance,
  };
}

function statusFinding(b: RunRecord | undefined, c: RunRecord | undefined): Finding | null {
  const where = (r: RunRecord | undefined, file: string) =>
    r ? `${r.status} in ${file}${r.reason ? ` (${r.reason})` : ""}` : `missing from ${file}`;
  const detail = `${where(b, "baseline")}, ${where(c, "current")}`;
  const finding = (severity: Severity, label: string): Finding => ({
    kind: "status",
    severity,
    label,
    detail,
  });
  if (!b) return finding("info", "new");
  if (b.status === "ok") {
    if (!c) return finding("fail", "missing");
    return c.status === "ok" ? null : finding("fail", `now ${c.status}`);
  }
  if (c?.status === "ok") return finding("info", "now ok");
  return finding("info", c ? "still not ok" : "gone");
}

function compareRun(
  key: string,
  b: RunRecord | undefined,
  c: RunRecord | undefined,
  judgeTiming: boolean,
  opts: CompareOptions,
): RunComparison {
  const findings: Finding[] = [];
  const status = statusFinding(b, c);
  if (status) findings.push(status);
  let timing: TimingComparison | null = null;
  let bytes: BytesChange[] = [];
  if (b?.status === "ok" && c?.status === "ok") {
    const t = compareTiming(b, c, judgeTiming, opts);
    timing = t.timing;
    findings.push(t.finding);
    bytes = compareBytes(b, c);
    findings.push(...bytes.map(bytesFinding));
    findings.push(...lostChecks(b, c));
    if (b.clock && c.clock && b.clock !== c.clock) {
      findings.push({
        kind: "clock",
        severity: "warn",
        label: "clock changed",
        detail: `timed by ${b.clock} in baseline, ${c.clock} in current`,
      });
    }
  }
  const correctness = c ? checkCorrectness(c, opts) : null;
  if (correctness && !correctness.pass) {
    findings.push({
      kind: "correctness",
      severity: "fail",
      label: "error over tolerance",
      detail: `maxRelError ${correctness.maxRelError} > ${c?.dtype} tolerance ` +
        `${correctness.tolerance}`,
    });
  }
  findings.sort(worstFirst);
  const worst = findings[0];
  return {
    key,
    baselineStatus: b?.status ?? null,
    currentStatus: c?.status ?? null,
    severity: worst?.severity ?? "ok",
    verdict: worst?.label ?? "unchanged",
    timing,
    bytes,
    correctness,
    findings,
  };
}

/** Worst first: by severity, then by timing change (slowest first), then by key. */
function compareRows(a: RunComparison, b: RunComparison): number {
  const bySeverity = RANK[b.severity] - RANK[a.severity];
  if (bySeverity !== 0) return bySeverity;
  const change = (r: RunComparison) => r.timing?.changePct ?? -Infinity;
  const byChange = change(b) - change(a);
  if (byChange !== 0 && !Number.isNaN(byChange)) return byChange;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * Compares `current` against `baseline` run by run (see the module doc for the rules).
 *
 * @example
 * ```ts ignore
 * import { compareResults } from "./compare.ts";
 * import { readResults } from "./results_io.ts";
 * const report = compareResults(await readResults("base.json"), await readResults("new.json"), {
 *   thresholdPct: 5,
 *   allowDeviceMismatch: false,
 * });
 * if (report.regressed) console.log(report.rows[0]?.verdict);
 * ```
 */
export function compareResults(
  baseline: ResultsFile,
  current: ResultsFile,
  opts: CompareOptions,
): CompareReport {
  const { warnings, deviceMismatch } = fileWarnings(baseline, current, opts);
  const timingCompared = !opts.noTiming && (!deviceMismatch || opts.allowDeviceMismatch);
  const base = indexRuns(baseline, "baseline", warnings);
  const cur = indexRuns(current, "current", warnings);
  const keys = [...base.keys(), ...[...cur.keys()].filter((k) => !base.has(k))];
  const rows = keys
    .map((k) => compareRun(k, base.get(k), cur.get(k), timingCompared, opts))
    .sort(compareRows);
  const counts: Record<Severity, number> = { fail: 0, warn: 0, info: 0, ok: 0 };
  for (const r of rows) counts[r.severity]++;
  return {
    thresholdPct: opts.thresholdPct,
    confidence: opts.confidence ?? 0.95,
    baseline: summarizeFile(baseline),
    current: summarizeFile(current),
    deviceMismatch,
    timingCompared,
    regressed: counts.fail > 0,
    counts,
    warnings,
    rows,
  };
}

const HEADER = ["SEVERITY", "RUN", "TIMING", "BASELINE", "CURRENT", "CHANGE", "CI", "NOTES"];

/** The cells of a row, shared by the text and Markdown renderers. */
function rowCells(r: RunComparison): string[] {
  const t = r.timing;
  const notes = r.findings.filter((f) => f.kind !== "timing").map((f) => `${f.label}: ${f.detail}`);
  if (t && ["too few samples", "device mismatch", "not judged"].includes(t.verdict)) {
    notes.unshift(r.findings.find((f) => f.kind === "timing")?.detail ?? "");
  }
  return [
    r.severity,
    r.key,
    t?.verdict ?? "-",
    fmtMs(t?.baselineMedianMs ?? null),
    fmtMs(t?.currentMedianMs ?? null),
    t?.changePct == null ? "-" : signedPct(t.changePct),
    t?.interval ? formatInterval(t.interval) : "-",
    notes.join("; "),
  ];
}

/**
 * The one-line outcome of a report.
 *
 * @example
 * ```ts ignore
 * import { summaryLine } from "./compare.ts";
 * // "REGRESSED: 2 fail, 0 warn, 1 info, 9 ok (threshold 5%, 95% interval of the ratio of medians)"
 * console.log(summaryLine(report));
 * ```
 */
export function summaryLine(report: CompareReport): string {
  const counts = SEVERITIES.map((s) => `${report.counts[s]} ${s}`).join(", ");
  return `${report.regressed ? "REGRESSED" : "no regression"}: ${counts} ` +
    `(threshold ${report.thresholdPct}%, ${
      Math.round(report.confidence * 100)
    }% bootstrap interval of ` +
    `the ratio of medians)`;
}

/**
 * The report as a plain-text table, worst run first, then the summary line. Warnings are not
 * included: print `report.warnings` where diagnostics go.
 *
 * @example
 * ```ts ignore
 * import { compareResults, renderTable } from "./compare.ts";
 * for (const line of renderTable(compareResults(base, cur, opts))) console.log(line);
 * ```
 */
export function renderTable(report: CompareReport): string[] {
  return [...formatTable(HEADER, report.rows.map(rowCells), "left"), "", summaryLine(report)];
}

function mdCell(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("|", "\\|").replaceAll("\n", " ");
}

/**
 * The report as Markdown (for CI logs and GitHub's step summary): outcome, files, warnings
 * and the table, worst run first.
 *
 * @example
 * ```ts ignore
 * import { compareResults, renderMarkdown } from "./compare.ts";
 * await Deno.writeTextFile("summary.md", renderMarkdown(compareResults(base, cur, opts)));
 * ```
 */
export function renderMarkdown(report: CompareReport): string {
  const file = (name: string, f: FileSummary) =>
    `- ${name}: ${mdCell(f.device)}, ${f.runs} runs, ${mdCell(f.createdAt)}` +
    (f.gitCommit ? `, commit \`${mdCell(f.gitCommit)}\`` : "");
  const table = [HEADER, HEADER.map(() => "---"), ...report.rows.map(rowCells)]
    .map((row) => `| ${row.map(mdCell).join(" | ")} |`);
  return [
    `## attnbench check: ${report.regressed ? "regression" : "no regression"}`,
    "",
    `**${mdCell(summaryLine(report))}**`,
    "",
    file("baseline", report.baseline),
    file("current", report.current),
    "",
    ...report.warnings.flatMap((w) => [`> **Warning:** ${mdCell(w)}`, ""]),
    ...table,
    "",
  ].join("\n");
}
