/**
 * The decode kernels' charts (runs that record a `decode` workload): achieved bandwidth against
 * the context length with the device's measured copy ceiling and the decode peers (PyTorch SDPA
 * with one query token); the paged kernel's time over the contiguous one's; and the KV memory a
 * paged cache wastes at each block size for the workloads benchmarked. Private to `reports/`.
 *
 * @module
 */

import type { ResultsFile, RunRecord } from "../core/schema.ts";
import { kvCacheUsage } from "../analysis/kv_cache.ts";
import { findKernel } from "../kernels/registry.ts";
import { fmtMs, fmtNum, isTimed } from "./_format.ts";
import { kernelStyle } from "./_kernel_style.ts";
import {
  autoScale,
  bestPerX,
  type ChartSpec,
  emptyNote,
  entries,
  groupRuns,
  hline,
  pct,
  perDevice,
  positive,
  seriesPerGroup,
  type SeriesSpec,
  type Timed,
  timeTip,
  withLegend,
  xRange,
} from "./_chart_common.ts";
import { peerDtypeMatches } from "./_chart_throughput.ts";

/** The context-length axis of the decode charts. */
const CONTEXT_AXIS = {
  title: "context length (longest, tokens)",
  scale: "log2",
  unit: "plain",
} as const;

/** Block sizes of the waste chart (the paged kernel's range). */
export const WASTE_BLOCK_SIZES = [8, 16, 32, 64, 128, 256];

/** What the paged/contiguous ratio is held to (the issue's target: within 10%). */
export const PAGING_TARGET = 1.1;

function decodeRuns(results: ResultsFile[]) {
  return entries(results, (r) => r.decode !== undefined && isTimed(r));
}

/** A decode run's line: its batch, KV heads and (paged) block size beside the kernel. */
function decodeSub(r: RunRecord): string {
  const d = r.decode!;
  return `B=${r.batch} H=${r.heads}/${d.kvHeads}` +
    (d.blockSize === null ? "" : ` block ${d.blockSize}`) +
    (d.lengths === "fixed" ? "" : ` ${d.lengths}`);
}

/**
 * Achieved GB/s (modeled bytes over the median time) against the context length, one line per
 * kernel and batch, with each device's measured copy ceiling and 70% of it, and the decode
 * peers' GB/s (they count K and V once) drawn lighter.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodeBandwidthChart } from "./_chart_decode.ts";
 * assert(decodeBandwidthChart([], []).series.length === 0);
 * ```
 */
export function decodeBandwidthChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const timed = decodeRuns(results).filter((e) => e.run.achievedGBs !== null);
  const groups = groupRuns(timed, { sub: decodeSub });
  const series = seriesPerGroup(
    groups,
    labels,
    (g) =>
      bestPerX(g.runs as Timed[], (r) => r.n).map((r) => ({
        x: r.n,
        y: r.achievedGBs ?? 0,
        tip: `${timeTip(r)}\n${fmtNum(r.achievedGBs ?? 0)} GB/s of modeled bytes`,
      })).filter(positive),
  );
  const refs: SeriesSpec[] = [];
  const range = xRange(series);
  if (range) {
    for (const { file, who } of perDevice(results)) {
      const copy = results[file]?.ceilings?.copyGBs;
      if (!copy) continue;
      const tag = who === "" ? "" : ` (${who})`;
      refs.push(
        hline(`copy ceiling${tag}`, copy, range, `measured copy ${fmtNum(copy)} GB/s`),
        hline(`70% of copy${tag}`, 0.7 * copy, range, `target: ${fmtNum(0.7 * copy)} GB/s`, {
          dash: [2, 4],
        }),
      );
    }
  }
  const peers: SeriesSpec[] = [];
  results.forEach((f, file) => {
    const mine = timed.filter((e) => e.file === file).map((e) => e.run);
    const by = new Map<string, SeriesSpec>();
    for (const p of f.peers ?? []) {
      if (p.decode !== true || !(p.gbs! > 0)) continue;
      if (!mine.some((r) => r.d === p.d && peerDtypeMatches(p.dtype, r.dtype))) continue;
      const group = `${p.backend} decode (peer)${results.length > 1 ? ` · ${labels[file]}` : ""}`;
      let s = by.get(group);
      if (!s) {
        s = {
          label: group,
          group,
          kind: "peer (PyTorch SDPA, one query token)",
          color: `hsla(282, 45%, ${40 + 10 * by.size}%, 0.6)`,
          light: true,
          line: true,
          dash: [4, 3],
          marker: "star",
          radius: 3,
          axis: "y",
          points: [],
        };
        by.set(group, s);
      }
      s.points.push({
        x: p.n,
        y: p.gbs!,
        tip: `${p.backend} on ${p.gpu}\ncontext ${p.n}, d=${p.d}, ${p.batchHeads} rows, ` +
          `${p.dtype}\n${p.ms === null ? "" : `${fmtMs(p.ms)}, `}${fmtNum(p.gbs!)} GB/s`,
      });
    }
    for (const s of by.values()) {
      s.points.sort((a, b) => a.x - b.x);
      peers.push(s);
    }
  });
  const all = [...series, ...refs, ...peers];
  return withLegend({
    id: "decode-bandwidth",
    title: "Decode: bandwidth vs context length",
    caption: "A decode step reads the whole KV cache for one new token per sequence, so it is " +
      "bound by memory bandwidth. Lines: our kernels' modeled bytes over their median time; grey: " +
      "the copy ceiling measured in the same run, and 70% of it; stars: PyTorch SDPA with query " +
      "length 1 (its GB/s counts K and V once).",
    notes: series.length === 0 ? [emptyNote("timed decode runs")] : [],
    x: CONTEXT_AXIS,
    y: {
      title: "achieved GB/s",
      scale: autoScale(all.flatMap((s) => s.points.map((p) => p.y))),
      unit: "plain",
    },
    series: series.length === 0 ? [] : all,
  });
}

/** A decode run's workload key: everything but the kernel and the block size. */
function workloadKey(file: number, r: RunRecord): string {
  const d = r.decode!;
  return JSON.stringify([file, r.dtype, r.d, r.heads, r.batch, r.n, d.kvHeads, d.contexts]);
}

/**
 * Each decode kernel's median time over its baseline's (paged-decode over decode) on the same
 * workload, against the context length; the target ratio is a grey line.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodePagingChart } from "./_chart_decode.ts";
 * assert(decodePagingChart([], []).notes.length === 1);
 * ```
 */
export function decodePagingChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const timed = decodeRuns(results);
  const byWorkload = new Map<string, Map<string, Timed>>();
  for (const { file, run } of timed) {
    const key = workloadKey(file, run);
    const m = byWorkload.get(key) ?? new Map<string, Timed>();
    m.set(run.kernel, run as Timed);
    byWorkload.set(key, m);
  }
  const paired = timed.filter(({ file, run }) => {
    const base = findKernel(run.kernel)?.baseline;
    return base != null && byWorkload.get(workloadKey(file, run))?.has(base);
  });
  const groups = groupRuns(paired, { sub: decodeSub });
  const series = seriesPerGroup(
    groups,
    labels,
    (g) =>
      bestPerX(g.runs as Timed[], (r) => r.n).map((r) => {
        const baseName = findKernel(r.kernel)!.baseline!;
        const base = byWorkload.get(workloadKey(g.file, r))!.get(baseName)!;
        const ratio = r.timeMs.median / base.timeMs.median;
        return {
          x: r.n,
          y: ratio,
          tip: `${timeTip(r)}\n${kernelStyle(baseName).label}: ${fmtMs(base.timeMs.median)}\n` +
            `ratio ${fmtNum(ratio)} (${ratio > 1 ? "+" : ""}${pct(ratio - 1)})`,
        };
      }).filter(positive),
  );
  const range = xRange(series);
  const refs = range
    ? [
      hline("equal time", 1, range, "the same time as the contiguous cache"),
      hline(`target ≤ ${PAGING_TARGET}`, PAGING_TARGET, range, "paging within 10%", {
        dash: [2, 4],
      }),
    ]
    : [];
  return withLegend({
    id: "decode-paging",
    title: "Decode: paged over contiguous time",
    caption: "The paged kernel's median time divided by the contiguous kernel's on the same " +
      "sequences, heads and context lengths: the price of finding each block through the block " +
      "table (the vLLM paper reports 20–26% kernel overhead for paging).",
    notes: series.length === 0
      ? ["No decode workload timed with both paged-decode and its baseline (decode)."]
      : [],
    x: CONTEXT_AXIS,
    y: { title: "time ratio (paged / contiguous)", scale: "linear", unit: "ratio" },
    series: series.length === 0 ? [] : [...series, ...refs],
  });
}

/**
 * The share of a paged KV cache that holds no token (the last block's unfilled slots) at each
 * block size, for every distinct decode workload of the results; grey: what reserving every
 * sequence to the longest context wastes.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodeWasteChart } from "./_chart_decode.ts";
 * assert(decodeWasteChart([], []).series.length === 0);
 * ```
 */
export function decodeWasteChart(results: ResultsFile[], _labels: string[]): ChartSpec {
  const seen = new Map<string, RunRecord>();
  for (const { run } of entries(results, (r) => r.decode !== undefined)) {
    // Equal lengths waste the same share however many sequences there are.
    const c = run.decode!.contexts;
    const key = c.every((n) => n === c[0]) ? `each ${c[0]}` : JSON.stringify(c);
    if (!seen.has(key)) seen.set(key, run);
  }
  const series: SeriesSpec[] = [];
  let hue = 0;
  for (const run of seen.values()) {
    const d = run.decode!;
    const seqs = d.contexts.map((len) => ({ len }));
    const longest = Math.max(...d.contexts);
    const equal = d.contexts.every((n) => n === longest);
    const name = equal ? `${longest} tokens each` : `${d.contexts.length} × ${d.lengths}`;
    const color = `hsl(${(24 + 47 * hue++) % 360}, 65%, 42%)`;
    const waste = (blockSize: number) => {
      const u = kvCacheUsage(seqs, { d: 1, kvHeads: 1, dtype: "f32", blockSize }, longest);
      return { paged: 1 - u[3]!.tokenShare, max: 1 - u[0]!.tokenShare };
    };
    series.push({
      label: `${name} paged`,
      group: name,
      kind: "paged (last block unfilled)",
      color,
      line: true,
      dash: [],
      marker: "circle",
      radius: 3,
      axis: "y",
      points: WASTE_BLOCK_SIZES.map((b) => ({
        x: b,
        y: 100 * waste(b).paged,
        tip: `${name} sequences\nblock size ${b}: ${pct(waste(b).paged)} of the paged cache ` +
          `holds no token`,
      })),
    });
    const max = waste(16).max;
    if (max > 0) {
      series.push({
        ...hline(
          `${name} contiguous`,
          100 * max,
          [8, 256],
          `reserved to the longest context ` +
            `(${longest}): ${pct(max)} holds no token`,
          { color },
        ),
        group: name,
        kind: "contiguous to the longest context",
      });
    }
  }
  return withLegend({
    id: "decode-waste",
    title: "Decode: KV memory waste vs block size",
    caption: "Of the KV memory a batch holds, the share that holds no token: a paged cache " +
      "wastes only the unfilled part of each sequence's last block, which grows with the block " +
      "size; a contiguous cache reserved to the longest context (dashed) wastes the gap of every " +
      "shorter sequence. From the benchmarked workloads' context lengths (pure arithmetic, " +
      "analysis/kv_cache.ts); `attnbench model` gives the full memory model.",
    notes: series.length === 0
      ? [emptyNote("decode runs")]
      : series.every((s) => s.points.every((p) => p.y === 0))
      ? [
        "Every benchmarked context length is a multiple of every block size and the sequences " +
        "are equal, so nothing is wasted here; lengths drawn from a distribution " +
        "(`--lengths uniform:…`) or `attnbench model --workload sharegpt` show the waste.",
      ]
      : [],
    x: { title: "block size (tokens)", scale: "log2", unit: "plain" },
    y: { title: "% of KV memory holding no token", scale: "linear", unit: "plain", min: 0 },
    series,
  });
}
