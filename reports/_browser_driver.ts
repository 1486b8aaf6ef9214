/**
 * Opens a report in headless Chromium through playwright-core and prints what the page did as
 * one JSON object on stdout: console errors, page errors, failed requests and, per chart canvas,
 * how many pixels were painted. Optionally saves a full-page screenshot.
 *
 * Run by `browser_test.ts` as a subprocess with `-A`: playwright-core reads `os.homedir()`
 * (`--allow-sys`) and probes `/proc/sys/fs/binfmt_misc` at import, which Deno only allows with
 * `--allow-all`; the project's test task grants neither. Also handy by hand:
 *
 * ```sh
 * deno run -A reports/_browser_driver.ts out/report.html --screenshot /tmp/report.png
 * ```
 *
 * @module
 */

import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, CHROMIUM_PATH, type PageReport } from "./_chromium.ts";

/**
 * Loads each file in one headless Chromium and measures it.
 *
 * @example
 * ```ts ignore
 * import { inspectPages } from "./_browser_driver.ts";
 * const [report] = await inspectPages(["out/report.html"]);
 * console.assert(report?.pageErrors.length === 0);
 * ```
 */
export async function inspectPages(
  files: string[],
  opts: { screenshot?: string; width?: number } = {},
): Promise<PageReport[]> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
  try {
    const out: PageReport[] = [];
    for (const [i, file] of files.entries()) {
      const shot = opts.screenshot && files.length > 1
        ? opts.screenshot.replace(/(\.png)?$/, `_${i}.png`)
        : opts.screenshot;
      out.push(await inspect(browser, file, { ...opts, screenshot: shot }));
    }
    return out;
  } finally {
    await browser.close();
  }
}

type Browser = Awaited<ReturnType<typeof chromium.launch>>;

async function inspect(
  browser: Browser,
  file: string,
  opts: { screenshot?: string; width?: number },
): Promise<PageReport> {
  const context = await browser.newContext({
    viewport: { width: opts.width ?? 1400, height: 1000 },
  });
  try {
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    const pageErrors: string[] = [];
    const failedRequests: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => pageErrors.push(String(e?.stack ?? e)));
    page.on("requestfailed", (r) => failedRequests.push(r.url()));
    const url = new URL(file, `file://${Deno.cwd()}/`).href;
    await page.goto(url, { waitUntil: "load", timeout: 30_000 });
    await page.waitForSelector("html[data-charts-drawn]", { timeout: 15_000 }).catch(() => {});
    // Two frames, so anything Chart.js defers to requestAnimationFrame has been painted.
    await page.evaluate(() =>
      new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(() => ok(null))))
    );
    const measured = await page.evaluate(() => {
      const canvases = [...document.querySelectorAll("canvas")].map((c) => {
        const ctx = c.getContext("2d");
        let painted = 0;
        let colored = 0;
        if (ctx && c.width > 0 && c.height > 0) {
          const px = ctx.getImageData(0, 0, c.width, c.height).data;
          for (let i = 0; i < px.length; i += 4) {
            if ((px[i + 3] ?? 0) === 0) continue;
            painted++;
            const r = px[i] ?? 0, g = px[i + 1] ?? 0, b = px[i + 2] ?? 0;
            if (Math.max(r, g, b) - Math.min(r, g, b) > 40) colored++;
          }
        }
        return { id: c.id, width: c.width, height: c.height, painted, colored };
      });
      return {
        title: document.title,
        cardDevices: [...document.querySelectorAll(".card .device")].map((e) =>
          e.textContent ?? ""
        ),
        images: document.images.length,
        chartsDrawn: Number(document.documentElement.getAttribute("data-charts-drawn") ?? -1),
        figures: document.querySelectorAll("figure.chart").length,
        emptyFigures: document.querySelectorAll("figure.chart.empty").length,
        canvases,
        pwned: (globalThis as unknown as { __pwned?: unknown }).__pwned ?? null,
      };
    });
    if (opts.screenshot) await page.screenshot({ path: opts.screenshot, fullPage: true });
    return { file, consoleErrors, pageErrors, failedRequests, ...measured };
  } finally {
    await context.close();
  }
}

if (import.meta.main) {
  const files: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < Deno.args.length; i++) {
    const a = Deno.args[i] ?? "";
    if (a.startsWith("--")) flags.set(a, Deno.args[++i] ?? "");
    else files.push(a);
  }
  if (files.length === 0) {
    console.error("usage: _browser_driver.ts REPORT.html... [--screenshot PNG] [--width PX]");
    Deno.exit(2);
  }
  const width = flags.get("--width");
  const reports = await inspectPages(files, {
    screenshot: flags.get("--screenshot"),
    width: width ? Number(width) : undefined,
  });
  console.log(JSON.stringify(reports));
}
