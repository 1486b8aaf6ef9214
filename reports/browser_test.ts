/**
 * Opens rendered reports in real headless Chromium (through playwright-core, driven by
 * `_browser_driver.ts` in a subprocess) and checks that they run: no console or page errors, no
 * network requests that fail, every chart canvas painted, injected markup inert.
 *
 * Needs Chromium at /usr/bin/chromium (Debian: `apt-get install -y chromium`; or set
 * CHROMIUM_PATH). Without it the test is skipped, unless CI is set: then it fails.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import { renderHtml } from "./html.ts";
import { buildCharts } from "./_charts.ts";
import { CHROMIUM_PATH, type PageReport } from "./_chromium.ts";
import {
  DEFAULT_SWEEP_PATH,
  H200_DIR,
  HOSTILE,
  hostileFixture,
  loadFixture,
  SAMPLE_H100_PATH,
  SAMPLE_PATH,
  sparseFixture,
} from "./_fixtures.ts";

function hasChromium(): boolean {
  try {
    return Deno.statSync(CHROMIUM_PATH).isFile;
  } catch {
    return false;
  }
}

const CI = !["", "0", "false"].includes((Deno.env.get("CI") ?? "").toLowerCase());
const CHROMIUM = hasChromium();

if (!CHROMIUM && !CI) {
  console.warn(
    `browser_test: SKIPPED: ${CHROMIUM_PATH} does not exist. Install it with ` +
      "`apt-get install -y chromium` (or set CHROMIUM_PATH); with CI=true this is an error.",
  );
}

const ROOT = new URL("..", import.meta.url).pathname;
const DRIVER = new URL("./_browser_driver.ts", import.meta.url).pathname;

/** Runs the driver on the files (one browser for all) and returns its measurements. */
async function inspect(files: string[], extra: string[] = []): Promise<PageReport[]> {
  // playwright-core needs --allow-sys and reads /proc (which Deno allows only with -A), more
  // than the test task grants; so it runs in its own process.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", DRIVER, ...files, ...extra],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`browser driver failed (${out.code}):\n${stderr}\n${stdout}`);
  return JSON.parse(stdout);
}

/** Checks a page ran cleanly and every canvas it shows was drawn on. */
function assertClean(r: PageReport, canvases: number): void {
  const where = r.file.slice(r.file.lastIndexOf("/") + 1);
  assertEquals(r.consoleErrors, [], `${where}: console errors`);
  assertEquals(r.pageErrors, [], `${where}: page errors`);
  assertEquals(r.failedRequests, [], `${where}: failed requests`);
  assertEquals(r.canvases.length, canvases, `${where}: canvases`);
  assertEquals(r.chartsDrawn, canvases, `${where}: charts the page script drew`);
  assertEquals(r.figures - r.emptyFigures, canvases, `${where}: figures with a canvas`);
  for (const c of r.canvases) {
    assert(c.width > 100 && c.height > 100, `${where}: ${c.id} has no size`);
    // Axes and labels alone paint a few thousand pixels; the data adds coloured ones.
    assert(c.painted > 3000, `${where}: ${c.id} painted only ${c.painted} pixels`);
    assert(c.colored > 300, `${where}: ${c.id} has only ${c.colored} coloured pixels`);
  }
  assertEquals(r.images, 0, `${where}: <img> elements`);
  assertEquals(r.pwned, null, `${where}: injected script ran`);
}

/** A browser test: skipped without Chromium, failing without it under CI. */
function browserTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    ignore: !CHROMIUM && !CI,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      if (!CHROMIUM) {
        throw new Error(
          `CI is set but ${CHROMIUM_PATH} does not exist: install it (apt-get install -y chromium)`,
        );
      }
      await fn();
    },
  });
}

browserTest("reports open in headless Chromium without errors and draw every chart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "attnbench_browser_" });
  try {
    const sample = await loadFixture(SAMPLE_PATH);
    const h100 = await loadFixture(SAMPLE_H100_PATH);
    const pages: [string, string][] = [
      ["single.html", renderHtml([sample])],
      ["overlay.html", renderHtml([sample, h100])],
      ["sparse.html", renderHtml([await sparseFixture()])],
      ["hostile.html", renderHtml([await hostileFixture()], { title: HOSTILE })],
    ];
    const files = pages.map(([name]) => `${dir}/${name}`);
    for (const [i, [, page]] of pages.entries()) await Deno.writeTextFile(files[i] ?? "", page);
    const [single, overlay, sparse, hostile] = await inspect(files);
    if (!single || !overlay || !sparse || !hostile) throw new Error("missing page reports");

    assertClean(single, 10);
    assertEquals(single.cardDevices, ["llvmpipe (LLVM 15.0.6, 256 bits)"]);
    assertClean(overlay, 10);
    assertEquals(overlay.cardDevices, [
      "llvmpipe (LLVM 15.0.6, 256 bits)",
      "NVIDIA H100 80GB HBM3",
    ]);
    // Without sweeps the two sweep charts are not drawn at all; the other eight are.
    assertClean(sparse, 8);
    assertEquals(sparse.figures, 8);
    // Hostile strings show as text and run nothing.
    assertClean(hostile, 10);
    assertEquals(hostile.title, HOSTILE);
    assertEquals(hostile.cardDevices, [HOSTILE]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** At most this many legend entries (colours plus line styles) and legend lines per chart. */
const LEGEND_ITEMS_MAX = 8;
const LEGEND_LINES_MAX = 3;
/** At most this much blank space (px) at the bottom of a chart's card. */
const BLANK_MAX = 140;

/** Checks that a page reads: connected lines per kernel, small legends, no empty or overflowing boxes. */
function assertReadable(r: PageReport, kernels: string[]): void {
  const where = r.file.slice(r.file.lastIndexOf("/") + 1);
  const rd = r.readability;
  assert(!rd.pageOverflowsX, `${where}: the page scrolls sideways`);
  assertEquals(rd.overflowing, [], `${where}: elements sticking out of the page`);
  for (const f of rd.figures) {
    assert(f.hasCanvas, `${where}: ${f.id} is an empty card`);
    assert(f.blankBelow <= BLANK_MAX, `${where}: ${f.id} has ${f.blankBelow}px blank below`);
  }
  assert(
    rd.cardTextLengths.length > 0 && rd.cardTextLengths.every((n) => n > 0),
    `${where}: empty card`,
  );
  assert(rd.headline.length > 0, `${where}: no headline`);
  for (const c of rd.charts) {
    if (!c.drawn || c.legend === null) throw new Error(`${where}: ${c.id} not drawn`);
    assert(
      c.legend.items > 0 && c.legend.items <= LEGEND_ITEMS_MAX,
      `${where}: ${c.id} legend has ${c.legend.items} entries`,
    );
    assert(
      c.legend.lines <= LEGEND_LINES_MAX,
      `${where}: ${c.id} legend takes ${c.legend.lines} lines`,
    );
    assert(
      c.legend.belowPlot && c.legend.insideCanvas,
      `${where}: ${c.id} legend overlaps or is clipped`,
    );
    for (const d of c.datasets) {
      assertEquals(d.visiblePoints, d.points, `${where}: ${c.id}/${d.label} points off the plot`);
    }
  }
  const runtime = rd.charts.find((c) => c.id === "chart-runtime");
  if (!runtime) {
    // Only a file without a sweep over N (a block-size or density sweep) has no runtime chart.
    assertEquals(kernels, [], `${where}: no runtime chart`);
    return;
  }
  for (const k of kernels) {
    const line = runtime.datasets.find((d) => d.label === k || d.label.startsWith(`${k} (`));
    if (!line) throw new Error(`${where}: no runtime line for ${k}`);
    assert(line.line && line.points >= 2, `${where}: ${k} has ${line.points} connected points`);
  }
}

browserTest(
  "the default sweep's report and every H200 results file's report read at a glance",
  async () => {
    // Screenshots go to $ATTNBENCH_SCREENSHOTS when set (kept), else to a temporary folder.
    const keep = Deno.env.get("ATTNBENCH_SCREENSHOTS");
    const dir = keep ?? await Deno.makeTempDir({ prefix: "attnbench_readable_" });
    await Deno.mkdir(dir, { recursive: true });
    try {
      // The default `deno task bench` sweep (fixture) first, then docs/h200/results*.json.
      const h200Dir = H200_DIR.replace(/\/$/, "");
      const h200Files = [...Deno.readDirSync(h200Dir)].map((e) => e.name)
        .filter((n) => /^results.*\.json$/.test(n)).sort();
      assert(h200Files.length >= 7, `H200 results files: ${h200Files}`);
      const inputs = [DEFAULT_SWEEP_PATH, ...h200Files.map((n) => `${h200Dir}/${n}`)];
      const results = await Promise.all(inputs.map(loadFixture));
      const files = inputs.map((_, i) => `${dir}/report_${i}.html`);
      for (const [i, f] of results.entries()) await Deno.writeTextFile(files[i]!, renderHtml([f]));
      const pages = await inspect(files, ["--screenshot", `${dir}/report.png`]);
      assertEquals(pages.length, inputs.length);
      for (const [i, page] of pages.entries()) {
        const f = results[i]!;
        const drawn = buildCharts([f], ["x"]).filter((c) => c.series.length > 0).length;
        assertClean(page, drawn);
        const kernels = [
          ...new Set(
            f.runs.filter((r) => r.sweep === "n" && r.status === "ok").map((r) => r.kernel),
          ),
        ];
        assertReadable(page, kernels);
        for (const png of [`report_${i}.png`, `report_${i}_charts.png`]) {
          const bytes = await Deno.readFile(`${dir}/${png}`);
          assertEquals([...bytes.slice(1, 4)], [80, 78, 71], `${png} is a PNG`); // "PNG"
          assert(bytes.length > 20_000, `${png} is only ${bytes.length} bytes`);
        }
      }
      // The two reports the issue was about draw every chart a sweep over N has.
      assertEquals(pages[0]?.canvases.length, 8);
      assertEquals(pages[1 + h200Files.indexOf("results.json")]?.canvases.length, 8);
    } finally {
      if (!keep) await Deno.remove(dir, { recursive: true });
    }
  },
);
