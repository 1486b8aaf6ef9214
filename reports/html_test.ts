import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { createHash } from "node:crypto";
import { renderHtml } from "./html.ts";
import { CHARTJS_VERSION, chartJsSource } from "./_chartjs.ts";
import {
  HOSTILE,
  hostileFixture,
  loadFixture,
  SAMPLE_H100_PATH,
  SAMPLE_PATH,
  sparseFixture,
} from "./_fixtures.ts";
import { escapeHtml, jsonForScript, markup, raw } from "./_html.ts";

/** The text of every `<script>` element, in order, with its opening tag. */
function scripts(page: string): { tag: string; body: string }[] {
  const out: { tag: string; body: string }[] = [];
  const re = /(<script[^>]*>)([\s\S]*?)<\/script>/gi;
  for (const m of page.matchAll(re)) out.push({ tag: m[1] ?? "", body: m[2] ?? "" });
  return out;
}

function dataOf(page: string): {
  labels: string[];
  charts: { id: string; series: unknown[] }[];
  results: { device: { description: string } }[];
} {
  const json = scripts(page).find((s) => s.tag.includes('id="attnbench-data"'));
  if (!json) throw new Error("the data script is missing");
  return JSON.parse(json.body);
}

Deno.test("chart.js is inlined from the npm package pinned in deno.json", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  ) as { imports: Record<string, string> };
  assertEquals(config.imports["chart.js"], `npm:chart.js@${CHARTJS_VERSION}`);
  const page = renderHtml([await loadFixture(SAMPLE_PATH)]);
  const src = chartJsSource();
  assertStringIncludes(src, `Chart.js v${CHARTJS_VERSION}`);
  assertStringIncludes(page, src);
  assert(!/sourceMappingURL/.test(src), "the source map comment must be dropped");
  assert(!/<script[^>]*\bsrc\s*=/i.test(page), "no external <script src>");
  assert(!/(src|href)\s*=\s*["']?(https?:)?\/\//i.test(page), "no remote src/href");
  assert(!/<link\b/i.test(page), "no <link> (stylesheets are inlined)");
  assertStringIncludes(page, `Chart.js ${CHARTJS_VERSION}`);
});

Deno.test("the page has exactly its three scripts, all allowed by the CSP hashes", async () => {
  const page = renderHtml([await loadFixture(SAMPLE_PATH)]);
  const list = scripts(page);
  assertEquals(list.length, 3);
  assertEquals(list[0]?.tag, '<script type="application/json" id="attnbench-data">');
  const attr = /http-equiv="Content-Security-Policy" content="([^"]*)"/.exec(page)?.[1] ?? "";
  const csp = attr.replaceAll("&#39;", "'");
  assertStringIncludes(csp, "default-src 'none'");
  for (const s of list.slice(1)) {
    const hash = createHash("sha256").update(s.body, "utf8").digest("base64");
    assertStringIncludes(csp, `'sha256-${hash}'`);
  }
  const style = /<style>([\s\S]*?)<\/style>/.exec(page)?.[1] ?? "";
  const styleHash = createHash("sha256").update(style, "utf8").digest("base64");
  assertStringIncludes(csp, `style-src 'sha256-${styleHash}'`);
});

Deno.test("hostile strings from the results file cannot break out or inject markup", async () => {
  const hostile = await hostileFixture();
  const page = renderHtml([hostile], { title: HOSTILE, labels: [HOSTILE] });
  // Still exactly three script elements: nothing closed the data script early.
  assertEquals(scripts(page).length, 3);
  assertEquals(page.match(/<\/script>/g)?.length, 3);
  assert(!page.includes("<script>window.__pwned"), "an injected <script> survived");
  assert(!/<img\b/i.test(page), "an injected <img> survived");
  assert(!page.includes("<!--"), "an HTML comment opener survived");
  assertStringIncludes(page, escapeHtml(HOSTILE));
  assertStringIncludes(page, "&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;");
  // The data survives the trip through the JSON script intact.
  const data = dataOf(page);
  assertEquals(data.results[0]?.device.description, HOSTILE);
  assertEquals(data.labels[0], HOSTILE);
});

Deno.test("skipped and failed runs appear in the runs table with their reason", async () => {
  const f = await loadFixture(SAMPLE_PATH);
  const page = renderHtml([f]);
  const skipped = f.runs.find((r) => r.status === "skipped")?.reason ?? "";
  const failed = f.runs.find((r) => r.status === "failed")?.reason ?? "";
  assert(skipped !== "" && failed !== "", "the fixture needs a skipped and a failed run");
  assertStringIncludes(page, '<tbody class="run skipped">');
  assertStringIncludes(page, '<tbody class="run failed">');
  assertStringIncludes(page, escapeHtml(skipped));
  assertStringIncludes(page, escapeHtml(failed));
  assertEquals(page.match(/<tbody class="run /g)?.length, f.runs.length);
});

Deno.test("every chart has data for the full sample; none is empty", async () => {
  const page = renderHtml([await loadFixture(SAMPLE_PATH)]);
  const data = dataOf(page);
  assertEquals(data.charts.map((c) => c.id), [
    "runtime",
    "speedup",
    "io-bytes",
    "io-flops",
    "tflops",
    "bytes",
    "roofline",
    "footprint",
    "block-size",
    "density",
    "decode-bandwidth",
    "decode-paging",
    "decode-waste",
  ]);
  for (const c of data.charts) {
    // The sample holds no decode runs: the decode charts are the ones left out.
    if (c.id.startsWith("decode-")) {
      assertEquals(c.series.length, 0, c.id);
      continue;
    }
    assert(c.series.length > 0, `${c.id} has no series`);
    assertStringIncludes(page, `<canvas id="chart-${c.id}"`);
  }
  assertStringIncludes(page, "Not drawn, for\n  lack of data in these results: Decode: bandwidth");
  assert(!page.includes('class="chart empty"'));
  // Peers, devices and summary are there.
  assertStringIncludes(page, '<section id="peers">');
  assertStringIncludes(page, "timed out after 120 s");
  assertStringIncludes(page, "maxStorageBufferBindingSize");
  assertStringIncludes(page, "fallback adapter");
  assertStringIncludes(page, "d3dc20d7c4e1");
});

Deno.test("charts without data are not drawn: one line names them, no empty card", async () => {
  const page = renderHtml([await sparseFixture()]);
  for (const id of ["block-size", "density"]) {
    assert(!page.includes(`id="figure-${id}"`), `${id} should have no figure`);
    assert(!page.includes(`<canvas id="chart-${id}"`), `${id} should have no canvas`);
  }
  assertMatch(
    page,
    /Not drawn, for\s+lack of data in these results: Block-size sweep; Density sweep/,
  );
  assertStringIncludes(page, "no measured ceilings, so no roof is drawn");
  assertStringIncludes(page, "No counted bytes");
  assert(!page.includes('<section id="peers">'));
  assertStringIncludes(page, '<canvas id="chart-roofline"');
});

Deno.test("several files are overlaid and labelled by device", async () => {
  const a = await loadFixture(SAMPLE_PATH);
  const b = await loadFixture(SAMPLE_H100_PATH);
  const page = renderHtml([a, b]);
  const data = dataOf(page);
  assertEquals(data.labels, ["llvmpipe (LLVM 15.0.6, 256 bits)", "NVIDIA H100 80GB HBM3"]);
  const runtime = data.charts.find((c) => c.id === "runtime")?.series as { label: string }[];
  assert(runtime.some((s) => s.label === "flash · NVIDIA H100 80GB HBM3"));
  assert(runtime.some((s) => s.label === "flash · llvmpipe (LLVM 15.0.6, 256 bits)"));
  assertStringIncludes(page, "file 2: dashed lines, ▲ markers");
  assertEquals(page.match(/<section class="card">/g)?.length, 2);
  // Same device twice (before / after): the date tells them apart.
  const twice = dataOf(renderHtml([a, await loadFixture(SAMPLE_PATH)]));
  assertEquals(twice.labels, [
    "llvmpipe (LLVM 15.0.6, 256 bits) · 2025-11-24 09:41 UTC #1",
    "llvmpipe (LLVM 15.0.6, 256 bits) · 2025-11-24 09:41 UTC #2",
  ]);
});

Deno.test("title option, default title and no results", async () => {
  const f = await loadFixture(SAMPLE_PATH);
  assertStringIncludes(renderHtml([f], { title: "<b>nightly</b>" }), "<title>&lt;b&gt;nightly");
  assertStringIncludes(renderHtml([f]), "<title>attnbench · llvmpipe (LLVM 15.0.6, 256 bits)");
  const empty = renderHtml([]);
  assertStringIncludes(empty, "No results to show.");
  assertEquals(scripts(empty).length, 3);
});

Deno.test("markup escapes interpolations; jsonForScript round-trips", () => {
  const evil = `<a href="x" onclick='y'>&`;
  assertEquals(
    markup`<td>${evil}</td>`.value,
    "<td>&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;</td>",
  );
  assertEquals(
    markup`${[evil, raw("<br>"), null, undefined, false, 0]}`.value,
    [
      escapeHtml(evil),
      "<br>",
      "0",
    ].join(""),
  );
  const value = { s: "</script><!-- \u2028\u2029 &", n: [1, 2.5] };
  const json = jsonForScript(value);
  assert(!/[<>&\u2028\u2029]/.test(json));
  assertEquals(JSON.parse(json), value);
});

Deno.test("the devices table states the M the theoretical bytes assumed, or that it is unknown", async () => {
  const old = await loadFixture(SAMPLE_PATH);
  assert(old.runs.every((r) => r.hbmBytes.sramBytes === undefined), "the fixture predates M");
  assertStringIncludes(renderHtml([old]), "not recorded (file written before M was recorded)");
  const recorded = await loadFixture(SAMPLE_PATH);
  for (const r of recorded.runs) r.hbmBytes.sramBytes = 32768;
  const page = renderHtml([recorded]);
  assertStringIncludes(page, "IO model M (theoretical bytes)");
  assertMatch(page, /IO model M \(theoretical bytes\)<\/th><td>[^<]*\(32768 B\)<\/td>/);
});
