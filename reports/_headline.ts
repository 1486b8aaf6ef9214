/**
 * The report's headline: its main figures in a few sentences, so a reader gets the result
 * before the charts ("flash is 2.7× faster than standard at N = 1024 and moves 3.9× fewer
 * bytes; 32% of the FMA peak"). Private to `reports/`.
 *
 * @module
 */

import type { ResultsFile, RunRecord } from "../analysis/schema.ts";
import { fmtNum, isDoesNotFit, isTimed } from "./_format.ts";
import { BASELINE_KERNEL, kernelOrder, kernelStyle } from "./_kernel_style.ts";
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
 * first N at which a kernel no longer fits. Empty when nothing was timed.
 *
 * @example
 * ```ts
 * import { headlines } from "./_headline.ts";
 * import type { ResultsFile } from "../analysis/schema.ts";
 * console.assert(headlines({ runs: [] } as unknown as ResultsFile).length === 0);
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
  return out;
}
