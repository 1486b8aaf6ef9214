/**
 * The hostile-user suite: a table of bad inputs across every command's flags, every input file
 * kind (results, baselines, tuned tiles, peers) with truncated, mistyped, out-of-range and
 * hostile contents, and output paths that cannot be written. Each case runs the CLI's `main`
 * in process (no GPU is opened: bad input is refused first) and asserts
 * - its exit code (2 for bad input),
 * - exactly one line on stderr, `attnbench[ <command>]: …`, with no stack trace and nothing on
 *   stdout,
 * - nothing written and nothing lost: every file in the work folder (inputs, outputs of an
 *   earlier run) is byte-for-byte what it was, and no file or folder was added.
 *
 * A few cases need a real process (signals, the environment) and spawn one.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { COMMANDS, main, takeQuiet } from "./main.ts";
import { captureOutput } from "./output.ts";
import type { Command } from "./command.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const BASELINE = JSON.parse(await Deno.readTextFile(`${ROOT}ci/baseline.json`));
const TUNED = JSON.parse(await Deno.readTextFile(`${ROOT}attnbench-tuned.json`));
const PEER = {
  gpu: "NVIDIA H200",
  backend: "MATH",
  n: 512,
  d: 64,
  batch_heads: 512,
  dtype: "float32",
  causal: false,
  ms: 1.97,
  tflops: 17.4,
};

/** A stack frame or Deno's report of an uncaught error. */
const STACK = /^\s+at |error: Uncaught|\bat (file|ext):|\.ts:\d+:\d+/m;

const DELETE = Symbol("delete");

/** A deep copy of `value` with the field at `path` (`runs[0].hbmBytes.modeled`) set or deleted. */
function withField(value: unknown, path: string, v: unknown): unknown {
  const copy = structuredClone(value);
  const keys = path.replace(/\[(\d+)\]/g, ".$1").split(".");
  let o = copy as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  const last = keys.at(-1)!;
  if (v === DELETE) delete o[last];
  else o[last] = v;
  return copy;
}

/** Every run of `value` with `field` (dotted, inside a run) set or deleted. */
function everyRun(value: unknown, field: string, v: unknown): unknown {
  let copy = structuredClone(value) as { runs: unknown[] };
  copy.runs.forEach((_, i) => copy = withField(copy, `runs[${i}].${field}`, v) as typeof copy);
  return copy;
}

/** Bad results files: a name, the text, and a piece of the one-line message. */
const BAD_RESULTS: [string, string, string][] = [
  ["empty", "", "not valid JSON"],
  ["truncated", JSON.stringify(BASELINE).slice(0, 500), "not valid JSON"],
  ["half", JSON.stringify(BASELINE, null, 2).slice(0, 4000), "not valid JSON"],
  ["garbage", "\u0000\u0001\u00ff binary", "not valid JSON"],
  ["NaN literal", '{"schema": NaN}', "not valid JSON"],
  [
    "nested 100000 deep",
    JSON.stringify(BASELINE).replace(
      '"config":{',
      `"config":{"deep":${"[".repeat(1e5)}${"]".repeat(1e5)},`,
    ),
    "deeper than 64 levels",
  ],
  ["array", "[]", "expected an object"],
  ["number", "42", "expected an object"],
  ["null", "null", "expected an object"],
  ["other schema", '{"schema": "hyperfine/export@1"}', "has schema"],
  ["no schema", '{"runs": []}', "has schema"],
  ...([
    ["createdAt number", "createdAt", 5, "createdAt"],
    ["no tool", "tool", DELETE, "tool"],
    ["tool name", "tool.name", "other", "tool.name"],
    ["device empty", "device", {}, "device.vendor"],
    ["device missing", "device", DELETE, "device"],
    ["device limits string", "device.limits.maxBufferSize", "big", "device.limits"],
    ["device fallback string", "device.isFallbackAdapter", "yes", "isFallbackAdapter"],
    ["features not array", "device.features", "shader-f16", "device.features"],
    ["ceilings string", "ceilings", "none", "ceilings"],
    ["config array", "config", [], "config"],
    ["runs missing", "runs", DELETE, "runs"],
    ["runs object", "runs", {}, "runs"],
    ["run null", "runs[0]", null, "runs[0]"],
    ["unknown kernel", "runs[0].kernel", "turbo", "runs[0].kernel"],
    ["dtype f64", "runs[0].dtype", "f64", "runs[0].dtype"],
    ["n negative", "runs[1].n", -5, "runs[1].n"],
    ["n zero", "runs[1].n", 0, "runs[1].n"],
    ["n string", "runs[1].n", "37", "runs[1].n"],
    ["n fraction", "runs[1].n", 1.5, "runs[1].n"],
    ["n huge", "runs[1].n", 1e300, "runs[1].n"],
    ["batch missing", "runs[2].batch", DELETE, "runs[2].batch"],
    ["heads null", "runs[2].heads", null, "runs[2].heads"],
    ["d 48", "runs[0].d", 48, "runs[0].d"],
    ["causal string", "runs[0].causal", "no", "runs[0].causal"],
    ["density 0", "runs[2].density", 0, "runs[2].density"],
    ["density 2", "runs[2].density", 2, "runs[2].density"],
    ["dense density", "runs[1].density", 0.5, "runs[1].density"],
    ["mask on standard", "runs[0].mask", "random", "runs[0].mask"],
    ["mask unknown", "runs[2].mask", "checker", "runs[2].mask"],
    ["tile zero", "runs[0].tile.br", 0, "runs[0].tile.br"],
    ["tile string", "runs[0].tile.bc", "8", "runs[0].tile.bc"],
    ["tile missing", "runs[0].tile", DELETE, "runs[0].tile"],
    ["rm over br", "runs[0].tile.rm", 64, "runs[0].tile.rm"],
    ["sweep unknown", "runs[0].sweep", "x", "runs[0].sweep"],
    ["status unknown", "runs[0].status", "great", "runs[0].status"],
    ["failed without reason", "runs[0].status", "failed", "runs[0].reason"],
    ["ok with reason", "runs[0].reason", "because", "runs[0].reason"],
    ["clock unknown", "runs[0].clock", "sundial", "runs[0].clock"],
    ["compileMs negative", "runs[0].compileMs", -1, "runs[0].compileMs"],
    ["ok without time", "runs[0].timeMs", null, "runs[0].timeMs"],
    ["median negative", "runs[0].timeMs.median", -0.3, "runs[0].timeMs.median"],
    ["no samples", "runs[0].timeMs.samples", [], "runs[0].timeMs.samples"],
    ["sample string", "runs[0].timeMs.samples[1]", "0.3", "runs[0].timeMs.samples[1]"],
    ["sample negative", "runs[0].timeMs.samples[1]", -3, "runs[0].timeMs.samples[1]"],
    ["outlier out of range", "runs[0].timeMs.outliers", [99], "runs[0].timeMs.outliers[0]"],
    ["flops string", "runs[0].flops", "512", "runs[0].flops"],
    ["tflops negative", "runs[0].tflops", -1, "runs[0].tflops"],
    ["hbmBytes missing", "runs[3].hbmBytes", DELETE, "runs[3].hbmBytes"],
    ["modeled string", "runs[3].hbmBytes.modeled", "2176", "runs[3].hbmBytes.modeled"],
    ["modeled null", "runs[3].hbmBytes.modeled", null, "runs[3].hbmBytes.modeled"],
    ["counted string", "runs[3].hbmBytes.counted", "1", "runs[3].hbmBytes.counted"],
    ["footprint null", "runs[4].footprintBytes", null, "runs[4].footprintBytes"],
    ["footprint missing", "runs[4].footprintBytes", DELETE, "runs[4].footprintBytes"],
    ["maxRelError string", "runs[5].maxRelError", "0", "runs[5].maxRelError"],
    ["maxRelError negative", "runs[5].maxRelError", -1, "runs[5].maxRelError"],
    ["warnings string", "runs[5].warnings", "none", "runs[5].warnings"],
    ["passes bad", "runs[0].passes[0].medianMs", "fast", "runs[0].passes[0].medianMs"],
    ["peers object", "peers", {}, "peers"],
    ["peer bad", "peers", [{ backend: "MATH" }], "peers[0].n"],
  ] as [string, string, unknown, string][]).map((
    [name, path, v, text],
  ): [string, string, string] => [name, JSON.stringify(withField(BASELINE, path, v)), text]),
  [
    "every run without hbmBytes",
    JSON.stringify(everyRun(BASELINE, "hbmBytes", DELETE)),
    "runs[0].hbmBytes",
  ],
  [
    "every maxRelError a string",
    JSON.stringify(everyRun(BASELINE, "maxRelError", "tiny")),
    "runs[0].maxRelError",
  ],
];

/** Bad tuned-tiles files. */
const KEY = Object.keys(TUNED.adapters)[0]!;
const ENTRY = `adapters.${KEY}.entries`;
const BAD_TUNED: [string, string, string][] = [
  ["empty", "", "not valid JSON"],
  ["truncated", JSON.stringify(TUNED).slice(0, 200), "not valid JSON"],
  ["other schema", '{"schema": "x", "adapters": {}}', "schema"],
  ["adapters null", '{"schema": "attnbench/tuned@1", "adapters": null}', "adapters"],
  ...([
    ["tiles strings", "br", "32", "tiles.br"],
    ["tiles zero", "br", 0, "tiles.br"],
    ["tiles null", null, null, "tiles"],
    ["odd sizes", "bc", 7, "tiles"],
    ["rm not dividing br", "rm", 3, "tiles"],
  ] as [string, string | null, unknown, string][]).map(([name, key, v, text]) => {
    const t = structuredClone(TUNED);
    const entry = Object.values(t.adapters[KEY].entries)[0] as { tiles: unknown };
    if (key === null) entry.tiles = v;
    else (entry.tiles as Record<string, unknown>)[key] = v;
    return [name, JSON.stringify(t), text] as [string, string, string];
  }),
  ...([
    ["bad key", { "turbo/f32/d64": { tiles: { br: 8, bc: 8, rm: 2, tx: 4 } } }, "entries"],
    ["medianMs negative", null, "medianMs"],
  ] as [string, unknown, string][]).map(([name, entries, text]) => {
    const t = structuredClone(TUNED);
    if (entries) t.adapters[KEY].entries = entries;
    else (Object.values(t.adapters[KEY].entries)[0] as { medianMs: number }).medianMs = -1;
    return [name, JSON.stringify(t), text] as [string, string, string];
  }),
];
void ENTRY;

/** Bad peers files (JSON lines). */
const BAD_PEERS: [string, string, string][] = [
  ["not JSON", "{nope\n", "line 1 is not JSON"],
  ["truncated", JSON.stringify(PEER).slice(0, 30), "line 1 is not JSON"],
  ["array line", "[1, 2]\n", "expected an object"],
  ["n string", JSON.stringify({ ...PEER, n: "512" }), "n: expected"],
  ["n negative", JSON.stringify({ ...PEER, n: -1 }), "n: expected"],
  ["batch_heads missing", JSON.stringify({ ...PEER, batch_heads: undefined }), "batch_heads"],
  ["ms negative", JSON.stringify({ ...PEER, ms: -2 }), "ms: expected"],
  ["ms string", JSON.stringify({ ...PEER, ms: "fast" }), "ms: expected"],
  ["causal string", JSON.stringify({ ...PEER, causal: "no" }), "causal"],
  ["second line bad", `${JSON.stringify(PEER)}\n${JSON.stringify({ ...PEER, d: 0 })}`, "line 2"],
];

/** One case: a name, the arguments (given the work folder), the exit code and the message. */
interface Case {
  name: string;
  args: (dir: string) => string[];
  code?: number;
  text: string;
}

const V = "--no-ceilings";
/** Flags a bench case adds so that, if it were wrongly accepted, it would stay small. */
const SMALL = ["--n", "1", "--kernels", "flash", V];

const BAD_SHAPE_FLAGS: [string[], string][] = [
  [["--n", "0"], "--n must be a positive integer"],
  [["--n", "-3"], "--n"],
  [["--n", "abc"], "--n must be a positive integer"],
  [["--n", "1..3"], "power of two"],
  [["--n", "128..64"], "power of two"],
  [["--n", "99999999999"], "--n must be at most"],
  [["--n", "1..4503599627370496"], "--n must be at most"],
  [["--n", ","], "--n takes positive integers"],
  [["--n", "64", "--n", "65"], "--n is given twice"],
  [["--d", "48"], "--d must be one of 32, 64, 128"],
  [["--density", "0"], "--density must be a number in (0, 1]"],
  [["--density", "NaN"], "--density must be a number in (0, 1]"],
  [["--density", "Infinity"], "--density must be a number in (0, 1]"],
  [["--kernels", "nope"], "--kernels must be one of"],
  [["--dtype", "f64"], "--dtype must be one of f32, f16"],
  [["--mask", "checker"], "--mask must be one of"],
  [["--seed", "1.5"], "--seed must be a non-negative integer"],
  [["--batch", "0"], "--batch must be a positive integer"],
  [["--heads", "99999999999"], "--heads must be at most"],
];

const CASES: Case[] = [
  // Top level and devices.
  { name: "unknown command", args: () => ["nope"], text: 'unknown command "nope"' },
  { name: "command case", args: () => ["Bench"], text: 'unknown command "Bench"' },
  { name: "devices flag", args: () => ["devices", "--bogus"], text: "unknown flag --bogus" },
  { name: "devices positional", args: () => ["devices", "x"], text: "no positional arguments" },
  // The shape flags, for every command that takes them.
  ...["verify", "bench", "tune", "model"].flatMap((cmd) =>
    BAD_SHAPE_FLAGS.map(([flags, text]): Case => ({
      name: `${cmd} ${flags.join(" ")}`,
      args: (dir) => [cmd, ...flags, ...(cmd === "bench" ? ["--out", `${dir}/out`] : [])],
      text,
    }))
  ),
  {
    name: "verify beyond the CPU reference",
    args: () => ["verify", "--n", "1048576"],
    text: "float64 CPU reference would take",
  },
  {
    name: "verify beyond the CPU reference by batch",
    args: () => ["verify", "--n", "4096", "--batch", "4096"],
    text: "use a smaller --n, --batch or --heads",
  },
  // bench's own flags.
  ...([
    [["--sweep", "x"], "--sweep must be"],
    [["--export", "pdf"], "--export takes"],
    [["--warmup", "-1"], "--warmup"],
    [["--warmup", "1e3"], "--warmup must be an integer"],
    [["--warmup", "99999999999999999999"], "--warmup must be at most"],
    [["--warmup-ms", "-1"], "--warmup-ms"],
    [["--warmup-ms", "1e3"], "--warmup-ms must be an integer"],
    [["--warmup-ms", "99999999999999999999"], "--warmup-ms must be at most"],
    [["--reps", "0"], "--reps must be a positive integer"],
    [["--reps", "2000000"], "--reps must be at most"],
    [["--reps", "3", "--reps=4"], "--reps is given twice"],
    [["--min-time", "0"], "--min-time must be a positive number"],
    [["--min-time", "abc"], "--min-time must be a positive number"],
    [["--min-time", "1e300"], "--min-time must be at most"],
    [["--warmup-ms", "1.5"], "--warmup-ms must be an integer"],
    [["--block-sizes", "0"], "--block-sizes must be a positive integer"],
    [["--block-sizes", "4096"], "--block-sizes must be at most"],
    [["--densities", "0"], "--densities must be a number in (0, 1]"],
    [["--densities", "2"], "--densities must be a number in (0, 1]"],
    [["--frobnicate"], "unknown flag --frobnicate"],
    [["stray"], "takes no positional arguments"],
  ] as [string[], string][]).map(([flags, text]): Case => ({
    name: `bench ${flags.join(" ")}`,
    args: (dir) => ["bench", "--out", `${dir}/out`, ...SMALL, ...flags],
    text,
  })),
  // A value flag without its value (a later flag is not its value).
  {
    name: "bench --out --quiet",
    args: () => ["bench", "--out", "--quiet", ...SMALL],
    text: "--out needs a value",
  },
  {
    name: "bench --out last",
    args: () => ["bench", ...SMALL, "--out"],
    text: "--out needs a value",
  },
  { name: "bench --out=", args: () => ["bench", "--out=", ...SMALL], text: "--out needs a value" },
  {
    name: "verify --n --causal",
    args: () => ["verify", "--n", "--causal"],
    text: "--n needs a value",
  },
  {
    name: "check --markdown --json",
    args: (
      dir,
    ) => [
      "check",
      "--baseline",
      `${dir}/good.json`,
      "--current",
      `${dir}/good.json`,
      "--markdown",
      "--json",
    ],
    text: "--markdown needs a FILE",
  },
  // bench output paths that cannot be written.
  {
    name: "bench --out under a file",
    args: (dir) => ["bench", "--out", `${dir}/peers-good.jsonl/sub`, ...SMALL],
    text: "not a directory",
  },
  {
    name: "bench --out is a file",
    args: (dir) => ["bench", "--out", `${dir}/good.json`, ...SMALL],
    text: "not a directory",
  },
  {
    name: "bench --out in /proc",
    args: () => ["bench", "--out", "/proc/attnbench-fuzz", ...SMALL],
    text: "--out",
  },
  {
    name: "bench --out where results.json is a folder",
    args: (dir) => ["bench", "--out", `${dir}/prior`, ...SMALL],
    text: "not a regular file",
  },
  {
    name: "bench --out twice",
    args: (dir) => ["bench", "--out", `${dir}/a`, "--out", `${dir}/b`, ...SMALL],
    text: "--out is given twice",
  },
  {
    name: "bench --tuned missing",
    args: (dir) => ["bench", "--out", `${dir}/out`, "--tuned", `${dir}/none.json`, ...SMALL],
    text: "cannot read tuned tiles",
  },
  {
    name: "bench --peers missing",
    args: (dir) => ["bench", "--out", `${dir}/out`, "--peers", `${dir}/none.jsonl`, ...SMALL],
    text: "cannot read --peers",
  },
  ...BAD_TUNED.map(([name, , text]): Case => ({
    name: `bench --tuned ${name}`,
    args: (
      dir,
    ) => ["bench", "--out", `${dir}/out`, "--tuned", `${dir}/tuned-${slug(name)}.json`, ...SMALL],
    text,
  })),
  ...BAD_PEERS.map(([name, , text]): Case => ({
    name: `bench --peers ${name}`,
    args: (
      dir,
    ) => ["bench", "--out", `${dir}/out`, "--peers", `${dir}/peers-${slug(name)}.jsonl`, ...SMALL],
    text,
  })),
  // tune.
  ...([
    [["--reps", "0"], "--reps must be a positive integer"],
    [["--max-candidates", "0"], "--max-candidates must be a positive integer"],
    [["--n", "64,128"], "tune takes one --n"],
  ] as [string[], string][]).map(([flags, text]): Case => ({
    name: `tune ${flags.join(" ")}`,
    args: (dir) => ["tune", "--out", `${dir}/tuned-new.json`, ...flags],
    text,
  })),
  {
    name: "tune --out a folder",
    args: (dir) => ["tune", "--out", `${dir}/prior`],
    text: "not a regular file",
  },
  {
    name: "tune --out an invalid tuned file",
    args: (dir) => ["tune", "--out", `${dir}/tuned-tiles-strings.json`, "--n", "16"],
    text: "tiles.br",
  },
  // model.
  ...([
    [["--sram", "0"], "--sram must be a positive integer"],
    [["--sram", "1"], "holds no f32 element"],
    [["--br", "0"], "--br must be a positive integer"],
    [["--bc", "2048"], "--bc must be at most"],
    [["--kernels", "block-sparse", "--n", "16777216"], "block mask"],
    [["--block-sizes", "0"], "--block-sizes must be a positive integer"],
    [["stray"], "takes no positional arguments"],
  ] as [string[], string][]).map(([flags, text]): Case => ({
    name: `model ${flags.join(" ")}`,
    args: () => ["model", ...flags],
    text,
  })),
  // report.
  {
    name: "report no inputs",
    args: (dir) => ["report", "--out", `${dir}/r.html`],
    text: "at least one results file",
  },
  { name: "report no --out", args: (dir) => ["report", `${dir}/good.json`], text: "needs --out" },
  {
    name: "report --out a folder",
    args: (dir) => ["report", `${dir}/good.json`, "--out", `${dir}/prior/results.json`],
    text: "not a regular file",
  },
  {
    name: "report --out in a missing folder",
    args: (dir) => ["report", `${dir}/good.json`, "--out", `${dir}/no/such/r.html`],
    text: "cannot write",
  },
  {
    name: "report --out under a file",
    args: (dir) => ["report", `${dir}/good.json`, "--out", `${dir}/good.json/r.html`],
    text: "not a directory",
  },
  {
    name: "report --out twice",
    args: (dir) => ["report", `${dir}/good.json`, "--out", `${dir}/a.html`, "-o", `${dir}/b.html`],
    text: "--out is given twice",
  },
  {
    name: "report --title twice",
    args: (
      dir,
    ) => ["report", `${dir}/good.json`, "-o", `${dir}/a.html`, "--title", "a", "--title=b"],
    text: "--title is given twice",
  },
  {
    name: "report --format pdf",
    args: (dir) => ["report", `${dir}/good.json`, "-o", `${dir}/a.html`, "--format", "pdf"],
    text: "--format must be one of",
  },
  {
    name: "report unknown option",
    args: (dir) => ["report", `${dir}/good.json`, "-o", `${dir}/a.html`, "--colour"],
    text: "unknown option --colour",
  },
  {
    name: "report overwrites its input",
    args: (dir) => ["report", `${dir}/good.json`, "-o", `${dir}/good.json`, "--format", "gab"],
    text: "is one of the input files",
  },
  {
    name: "report /dev/zero",
    args: (dir) => ["report", "/dev/zero", "-o", `${dir}/r.html`],
    text: "not a regular file",
  },
  {
    name: "report a folder",
    args: (dir) => ["report", `${dir}/prior`, "-o", `${dir}/r.html`],
    text: "not a regular file",
  },
  {
    name: "bench --peers /dev/zero",
    args: (dir) => ["bench", "--out", `${dir}/out`, "--peers", "/dev/zero", ...SMALL],
    text: "not a regular file",
  },
  {
    name: "bench --tuned a folder",
    args: (dir) => ["bench", "--out", `${dir}/out`, "--tuned", `${dir}/prior`, ...SMALL],
    text: "not a regular file",
  },
  ...BAD_RESULTS.map(([name, , text]): Case => ({
    name: `report ${name}`,
    args: (
      dir,
    ) => ["report", `${dir}/good.json`, `${dir}/results-${slug(name)}.json`, "-o", `${dir}/r.html`],
    text,
  })),
  // check: each bad results file as the current file, and some as the baseline.
  ...BAD_RESULTS.map(([name, , text]): Case => ({
    name: `check --current ${name}`,
    args: (dir) => [
      "check",
      ...["--baseline", `${dir}/good.json`, "--current", `${dir}/results-${slug(name)}.json`],
      ...["--markdown", `${dir}/check.md`, "--save-baseline", `${dir}/new-baseline.json`],
    ],
    text,
  })),
  ...BAD_RESULTS.filter((_, i) => i % 4 === 0).map(([name, , text]): Case => ({
    name: `check --baseline ${name}`,
    args: (dir) => [
      "check",
      ...["--baseline", `${dir}/results-${slug(name)}.json`, "--current", `${dir}/good.json`],
    ],
    text,
  })),
  ...([
    [["--threshold", "-1"], "--threshold must not be negative"],
    [["--threshold", "0.5"], "ambiguous"],
    [["--threshold", "abc"], "--threshold must be a percentage"],
    [["--threshold", "9".repeat(400)], "--threshold must be at most"],
    [["--bogus"], "unknown flag --bogus"],
    [["--baseline", "x.json"], "--baseline is given twice"],
    [["--json", "stray"], "unexpected argument stray"],
  ] as [string[], string][]).map(([flags, text]): Case => ({
    name: `check ${flags.join(" ")}`,
    args: (
      dir,
    ) => ["check", "--baseline", `${dir}/good.json`, "--current", `${dir}/good.json`, ...flags],
    text,
  })),
  {
    name: "check without --current",
    args: (dir) => ["check", "--baseline", `${dir}/good.json`],
    text: "--current FILE is required",
  },
  {
    name: "check --markdown M --save-baseline unwritable: neither is written",
    args: (dir) => [
      "check",
      ...["--baseline", `${dir}/good.json`, "--current", `${dir}/good.json`],
      ...["--markdown", `${dir}/check.md`, "--save-baseline", `${dir}/good.json/b.json`],
    ],
    text: "not a directory",
  },
  {
    name: "check --markdown is a folder",
    args: (dir) => [
      "check",
      ...["--baseline", `${dir}/good.json`, "--current", `${dir}/good.json`],
      ...["--markdown", `${dir}/prior`],
    ],
    text: "not a regular file",
  },
  {
    name: "check --markdown and --save-baseline the same file",
    args: (dir) => [
      "check",
      ...["--baseline", `${dir}/good.json`, "--current", `${dir}/good.json`],
      ...["--markdown", `${dir}/x.md`, "--save-baseline", `${dir}/x.md`],
    ],
    text: "are the same file",
  },
];

function slug(name: string): string {
  return name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
}

/** Writes every fixture into `dir`: good files, bad files, and an earlier run's outputs. */
async function writeFixtures(dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/good.json`, JSON.stringify(BASELINE, null, 2));
  await Deno.writeTextFile(`${dir}/peers-good.jsonl`, JSON.stringify(PEER) + "\n");
  for (const [name, text] of BAD_RESULTS) {
    await Deno.writeTextFile(`${dir}/results-${slug(name)}.json`, text);
  }
  for (const [name, text] of BAD_TUNED) {
    await Deno.writeTextFile(`${dir}/tuned-${slug(name)}.json`, text);
  }
  for (const [name, text] of BAD_PEERS) {
    await Deno.writeTextFile(`${dir}/peers-${slug(name)}.jsonl`, text);
  }
  // An earlier run's outputs: must survive every case untouched. results.json is a folder
  // here, so that a bench into `prior` fails on it.
  await Deno.mkdir(`${dir}/prior/results.json`, { recursive: true });
  await Deno.writeTextFile(`${dir}/prior/report.html`, "<!doctype html>earlier");
  await Deno.writeTextFile(`${dir}/check.md`, "earlier check\n");
}

/** Path → contents (folders as "/") of everything under `dir`. */
async function snapshot(dir: string, into: Record<string, string> = {}, rel = "") {
  for await (const e of Deno.readDir(`${dir}/${rel}`)) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) {
      into[`${path}/`] = "/";
      await snapshot(dir, into, path);
    } else {
      into[path] = await Deno.readTextFile(`${dir}/${path}`);
    }
  }
  return into;
}

Deno.test(`fuzz: ${CASES.length} bad inputs each exit 2 with one line and change nothing`, async (t) => {
  assert(CASES.length >= 100, `only ${CASES.length} cases`);
  const dir = await Deno.makeTempDir({ prefix: "attnbench_fuzz_" });
  try {
    await writeFixtures(dir);
    const before = await snapshot(dir);
    const failures: string[] = [];
    for (const c of CASES) {
      const io = captureOutput();
      const args = c.args(dir);
      let code: number;
      try {
        code = await main(args, io);
      } catch (e) {
        failures.push(`${c.name}: main threw ${(e as Error).stack}`);
        continue;
      }
      const problems: string[] = [];
      if (code !== (c.code ?? 2)) problems.push(`exit ${code}, expected ${c.code ?? 2}`);
      if (io.stderr.length !== 1) problems.push(`${io.stderr.length} stderr lines`);
      const line = io.stderr.join("\n");
      if (!/^attnbench( [a-z]+)?: /.test(line)) problems.push("no attnbench prefix");
      if (/^attnbench( [a-z]+)?: (check|report|bench): /.test(line)) problems.push("double prefix");
      if (!line.includes(c.text)) problems.push(`message lacks "${c.text}"`);
      if (STACK.test(line) || line.includes("internal error")) problems.push("stack or bug");
      if (io.stdout.length !== 0) problems.push(`stdout: ${io.stdout.join(" | ").slice(0, 200)}`);
      const after = await snapshot(dir);
      for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
        if (before[k] !== after[k]) {
          problems.push(`${k} ${k in before ? (k in after ? "changed" : "lost") : "written"}`);
        }
      }
      if (problems.length > 0) {
        failures.push(`${c.name} [${args.join(" ")}]: ${problems.join("; ")}\n    ${line}`);
        // Restore the folder so one failure does not cascade.
        await Deno.remove(dir, { recursive: true });
        await Deno.mkdir(dir);
        await writeFixtures(dir);
      }
    }
    await t.step(`all ${CASES.length} cases`, () => {
      assertEquals(failures, [], `${failures.length} of ${CASES.length} cases failed`);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--quiet is split off anywhere except as another flag's value", () => {
  assertEquals(takeQuiet(["bench", "--quiet", "--n", "64"]), {
    args: ["bench", "--n", "64"],
    quiet: true,
  });
  assertEquals(takeQuiet(["--quiet", "model"]), { args: ["model"], quiet: true });
  assertEquals(takeQuiet(["report", "a.json", "--title", "--quiet", "-o", "r.html"]), {
    args: ["report", "a.json", "--title", "--quiet", "-o", "r.html"],
    quiet: false,
  });
  assertEquals(takeQuiet(["bench", "--verify", "--quiet"]).quiet, true);
  assertEquals(takeQuiet(["report", "--", "--quiet"]).quiet, false);
});

Deno.test("an internal error exits 3 with one line; ATTNBENCH_DEBUG=1 shows the stack", async () => {
  const boom: Command = {
    name: "boom",
    summary: "throws a bug",
    help: "boom",
    run: () => Promise.reject(new TypeError("x is undefined\nsecond line")),
  };
  (COMMANDS as Command[]).push(boom);
  const had = Deno.env.get("ATTNBENCH_DEBUG");
  try {
    Deno.env.delete("ATTNBENCH_DEBUG");
    const io = captureOutput();
    assertEquals(await main(["boom"], io), 3);
    assertEquals(io.stderr.length, 1, io.stderr.join("\n"));
    assertMatch(io.stderr[0]!, /^attnbench boom: internal error \(a bug, please report it\): /);
    assertStringIncludes(io.stderr[0]!, "TypeError: x is undefined");
    assertStringIncludes(io.stderr[0]!, "ATTNBENCH_DEBUG=1");
    assert(!STACK.test(io.stderr[0]!), io.stderr[0]);

    Deno.env.set("ATTNBENCH_DEBUG", "1");
    const debug = captureOutput();
    assertEquals(await main(["boom"], debug), 3);
    assert(STACK.test(debug.stderr.join("\n")), "the stack is shown with ATTNBENCH_DEBUG=1");
  } finally {
    (COMMANDS as Command[]).pop();
    if (had === undefined) Deno.env.delete("ATTNBENCH_DEBUG");
    else Deno.env.set("ATTNBENCH_DEBUG", had);
  }
});

const MAIN = new URL("./main.ts", import.meta.url).pathname;

/** Spawns the CLI with exactly `env` (no XDG_RUNTIME_DIR unless given). */
function spawn(args: string[], env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: ROOT,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/root",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache/deno`,
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

const hasAdapter = await navigator.gpu?.requestAdapter().then((a) => a !== null).catch(() => false);

Deno.test({
  name: "without XDG_RUNTIME_DIR, devices and verify --quiet print nothing on stderr",
  ignore: !hasAdapter || Deno.build.os !== "linux",
  async fn() {
    // --quiet: verify's own progress lines go to stderr when it is not a terminal; what must not
    // appear is anything else (a foreign library's noise).
    const verify = ["verify", "--n", "3", "--kernels", "flash", "--d", "32", "--quiet"];
    for (const args of [["devices"], verify]) {
      const r = await spawn(args).output();
      const stderr = new TextDecoder().decode(r.stderr);
      assertEquals(r.code, 0, stderr);
      assertEquals(stderr, "", `${args[0]}: stderr must be empty`);
    }
  },
});

for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  Deno.test({
    name: `bench interrupted by ${signal} writes nothing and changes nothing`,
    ignore: !hasAdapter || Deno.build.os === "windows",
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "attnbench_signal_" });
      try {
        await Deno.mkdir(`${dir}/old`);
        await Deno.writeTextFile(`${dir}/old/results.json`, "earlier\n");
        for (const out of [`${dir}/new/deeper`, `${dir}/old`]) {
          const child = spawn([
            ...["bench", "--out", out, "--n", "64", "--kernels", "flash", "--heads", "1"],
            ...["--batch", "1", "--min-time", "600000", "--no-ceilings", "--quiet"],
          ]).spawn();
          await new Promise((resolve) => setTimeout(resolve, 2500));
          child.kill(signal);
          const r = await child.output();
          assertEquals(r.code, code, new TextDecoder().decode(r.stderr));
          const entries = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
          assertEquals(entries, ["old"], `nothing new in ${dir}`);
          assertEquals(await Deno.readTextFile(`${dir}/old/results.json`), "earlier\n");
          assertEquals([...Deno.readDirSync(`${dir}/old`)].map((e) => e.name), ["results.json"]);
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
