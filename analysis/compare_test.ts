import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { type CompareOptions, compareResults, renderMarkdown, renderTable } from "./compare.ts";
import { runKey } from "../core/schema.ts";
import { makeResults, makeRun, noisySamples } from "../testdata/check/fixtures.ts";

const OPTS: CompareOptions = { thresholdPct: 5, allowDeviceMismatch: false };

const slower = (pct: number, seed = 2) => noisySamples(20, 2 * (1 + pct / 100), 0.01, seed);

Deno.test("identical files pass with every run within noise", () => {
  const runs = [makeRun(), makeRun({ n: 2048 }), makeRun({ kernel: "standard" })];
  const report = compareResults(makeResults(runs), makeResults(runs), OPTS);
  assertEquals(report.regressed, false);
  assertEquals(report.counts, { fail: 0, warn: 0, info: 0, ok: 3 });
  assertEquals(report.rows.map((r) => r.verdict), ["within noise", "within noise", "within noise"]);
  assertEquals(report.rows.map((r) => r.timing?.changePct), [0, 0, 0]);
  assertEquals(report.warnings, []);
});

Deno.test("a 20% slowdown with 1% noise regresses", () => {
  const report = compareResults(
    makeResults([makeRun()]),
    makeResults([makeRun({ samples: slower(20) })]),
    OPTS,
  );
  const row = report.rows[0]!;
  assertEquals([report.regressed, row.severity, row.verdict], [true, "fail", "regressed"]);
  assert(row.timing!.interval!.low > 1.15, JSON.stringify(row.timing));
  assertEquals(row.key, runKey(makeRun()));
});

Deno.test("a 2% change inside 5% noise passes", () => {
  const report = compareResults(
    makeResults([makeRun({ samples: noisySamples(20, 2, 0.05, 3) })]),
    makeResults([makeRun({ samples: noisySamples(20, 2.04, 0.05, 4) })]),
    OPTS,
  );
  assertEquals([report.regressed, report.rows[0]!.verdict], [false, "within noise"]);
});

Deno.test("a 20% speed-up is an improvement, not a failure", () => {
  const report = compareResults(
    makeResults([makeRun()]),
    makeResults([makeRun({ samples: slower(-20) })]),
    OPTS,
  );
  assertEquals([report.regressed, report.rows[0]!.severity], [false, "info"]);
  assertEquals(report.rows[0]!.verdict, "improved");
});

Deno.test("too few samples is its own verdict: a warning, neither pass nor fail", () => {
  const report = compareResults(
    makeResults([makeRun()]),
    makeResults([makeRun({ samples: [2.5, 2.5, 2.5] })]),
    OPTS,
  );
  const row = report.rows[0]!;
  assertEquals([report.regressed, row.severity, row.verdict], [false, "warn", "too few samples"]);
  assertEquals(row.timing?.changePct, null);
  assertStringIncludes(row.findings[0]!.detail, "20 baseline, 3 current (need 5 each)");
  const noTiming = compareResults(
    makeResults([makeRun()]),
    makeResults([makeRun({ samples: null })]),
    OPTS,
  );
  assertEquals(noTiming.rows[0]!.verdict, "too few samples");
});

Deno.test("a device mismatch disables timing verdicts and warns loudly", () => {
  const other = { ...makeResults([]).device, description: "NVIDIA H200" };
  const baseline = makeResults([makeRun()]);
  const current = makeResults([makeRun({ samples: slower(20) })], { device: other });
  const report = compareResults(baseline, current, OPTS);
  assertEquals([report.deviceMismatch, report.timingCompared, report.regressed], [
    true,
    false,
    false,
  ]);
  assertEquals(report.rows[0]!.verdict, "device mismatch");
  assertEquals(report.warnings.length, 1);
  assertStringIncludes(report.warnings[0]!, "DEVICE MISMATCH");
  assertStringIncludes(
    report.warnings[0]!,
    "(NVIDIA H100), current on nvidia hopper (NVIDIA H200)",
  );

  const allowed = compareResults(baseline, current, { ...OPTS, allowDeviceMismatch: true });
  assertEquals([allowed.timingCompared, allowed.regressed], [true, true]);
  assertStringIncludes(allowed.warnings[0]!, "DEVICE MISMATCH");
  assertStringIncludes(allowed.warnings[0]!, "compared anyway");
});

Deno.test("a byte increase fails and is reported exactly; a decrease is an improvement", () => {
  const hbm = (modeled: number, counted: number | null) => ({
    theoretical: 2_000_000,
    modeled,
    lowerBound: 1_048_576,
    counted,
  });
  const baseline = makeResults([
    makeRun({ n: 1024, hbmBytes: hbm(1_048_576, null) }),
    makeRun({ n: 2048, hbmBytes: hbm(4_194_304, 4_194_000), footprintBytes: 9_000_001 }),
  ]);
  const current = makeResults([
    makeRun({ n: 1024, hbmBytes: hbm(1_048_577, 5) }),
    makeRun({ n: 2048, hbmBytes: hbm(4_194_304, 4_193_000), footprintBytes: 9_000_000 }),
  ]);
  const report = compareResults(baseline, current, OPTS);
  assertEquals(report.regressed, true);
  const [up, down] = report.rows;
  assertEquals([up!.verdict, up!.severity], ["bytes increased", "fail"]);
  assertEquals(up!.bytes, [
    { field: "hbmBytes.modeled", baseline: 1_048_576, current: 1_048_577, delta: 1 },
  ], "a null count on one side is not compared");
  assertStringIncludes(up!.findings[0]!.detail, "hbmBytes.modeled 1048576 → 1048577 (+1)");
  assertEquals([down!.verdict, down!.severity], ["bytes decreased", "info"]);
  assertEquals(down!.bytes.map((b) => [b.field, b.delta]), [
    ["hbmBytes.counted", -1000],
    ["footprintBytes", -1],
  ]);
});

Deno.test("maxRelError over the dtype's tolerance fails", () => {
  const baseline = makeResults([makeRun(), makeRun({ dtype: "f16" })]);
  const current = makeResults([
    makeRun({ maxRelError: 2e-3 }),
    makeRun({ dtype: "f16", maxRelError: 2e-3 }),
  ]);
  const report = compareResults(baseline, current, OPTS);
  const byDtype = (dtype: string) => report.rows.find((r) => r.key.includes(`/${dtype}/`))!;
  assertEquals(byDtype("f32").verdict, "error over tolerance");
  assertEquals(byDtype("f32").correctness, { maxRelError: 2e-3, tolerance: 1e-4, pass: false });
  assertEquals(byDtype("f16").correctness?.pass, true, "2e-3 is within f16's 1e-2");
  assertEquals(report.regressed, true);

  const lenient = compareResults(baseline, current, { ...OPTS, tolerance: () => 1e-2 });
  assertEquals(lenient.regressed, false);
});

Deno.test("a run ok in the baseline but skipped, failed or missing in current fails", () => {
  const baseline = makeResults([makeRun({ n: 1 }), makeRun({ n: 2 }), makeRun({ n: 3 })]);
  const current = makeResults([
    makeRun({ n: 1, status: "skipped", reason: "exceeds maxBufferSize", samples: null }),
    makeRun({ n: 2, status: "failed", reason: "device lost", samples: null }),
  ]);
  const report = compareResults(baseline, current, OPTS);
  const verdicts = Object.fromEntries(report.rows.map((r) => [r.key.split("/")[4], r.verdict]));
  assertEquals(verdicts, { n1: "now skipped", n2: "now failed", n3: "missing" });
  assertEquals(report.counts.fail, 3);
  assertStringIncludes(
    report.rows.find((r) => r.verdict === "missing")!.findings[0]!.detail,
    "ok in baseline, missing from current",
  );
});

Deno.test("new runs and runs fixed since the baseline are listed, not failures", () => {
  const baseline = makeResults([makeRun({ n: 1, status: "failed", reason: "oom", samples: null })]);
  const current = makeResults([makeRun({ n: 1 }), makeRun({ n: 2 })]);
  const report = compareResults(baseline, current, OPTS);
  assertEquals(report.regressed, false);
  assertEquals(report.rows.map((r) => [r.verdict, r.severity, r.baselineStatus, r.currentStatus]), [
    ["now ok", "info", "failed", "ok"],
    ["new", "info", null, "ok"],
  ]);
});

Deno.test("rows are sorted worst first, larger regressions before smaller ones", () => {
  const runs = (n: number, samples?: number[]) => makeRun({ n, samples });
  const baseline = makeResults([runs(1), runs(2), runs(3), runs(4), runs(5)]);
  const current = makeResults([
    runs(1),
    runs(2, [3, 3, 3]),
    runs(3, slower(15)),
    runs(4, slower(40)),
    runs(6),
  ]);
  const report = compareResults(baseline, current, OPTS);
  assertEquals(
    report.rows.map((r) => `${r.key.split("/")[4]} ${r.verdict}`),
    [
      "n4 regressed",
      "n3 regressed",
      "n5 missing",
      "n2 too few samples",
      "n6 new",
      "n1 within noise",
    ],
  );
});

Deno.test("schema, tool version, duplicate keys and clock changes are warned about", () => {
  const baseline = makeResults([makeRun(), makeRun({ sweep: "block-size" })]);
  const current = makeResults([makeRun({ clock: "wall" })], {
    schema: "attnbench/results@2" as "attnbench/results@1",
    tool: { name: "attnbench", version: "0.2.0" },
  });
  const report = compareResults(baseline, current, OPTS);
  assertEquals(report.warnings.length, 3);
  assertStringIncludes(report.warnings[0]!, "SCHEMA MISMATCH");
  assertStringIncludes(report.warnings[1]!, "tool version differs: baseline 0.1.0, current 0.2.0");
  assertStringIncludes(report.warnings[2]!, "baseline has more than one run flash/f32");
  assertEquals(report.rows[0]!.findings.map((f) => f.label), ["clock changed", "within noise"]);
  assertEquals(report.rows[0]!.severity, "warn");
});

Deno.test("renderTable prints aligned columns worst first and the outcome", () => {
  const report = compareResults(
    makeResults([makeRun({ n: 1 }), makeRun({ n: 2 })]),
    makeResults([makeRun({ n: 1 }), makeRun({ n: 2, samples: slower(20) })]),
    OPTS,
  );
  const lines = renderTable(report);
  assertEquals(lines.length, 5);
  assert(lines[0]!.startsWith("SEVERITY  RUN"), lines[0]);
  assert(lines[1]!.startsWith("fail      flash/f32/b1/h8/n2/"), lines[1]);
  assert(lines[2]!.startsWith("ok        flash/f32/b1/h8/n1/"), lines[2]);
  const timingColumn = lines[0]!.indexOf("TIMING");
  assertEquals(lines[1]!.indexOf("regressed"), timingColumn);
  assertEquals(lines[2]!.indexOf("within noise"), timingColumn);
  assertStringIncludes(lines[1]!, "+20.");
  assertEquals(lines[3], "");
  assert(
    lines[4]!.startsWith("REGRESSED: 1 fail, 0 warn, 0 info, 1 ok (threshold 5%, 95%"),
    lines[4],
  );
});

Deno.test("renderMarkdown has the outcome, warnings and an escaped table", () => {
  const report = compareResults(
    makeResults([makeRun()]),
    makeResults([makeRun({ status: "failed", reason: "a | b", samples: null })], {
      device: { ...makeResults([]).device, vendor: "amd" },
    }),
    OPTS,
  );
  const md = renderMarkdown(report);
  assertStringIncludes(md, "## attnbench check: regression\n");
  assertStringIncludes(md, "> **Warning:** DEVICE MISMATCH");
  assertStringIncludes(md, "| SEVERITY | RUN | TIMING |");
  assertStringIncludes(md, "| fail | flash/f32/");
  assertStringIncludes(md, "failed in current (a \\| b)");
  const clean = renderMarkdown(
    compareResults(makeResults([makeRun()]), makeResults([makeRun()]), OPTS),
  );
  assertStringIncludes(clean, "## attnbench check: no regression\n");
  assert(!clean.includes("Warning"));
});
