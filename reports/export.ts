/**
 * Exporters of results files: CSV (one row per run), Markdown (tables for a pull request or a
 * job summary) and github-action-benchmark's `customSmallerIsBetter` JSON.
 *
 * @module
 */

import type { ResultsFile, RunRecord } from "../core/schema.ts";
import { isSparseKernel } from "../kernels/registry.ts";
import { deviceName, fileLabels, fmtBytes, fmtDate, fmtMs, fmtNum, fmtTile } from "./_format.ts";

/** One entry of github-action-benchmark's `customSmallerIsBetter` format. */
export interface BenchmarkEntry {
  /** Stable across runs of the same configuration: the series the action tracks. */
  name: string;
  unit: "ms";
  /** The median time in ms. */
  value: number;
  /** The spread, as `± stdev`. */
  range: string;
  /** Throughput, bytes and clock, one per line (shown in the action's tooltip). */
  extra: string;
}

const CSV_COLUMNS = [
  "file",
  "device",
  "created_at",
  "kernel",
  "dtype",
  "batch",
  "heads",
  "n",
  "d",
  "causal",
  "density",
  "mask",
  "sweep",
  "br",
  "bc",
  "rm",
  "tx",
  "status",
  "reason",
  "clock",
  "compile_ms",
  "median_ms",
  "mean_ms",
  "stdev_ms",
  "min_ms",
  "max_ms",
  "p99_ms",
  "cv",
  "samples",
  "flops",
  "tflops",
  "tflops_dense_equivalent",
  "bytes_theoretical",
  "bytes_modeled",
  "bytes_lower_bound",
  "bytes_counted",
  "achieved_gbs",
  "footprint_bytes",
  "max_rel_error",
  "warnings",
  "sram_bytes",
  "theoretical_density",
] as const;

type Cell = string | number | boolean | null | undefined;

/** RFC 4180 quoting: fields with a comma, quote or line break are quoted, quotes doubled. */
function csvField(v: Cell): string {
  if (v === null || v === undefined) return "";
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvRow(file: number, f: ResultsFile, r: RunRecord): Cell[] {
  const t = r.timeMs;
  const b = r.hbmBytes;
  return [
    file + 1,
    deviceName(f.device),
    f.createdAt,
    r.kernel,
    r.dtype,
    r.batch,
    r.heads,
    r.n,
    r.d,
    r.causal,
    r.density,
    r.mask,
    r.sweep,
    r.tile?.br,
    r.tile?.bc,
    r.tile?.rm,
    r.tile?.tx,
    r.status,
    r.reason,
    r.clock,
    r.compileMs,
    t?.median,
    t?.mean,
    t?.stdev,
    t?.min,
    t?.max,
    t?.p99,
    t?.cv,
    t?.samples?.length,
    r.flops,
    r.tflops,
    r.tflopsDenseEquivalent,
    b?.theoretical,
    b?.modeled,
    b?.lowerBound,
    b?.counted,
    r.achievedGBs,
    r.footprintBytes,
    r.maxRelError,
    (r.warnings ?? []).join("; "),
    b?.sramBytes,
    b?.theoreticalDensity,
  ];
}

/**
 * Every run of every file as CSV (RFC 4180, `\n` line ends, a header row). Numbers are written
 * unformatted (ms, bytes, TFLOP/s); absent values are empty fields.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { toCsv } from "./export.ts";
 * assert(toCsv([]).startsWith("file,device,created_at,kernel,"));
 * ```
 */
export function toCsv(results: ResultsFile[]): string {
  const lines = [CSV_COLUMNS.join(",")];
  results.forEach((f, i) => {
    for (const r of f.runs) lines.push(csvRow(i, f, r).map(csvField).join(","));
  });
  return lines.join("\n") + "\n";
}

/** Escapes a Markdown table cell: no pipes, line breaks or raw HTML can leak out. */
function mdCell(v: Cell): string {
  if (v === null || v === undefined || v === "") return "—";
  return String(v)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/\\/g, "\\\\")
    .replace(/\|/g, "\\|")
    .replace(/`/g, "\\`")
    .replace(/\r?\n|\r/g, " ");
}

function mdTable(head: string[], rows: Cell[][], right: Set<number>): string[] {
  const sep = head.map((_, i) => (right.has(i) ? "---:" : "---"));
  return [
    `| ${head.map(mdCell).join(" | ")} |`,
    `| ${sep.join(" | ")} |`,
    ...rows.map((r) => `| ${r.map(mdCell).join(" | ")} |`),
  ];
}

function mdRuns(f: ResultsFile): string[] {
  const head = [
    "kernel",
    "sweep",
    "dtype",
    "B×H",
    "N",
    "d",
    "causal",
    "density",
    "tile",
    "status",
    "median",
    "± stdev",
    "TFLOP/s",
    "modeled HBM",
    "note",
  ];
  const rows = f.runs.map((r): Cell[] => [
    r.kernel,
    r.sweep,
    r.dtype,
    `${r.batch}×${r.heads}`,
    r.n,
    r.d,
    r.causal ? "yes" : "no",
    isSparseKernel(r.kernel) ? `${fmtNum(r.density)} ${r.mask ?? ""}`.trim() : "",
    r.tile ? fmtTile(r.tile) : "",
    r.status,
    r.timeMs ? fmtMs(r.timeMs.median) : "",
    r.timeMs ? fmtMs(r.timeMs.stdev) : "",
    r.tflops === null ? "" : fmtNum(r.tflops),
    r.hbmBytes ? fmtBytes(r.hbmBytes.modeled) : "",
    [r.reason ?? "", ...(r.warnings ?? [])].filter((s) => s !== "").join("; "),
  ]);
  return mdTable(head, rows, new Set([4, 5, 10, 11, 12, 13]));
}

function mdPeers(f: ResultsFile): string[] {
  const peers = f.peers ?? [];
  if (peers.length === 0) return [];
  const rows = peers.map((p): Cell[] => [
    p.backend,
    p.gpu,
    p.n,
    p.d,
    p.batchHeads,
    p.dtype,
    p.causal ? "yes" : "no",
    p.ms === null ? "" : fmtMs(p.ms),
    p.tflops === null ? "" : fmtNum(p.tflops),
    p.error ?? "",
  ]);
  return [
    "",
    "#### Peers",
    "",
    ...mdTable(
      ["peer", "ran on", "N", "d", "B·H", "dtype", "causal", "time", "TFLOP/s", "error"],
      rows,
      new Set([2, 3, 4, 7, 8]),
    ),
  ];
}

/**
 * A Markdown summary: per results file a heading, the device and ceilings, a table of every run
 * (status and reason included) and the peers. Cells are escaped (`|`, line breaks, HTML).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { toMarkdown } from "./export.ts";
 * assert(toMarkdown([]).startsWith("## attnbench results"));
 * ```
 */
export function toMarkdown(results: ResultsFile[]): string {
  const labels = fileLabels(results);
  const out = ["## attnbench results", ""];
  if (results.length === 0) out.push("No results.", "");
  results.forEach((f, i) => {
    const c = f.ceilings;
    const ok = f.runs.filter((r) => r.status === "ok").length;
    out.push(`### ${mdCell(labels[i])}`, "");
    out.push(
      `${mdCell(deviceName(f.device))}${f.device.isFallbackAdapter ? " (fallback adapter)" : ""}` +
        ` · recorded ${mdCell(fmtDate(f.createdAt))} · ${mdCell(f.tool?.name)} ${
          mdCell(f.tool?.version)
        }` +
        ` · commit ${mdCell(f.gitCommit ? f.gitCommit.slice(0, 12) : "unknown")}` +
        ` · ${ok}/${f.runs.length} runs ok`,
      "",
    );
    if (c) {
      const parts = [
        c.copyGBs === null ? null : `copy ${fmtNum(c.copyGBs)} GB/s`,
        c.fmaTflops === null ? null : `FMA ${fmtNum(c.fmaTflops)} TFLOP/s`,
        c.launchOverheadUs === null ? null : `launch ${fmtNum(c.launchOverheadUs)} µs`,
        `clock ${mdCell(c.clock)}`,
      ].filter((s) => s !== null);
      out.push(`Ceilings: ${parts.join(", ")}.`, "");
    }
    out.push(...mdRuns(f), ...mdPeers(f), "");
  });
  return out.join("\n");
}

/** The series name: kernel, dtype, shape, masking, and what distinguishes sweep runs. */
function benchName(r: RunRecord): string {
  const parts = [
    r.kernel,
    r.dtype,
    `n=${r.n}`,
    `d=${r.d}`,
    `b=${r.batch}`,
    `h=${r.heads}`,
    r.causal ? "causal" : "full",
  ];
  if (isSparseKernel(r.kernel)) {
    parts.push(`density=${Number(r.density.toFixed(2))}`, `mask=${r.mask ?? "none"}`);
  }
  if (r.sweep === "block-size") {
    parts.push(`tile=${r.tile.br}x${r.tile.bc}x${r.tile.rm}x${r.tile.tx}`);
  }
  return parts.join(" ");
}

/**
 * The timed (status ok) runs as github-action-benchmark `customSmallerIsBetter` entries: value
 * is the median in ms, range `± stdev`. Names are unique: with several files the device is
 * appended, and any remaining duplicate gets a ` (2)`-style suffix.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { toGithubActionBenchmark } from "./export.ts";
 * const entries = toGithubActionBenchmark([]);
 * assert(Array.isArray(entries) && entries.length === 0);
 * ```
 */
export function toGithubActionBenchmark(results: ResultsFile[]): BenchmarkEntry[] {
  const multi = results.length > 1;
  const labels = fileLabels(results);
  const seen = new Map<string, number>();
  const out: BenchmarkEntry[] = [];
  results.forEach((f, i) => {
    for (const r of f.runs) {
      const t = r.timeMs;
      if (r.status !== "ok" || !t || !Number.isFinite(t.median)) continue;
      let name = benchName(r) + (multi ? ` @ ${labels[i]}` : "");
      const k = (seen.get(name) ?? 0) + 1;
      seen.set(name, k);
      if (k > 1) name += ` (${k})`;
      const extra = [
        r.tflops === null ? null : `${fmtNum(r.tflops)} TFLOP/s`,
        isSparseKernel(r.kernel) && r.tflopsDenseEquivalent !== null
          ? `${fmtNum(r.tflopsDenseEquivalent)} TFLOP/s dense-equivalent`
          : null,
        `modeled HBM ${fmtBytes(r.hbmBytes.modeled)}` +
        (r.hbmBytes.counted === null ? "" : `, counted ${fmtBytes(r.hbmBytes.counted)}`),
        `footprint ${fmtBytes(r.footprintBytes)}`,
        `tile ${fmtTile(r.tile)}; ${t.samples.length} samples, ${r.clock ?? "unknown"} clock`,
        `${deviceName(f.device)}`,
      ].filter((s) => s !== null);
      out.push({
        name,
        unit: "ms",
        value: t.median,
        range: `± ${fmtNum(t.stdev)}`,
        extra: extra.join("\n"),
      });
    }
  });
  return out;
}
