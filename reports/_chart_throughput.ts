/**
 * Achieved TFLOP/s against N, with the peers (PyTorch SDPA) of matching configurations drawn
 * lighter. Private to `reports/`.
 *
 * @module
 */

import type { PeerRecord, ResultsFile, RunRecord } from "../core/schema.ts";
import { fmtMs, fmtNum } from "./_format.ts";
import {
  autoScale,
  bestPerX,
  type ChartSpec,
  emptyNote,
  entries,
  groupRuns,
  N_AXIS,
  positive,
  seriesPerGroup,
  type SeriesSpec,
  type Timed,
  timeTip,
  withLegend,
} from "./_chart_common.ts";
import { isTimed } from "./_format.ts";

/** Peer colours: purples, translucent, one shade per backend. */
const PEER_LIGHTNESS = [48, 34, 62, 26, 70];

function peerColor(i: number): string {
  return `hsla(282, 45%, ${PEER_LIGHTNESS[i % PEER_LIGHTNESS.length]}%, 0.55)`;
}

/** Whether a peer's dtype name ("float32", "float16", "bf16") is our dtype. */
export function peerDtypeMatches(peer: string, ours: string): boolean {
  const p = peer.toLowerCase();
  if (/bf16|bfloat/.test(p)) return false; // no WGSL counterpart
  if (/16|half/.test(p)) return ours === "f16";
  if (/32|float$|single/.test(p)) return ours === "f32";
  return true;
}

/**
 * Peers as one series per backend, only for the configurations (d, dtype, causal) that our
 * runs in the same file have: a peer measured at another d is no comparison.
 */
function peerSeries(results: ResultsFile[], labels: string[], ours: RunRecord[][]): SeriesSpec[] {
  const multi = results.length > 1;
  const out: SeriesSpec[] = [];
  const backends: string[] = [];
  results.forEach((f, file) => {
    const mine = ours[file] ?? [];
    const by = new Map<string, PeerRecord[]>();
    for (const p of f.peers ?? []) {
      if (p.tflops === null || !(p.tflops > 0)) continue;
      const match = mine.some((r) =>
        r.d === p.d && r.causal === p.causal && peerDtypeMatches(p.dtype, r.dtype)
      );
      if (!match) continue;
      const configs = new Set(mine.map((r) => `${r.d}/${r.causal}/${r.dtype}`));
      const key = configs.size > 1
        ? `${p.backend} (d=${p.d}${p.causal ? ", causal" : ""}, ${p.dtype})`
        : p.backend;
      by.set(key, [...(by.get(key) ?? []), p]);
    }
    for (const [key, list] of by) {
      list.sort((a, b) => a.n - b.n);
      let b = backends.indexOf(key);
      if (b < 0) b = backends.push(key) - 1;
      const group = `${key}${multi ? ` · ${labels[file]}` : ""}`;
      out.push({
        label: `${group} (peer)`,
        group,
        kind: "peer (PyTorch SDPA), dashed",
        color: peerColor(b),
        light: true,
        line: true,
        dash: [4, 3],
        marker: "star",
        radius: 3,
        axis: "y",
        points: list.map((p) => ({
          x: p.n,
          y: p.tflops ?? 0,
          tip: `${p.backend} on ${p.gpu}\nN=${p.n} d=${p.d} batch·heads=${p.batchHeads} ` +
            `${p.dtype}\n${p.ms === null ? "" : fmtMs(p.ms) + ", "}${
              fmtNum(p.tflops ?? 0)
            } TFLOP/s`,
        })).filter(positive),
      });
    }
  });
  return out;
}

/** Achieved TFLOP/s against N, with peers overlaid when present. */
export function tflopsChart(results: ResultsFile[], labels: string[]): ChartSpec {
  const timed = entries(results, (r) => r.sweep === "n" && isTimed(r) && r.tflops !== null);
  const groups = groupRuns(timed);
  const series = seriesPerGroup(
    groups,
    labels,
    (g) =>
      bestPerX(g.runs as Timed[], (r) => r.n).map((r) => ({
        x: r.n,
        y: r.tflops ?? 0,
        tip: `${timeTip(r)}\n${fmtNum(r.tflops ?? 0)} TFLOP/s` +
          (r.mask !== null && r.tflopsDenseEquivalent !== null
            ? ` (${fmtNum(r.tflopsDenseEquivalent)} dense-equivalent)`
            : ""),
      })).filter(positive),
  );
  const ours = results.map((_, file) => timed.filter((e) => e.file === file).map((e) => e.run));
  const peers = series.length > 0 ? peerSeries(results, labels, ours) : [];
  const all = [...series, ...peers.filter((s) => s.points.length > 0)];
  const notes = series.length === 0 ? [emptyNote('timed runs of the "n" sweep')] : [];
  return withLegend({
    id: "tflops",
    title: "Throughput vs sequence length",
    caption: "FLOPs actually computed (4·B·H·N²·d, halved when causal, × density for " +
      "block-sparse) per second; higher is better. A flat line means the kernel is " +
      "compute-bound at that size." +
      (peers.length > 0
        ? " Pale dashed lines with stars are the peers (PyTorch SDPA) at the same d, dtype " +
          "and masking, measured in the same session."
        : ""),
    notes,
    x: N_AXIS,
    y: {
      title: "TFLOP/s",
      scale: autoScale(all.flatMap((s) => s.points.map((p) => p.y)), 8),
      unit: "plain",
    },
    series: all,
  });
}
