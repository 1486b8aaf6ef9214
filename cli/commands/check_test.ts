import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { checkCommand, parseThreshold } from "./check.ts";
import { UsageError } from "../../core/errors.ts";
import { captureOutput } from "../output.ts";
import type { ResultsFile } from "../../core/schema.ts";
import { makeResults, makeRun, noisySamples } from "../../testdata/check/fixtures.ts";

/** A temporary folder that `fn` writes fixtures into; removed afterwards. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "attnbench_check_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes a results file (or raw text) to `dir/name` and returns the path. */
async function fixture(dir: string, name: string, content: ResultsFile | string) {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(
    path,
    typeof content === "string" ? content : JSON.stringify(content, null, 2),
  );
  return path;
}

async function check(args: string[]) {
  const io = captureOutput();
  const code = await checkCommand.run(args, io);
  return { code, stdout: io.stdout.join("\n"), stderr: io.stderr.join("\n") };
}

/** Runs `check` on a baseline and a current file written to a temporary folder. */
async function checkFiles(baseline: ResultsFile, current: ResultsFile, extra: string[] = []) {
  let result: Awaited<ReturnType<typeof check>> | undefined;
  await inTempDir(async (dir) => {
    const b = await fixture(dir, "baseline.json", baseline);
    const c = await fixture(dir, "current.json", current);
    result = await check(["--baseline", b, "--current", c, ...extra]);
  });
  return result!;
}

const BASE = makeResults([makeRun({ n: 1024 }), makeRun({ n: 2048 })]);

function expectUsageError(error: Error, includes: string) {
  if (!(error instanceof UsageError)) throw new Error(`expected a UsageError, got ${error}`);
  assertEquals(error.exitCode, 2);
  assertStringIncludes(error.message, includes);
}

Deno.test("parseThreshold: '5%' and '5' are both five percent", () => {
  assertEquals(parseThreshold("5%"), 5);
  assertEquals(parseThreshold("5"), 5);
  assertEquals(parseThreshold("12.5"), 12.5);
  assertEquals(parseThreshold("0.5%"), 0.5);
  assertEquals(parseThreshold("0"), 0);
  assertEquals(parseThreshold(" 3% "), 3);
});

Deno.test("parseThreshold refuses negative, non-numeric and ambiguous thresholds", () => {
  const cases: [string, string][] = [
    ["-5", "must not be negative"],
    ["-5%", "must not be negative"],
    ["abc", "must be a percentage"],
    ["NaN", "must be a percentage"],
    ["Infinity", "must be a percentage"],
    ["", "must be a percentage"],
    ["5%%", "must be a percentage"],
    ["0.05", "ambiguous: write 0.05% for 0.05 percent or 5% for 5 percent"],
  ];
  for (const [text, message] of cases) {
    expectUsageError(assertThrows(() => parseThreshold(text)), message);
  }
});

Deno.test("--help and -h print the help and return 0", async () => {
  for (const flag of ["--help", "-h"]) {
    const { code, stdout } = await check([flag]);
    assertEquals(code, 0);
    assertStringIncludes(stdout, "--save-baseline FILE");
    assertStringIncludes(stdout, "Exit codes: 0 no regression, 1 regression, 2 bad input");
  }
});

Deno.test("missing, empty, unknown and stray arguments are usage errors", async () => {
  const cases: [string[], string][] = [
    [["--current", "c.json"], "--baseline FILE is required"],
    [["--baseline", "b.json"], "--current FILE is required"],
    [["--baseline", "--current", "c.json"], "--baseline needs a FILE"],
    [["--baseline", "b.json", "--current", "c.json", "--treshold", "5"], "unknown flag --treshold"],
    [["--baseline", "b.json", "--current", "c.json", "--verbose=1"], "unknown flag --verbose;"],
    [["b.json", "c.json"], "unexpected argument b.json"],
    [["--baseline", "b", "--current", "c", "--threshold=-1"], "must not be negative"],
  ];
  for (const [args, message] of cases) {
    expectUsageError(await assertRejects(() => check(args)), message);
  }
});

Deno.test("identical files pass with exit 0 and no warnings", async () => {
  const { code, stdout, stderr } = await checkFiles(BASE, BASE);
  assertEquals(code, 0);
  assertStringIncludes(stdout, "SEVERITY  RUN");
  assertStringIncludes(stdout, "\nno regression: 0 fail, 0 warn, 0 info, 2 ok (threshold 5%");
  assertEquals(stderr, "");
});

Deno.test("a 20% slowdown exits 1, unless the threshold is above it", async () => {
  const current = makeResults([
    makeRun({ n: 1024, samples: noisySamples(20, 2.4, 0.01, 2) }),
    makeRun({ n: 2048 }),
  ]);
  const strict = await checkFiles(BASE, current);
  assertEquals(strict.code, 1);
  assert(strict.stdout.split("\n")[1]!.startsWith("fail      flash/f32/b1/h8/n1024/"));
  assertStringIncludes(strict.stdout, "regressed");
  assertEquals((await checkFiles(BASE, current, ["--threshold", "25%"])).code, 0);
});

Deno.test("--no-timing judges no timing, but still fails a bytes increase", async () => {
  const slower = makeResults([
    makeRun({ n: 1024, samples: noisySamples(20, 2.4, 0.01, 2) }),
    makeRun({ n: 2048 }),
  ]);
  const quiet = await checkFiles(BASE, slower, ["--no-timing"]);
  assertEquals(quiet.code, 0);
  assertStringIncludes(quiet.stdout, "not judged (--no-timing)");
  const moreBytes = makeResults([makeRun({ n: 1024 }), makeRun({ n: 2048 })]);
  moreBytes.runs[0]!.hbmBytes.modeled += 4;
  assertEquals((await checkFiles(BASE, moreBytes, ["--no-timing"])).code, 1);
});

Deno.test("too few samples is reported but does not fail", async () => {
  const current = makeResults([makeRun({ n: 1024, samples: [9, 9, 9] }), makeRun({ n: 2048 })]);
  const { code, stdout } = await checkFiles(BASE, current);
  assertEquals(code, 0);
  assertStringIncludes(stdout, "too few samples: 20 baseline, 3 current (need 5 each)");
});

Deno.test("a truncated file is a usage error", async () => {
  await inTempDir(async (dir) => {
    const b = await fixture(dir, "baseline.json", BASE);
    const c = await fixture(dir, "current.json", JSON.stringify(BASE).slice(0, 300));
    const error = await assertRejects(() => check(["--baseline", b, "--current", c]));
    expectUsageError(error, "current.json is not valid JSON");
    assertStringIncludes(error.message, "truncated");
  });
});

Deno.test("a file of another schema is a usage error", async () => {
  const other = { ...BASE, schema: "hyperfine/export@1" } as unknown as ResultsFile;
  const error = await assertRejects(() => checkFiles(other, BASE));
  expectUsageError(error, 'has schema "hyperfine/export@1", expected "attnbench/results@1"');
});

Deno.test("an unreadable file is a usage error", async () => {
  await inTempDir(async (dir) => {
    const c = await fixture(dir, "current.json", BASE);
    const error = await assertRejects(() =>
      check(["--baseline", `${dir}/nope.json`, "--current", c])
    );
    expectUsageError(error, `cannot read ${dir}/nope.json`);
  });
});

Deno.test("a run missing from the current file exits 1", async () => {
  const { code, stdout } = await checkFiles(BASE, makeResults([makeRun({ n: 1024 })]));
  assertEquals(code, 1);
  assertStringIncludes(stdout, "missing: ok in baseline, missing from current");
});

Deno.test("a bytes increase exits 1 and is reported exactly", async () => {
  const current = makeResults([
    makeRun({ n: 1024, footprintBytes: 4_194_305 }),
    makeRun({ n: 2048 }),
  ]);
  const { code, stdout } = await checkFiles(BASE, current);
  assertEquals(code, 1);
  assertStringIncludes(stdout, "bytes increased: footprintBytes 4194304 → 4194305 (+1)");
});

Deno.test("maxRelError over the tolerance exits 1", async () => {
  const current = makeResults([makeRun({ n: 1024, maxRelError: 5e-4 }), makeRun({ n: 2048 })]);
  const { code, stdout } = await checkFiles(BASE, current);
  assertEquals(code, 1);
  assertStringIncludes(stdout, "error over tolerance: maxRelError 0.0005 > f32 tolerance 0.0001");
});

Deno.test("a device mismatch warns on stderr and disables timing verdicts unless allowed", async () => {
  const device = { ...BASE.device, vendor: "apple", architecture: "metal-3", description: "M2" };
  const current = makeResults([
    makeRun({ n: 1024, samples: noisySamples(20, 3, 0.01, 3) }),
    makeRun({ n: 2048 }),
  ], { device });
  const judged = await checkFiles(BASE, current);
  assertEquals(judged.code, 0);
  assertStringIncludes(judged.stderr, "warning: DEVICE MISMATCH: baseline ran on nvidia hopper");
  assertStringIncludes(judged.stdout, "device mismatch");
  const allowed = await checkFiles(BASE, current, ["--allow-device-mismatch"]);
  assertEquals(allowed.code, 1);
  assertStringIncludes(allowed.stderr, "warning: DEVICE MISMATCH");
});

Deno.test("--json prints the report object and nothing else on stdout", async () => {
  const { code, stdout } = await checkFiles(BASE, makeResults([makeRun({ n: 1024 })]), ["--json"]);
  assertEquals(code, 1);
  const report = JSON.parse(stdout);
  assertEquals(report.regressed, true);
  assertEquals(report.thresholdPct, 5);
  assertEquals(report.rows[0].verdict, "missing");
});

Deno.test("--save-baseline writes the current results to the given path only", async () => {
  await inTempDir(async (dir) => {
    const baselineText = JSON.stringify(BASE, null, 2);
    const b = await fixture(dir, "baseline.json", baselineText);
    const current = makeResults([makeRun({ n: 1024 })], { gitCommit: "abc1234" });
    const c = await fixture(dir, "current.json", current);
    const saved = `${dir}/next-baseline.json`;
    const { code, stderr } = await check([
      "--baseline",
      b,
      "--current",
      c,
      "--save-baseline",
      saved,
    ]);
    assertEquals(code, 1);
    assertEquals(JSON.parse(await Deno.readTextFile(saved)), current);
    assertEquals(await Deno.readTextFile(b), baselineText, "the baseline is untouched");
    assertStringIncludes(stderr, `as the baseline ${saved} (even though it regressed)`);
  });
});

Deno.test("--save-baseline writes nothing when a file does not parse", async () => {
  await inTempDir(async (dir) => {
    const b = await fixture(dir, "baseline.json", BASE);
    const c = await fixture(dir, "current.json", '{"schema": "attnbench/res');
    const saved = `${dir}/next-baseline.json`;
    await assertRejects(() => check(["--baseline", b, "--current", c, "--save-baseline", saved]));
    await assertRejects(() => Deno.stat(saved), Deno.errors.NotFound);
  });
});

Deno.test("--markdown writes the Markdown report to a file", async () => {
  await inTempDir(async (dir) => {
    const b = await fixture(dir, "baseline.json", BASE);
    const c = await fixture(dir, "current.json", BASE);
    const md = `${dir}/summary.md`;
    const { code, stdout } = await check(["--baseline", b, "--current", c, "--markdown", md]);
    assertEquals(code, 0);
    const text = await Deno.readTextFile(md);
    assert(text.startsWith("## attnbench check: no regression\n"), text);
    assertStringIncludes(text, "| ok | flash/f32/b1/h8/n1024/");
    assertStringIncludes(stdout, "no regression", "the table still goes to stdout");
  });
});
