/**
 * The Chart.js UMD build, read from the npm package in `node_modules/` at module load through a
 * text import, so reports embed it and open offline. The import is resolved by Deno's module
 * graph (no `--allow-read` needed, and it works from any working directory); `deno install`
 * populates `node_modules/` from the `chart.js` entry of deno.json.
 * Private to `reports/`.
 *
 * @module
 */

import umdSource from "../node_modules/chart.js/dist/chart.umd.min.js" with { type: "text" };
import chartPackage from "../node_modules/chart.js/package.json" with { type: "json" };

/** The Chart.js version the report embeds, from the package's package.json. */
export const CHARTJS_VERSION: string = String(chartPackage.version);

/**
 * The Chart.js source ready to sit inside a `<script>` element: the source-map comment is
 * dropped (the map is not embedded) and the text is checked not to close the element early.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { chartJsSource } from "./_chartjs.ts";
 * assert(chartJsSource().includes("Chart"));
 * ```
 */
export function chartJsSource(): string {
  const src = umdSource.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n");
  if (/<\/script|<!--/i.test(src)) {
    // A new Chart.js build could contain these in a string literal; escaping would need a JS
    // parser, so refuse loudly rather than emit a broken page.
    throw new Error("chart.umd.min.js contains '</script' or '<!--'; cannot inline it safely");
  }
  return src;
}
