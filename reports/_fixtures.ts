/**
 * Test fixtures of `reports/`: the recorded results in `testdata/reports/` and variants of them
 * (hostile strings, missing data). Used by the tests only.
 *
 * @module
 */

import { parseResults } from "../analysis/results_io.ts";
import { kernelCatalog } from "../kernels/catalog.ts";
import type { ResultsFile } from "../core/schema.ts";

/** The fallback-adapter sample (all sweeps, ceilings, peers, a skipped and a failed run). */
export const SAMPLE_PATH: string =
  new URL("../testdata/reports/sample_results.json", import.meta.url).pathname;
/** A second device (H100), for overlays. */
export const SAMPLE_H100_PATH: string =
  new URL("../testdata/reports/sample_results_h100.json", import.meta.url).pathname;

/** A default `deno task bench` sweep recorded on llvmpipe (the fallback adapter's defaults). */
export const DEFAULT_SWEEP_PATH: string =
  new URL("../testdata/reports/default_sweep_llvmpipe.json", import.meta.url).pathname;
/**
 * An H200 d64 sweep with the PyTorch peers (flash v5, 2026-11-26), frozen in `docs/h200/` as
 * `results-d64-v5.json`: the tests pin figures of it (its outliers, its headline), so a refresh of
 * `docs/h200/results.json` leaves them alone.
 */
export const H200_PATH: string =
  new URL("../docs/h200/results-d64-v5.json", import.meta.url).pathname;
/** The folder of the committed H200 results files. */
export const H200_DIR: string = new URL("../docs/h200/", import.meta.url).pathname;

/**
 * Reads and validates a fixture (a fresh copy each call, so tests may mutate it).
 *
 * @example
 * ```ts ignore
 * import { loadFixture, SAMPLE_PATH } from "./_fixtures.ts";
 * const results = await loadFixture(SAMPLE_PATH);
 * ```
 */
export async function loadFixture(path: string): Promise<ResultsFile> {
  return parseResults(await Deno.readTextFile(path), path, kernelCatalog());
}

/** A string that breaks out of a `<script>` and injects markup if anything fails to escape it. */
export const HOSTILE =
  `</script><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"><!-- ' & |`;

/**
 * The sample with {@linkcode HOSTILE} in every free-text field a results file has: device
 * strings, limits and features names, reasons, warnings, peers and the command line.
 *
 * @example
 * ```ts ignore
 * import { hostileFixture } from "./_fixtures.ts";
 * const results = await hostileFixture();
 * ```
 */
export async function hostileFixture(): Promise<ResultsFile> {
  const f = await loadFixture(SAMPLE_PATH);
  f.device.description = HOSTILE;
  f.device.vendor = HOSTILE;
  f.device.architecture = HOSTILE;
  f.device.device = HOSTILE;
  f.device.features = [...f.device.features, HOSTILE];
  f.device.limits = { ...f.device.limits, [HOSTILE]: 1 };
  f.gitCommit = HOSTILE;
  f.tool.version = HOSTILE;
  f.denoVersion = HOSTILE;
  f.createdAt = HOSTILE;
  f.config = { argv: ["bench", HOSTILE] };
  if (f.ceilings) f.ceilings.clock = HOSTILE as "wall";
  for (const r of f.runs) {
    if (r.reason !== null) r.reason = `${r.reason} ${HOSTILE}`;
    r.warnings = [...r.warnings, HOSTILE];
  }
  for (const p of f.peers ?? []) {
    p.backend = HOSTILE;
    p.gpu = HOSTILE;
    p.dtype = HOSTILE;
    if (p.error !== undefined) p.error = HOSTILE;
  }
  return f;
}

/**
 * The sample stripped to its "n" sweep, without ceilings, peers or counters: the charts that
 * need the rest must show a note instead.
 *
 * @example
 * ```ts ignore
 * import { sparseFixture } from "./_fixtures.ts";
 * const results = await sparseFixture();
 * ```
 */
export async function sparseFixture(): Promise<ResultsFile> {
  const f = await loadFixture(SAMPLE_PATH);
  f.ceilings = null;
  delete f.peers;
  f.runs = f.runs.filter((r) => r.sweep === "n");
  for (const r of f.runs) r.hbmBytes.counted = null;
  return f;
}
