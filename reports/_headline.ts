/**
 * The report's headline: its main figures in a few sentences, so a reader gets the result
 * before the charts ("flash is 2.7× faster than standard at N = 1024 and moves 3.9× fewer
 * bytes; 32% of the FMA peak"). Private to `reports/`.
 *
 * @module
 */

import type { ResultsFile, RunRecord } from "../core/schema.ts";
import { fmtMs, fmtNum, isDoesNotFit, isTimed } from "./_format.ts";
import { BASELINE_KERNEL, DENSE_KERNEL, kernelOrder, kernelStyle } from "./_kernel_style.ts";
import { speedupPairs } from "./_chart_speedup.ts";
import { pct } from "./_chart_common.ts";

function name(kernel: string): string {
  return kernelStyle(kernel).label;
}

function config(r: RunRecord): string {
  const mask = r.mask ? `, ${r.mask} mask ${pct(r.density)}` : "";
  return `${r.dtype}, d = ${r.d}${r.causal ? ", causal" : ""}${mask}`;
}

/**
 * Headline sentences of one results file: per other kernel, its speedup and byte ratio over the
 * baseline at the largest N both ran; the best throughput and its share of the FMA peak; the
 * sizes at which a kernel does not fit; for a block-size sweep the fastest tile beside the IO
 * model's pick, for a density sweep the sparse kernel against the dense one. Empty when nothing
 * was timed.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { headlines } from "./_headline.ts";
 * import type { ResultsFile } from "../core/schema.ts";
 * assert(headlines({ runs: [] } as unknown as ResultsFile).length === 0);
 * ```
 */
export function headlines(f: ResultsFile): string[] {
  const out: string[] = [];
  const base = name(BASELINE_KERNEL);
  // Per kernel configuration, the pair at the largest N.
  const last = new Map<string, ReturnType<typeof speedupPairs>[number]>();
  for (const p of speedupPairs([f])) {
    const key = JSON.stringify([p.run.kernel, p.run.dtype, p.run.d, p.run.causal, p.run.mask]);
    const cur = last.get(key);
    if (!cur || p.run.n > cur.run.n) last.set(key, p);
  }
  const pairs = [...last.values()].sort((a, b) =>
    kernelOrder(a.run.kernel) - kernelOrder(b.run.kernel)
  );
  for (const p of pairs) {
    const r = p.run;
    const bytes = p.base.hbmBytes.modeled / r.hbmBytes.modeled;
    const faster = p.speedup >= 1
      ? `${fmtNum(p.speedup, 2)}× faster than`
      : `${fmtNum(1 / p.speedup, 2)}× slower than`;
    const moves = bytes >= 1
      ? `moves ${fmtNum(bytes, 2)}× fewer bytes`
      : `moves ${fmtNum(1 / bytes, 2)}× more bytes`;
    out.push(
      `${name(r.kernel)} is ${faster} ${base} at N = ${r.n} (${config(r)}, ` +
        `batch × heads ${r.batch} × ${r.heads}) and ${moves}.`,
    );
  }
  const timed = f.runs.filter(isTimed).filter((r) => r.tflops !== null && r.sweep === "n");
  const best = timed.sort((a, b) => (b.tflops ?? 0) - (a.tflops ?? 0))[0];
  if (best) {
    const fma = f.ceilings?.fmaTflops ?? null;
    const share = fma !== null && fma > 0
      ? `, ${pct((best.tflops ?? 0) / fma)} of the measured FMA peak (${fmtNum(fma)} TFLOP/s)`
      : "";
    out.push(
      `Best throughput: ${name(best.kernel)} at N = ${best.n}, ${fmtNum(best.tflops ?? 0)} ` +
        `TFLOP/s${share}.`,
    );
  }
  const misses = new Map<string, number[]>();
  for (const r of f.runs) {
    if (r.sweep !== "n" || !isDoesNotFit(r)) continue;
    misses.set(r.kernel, [...(misses.get(r.kernel) ?? []), r.n]);
  }
  for (const [k, ns] of misses) {
    const list = [...new Set(ns)].sort((a, b) => a - b).join(", ");
    out.push(`${name(k)} does not fit the device at N = ${list} (skipped).`);
  }
  out.push(...sweepHeadlines(f));
  return out;
}

function ratioWords(a: number, b: number): string {
  return a <= b ? `${fmtNum(b / a)}× faster than` : `${fmtNum(a / b)}× slower than`;
}

/** Block-size sweep: the fastest tile beside the IO model's; density sweep: sparse vs dense. */
function sweepHeadlines(f: ResultsFile): string[] {
  const out: string[] = [];
  const timed = f.runs.filter(isTimed);
  const byKey = new Map<string, typeof timed>();
  for (const r of timed.filter((r) => r.sweep === "block-size")) {
    const key = JSON.stringify([r.kernel, r.n, r.d, r.dtype, r.causal]);
    byKey.set(key, [...(byKey.get(key) ?? []), r]);
  }
  for (const runs of byKey.values()) {
    if (runs.length < 2) continue;
    const fastest = runs.reduce((a, b) => (b.timeMs.median < a.timeMs.median ? b : a));
    const fewest = runs.reduce((a, b) => (b.hbmBytes.modeled < a.hbmBytes.modeled ? b : a));
    const tile = (r: RunRecord) => `${r.tile.br}×${r.tile.bc}`;
    const model = fewest === fastest
      ? "the IO model (fewest bytes) picks the same"
      : `the IO model's pick (fewest bytes) ${tile(fewest)} (${fmtMs(fewest.timeMs.median)})`;
    out.push(
      `Block sizes, ${name(fastest.kernel)} at N = ${fastest.n}: fastest tile ${tile(fastest)} ` +
        `(${fmtMs(fastest.timeMs.median)}) of the ${runs.length} timed; ${model}.`,
    );
  }
  const dense = timed.filter((r) => r.sweep === "density" && r.kernel === DENSE_KERNEL);
  for (const d of dense) {
    const sparse = timed.filter((r) =>
      r.sweep === "density" && r.mask !== null && r.n === d.n && r.d === d.d &&
      r.dtype === d.dtype && r.causal === d.causal
    ).sort((a, b) => a.density - b.density);
    const lo = sparse[0];
    const hi = sparse.at(-1);
    if (!lo || !hi || lo === hi) continue;
    out.push(
      `Density, N = ${d.n}: ${name(lo.kernel)} at ${pct(lo.density)} of the blocks runs ` +
        `${ratioWords(lo.timeMs.median, d.timeMs.median)} dense ${name(d.kernel)}, at ` +
        `${pct(hi.density)} ${ratioWords(hi.timeMs.median, d.timeMs.median)} it.`,
    );
  }
  return out;
}
