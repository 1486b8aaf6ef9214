/**
 * End-to-end tests of the CLI as a user runs it: each case spawns `deno run -A cli/main.ts …` as
 * a subprocess and looks only at what a user sees — the exit code, stdout, stderr and the files
 * in `--out`.
 *
 * Bad input must exit 2 with one line on stderr, no stack trace, and nothing written. The GPU
 * cases need a WebGPU adapter (Mesa's llvmpipe will do: `apt-get install libgl1-mesa-dri
 * libegl-mesa0`) and are ignored without one; `.ci/run` checks that CI has one. The no-adapter
 * cases use `DENO_WEBGPU_BACKEND=metal`, which makes `requestAdapter()` return null on Linux.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { parseResults } from "../../analysis/results_io.ts";
import { kernelCatalog } from "../../kernels/catalog.ts";
import { RESULTS_SCHEMA } from "../../core/schema.ts";
import type { DeviceRecord } from "../../core/schema.ts";
import { FLOAT32_ATOMIC, openGpu } from "../../kernels/gpu.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** What a user sees of one run. */
interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run -A cli/main.ts ...args` from the repository root. */
async function attnbench(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

const show = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;

/** A stack frame, or Deno's report of an uncaught error: what a user's mistake must not show. */
const STACK = /^\s+at |error: Uncaught|\bat (file|ext):|\.ts:\d+:\d+/m;

/**
 * The stderr lines the tool itself printed. A foreign library may add its own noise (Mesa's
 * `error: XDG_RUNTIME_DIR is invalid or not set` on some machines), which tests must not
 * depend on; Deno's report of an uncaught error counts as the tool's.
 */
function toolLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => /^(attnbench\b|error: Uncaught)/.test(l));
}

/** Exit 2, exactly one line on stderr mentioning `text`, no stack, nothing on stdout. */
function assertUsageError(r: Run, text: string, what: string): void {
  assertEquals(r.code, 2, `${what}\n${show(r)}`);
  const lines = toolLines(r.stderr);
  assertEquals(lines.length, 1, `${what}: one line on stderr expected\n${show(r)}`);
  assertMatch(lines[0]!, /^attnbench( \w+)?: /, what);
  assertStringIncludes(lines[0]!, text, what);
  assert(!STACK.test(r.stderr), `${what}: no stack trace expected\n${show(r)}`);
  assertEquals(r.stdout, "", `${what}: nothing on stdout expected`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The files `bench` writes; none may appear after bad input. */
const OUTPUTS = ["results.json", "report.html", "results.csv", "results.md", "benchmark.json"];

async function assertNothingWritten(dir: string, what: string): Promise<void> {
  for (const f of OUTPUTS) assert(!(await exists(`${dir}/${f}`)), `${what}: wrote ${dir}/${f}`);
}

/** `bench --out out …args` and `verify …args` both refuse with `text`; bench writes nothing. */
async function assertBothRefuse(out: string, args: string[], text: string): Promise<void> {
  const what = `bench ${args.join(" ")}`;
  assertUsageError(await attnbench(["bench", "--out", out, ...args]), text, what);
  await assertNothingWritten(out, what);
  assertUsageError(await attnbench(["verify", ...args]), text, `verify ${args.join(" ")}`);
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "attnbench_e2e_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// The adapter this machine has, as `devices --json` reports it; null when there is none.
const probe = await attnbench(["devices", "--json"]);
const device: DeviceRecord | null = probe.code === 0 ? JSON.parse(probe.stdout) : null;
const noGpu = device === null;
if (noGpu) {
  console.warn(
    "cli_e2e_test: no WebGPU adapter: the GPU cases are ignored. Install Mesa's software " +
      "rasterizer (apt-get install libgl1-mesa-dri libegl-mesa0) to run them.",
  );
}
const hasF16 = device?.features.includes("shader-f16") ?? false;
// `devices` lists the features attention's forward uses; the atomic dQ's is asked for as the CLI
// asks (Deno lists it among no adapter's features even where a device grants it).
const atomicProbe = noGpu ? null : await openGpu();
const hasAtomic = atomicProbe?.device.features.has(FLOAT32_ATOMIC) ?? false;
atomicProbe?.device.destroy();

/** Bad shape flags: the arguments and a piece of the one-line message. */
const BAD_SHAPES: [string[], string][] = [
  [["--n", "0"], `--n must be a positive integer, got "0"`],
  [["--n", "-3"], "--n"],
  [["--n", "abc"], `--n must be a positive integer, got "abc"`],
  [["--d", "48"], `--d must be one of 32, 64, 128, got "48"`],
  [["--density", "0"], `--density must be a number in (0, 1]`],
  [["--density", "1.5"], `--density must be a number in (0, 1]`],
  [
    ["--kernels", "nope"],
    `--kernels must be one of standard, flash, block-sparse, decode, paged-decode, got "nope"`,
  ],
  [["--dtype", "f64"], `--dtype must be one of f32, f16, got "f64"`],
  [["--pass", "both"], `--pass must be one of fwd, bwd, fwd+bwd, got "both"`],
  [
    ["--pass", "bwd", "--kernels", "nope"],
    `--kernels must be one of standard-bwd, flash-bwd, block-sparse-bwd, got "nope"`,
  ],
];

Deno.test("an unknown command or flag exits 2 with one line and no stack", async () => {
  assertUsageError(await attnbench(["nope"]), `unknown command "nope"`, "nope");
  assertUsageError(await attnbench(["model", "--frobnicate"]), "--frobnicate", "model flag");
  assertUsageError(
    await attnbench(["check", "--current", "x.json"]),
    "--baseline FILE is required",
    "check without --baseline",
  );
  const none = await attnbench([]);
  assertEquals(none.code, 2, show(none));
  assert(!STACK.test(none.stderr), show(none));
});

Deno.test("model rejects bad shape flags with exit 2 (no GPU needed)", async () => {
  for (const [args, text] of BAD_SHAPES) {
    assertUsageError(await attnbench(["model", ...args]), text, `model ${args.join(" ")}`);
  }
});

Deno.test({
  name: "bench and verify reject bad shape flags with exit 2 and write nothing",
  ignore: noGpu,
  async fn() {
    await withTempDir(async (tmp) => {
      for (const [i, [args, text]] of BAD_SHAPES.entries()) {
        await assertBothRefuse(`${tmp}/bad${i}`, args, text);
      }
      const out = `${tmp}/export`;
      assertUsageError(
        await attnbench(["bench", "--out", out, "--export", "pdf"]),
        "--export",
        "bench --export pdf",
      );
      await assertNothingWritten(out, "bench --export pdf");
    });
  },
});

Deno.test({
  name: "--dtype f16 without shader-f16 exits 2 and writes nothing",
  ignore: noGpu || hasF16,
  async fn() {
    await withTempDir(async (tmp) => {
      const out = `${tmp}/f16`;
      const bench = await attnbench(["bench", "--out", out, "--dtype", "f16", "--n", "16"]);
      assertUsageError(bench, "no shader-f16 feature; use --dtype f32", "bench --dtype f16");
      await assertNothingWritten(out, "bench --dtype f16");
      const verify = await attnbench(["verify", "--dtype", "f16", "--n", "16"]);
      assertUsageError(verify, "no shader-f16 feature; use --dtype f32", "verify --dtype f16");
    });
  },
});

Deno.test("--dq: a bad value, or any value with --pass fwd, exits 2 before the GPU", async () => {
  await withTempDir(async (tmp) => {
    const cases: [string[], string][] = [
      [["--pass", "bwd", "--dq", "atomics"], "--dq atomics: expected pass, atomic, atomic-stagger"],
      [["--dq", "atomic"], "--dq needs --pass bwd or fwd+bwd"],
      [["--pass", "fwd", "--dq", "pass"], "--dq needs --pass bwd or fwd+bwd"],
    ];
    for (const [i, [args, text]] of cases.entries()) {
      await assertBothRefuse(`${tmp}/dq${i}`, args, text);
    }
  });
});

Deno.test({
  name: `--dq atomic without ${FLOAT32_ATOMIC}: exit 2, one line, nothing written${
    hasAtomic ? " (ignored: this adapter grants it)" : ""
  }`,
  ignore: noGpu || hasAtomic,
  async fn() {
    await withTempDir(async (tmp) => {
      const text = `--dq atomic: this adapter (${
        device!.description
      }) does not grant ${FLOAT32_ATOMIC}`;
      for (const pass of ["bwd", "fwd+bwd"]) {
        const args = ["--pass", pass, "--kernels", "flash", "--n", "9", "--dq", "atomic"];
        await assertBothRefuse(`${tmp}/${pass}`, args, text);
      }
    });
  },
});

Deno.test({
  name: "no adapter at all: devices, verify and bench exit 2 with a clear message",
  // DENO_WEBGPU_BACKEND=metal has no adapter only where there is no Metal.
  ignore: Deno.build.os !== "linux",
  async fn() {
    const env = { DENO_WEBGPU_BACKEND: "metal" };
    await withTempDir(async (tmp) => {
      const out = `${tmp}/nogpu`;
      for (const args of [["devices"], ["verify", "--n", "16"], ["bench", "--out", out]]) {
        const what = `${args.join(" ")} without an adapter`;
        assertUsageError(await attnbench(args, env), "no WebGPU adapter found", what);
      }
      await assertNothingWritten(out, "bench without an adapter");
      // The message says what to do.
      const r = await attnbench(["devices"], env);
      assertStringIncludes(r.stderr, "libgl1-mesa-dri");
    });
  },
});

Deno.test({
  name: "bench of a size that does not fit records it as skipped and exits 0",
  ignore: noGpu,
  async fn() {
    // Standard splits S and P under the binding limit, but Q (n·d floats, one head, d = 64) is
    // one buffer: pick n so that Q alone exceeds the device's binding (or buffer) limit.
    const limits = device!.limits;
    const limit = Math.min(
      limits.maxStorageBufferBindingSize ?? Infinity,
      limits.maxBufferSize ?? Infinity,
    );
    const n = (Math.floor(limit / (64 * 4 * 1024)) + 1) * 1024;
    await withTempDir(async (out) => {
      const r = await attnbench([
        ...["bench", "--kernels", "standard", "--n", String(n), "--heads", "1", "--batch", "1"],
        ...["--reps", "1", "--no-ceilings", "--no-report", "--out", out, "--quiet"],
      ]);
      assertEquals(r.code, 0, show(r));
      assert(!/^bench \d+\/\d+:/m.test(r.stderr), `--quiet: no progress lines\n${show(r)}`);
      const results = parseResults(
        await Deno.readTextFile(`${out}/results.json`),
        "results.json",
        kernelCatalog(),
      );
      assertEquals(results.runs.length, 1);
      const run = results.runs[0]!;
      assertEquals([run.kernel, run.n, run.status], ["standard", n, "skipped"]);
      assertStringIncludes(run.reason ?? "", "does not fit");
      assertEquals(run.timeMs, null);
      assertStringIncludes(r.stdout, "does not fit");
    });
  },
});

Deno.test({
  name: "verify --n 1,37 --d 32 passes",
  ignore: noGpu,
  async fn() {
    const r = await attnbench(["verify", "--n", "1,37", "--d", "32"]);
    assertEquals(r.code, 0, show(r));
    // 3 kernels × 2 sizes.
    assertMatch(r.stdout, /^6 passed, 0 failed$/m, show(r));
    assert(!STACK.test(r.stderr), show(r));
  },
});

Deno.test({
  name: "bench writes results, report and exports; bad flags later leave them unchanged",
  ignore: noGpu,
  async fn() {
    await withTempDir(async (out) => {
      const r = await attnbench([
        ...["bench", "--n", "16,33", "--reps", "3", "--no-ceilings", "--out", out],
        ...["--export", "csv,markdown,gab", "--count-io", "--verify"],
      ]);
      assertEquals(r.code, 0, show(r));
      assert(!STACK.test(r.stderr), show(r));
      // stderr is a pipe here: plain progress lines, one per run, naming the run.
      assertMatch(r.stderr, /^bench 1\/6: standard n=16 b×h=\d+×\d+ tile \d+x\d+$/m, show(r));
      assertMatch(r.stderr, /^bench 6\/6: block-sparse n=33 .* left\)$/m, show(r));
      // The user gave the sizes: no word of default sizes.
      assert(!r.stderr.includes("--n 64..512"), show(r));
      // The summary: spread, and how much faster than standard.
      assertMatch(
        r.stdout,
        /^ {2}flash ran [\d.]+ ± [\d.]+ times (faster|slower) than standard at N = 33$/m,
      );
      assertMatch(r.stdout, /^block-sparse .* random 25% .* ± .* … /m, show(r));

      const json = await Deno.readTextFile(`${out}/results.json`);
      const results = parseResults(json, "results.json", kernelCatalog());
      assertEquals(results.schema, RESULTS_SCHEMA);
      assertEquals(results.device.description, device!.description);
      assertEquals(results.ceilings, null, "--no-ceilings");
      // 3 kernels × 2 sizes, in order, every one ok, correct, and counted == modeled bytes.
      assertEquals(results.runs.map((x) => `${x.kernel}@${x.n}`), [
        "standard@16",
        "flash@16",
        "block-sparse@16",
        "standard@33",
        "flash@33",
        "block-sparse@33",
      ]);
      for (const run of results.runs) {
        const what = `${run.kernel} n=${run.n}`;
        assertEquals(run.status, "ok", `${what}: ${run.reason}`);
        assertEquals(run.hbmBytes.counted, run.hbmBytes.modeled, `${what}: counted == modeled`);
        assert(run.hbmBytes.modeled > 0, what);
        assert(run.maxRelError !== null && run.maxRelError <= 1e-4, `${what}: ${run.maxRelError}`);
        assertEquals(run.timeMs?.samples.length, 3, what);
        // Every parameter of the theoretical count is recorded; the floor holds; whole bytes.
        assertEquals(
          run.hbmBytes.sramBytes,
          device!.limits.maxComputeWorkgroupStorageSize,
          `${what}: M recorded`,
        );
        const s = run.hbmBytes.theoreticalDensity;
        assert(s !== undefined && s > 0 && s <= 1, `${what}: s ${s}`);
        if (run.kernel !== "block-sparse") assertEquals(s, 1, what);
        assert(Number.isInteger(run.hbmBytes.theoretical), `${what}: ${run.hbmBytes.theoretical}`);
        assert(run.hbmBytes.modeled >= run.hbmBytes.lowerBound, `${what}: modeled ≥ lower bound`);
        assert(run.hbmBytes.theoretical >= run.hbmBytes.lowerBound, `${what}: theoretical ≥ floor`);
      }

      const html = await Deno.readTextFile(`${out}/report.html`);
      assertMatch(html, /^<!doctype html>/i);
      const csv = (await Deno.readTextFile(`${out}/results.csv`)).trim().split("\n");
      assert(csv.length >= 1 + results.runs.length, "CSV: a header and a row per run");
      assertStringIncludes(csv[0]!, "kernel");
      assertStringIncludes(await Deno.readTextFile(`${out}/results.md`), "| flash |");
      const gab = JSON.parse(await Deno.readTextFile(`${out}/benchmark.json`)) as {
        name: string;
        unit: string;
        value: number;
      }[];
      assertEquals(gab.length, results.runs.length);
      for (const e of gab) {
        assert(typeof e.name === "string" && e.name !== "", JSON.stringify(e));
        assert(typeof e.value === "number" && e.value > 0, JSON.stringify(e));
        assertEquals(e.unit, "ms");
      }

      // A second bench into the same directory with bad flags changes nothing there.
      const before = await snapshot(out);
      assertUsageError(
        await attnbench(["bench", "--out", out, "--n", "0", "--export", "csv"]),
        "--n must be a positive integer",
        "second bench --n 0",
      );
      assertUsageError(
        await attnbench(["bench", "--out", out, "--reps", "0"]),
        "--reps must be a positive integer",
        "second bench --reps 0",
      );
      assertEquals(await snapshot(out), before, "the first run's files are unchanged");
      assertEquals(await Deno.readTextFile(`${out}/results.json`), json);
    });
  },
});

Deno.test("model --n 1024 --json prints JSON with the paper's standard count", async () => {
  const r = await attnbench(["model", "--n", "1024", "--json"]);
  assertEquals(r.code, 0, show(r));
  const model = JSON.parse(r.stdout) as {
    sizes: { n: number; kernels: { kernel: string; theoretical: { bytes: number } }[] }[];
  };
  assertEquals(model.sizes.map((s) => s.n), [1024]);
  const kernels = model.sizes[0]!.kernels;
  assertEquals(kernels.map((k) => k.kernel), ["standard", "flash", "block-sparse"]);
  // Algorithm 0: (4N² + 4Nd) elements a head, f32, B·H = 1·16 (the model's defaults).
  const [n, d, b, bh] = [1024, 64, 4, 16];
  assertEquals(kernels[0]!.theoretical.bytes, (4 * n * n + 4 * n * d) * b * bh);
});

/** Name → contents of every file in `dir`. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) files[e.name] = await Deno.readTextFile(`${dir}/${e.name}`);
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// The decode kernels from the command line.

/** Bad decode flags: the command, the arguments and a piece of the one-line message. */
const BAD_DECODE: [string, string[], string][] = [
  ["verify", ["--kv-heads", "2"], "--kv-heads applies to the decode kernels"],
  ["verify", ["--kernels", "decode", "--heads", "4", "--kv-heads", "3"], "must divide --heads 4"],
  ["verify", ["--kernels", "paged-decode", "--block-size", "7"], "from 8 to 256"],
  ["verify", ["--kernels", "decode", "--block-size", "16"], "applies to paged-decode"],
  ["verify", ["--kernels", "decode", "--lengths", "zipf"], "fixed, uniform:LO..HI or trace:FILE"],
  ["verify", ["--kernels", "decode", "--lengths", "trace:/nonexistent"], "cannot read"],
  ["verify", ["--kernels", "decode", "--context", "4,x"], "--context must be a positive integer"],
  ["bench", ["--sweep", "decode", "--kernels", "flash"], "drop flash from --kernels"],
  ["bench", ["--sweep", "block-size", "--kernels", "decode"], "use --sweep decode"],
  ["bench", ["--batches", "1,2"], "--batches applies to --sweep decode"],
  ["model", ["--memory", "12e9"], "--memory applies to the decode kernels"],
  ["model", ["--kernels", "decode", "--memory", "-1"], "--memory"],
  ["model", ["--workload", "sharegpt", "--context", "5"], "drop --context"],
];

Deno.test({
  name: "bad decode flags exit 2 with one line and write nothing",
  ignore: noGpu,
  async fn() {
    await withTempDir(async (out) => {
      for (const [command, args, why] of BAD_DECODE) {
        const extra = command === "bench" ? ["--out", out, "--no-ceilings"] : [];
        const r = await attnbench([command, ...args, ...extra]);
        assertUsageError(r, why, `${command} ${args.join(" ")}`);
        await assertNothingWritten(out, args.join(" "));
      }
    });
  },
});

Deno.test({
  name: "verify --kernels decode,paged-decode: lengths 1 and a prime, GQA, counted == modeled",
  ignore: noGpu,
  async fn() {
    const r = await attnbench([
      ...["verify", "--kernels", "decode,paged-decode", "--n", "1,37", "--heads", "4"],
      ...["--kv-heads", "2", "--batch", "3", "--block-size", "8", "--count-io", "--json"],
    ]);
    assertEquals(r.code, 0, show(r));
    const rows = JSON.parse(r.stdout).rows;
    assertEquals(rows.length, 4);
    for (const row of rows) {
      assert(row.pass && row.countedBytes === row.modeledBytes, JSON.stringify(row));
      assertEquals(row.decode.kvHeads, 2);
      // The tiles column: the split pass's knobs, then the KV heads and the cache layout.
      const layout = row.decode.blockSize === null ? "contiguous" : "block 8";
      assertMatch(row.tiles, new RegExp(`^\\d+x\\d+ rm\\d+ tx\\d+ · kv2 ${layout}$`));
    }
    assertEquals(rows.map((x: { decode: { blockSize: number | null } }) => x.decode.blockSize), [
      null,
      null,
      8,
      8,
    ]);
  },
});

Deno.test({
  name: "bench --sweep decode records the workload; check passes against itself",
  ignore: noGpu,
  async fn() {
    await withTempDir(async (out) => {
      const r = await attnbench([
        ...["bench", "--sweep", "decode", "--n", "17,100", "--batches", "1,2", "--heads", "2"],
        ...["--reps", "2", "--count-io", "--verify", "--no-ceilings", "--out", out, "--quiet"],
      ]);
      assertEquals(r.code, 0, show(r));
      const results = parseResults(
        await Deno.readTextFile(`${out}/results.json`),
        "results.json",
        kernelCatalog(),
      );
      // 2 kernels × 2 context lengths × 2 batches.
      assertEquals(results.runs.length, 8);
      for (const run of results.runs) {
        assertEquals([run.sweep, run.status], ["decode", "ok"], JSON.stringify(run));
        assertEquals(run.decode!.contexts.length, run.batch);
        assertEquals(run.hbmBytes.counted, run.hbmBytes.modeled);
        assert(run.maxRelError !== null);
      }
      const html = await Deno.readTextFile(`${out}/report.html`);
      assertStringIncludes(html, "Decode: bandwidth vs context length");
      const check = await attnbench([
        ...["check", "--baseline", `${out}/results.json`, "--current", `${out}/results.json`],
        "--no-timing",
      ]);
      assertEquals(check.code, 0, show(check));
    });
  },
});

Deno.test("model --workload sharegpt: the paper's order of waste, paged above 95%", async () => {
  const r = await attnbench(["model", "--workload", "sharegpt", "--n", "2048", "--json"]);
  assertEquals(r.code, 0, show(r));
  const kv = JSON.parse(r.stdout).kvCache;
  const share = Object.fromEntries(
    kv.usage.map((u: { scheme: string; tokenShare: number }) => [u.scheme, u.tokenShare]),
  );
  assert(share["contiguous-max"] < share["contiguous-pow2"], JSON.stringify(share));
  assert(share["contiguous-pow2"] < share["contiguous-oracle"], JSON.stringify(share));
  assert(share.paged > 0.95, JSON.stringify(share));
  assertEquals(kv.sequences, 512);
  const text = await attnbench([
    "model",
    "--kernels",
    "paged-decode",
    "--n",
    "100",
    "--samples",
    "4",
  ]);
  assertEquals(text.code, 0, show(text));
  assertStringIncludes(text.stdout, "KV-cache memory model");
  assertStringIncludes(text.stdout, "block sharing (4 sequences)");
});
