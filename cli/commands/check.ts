/**
 * `attnbench check`: compares a current results file against a baseline and exits 1 when
 * anything regressed. The judging lives in `analysis/compare.ts`; this file is flags, files
 * and output.
 *
 * @module
 */

import { parseArgs } from "@std/cli/parse-args";
import { compareResults, renderMarkdown, renderTable } from "../../analysis/compare.ts";
import { checkOutputPaths, readResults, writeFileSet } from "../../analysis/results_io.ts";
import { refuseRepeated } from "../flags.ts";
import { UsageError } from "../../core/errors.ts";
import { kernelModulePaths, loadKernelModules } from "../kernel_modules.ts";
import { kernelCatalog } from "../../kernels/catalog.ts";
import type { Output } from "../output.ts";

/** The threshold when `--threshold` is not given, in percent. */
export const DEFAULT_THRESHOLD_PCT = 5;

const HELP = `attnbench check --baseline FILE --current FILE [options]

Compares a current results file against a baseline, run by run (matched by configuration),
and exits 1 when anything regressed.

Options:
  --baseline FILE          results file to compare against (required)
  --current FILE           results file to judge (required)
  --threshold PCT          timing changes up to PCT percent never fail; "5%" and "5" both mean
                           5 percent, "0.5%" half a percent; a bare number between 0 and 1 is
                           refused as ambiguous (default ${DEFAULT_THRESHOLD_PCT}%)
  --allow-device-mismatch  judge timings even when the files ran on different adapters
  --no-timing              give no timing verdicts (a software adapter's clock is noise); bytes,
                           correctness and status are still judged
  --json                   print the report as JSON instead of a table
  --markdown FILE          also write the report as Markdown (e.g. $GITHUB_STEP_SUMMARY)
  --save-baseline FILE     after comparing, write the current results to FILE (only that path)
  --kernel-module PATH     know the Kernels a module exports (repeatable): runs of a kernel of
                           your own are refused as unknown without its module
  -h, --help               show this help

Verdicts:
  timing       "regressed" or "improved" only when the median moved by more than the threshold
               and the 95% bootstrap interval of the ratio of medians excludes 1; otherwise
               "within noise"; "too few samples" below 5 samples a side (reported, not a
               failure); "device mismatch" when the adapters differ and it was not allowed;
               "not judged" with --no-timing
  bytes        any increase of hbmBytes.modeled, hbmBytes.counted or footprintBytes fails
  correctness  maxRelError above the tolerance (f32 1e-4, f16 1e-2) fails
  lost checks  a maxRelError or byte count the baseline has and the current run lacks fails
  status       a run ok in the baseline but skipped, failed or missing now fails

Exit codes: 0 no regression, 1 regression, 2 bad input (flag, unreadable or invalid file: every
field is checked against the schema), 3 internal error (a bug).`;

/**
 * Parses `--threshold`: a non-negative number of percent, with or without a `%` sign ("5%"
 * and "5" are both 5 percent). A bare number strictly between 0 and 1 ("0.05") is refused as
 * ambiguous: write "0.05%" or "5%". Throws {@linkcode UsageError} on anything else.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseThreshold } from "./check.ts";
 * assert(parseThreshold("5%") === 5 && parseThreshold("5") === 5);
 * assert(parseThreshold("0.5%") === 0.5);
 * ```
 */
export function parseThreshold(text: string): number {
  const m = /^(-?\d+(?:\.\d+)?)(%?)$/.exec(text.trim());
  if (!m) {
    throw new UsageError(`--threshold must be a percentage such as 5% or 5, got "${text}"`);
  }
  const pct = Number(m[1]);
  if (pct < 0) throw new UsageError(`--threshold must not be negative, got ${text}`);
  if (!(pct <= 10000)) throw new UsageError(`--threshold must be at most 10000%, got ${text}`);
  if (m[2] === "" && pct > 0 && pct < 1) {
    const asFraction = Number((pct * 100).toPrecision(12));
    throw new UsageError(
      `--threshold ${text} is ambiguous: write ${pct}% for ${pct} percent or ${asFraction}% ` +
        `for ${asFraction} percent`,
    );
  }
  return pct;
}

/** What the flags ask for: the help text, or a comparison. */
type CheckFlags = { help: true } | {
  help: false;
  baseline: string;
  current: string;
  thresholdPct: number;
  json: boolean;
  allowDeviceMismatch: boolean;
  noTiming: boolean;
  markdown: string | null;
  saveBaseline: string | null;
  kernelModules: string[];
};

function parseFlags(args: string[]): CheckFlags {
  const strings = ["baseline", "current", "threshold", "markdown", "save-baseline"];
  refuseRepeated("check", args, strings);
  args.forEach((arg, i) => {
    const prev = args[i - 1] ?? "";
    if (/^-\d/.test(arg) && strings.includes(prev.slice(2))) {
      throw new UsageError(`${prev} must not be negative, got ${arg}`);
    }
  });
  const parsed = parseArgs(args, {
    string: ["baseline", "current", "threshold", "markdown", "save-baseline", "kernel-module"],
    boolean: ["json", "allow-device-mismatch", "no-timing", "help"],
    collect: ["kernel-module"],
    alias: { h: "help" },
    unknown: (arg: string) => {
      const isFlag = arg.startsWith("-") && !/^-[\d.]/.test(arg);
      throw new UsageError(
        isFlag
          ? `unknown flag ${arg.split("=")[0]}; see attnbench check --help`
          : `unexpected argument ${arg}; files are given with --baseline and --current`,
      );
    },
  });
  if (parsed.help === true) return { help: true };
  const optionalPath = (flag: string): string | null => {
    const value: unknown = parsed[flag];
    if (value === undefined) return null;
    if (typeof value !== "string" || value === "") {
      throw new UsageError(`--${flag} needs a FILE; see attnbench check --help`);
    }
    return value;
  };
  const requiredPath = (flag: string): string => {
    const value = optionalPath(flag);
    if (value === null) {
      throw new UsageError(`--${flag} FILE is required; see attnbench check --help`);
    }
    return value;
  };
  const threshold: unknown = parsed.threshold;
  return {
    help: false,
    baseline: requiredPath("baseline"),
    current: requiredPath("current"),
    thresholdPct: typeof threshold === "string" ? parseThreshold(threshold) : DEFAULT_THRESHOLD_PCT,
    json: parsed.json === true,
    allowDeviceMismatch: parsed["allow-device-mismatch"] === true,
    noTiming: parsed["no-timing"] === true,
    markdown: optionalPath("markdown"),
    saveBaseline: optionalPath("save-baseline"),
    kernelModules: kernelModulePaths(parsed),
  };
}

async function run(args: string[], io: Output): Promise<number> {
  const flags = parseFlags(args);
  if (flags.help) {
    io.out(HELP);
    return 0;
  }
  const outputs = [flags.markdown, flags.saveBaseline].filter((p): p is string => p !== null);
  if (flags.markdown !== null && flags.markdown === flags.saveBaseline) {
    throw new UsageError(`--markdown and --save-baseline are the same file ${flags.markdown}`);
  }
  checkOutputPaths(outputs, "output");
  await loadKernelModules(flags.kernelModules);
  const baseline = await readResults(flags.baseline, kernelCatalog());
  const current = await readResults(flags.current, kernelCatalog());
  const report = compareResults(baseline, current, {
    thresholdPct: flags.thresholdPct,
    allowDeviceMismatch: flags.allowDeviceMismatch,
    noTiming: flags.noTiming,
  });
  for (const warning of report.warnings) io.err(`warning: ${warning}`);
  if (flags.json) io.out(JSON.stringify(report, null, 2));
  else renderTable(report).forEach((line) => io.out(line));
  // Both outputs or neither.
  const files: [string, string][] = [];
  if (flags.markdown !== null) files.push([flags.markdown, renderMarkdown(report)]);
  if (flags.saveBaseline !== null) {
    files.push([flags.saveBaseline, JSON.stringify(current, null, 2) + "\n"]);
  }
  await writeFileSet(files);
  if (flags.markdown !== null) io.err(`wrote ${flags.markdown}`);
  if (flags.saveBaseline !== null) {
    io.err(
      `saved ${flags.current} as the baseline ${flags.saveBaseline}` +
        (report.regressed ? " (even though it regressed)" : ""),
    );
  }
  return report.regressed ? 1 : 0;
}

/**
 * The `check` command: returns 0 when nothing regressed, 1 when something did, and throws
 * {@linkcode UsageError} (exit 2) on bad flags or files.
 *
 * @example
 * ```ts ignore
 * import { checkCommand } from "./check.ts";
 * import { consoleOutput } from "../output.ts";
 * const code = await checkCommand.run(
 *   ["--baseline", "base.json", "--current", "out/results.json"],
 *   consoleOutput(),
 * );
 * Deno.exit(code);
 * ```
 */
export const checkCommand = {
  name: "check",
  summary: "compare a results file against a baseline; exit 1 on a regression",
  help: HELP,
  run,
};
