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
import { CHROMIUM_PATH, type PageReport } from "./_chromium.ts";
import {
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
async function inspect(files: string[]): Promise<PageReport[]> {
  // playwright-core needs --allow-sys and reads /proc (which Deno allows only with -A), more
  // than the test task grants; so it runs in its own process.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", DRIVER, ...files],
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

Deno.test({
  name: "reports open in headless Chromium without errors and draw every chart",
  ignore: !CHROMIUM && !CI,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    if (!CHROMIUM) {
      throw new Error(
        `CI is set but ${CHROMIUM_PATH} does not exist: install it (apt-get install -y chromium)`,
      );
    }
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

      assertClean(single, 8);
      assertEquals(single.cardDevices, ["llvmpipe (LLVM 15.0.6, 256 bits)"]);
      assertClean(overlay, 8);
      assertEquals(overlay.cardDevices, [
        "llvmpipe (LLVM 15.0.6, 256 bits)",
        "NVIDIA H100 80GB HBM3",
      ]);
      // Without sweeps the two sweep charts are notes; the other six still draw.
      assertClean(sparse, 6);
      assertEquals(sparse.emptyFigures, 2);
      // Hostile strings show as text and run nothing.
      assertClean(hostile, 8);
      assertEquals(hostile.title, HOSTILE);
      assertEquals(hostile.cardDevices, [HOSTILE]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
