import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { reportCommand } from "./report.ts";
import { captureOutput } from "../output.ts";
import { UsageError } from "../../core/errors.ts";

const SAMPLE = new URL("../../testdata/reports/sample_results.json", import.meta.url).pathname;
const H100 = new URL("../../testdata/reports/sample_results_h100.json", import.meta.url).pathname;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs `report` in a fresh temporary directory and removes it afterwards. */
async function inTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "attnbench_report_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts `report args` throws a UsageError mentioning `text` and leaves `out` unwritten. */
async function rejects(args: string[], text: string, out?: string): Promise<void> {
  const io = captureOutput();
  const e = await assertRejects(() => reportCommand.run(args, io), UsageError);
  assertStringIncludes((e as UsageError).message, text);
  assertEquals((e as UsageError).exitCode, 2);
  if (out) assert(!(await exists(out)), `${out} must not be written`);
  assertEquals(io.stdout, []);
}

Deno.test("report --help prints usage and returns 0", async () => {
  for (const flag of ["--help", "-h"]) {
    const io = captureOutput();
    assertEquals(await reportCommand.run([flag], io), 0);
    assertStringIncludes(
      io.stdout.join("\n"),
      "Usage: attnbench report RESULTS.json... --out FILE",
    );
  }
  assertEquals(reportCommand.name, "report");
  assert(reportCommand.summary.length > 0 && reportCommand.help.includes("--title"));
});

Deno.test("report renders one file to HTML atomically", async () => {
  await inTemp(async (dir) => {
    const out = `${dir}/report.html`;
    const io = captureOutput();
    assertEquals(await reportCommand.run([SAMPLE, "--out", out, "--title", "nightly"], io), 0);
    const page = await Deno.readTextFile(out);
    assert(page.startsWith("<!doctype html>"));
    assertStringIncludes(page, "<title>nightly</title>");
    assertEquals(io.stdout, [`wrote ${out} (html: 33 runs from 1 results file)`]);
    const left = [...Deno.readDirSync(dir)].map((e) => e.name);
    assertEquals(left, ["report.html"], "no temporary file is left behind");
  });
});

Deno.test("report overlays several files, with labels", async () => {
  await inTemp(async (dir) => {
    const out = `${dir}/compare.html`;
    const io = captureOutput();
    const args = [SAMPLE, H100, "-o", out, "--label", "cpu", "--label", "h100"];
    assertEquals(await reportCommand.run(args, io), 0);
    const page = await Deno.readTextFile(out);
    assertStringIncludes(page, "flash · h100");
    assertStringIncludes(page, "flash · cpu");
    assertStringIncludes(io.stdout[0] ?? "", "from 2 results files");
  });
});

Deno.test("report picks the format from --out's extension or --format", async () => {
  await inTemp(async (dir) => {
    const io = captureOutput();
    assertEquals(await reportCommand.run([SAMPLE, "--out", `${dir}/r.csv`], io), 0);
    assert((await Deno.readTextFile(`${dir}/r.csv`)).startsWith("file,device,"));
    assertEquals(await reportCommand.run([SAMPLE, "--out", `${dir}/r.md`], io), 0);
    assert((await Deno.readTextFile(`${dir}/r.md`)).startsWith("## attnbench results"));
    assertEquals(await reportCommand.run([SAMPLE, "--out", `${dir}/bench.json`], io), 0);
    const gab = JSON.parse(await Deno.readTextFile(`${dir}/bench.json`));
    assert(Array.isArray(gab) && gab.length > 0 && gab[0].unit === "ms");
    assertEquals(
      await reportCommand.run([SAMPLE, "--out", `${dir}/x.txt`, "--format", "md"], io),
      0,
    );
    assert((await Deno.readTextFile(`${dir}/x.txt`)).startsWith("## attnbench"));
  });
});

Deno.test("report: user mistakes are UsageErrors and nothing is written", async () => {
  await inTemp(async (dir) => {
    const out = `${dir}/report.html`;
    await rejects(["--out", out], "at least one results file", out);
    await rejects([SAMPLE], "needs --out", out);
    await rejects([SAMPLE, "--out"], "needs --out", out);
    await rejects([`${dir}/missing.json`, "--out", out], "cannot read", out);
    await Deno.writeTextFile(`${dir}/bad.json`, '{"schema": "attnbench/results@1", "runs": [');
    await rejects([`${dir}/bad.json`, "--out", out], "not valid JSON", out);
    await Deno.writeTextFile(`${dir}/other.json`, '{"schema": "something-else"}');
    await rejects([SAMPLE, `${dir}/other.json`, "--out", out], "schema", out);
    await rejects([SAMPLE, "--out", out, "--colour"], "unknown option --colour", out);
    await rejects([SAMPLE, "--out", `${dir}/report.pdf`], "cannot tell the format");
    await rejects([SAMPLE, "--out", out, "--format", "pdf"], "--format must be one of", out);
    await rejects([SAMPLE, "--out", out, "--label", "a", "--label", "b"], "2 --label", out);
    await rejects([SAMPLE, "--out", `${dir}/no/such/dir/r.html`], "cannot write");
  });
});

Deno.test("report refuses to overwrite one of its inputs", async () => {
  await inTemp(async (dir) => {
    const input = `${dir}/results.json`;
    await Deno.copyFile(SAMPLE, input);
    const before = await Deno.readTextFile(input);
    await rejects([input, "--out", input, "--format", "gab"], "is one of the input files");
    assertEquals(await Deno.readTextFile(input), before);
  });
});
