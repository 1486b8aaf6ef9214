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
  opts: DriverOptions = {},
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
      const figures = opts.figures && files.length > 1 ? `${opts.figures}/${i}` : opts.figures;
      if (figures) await Deno.mkdir(figures, { recursive: true });
      out.push(await inspect(browser, file, { ...opts, screenshot: shot, figures }));
    }
    return out;
  } finally {
    await browser.close();
  }
}

/** What to save besides the measurements. */
export interface DriverOptions {
  /** A full-page PNG here, and the top of the page (up to the charts) as `…_charts.png`. */
  screenshot?: string;
  /** One PNG per chart figure in this folder (`figure-<id>.png`). */
  figures?: string;
  /** Viewport width in px (default 1400). */
  width?: number;
}

type Browser = Awaited<ReturnType<typeof chromium.launch>>;

async function inspect(
  browser: Browser,
  file: string,
  opts: DriverOptions,
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
      // Readability: what each chart shows (from its Chart.js instance), what each figure and
      // card holds, and whether anything sticks out of its box.
      type ChartLike = {
        width: number;
        height: number;
        chartArea: { left: number; right: number; top: number; bottom: number };
        legend?: { legendItems?: unknown[]; lineWidths?: number[]; top: number; bottom: number };
        data: { datasets: { label?: string; showLine?: boolean; data: unknown[] }[] };
        getDatasetMeta(i: number): { data: { x: number; y: number }[]; hidden: boolean | null };
      };
      const getChart = (globalThis as unknown as {
        Chart?: { getChart(c: HTMLCanvasElement): ChartLike | undefined };
      }).Chart?.getChart;
      const charts = [...document.querySelectorAll("canvas")].map((c) => {
        const chart = getChart ? getChart(c) : undefined;
        if (!chart) return { id: c.id, drawn: false, legend: null, datasets: [] };
        const a = chart.chartArea;
        const inside = (p: { x: number; y: number }) =>
          Number.isFinite(p.x) && Number.isFinite(p.y) && p.x >= a.left - 1 &&
          p.x <= a.right + 1 && p.y >= a.top - 1 && p.y <= a.bottom + 1;
        const lg = chart.legend;
        return {
          id: c.id,
          drawn: true,
          legend: lg
            ? {
              items: lg.legendItems?.length ?? 0,
              lines: lg.lineWidths?.length ?? 0,
              belowPlot: lg.top >= a.bottom,
              insideCanvas: lg.bottom <= chart.height + 1,
            }
            : null,
          datasets: chart.data.datasets.map((ds, i) => ({
            label: ds.label ?? "",
            line: ds.showLine === true,
            points: ds.data.length,
            visiblePoints: chart.getDatasetMeta(i).data.filter(inside).length,
          })),
        };
      });
      const figureBoxes = [...document.querySelectorAll("figure.chart")].map((f) => {
        const box = f.getBoundingClientRect();
        const last = f.lastElementChild?.getBoundingClientRect();
        return {
          id: f.id,
          hasCanvas: f.querySelector("canvas") !== null,
          blankBelow: last ? Math.round(box.bottom - last.bottom) : Math.round(box.height),
        };
      });
      const cards = [...document.querySelectorAll(".card, .stat, #headline li")].map((e) =>
        (e.textContent ?? "").trim().length
      );
      const main = document.querySelector("main")?.getBoundingClientRect();
      const overflowing = [...document.querySelectorAll("main *")]
        .filter((e) => !e.closest(".panel"))
        .filter((e) => {
          const r = e.getBoundingClientRect();
          return main !== undefined && r.width > 0 && r.right > main.right + 1;
        })
        .map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${e.className}`);
      return {
        readability: {
          charts,
          figures: figureBoxes,
          cardTextLengths: cards,
          overflowing,
          pageOverflowsX: document.documentElement.scrollWidth > globalThis.innerWidth,
          headline: document.getElementById("headline")?.textContent?.trim() ?? "",
        },
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
    if (opts.screenshot) {
      await page.screenshot({ path: opts.screenshot, fullPage: true });
      // The part a reader sees first: the headline, summary and charts.
      const top = await page.evaluate(() => {
        const charts = document.getElementById("charts")?.getBoundingClientRect();
        return charts ? Math.ceil(charts.bottom + globalThis.scrollY) : 0;
      });
      if (top > 0) {
        await page.screenshot({
          path: opts.screenshot.replace(/(\.png)?$/, "_charts.png"),
          fullPage: true,
          clip: { x: 0, y: 0, width: opts.width ?? 1400, height: top + 12 },
        });
      }
    }
    if (opts.figures) {
      for (const id of await page.$$eval("figure.chart", (fs) => fs.map((f) => f.id))) {
        await page.locator(`#${id}`).screenshot({ path: `${opts.figures}/${id}.png` });
      }
    }
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
    console.error(
      "usage: _browser_driver.ts REPORT.html... [--screenshot PNG] [--figures DIR] [--width PX]",
    );
    Deno.exit(2);
  }
  const width = flags.get("--width");
  const reports = await inspectPages(files, {
    screenshot: flags.get("--screenshot"),
    figures: flags.get("--figures"),
    width: width ? Number(width) : undefined,
  });
  console.log(JSON.stringify(reports));
}
