/**
 * Reports of results files: a self-contained HTML report with charts, and exporters to CSV,
 * Markdown and github-action-benchmark JSON. Everything here works on recorded results, without
 * a GPU.
 *
 * ```ts ignore
 * import { readResults } from "../analysis/results_io.ts";
 * import { renderHtml, toCsv } from "./mod.ts";
 * const results = [await readResults("out/results.json")];
 * await Deno.writeTextFile("out/report.html", renderHtml(results, { title: "nightly" }));
 * await Deno.writeTextFile("out/results.csv", toCsv(results));
 * ```
 *
 * @module
 */

export { type HtmlOptions, renderHtml } from "./html.ts";
export { fmtMs, fmtNum, fmtVendor } from "./_format.ts";
export { type BenchmarkEntry, toCsv, toGithubActionBenchmark, toMarkdown } from "./export.ts";
