import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import {
  fmtRate,
  fmtRatio,
  maskText,
  passLines,
  progressText,
  ratioWithError,
  relativeSummary,
  runsTable,
  summaryLines,
  tileText,
  timingWarnings,
} from "./bench_summary.ts";
import { parseResults } from "../analysis/results_io.ts";
import { kernelCatalog } from "../kernels/catalog.ts";
import type { ResultsFile } from "../core/schema.ts";
import { fmtMs } from "../reports/mod.ts";

const DEFAULT_SWEEP = new URL("../testdata/reports/default_sweep_llvmpipe.json", import.meta.url);
const H200 = new URL("../docs/h200/results-d64-v5.json", import.meta.url);
const DECODE = new URL("../testdata/reports/h200_decode_v1.json", import.meta.url);

async function load(url: URL): Promise<ResultsFile> {
  return parseResults(await Deno.readTextFile(url), url.pathname, kernelCatalog());
}

Deno.test("the table shows median ± σ, min … max, significant digits and the mask", async () => {
  const f = await load(DEFAULT_SWEEP);
  const lines = runsTable(f.runs);
  assertEquals(lines.length, f.runs.length + 1);
  assertStringIncludes(lines[0] ?? "", "median ± σ");
  f.runs.forEach((r, i) => {
    const line = lines[i + 1] ?? "";
    if (r.status !== "ok") return;
    assertStringIncludes(line, " ± ");
    assertStringIncludes(line, " … ");
    // Slow adapters: a rate is never rounded to zero.
    assert(!/\s0\.00\s|\s0\s/.test(line), `rates rounded to zero: ${line}`);
    assertStringIncludes(line, fmtRate(r.tflops));
    if (r.mask !== null) assertStringIncludes(line, `${r.mask} 25%`);
  });
  assertEquals(maskText({ ...f.runs[0]!, causal: true, mask: null }), "causal");
});

Deno.test("relative summary: how many times faster than standard, with its error", async () => {
  const f = await load(H200);
  const lines = relativeSummary(f.runs);
  const std = f.runs.find((r) => r.kernel === "standard" && r.n === 1024)!.timeMs!;
  const fl = f.runs.find((r) => r.kernel === "flash" && r.n === 1024)!.timeMs!;
  const { ratio, error } = ratioWithError(std, fl);
  assertEquals(ratio, std.median / fl.median);
  assert(error > 0 && error < ratio / 10);
  // The robust spread: block-sparse's bimodal samples at N = 1024 do not swamp the error.
  const bs = f.runs.find((r) => r.kernel === "block-sparse" && r.n === 1024)!.timeMs!;
  assert(ratioWithError(std, bs).error < ratioWithError(std, bs).ratio / 10);
  assert(
    lines.includes(
      `  flash ran ${fmtRatio(ratio, error)} times faster than standard at N = 1024`,
    ),
    lines.join("\n"),
  );
  assertEquals(lines[0], "Summary (b×h 16×16, d 64, f32):");
  // Without standard, the slowest kernel is the reference.
  const noStd = relativeSummary(f.runs.filter((r) => r.kernel !== "standard"));
  assertMatch(
    noStd[1] ?? "",
    /^ {2}block-sparse \(random 25%\) ran [\d.]+ ± [\d.]+ times faster than flash at N = 16384$/,
  );
  assertEquals(relativeSummary(f.runs.filter((r) => r.kernel === "flash")), []);
});

Deno.test("warnings: outliers and the run's own (cold first run) are named with the run", async () => {
  const f = await load(H200);
  const r = structuredClone(f.runs.find((x) => x.kernel === "flash" && x.n === 512)!);
  r.timeMs!.samples[3] = r.timeMs!.median * 1.5;
  r.timeMs!.outliers = [0, 3];
  r.warnings = ["first run took 50 ms, 20× the median: caches or compilation were cold"];
  const w = timingWarnings([r]);
  assertEquals(w.length, 2);
  assertStringIncludes(w[0] ?? "", "flash n=512 d=64 b×h=32×16 f32 tile ");
  assertStringIncludes(w[0] ?? "", "2 of 20 samples are statistical outliers");
  assertStringIncludes(w[0] ?? "", `the farthest ${fmtMs(r.timeMs!.median * 1.5)}`);
  // Outliers a few µs off a tight median are not worth a warning.
  const tight = structuredClone(r);
  tight.timeMs!.samples[3] = tight.timeMs!.median * 1.001;
  tight.warnings = [];
  assertEquals(timingWarnings([tight]), []);
  assertStringIncludes(w[1] ?? "", "first run took 50 ms");
  const quiet = f.runs.filter((x) => x.timeMs?.outliers.length === 0 && x.warnings.length === 0);
  assertEquals(timingWarnings(quiet), []);
  // The bimodal block-sparse run at N = 1024 (1.13 ms, some 5.74 ms) is warned about.
  assert(timingWarnings(f.runs).some((l) => /^block-sparse n=1024 .*outliers.*5\.74 ms/.test(l)));
  // The H200 file's cold first runs are recorded and now printed.
  const cold = timingWarnings(f.runs).filter((l) => l.includes("first run took"));
  assertEquals(
    cold.length,
    f.runs.filter((x) => x.warnings.some((y) => /first run/.test(y))).length,
  );
  assert(cold.length > 0);
});

Deno.test("passes say which run (shape and tile) they belong to", async () => {
  const f = await load(H200);
  const lines = passLines(f.runs);
  assertEquals(lines.length, f.runs.filter((r) => r.passes).length);
  assertMatch(lines[0] ?? "", /^standard n=256 d=64 b×h=64×16 f32 tile 128x32 passes: scores /);
});

Deno.test("a decode run's tiles column: its split pass's knobs, then its KV heads and cache", async () => {
  const f = await load(DECODE);
  const lines = runsTable(f.runs);
  assertMatch(lines[0] ?? "", /\btile\b/);
  assertStringIncludes(lines[1] ?? "", " 64x64 rm4 tx8 · kv16 contiguous ");
  assertStringIncludes(lines[2] ?? "", " 64x64 rm4 tx8 · kv16 block 16 ");
  // Every row as wide as the header (the column takes its widest cell).
  for (const line of lines) assertEquals(line.length, lines[0]!.length, line);
  assertMatch(
    passLines(f.runs)[1] ?? "",
    /^paged-decode n=\d+ d=128 b×h=\d+×\d+ f16 tile 64x64 rm4 tx8 · kv16 block 16 passes: split /,
  );
  const attention = (await load(H200)).runs[0]!;
  assertEquals(tileText(attention.tile, attention.decode), "128x32");
});

Deno.test("summary: vendor as a name, every section in order", async () => {
  const f = await load(DEFAULT_SWEEP);
  const lines = summaryLines(f);
  assertEquals(
    lines[0],
    "device: llvmpipe (LLVM 15.0.6, 256 bits) · Mesa (0x10005) · fallback (software) adapter",
  );
  assertMatch(lines[1] ?? "", /^ceilings: copy [\d.]+ GB\/s, FMA 0\.\d+ TFLOP\/s, launch/);
  assert(lines.some((l) => /^ {2}flash ran [\d.]+ ± [\d.]+ times faster than standard/.test(l)));
});

Deno.test("progress: a bar on a terminal, plain lines otherwise, with an ETA after the first run", () => {
  assertEquals(progressText(0, 3, "standard n=64", 0, false), "bench 1/3: standard n=64");
  assertEquals(
    progressText(1, 3, "flash n=64", 4000, false),
    "bench 2/3: flash n=64 (4s so far, about 8s left)",
  );
  assertMatch(progressText(1, 3, "flash n=64", 4000, true), /^\[#{8}\.{16}\] 1\/3 flash n=64 \(/);
});
