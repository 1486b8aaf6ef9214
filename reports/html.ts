/**
 * The HTML report: one self-contained file (Chart.js, styles, script and data inlined) that
 * opens offline in any browser. The page is assembled from flat section functions below, each
 * computing its values first and then filling one small template; the chart arithmetic is in
 * `_charts.ts` (one `_chart_*.ts` per chart family), the headline sentences in `_headline.ts`,
 * the browser-side drawing in `_client.js`, the styles in `_report.css`.
 *
 * Safety: every string that comes from a results file is escaped by the `markup` tag; the data
 * travels as JSON in a `<script type="application/json">` element with `<`, `>` and `&` written
 * as `\u` escapes; a Content-Security-Policy allows only the page's own scripts (by hash) and no
 * network access at all.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { PeerRecord, ResultsFile, RunRecord } from "../core/schema.ts";
import { RESULTS_SCHEMA } from "../core/schema.ts";
import { allKernels, isSparseKernel } from "../kernels/registry.ts";
import clientSource from "./_client.js" with { type: "text" };
import cssSource from "./_report.css" with { type: "text" };
import { buildCharts, type ChartSpec, speedupPairs } from "./_charts.ts";
import { peerDtypeMatches } from "./_chart_throughput.ts";
import { headlines } from "./_headline.ts";
import { DENSE_KERNEL, kernelStyle } from "./_kernel_style.ts";
import { CHARTJS_VERSION, chartJsSource } from "./_chartjs.ts";
import {
  deviceName,
  fileLabels,
  fmtBytes,
  fmtDate,
  fmtMem,
  fmtMs,
  fmtNum,
  fmtTile,
  fmtVendor,
  isTimed,
} from "./_format.ts";
import { jsonForScript, markup, raw, type SafeHtml } from "./_html.ts";

/** Options of {@linkcode renderHtml}. */
export interface HtmlOptions {
  /** Page title and heading; defaults to the device name(s). */
  title?: string;
  /** One legend label per results file; defaults to device (and date when several). */
  labels?: string[];
}

/** How the charts tell results files apart, in words, by file index (see `_charts.ts`). */
const FILE_STYLE = [
  "solid lines, ● markers",
  "dashed lines, ▲ markers",
  "dotted lines, ■ markers",
  "dash-dot lines, ◆ markers",
];

const NONE = markup``;

function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("base64");
}

function defaultTitle(results: ResultsFile[]): string {
  const names = [...new Set(results.map((r) => deviceName(r.device)))];
  if (names.length === 0) return "attnbench report";
  if (names.length <= 3) return `attnbench · ${names.join(" vs ")}`;
  return `attnbench · ${results.length} results files`;
}

function count(runs: RunRecord[], status: RunRecord["status"]): number {
  return runs.filter((r) => r.status === status).length;
}

// ---------------------------------------------------------------------------------------------
// Header: one summary card per results file.

function stat(value: string, key: string): SafeHtml {
  return markup`<div class="stat"><span class="v">${value}</span><span class="k">${key}</span></div>`;
}

function highlights(f: ResultsFile): SafeHtml[] {
  const best = f.runs.filter(isTimed).filter((r) => r.tflops !== null)
    .sort((a, b) => (b.tflops ?? 0) - (a.tflops ?? 0))[0];
  const flash = speedupPairs([f]).filter((p) => p.run.kernel === DENSE_KERNEL)
    .sort((a, b) => b.speedup - a.speedup)[0];
  const c = f.ceilings;
  const runs = `runs; ${count(f.runs, "skipped")} skipped, ${count(f.runs, "failed")} failed`;
  const out = [stat(`${count(f.runs, "ok")} ok`, runs)];
  if (best) {
    out.push(stat(`${fmtNum(best.tflops ?? 0)} TFLOP/s`, `best: ${best.kernel}, N=${best.n}`));
  }
  if (flash) {
    const over = `${kernelStyle(flash.run.kernel).label} over ${
      kernelStyle(flash.base.kernel).label
    }`;
    out.push(stat(`${fmtNum(flash.speedup)}×`, `${over}, best at N=${flash.run.n}`));
  }
  if (c && c.copyGBs !== null && c.fmaTflops !== null) {
    out.push(stat(`${fmtNum(c.copyGBs)} GB/s`, `copy; FMA peak ${fmtNum(c.fmaTflops)} TFLOP/s`));
  }
  return out;
}

function summaryCard(f: ResultsFile, index: number, label: string, multi: boolean): SafeHtml {
  const d = f.device;
  const va = [fmtVendor(d.vendor ?? ""), d.architecture].filter((s) => s && s.trim() !== "")
    .join(" · ");
  const argv = Array.isArray(f.config?.argv) ? (f.config.argv as unknown[]).map(String) : null;
  const vendor = va ? markup`<span class="badge">${va}</span>` : NONE;
  const fallback = d.isFallbackAdapter
    ? markup`<span class="badge fallback">fallback adapter</span>`
    : NONE;
  const style = multi
    ? markup`<span class="badge">file ${index + 1}: ${FILE_STYLE[index % 4]}</span>`
    : NONE;
  const labelRow = multi ? markup`<dt>Label</dt><dd>${label}</dd>` : NONE;
  const tool = `${f.tool?.name ?? "attnbench"} ${f.tool?.version ?? "?"} · Deno ${
    f.denoVersion ?? "?"
  }`;
  const commit = f.gitCommit ? f.gitCommit.slice(0, 12) : "unknown";
  const command = argv
    ? markup`<dt>Command</dt><dd class="mono">attnbench ${argv.join(" ")}</dd>`
    : NONE;
  return markup`<section class="card">
  <div class="device">${deviceName(d)}</div>
  <div>${vendor}${fallback}${style}</div>
  <dl>
    ${labelRow}
    <dt>Recorded</dt><dd>${fmtDate(f.createdAt)}</dd>
    <dt>Tool</dt><dd>${tool}</dd>
    <dt>Git commit</dt><dd class="mono">${commit}</dd>
    ${command}
  </dl>
  <div class="highlights">${highlights(f)}</div>
</section>`;
}

function headlineBlock(results: ResultsFile[], labels: string[]): SafeHtml {
  const multi = results.length > 1;
  const blocks = results.map((f, i) => {
    const lines = headlines(f);
    if (lines.length === 0) return NONE;
    const who = multi ? markup`<p><strong>${labels[i] ?? ""}</strong></p>` : NONE;
    return markup`${who}<ul>${lines.map((l) => markup`<li>${l}</li>`)}</ul>`;
  });
  if (results.every((f) => headlines(f).length === 0)) return NONE;
  return markup`<section class="headline" id="headline">${blocks}</section>`;
}

function header(results: ResultsFile[], labels: string[], title: string): SafeHtml {
  const multi = results.length > 1;
  const runs = results.reduce((s, f) => s + f.runs.length, 0);
  const files = `${results.length} results file${multi ? "s" : ""}`;
  const dates = results.map((f) => fmtDate(f.createdAt)).join(" and ");
  const overlaid = multi ? " — overlaid in every chart" : "";
  const peers = results.some((f) => (f.peers ?? []).length > 0)
    ? markup`<a href="#peers">Peers</a>`
    : NONE;
  const cards = results.map((f, i) => summaryCard(f, i, labels[i] ?? "", multi));
  const fallbacks = results.filter((f) => f.device.isFallbackAdapter)
    .map((f) => deviceName(f.device)).join(", ");
  const callout = fallbacks === "" ? NONE : markup`<p class="callout">
  <strong>Fallback adapter.</strong> ${fallbacks}: a software (CPU) implementation of WebGPU, so
  its timings measure the emulation, not a GPU.
</p>`;
  return markup`<header>
  <h1>${title}</h1>
  <p class="subtitle">${runs} runs from ${files}, recorded ${dates}${overlaid}.</p>
  <nav class="toc">
    <a href="#charts">Charts</a>${peers}<a href="#devices">Devices</a><a href="#runs">All runs</a>
  </nav>
  ${headlineBlock(results, labels)}
  <div class="cards">${cards}</div>
  ${callout}
</header>`;
}

// ---------------------------------------------------------------------------------------------
// Charts: a figure per chart; the page script draws into the canvases.

/** A chart's figure; charts without data are not drawn (see {@linkcode chartsSection}). */
function figure(c: ChartSpec): SafeHtml {
  const notes = c.notes.map((n) => markup`<p class="note">${n}</p>`);
  return markup`<figure class="chart" id="figure-${c.id}">
  <h3>${c.title}</h3>
  <div class="canvas-wrap">
    <canvas id="chart-${c.id}" role="img" aria-label="${c.title}"></canvas>
  </div>
  ${notes}
  <figcaption>${c.caption}</figcaption>
</figure>`;
}

function chartsSection(charts: ChartSpec[], labels: string[]): SafeHtml {
  const colours = "Colour is the kernel configuration; line style says what a line is (see " +
    "each legend). Hover a point for its numbers, click a legend entry to hide its lines.";
  const styles = labels.map((l, i) =>
    markup`${i > 0 ? "; " : ""}<strong>${l}</strong>: ${FILE_STYLE[i % 4]}`
  );
  const key = labels.length > 1
    ? markup`<p class="subtitle">${colours} Where one configuration comes from several results
  files, they are told apart by ${styles}.</p>`
    : markup`<p class="subtitle">${colours}</p>`;
  const drawn = charts.filter((c) => c.series.length > 0);
  const missing = charts.filter((c) => c.series.length === 0).map((c) => c.title);
  const left = missing.length === 0 ? NONE : markup`<p class="subtitle left-out">Not drawn, for
  lack of data in these results: ${missing.join("; ")}.</p>`;
  return markup`<section id="charts">
  <h2>Charts</h2>
  ${key}
  <div class="charts">
    ${drawn.map(figure)}
  </div>
  ${left}
</section>`;
}

// ---------------------------------------------------------------------------------------------
// Peers: their rows beside our best run of each kernel at the same shape.

/** Our best timed run per kernel at the peer's n, d and masking; B·H and dtype preferred. */
function peerMatches(f: ResultsFile, p: PeerRecord): Map<string, RunRecord> {
  const out = new Map<string, RunRecord>();
  // A decode peer (one query token) is matched with decode runs only, and the other way round.
  const same = f.runs.filter((r) =>
    isTimed(r) && r.tflops !== null && (p.decode === true) === (r.decode !== undefined) &&
    (r.sweep === "n" || r.sweep === "decode") && r.n === p.n && r.d === p.d &&
    r.causal === p.causal &&
    (r.pass ?? "fwd") === (p.pass ?? "fwd")
  );
  for (const k of allKernels().map((k) => k.name)) {
    const mine = same.filter((r) => r.kernel === k);
    const exact = mine.filter((r) =>
      r.batch * r.heads === p.batchHeads && peerDtypeMatches(p.dtype, r.dtype)
    );
    const pick = (exact.length > 0 ? exact : mine)
      .sort((a, b) => (b.tflops ?? 0) - (a.tflops ?? 0))[0];
    if (pick) out.set(k, pick);
  }
  return out;
}

function oursCell(r: RunRecord | undefined, theirs: number | null): SafeHtml {
  if (!r || r.tflops === null) return markup`<td class="num">—</td>`;
  const tf = fmtNum(r.tflops);
  if (theirs === null || !(theirs > 0)) {
    return markup`<td class="num" data-v="${r.tflops}">${tf}</td>`;
  }
  const ratio = r.tflops / theirs;
  const cls = ratio >= 1 ? "better" : "worse";
  return markup`<td class="num" data-v="${ratio}">${tf} <span class="ratio ${cls}">${
    fmtNum(ratio)
  }×</span></td>`;
}

function peerRow(f: ResultsFile, p: PeerRecord, kernels: readonly string[]): SafeHtml {
  const m = peerMatches(f, p);
  const ms = p.ms === null ? "—" : fmtMs(p.ms);
  const tf = p.tflops === null ? "—" : fmtNum(p.tflops);
  const peerCells = p.error
    ? markup`<td class="reason" colspan="2">${p.error}</td>`
    : markup`<td class="num" data-v="${p.ms ?? ""}">${ms}</td><td class="num" data-v="${
      p.tflops ?? ""
    }">${tf}</td>`;
  const ours = kernels.map((k) => oursCell(m.get(k), p.tflops));
  return markup`<tr class="${p.error ? "failed" : ""}">
  <td>${p.backend}${p.pass ? ` ${p.pass}` : ""}</td><td class="wrap">${p.gpu}</td>
  <td class="num" data-v="${p.n}">${p.n}</td><td class="num" data-v="${p.d}">${p.d}</td>
  <td class="num" data-v="${p.batchHeads}">${p.batchHeads}</td>
  <td>${p.dtype}</td><td>${p.causal ? "yes" : "no"}</td>
  ${peerCells}${ours}
</tr>`;
}

function peersTable(f: ResultsFile, label: string, multi: boolean): SafeHtml {
  const kernels = allKernels().map((k) => k.name)
    .filter((k) => f.runs.some((r) => r.kernel === k && isTimed(r)));
  const heads = kernels.map((k) =>
    markup`<th class="num wrap">${kernelStyle(k).label}<br>TFLOP/s (× peer)</th>`
  );
  const rows = (f.peers ?? []).map((p) => peerRow(f, p, kernels));
  const title = multi ? markup`<h3>${label}</h3>` : NONE;
  return markup`${title}
<div class="panel">
  <table class="sortable">
    <thead><tr>
      <th>Peer</th><th>Ran on</th><th class="num">N</th><th class="num">d</th>
      <th class="num">B·H</th><th>dtype</th><th>causal</th>
      <th class="num wrap">peer<br>time</th><th class="num wrap">peer<br>TFLOP/s</th>${heads}
    </tr></thead>
    <tbody>${rows}</tbody>
  </table>
</div>`;
}

function peersSection(results: ResultsFile[], labels: string[]): SafeHtml {
  const tables = results.flatMap((f, i) =>
    (f.peers ?? []).length > 0 ? [peersTable(f, labels[i] ?? "", results.length > 1)] : []
  );
  if (tables.length === 0) return NONE;
  return markup`<section id="peers">
  <h2>Peers</h2>
  <p class="subtitle">Peer implementations timed in the same session, beside our best run of
  each kernel at the same N, d and masking, with the ratio of TFLOP/s: above 1× our kernel is
  faster.</p>
  ${tables}
</section>`;
}

// ---------------------------------------------------------------------------------------------
// Devices: one column per results file.

function limitValue(key: string, v: number): SafeHtml {
  if (/(Buffer|Binding|Storage)Size$/.test(key) && v >= 1024) {
    return markup`${fmtMem(v)} <span class="mono">(${v})</span>`;
  }
  return markup`${v}`;
}

function ceilingText(f: ResultsFile, what: "copy" | "fma" | "launch" | "clock"): string {
  const c = f.ceilings;
  if (!c) return "not measured";
  const v = { copy: c.copyGBs, fma: c.fmaTflops, launch: c.launchOverheadUs, clock: 0 }[what];
  if (what === "clock") return c.clock;
  if (v === null) return "not measured";
  return `${fmtNum(v)} ${{ copy: "GB/s", fma: "TFLOP/s", launch: "µs" }[what]}`;
}

/** The M (bytes) the file's theoretical counts assumed, from its runs' `hbmBytes.sramBytes`. */
function sramText(f: ResultsFile): string {
  const values = [...new Set(f.runs.map((r) => r.hbmBytes?.sramBytes))];
  const known = values.filter((v): v is number => typeof v === "number").sort((a, b) => a - b);
  if (known.length === 0) return "not recorded (file written before M was recorded)";
  const text = known.map((v) => `${fmtMem(v)} (${v} B)`).join(", ");
  return values.length > known.length ? `${text}; not recorded for some runs` : text;
}

function devicesSection(results: ResultsFile[], labels: string[]): SafeHtml {
  const multi = results.length > 1;
  const row = (name: string, cell: (f: ResultsFile, i: number) => SafeHtml | string) =>
    markup`<tr><th scope="row">${name}</th>${
      results.map((f, i) => markup`<td>${cell(f, i)}</td>`)
    }</tr>`;
  const fallback = (f: ResultsFile) =>
    f.device.isFallbackAdapter ? markup`<span class="badge fallback">yes (software)</span>` : "no";
  const features = (f: ResultsFile) =>
    markup`<ul class="features">${
      [...(f.device.features ?? [])].sort().map((x) => markup`<li class="badge">${x}</li>`)
    }</ul>`;
  const limitKeys = [...new Set(results.flatMap((f) => Object.keys(f.device.limits ?? {})))]
    .sort();
  const limit = (k: string) => (f: ResultsFile) => {
    const v = f.device.limits?.[k];
    return typeof v === "number" ? limitValue(k, v) : "—";
  };
  const rows = [
    row("Description", (f) => f.device.description || "—"),
    row("Vendor", (f) => fmtVendor(f.device.vendor ?? "") || "—"),
    row("Architecture", (f) => f.device.architecture || "—"),
    row("Device id", (f) => f.device.device || "—"),
    row("Fallback adapter", fallback),
    row("Copy bandwidth", (f) => ceilingText(f, "copy")),
    row("FMA peak", (f) => ceilingText(f, "fma")),
    row("Launch overhead", (f) => ceilingText(f, "launch")),
    row("Clock", (f) => ceilingText(f, "clock")),
    row("IO model M (theoretical bytes)", sramText),
    ...limitKeys.map((k) => row(k, limit(k))),
    row("Features", features),
  ];
  const head = multi
    ? markup`<thead><tr><th></th>${labels.map((l) => markup`<th>${l}</th>`)}</tr></thead>`
    : NONE;
  return markup`<section id="devices">
  <h2>Device${multi ? "s" : ""}</h2>
  <div class="panel">
    <table>
      ${head}
      <tbody>${rows}</tbody>
    </table>
  </div>
</section>`;
}

// ---------------------------------------------------------------------------------------------
// All runs: one <tbody> per run (its row, and a detail row for reason and warnings), so that
// sorting keeps the two together.

const RUN_COLUMNS: [name: string, numeric: boolean][] = [
  ["Kernel", false],
  ["Sweep", false],
  ["dtype", false],
  ["B×H", true],
  ["N", true],
  ["d", true],
  ["Causal", false],
  ["Density", true],
  ["Tile", false],
  ["Status", false],
  ["Median", true],
  ["± stdev", true],
  ["Samples", true],
  ["TFLOP/s", true],
  ["Modeled HBM", true],
  ["Counted HBM", true],
  ["Footprint", true],
  ["Max rel. error", true],
  ["Compile", true],
];

function num(v: number | null | undefined, show: (x: number) => string): SafeHtml {
  if (v === null || v === undefined || !Number.isFinite(v)) return markup`<td class="num">—</td>`;
  return markup`<td class="num" data-v="${v}">${show(v)}</td>`;
}

function runBody(r: RunRecord): SafeHtml {
  const t = r.timeMs;
  const notes = [r.reason ?? "", ...(r.warnings ?? [])].filter((s) => s !== "");
  const span = RUN_COLUMNS.length;
  const density = isSparseKernel(r.kernel) ? `${fmtNum(r.density)} ${r.mask ?? ""}` : "dense";
  const tile = r.tile ? fmtTile(r.tile) : "—";
  const detailText = notes.map((n, i) => markup`${i > 0 ? " · " : ""}${n}`);
  const detail = notes.length === 0 ? NONE : markup`<tr class="detail">
    <td colspan="${span}"><span class="arrow">↳</span> ${detailText}</td>
  </tr>`;
  return markup`<tbody class="run ${r.status}">
  <tr class="${notes.length > 0 ? "has-detail" : ""}">
    <td>${r.kernel}</td><td>${r.sweep}</td><td>${r.dtype}</td>
    <td class="num" data-v="${r.batch * r.heads}">${r.batch}×${r.heads}</td>
    <td class="num" data-v="${r.n}">${r.n}</td><td class="num" data-v="${r.d}">${r.d}</td>
    <td>${r.causal ? "yes" : "no"}</td>
    <td class="num" data-v="${r.density}">${density}</td>
    <td class="mono">${tile}</td>
    <td><span class="badge ${r.status}">${r.status}</span></td>
    ${num(t?.median, fmtMs)}${num(t?.stdev, fmtMs)}${num(t?.samples?.length, String)}
    ${num(r.tflops, (x) => fmtNum(x))}
    ${num(r.hbmBytes?.modeled, fmtBytes)}${num(r.hbmBytes?.counted, fmtBytes)}
    ${num(r.footprintBytes, fmtMem)}
    ${num(r.maxRelError, (x) => x.toExponential(1))}${num(r.compileMs, fmtMs)}
  </tr>
  ${detail}
</tbody>`;
}

function runsTable(f: ResultsFile, label: string | null): SafeHtml {
  const heads = RUN_COLUMNS.map(([h, n]) => markup`<th class="${n ? "num" : ""}">${h}</th>`);
  const title = label === null ? NONE : markup`<h3>${label}</h3>`;
  return markup`${title}
<div class="panel">
  <table class="sortable runs">
    <thead><tr>${heads}</tr></thead>
    ${f.runs.map(runBody)}
  </table>
</div>`;
}

function runsSection(results: ResultsFile[], labels: string[]): SafeHtml {
  const multi = results.length > 1;
  const tables = results.map((f, i) => runsTable(f, multi ? labels[i] ?? `file ${i + 1}` : null));
  return markup`<section id="runs">
  <h2>All runs</h2>
  <p class="subtitle">Every run${multi ? " of every file" : ""}, including the skipped and failed
  ones with their reason (on the line under the run). Click a column heading to sort.</p>
  ${tables}
</section>`;
}

// ---------------------------------------------------------------------------------------------
// Page.

function footer(results: ResultsFile[]): SafeHtml {
  const tools = [
    ...new Set(results.map((f) => `${f.tool?.name ?? "attnbench"} ${f.tool?.version}`)),
  ]
    .join(", ");
  return markup`<footer>
  Recorded by ${tools} (results schema <code>${RESULTS_SCHEMA}</code>). Charts drawn with
  Chart.js ${CHARTJS_VERSION} (MIT License), embedded in this file so that it opens offline.
</footer>`;
}

function page(title: string, body: SafeHtml, data: string): string {
  const chart = chartJsSource();
  if (/<\/(script|style)/i.test(clientSource + cssSource)) {
    throw new Error("report client script or styles contain a closing tag");
  }
  const csp = [
    "default-src 'none'",
    `script-src 'sha256-${sha256(chart)}' 'sha256-${sha256(clientSource)}'`,
    `style-src 'sha256-${sha256(cssSource)}'`,
    "img-src data:",
  ].join("; ");
  return markup`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="attnbench">
<title>${title}</title>
<style>${raw(cssSource)}</style>
</head>
<body>
<main>
${body}
</main>
<script type="application/json" id="attnbench-data">${raw(data)}</script>
<script>${raw(chart)}</script>
<script>${raw(clientSource)}</script>
</body>
</html>
`.value;
}

/**
 * Renders results files as one self-contained HTML report: a summary per file, charts
 * (runtime, throughput, speedup, HBM bytes, roofline, footprint, block-size and density sweeps;
 * several files are overlaid), peers, devices and every run in a sortable table.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { renderHtml } from "./html.ts";
 * import type { ResultsFile } from "../core/schema.ts";
 * const results: ResultsFile[] = []; // e.g. [await readResults("out/results.json")]
 * const page = renderHtml(results, { title: "nightly" });
 * assert(page.startsWith("<!doctype html>") && !page.includes("<script src="));
 * ```
 */
export function renderHtml(results: ResultsFile[], opts: HtmlOptions = {}): string {
  const labels = fileLabels(results, opts.labels);
  const title = opts.title?.trim() || defaultTitle(results);
  const charts = buildCharts(results, labels);
  const data = jsonForScript({ schema: "attnbench/report@1", labels, charts, results });
  const body = results.length === 0
    ? markup`<header><h1>${title}</h1><p class="note">No results to show.</p></header>`
    : markup`${header(results, labels, title)}
${chartsSection(charts, labels)}
${peersSection(results, labels)}
${devicesSection(results, labels)}
${runsSection(results, labels)}
${footer(results)}`;
  return page(title, body, data);
}
