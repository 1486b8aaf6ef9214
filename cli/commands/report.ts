/**
 * `attnbench report`: renders saved results files into an HTML report (or CSV, Markdown, or
 * github-action-benchmark JSON). Several files are overlaid: two GPUs, or before and after.
 *
 * @module
 */

import { parseArgs } from "@std/cli/parse-args";
import { checkOutputPaths, readResults, writeFileAtomic } from "../../analysis/results_io.ts";
import { refuseRepeated } from "../flags.ts";
import type { ResultsFile } from "../../core/schema.ts";
import { UsageError } from "../../core/errors.ts";
import { kernelModulePaths, loadKernelModules } from "../kernel_modules.ts";
import { kernelCatalog } from "../../kernels/catalog.ts";
import type { Output } from "../output.ts";
import { renderHtml } from "../../reports/html.ts";
import { toCsv, toGithubActionBenchmark, toMarkdown } from "../../reports/export.ts";

/** Output formats of `report`. */
export type ReportFormat = "html" | "csv" | "md" | "gab";

const FORMATS: readonly ReportFormat[] = ["html", "csv", "md", "gab"];

const EXTENSIONS: Record<string, ReportFormat> = {
  html: "html",
  htm: "html",
  csv: "csv",
  md: "md",
  markdown: "md",
  json: "gab",
};

const HELP = `Usage: attnbench report RESULTS.json... --out FILE [options]

Renders saved results files into one report. Several files are overlaid in every chart
(e.g. two GPUs, or before and after a change).

Options:
  -o, --out FILE     where to write the report (required); written atomically
      --format F     html | csv | md | gab (github-action-benchmark JSON);
                     default from FILE's extension: .html .csv .md .json
      --title T      the HTML report's title (default: the device names)
      --label L      legend label of the next results file, in order (repeatable;
                     default: device name and date)
      --kernel-module PATH
                     know the Kernels a module exports (repeatable): runs of a kernel of
                     your own are refused as unknown without its module; with it they are
                     drawn in the kernel's own style
  -h, --help         show this help

Examples:
  attnbench report out/results.json --out out/report.html
  attnbench report out/h100.json out/llvmpipe.json --out out/compare.html --title "H100 vs CPU"
  attnbench report out/results.json --out out/bench.json --format gab`;

/** Picks the format from `--format` or the output file's extension. */
function formatOf(out: string, given: unknown): ReportFormat {
  if (given !== undefined) {
    if (typeof given !== "string" || !(FORMATS as readonly string[]).includes(given)) {
      throw new UsageError(`--format must be one of ${FORMATS.join(", ")}, got ${String(given)}`);
    }
    return given as ReportFormat;
  }
  const ext = /\.([A-Za-z]+)$/.exec(out)?.[1]?.toLowerCase() ?? "";
  const f = EXTENSIONS[ext];
  if (!f) {
    throw new UsageError(
      `cannot tell the format from "${out}"; name it .html, .csv, .md or .json, or pass --format`,
    );
  }
  return f;
}

async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    return (await Deno.realPath(a)) === (await Deno.realPath(b));
  } catch {
    return false;
  }
}

function render(format: ReportFormat, results: ResultsFile[], title?: string, labels?: string[]) {
  switch (format) {
    case "html":
      return renderHtml(results, { title, labels });
    case "csv":
      return toCsv(results);
    case "md":
      return toMarkdown(results);
    case "gab":
      return JSON.stringify(toGithubActionBenchmark(results), null, 2) + "\n";
  }
}

/**
 * The `report` command. `run` returns the exit code; user mistakes (no inputs, no `--out`, an
 * unreadable or invalid results file) throw {@linkcode UsageError} before anything is written.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { reportCommand } from "./report.ts";
 * import { captureOutput } from "../output.ts";
 * const io = captureOutput();
 * const code = await reportCommand.run(["--help"], io);
 * assert(code === 0 && io.stdout.join("\n").includes("--out"));
 * ```
 */
export const reportCommand = {
  name: "report",
  summary: "render saved results files as an HTML report (or CSV, Markdown, benchmark JSON)",
  help: HELP,
  async run(args: string[], io: Output): Promise<number> {
    refuseRepeated("report", args, ["out", "title", "format"], { o: "out" });
    const flags = parseArgs(args, {
      string: ["_", "out", "title", "format", "label", "kernel-module"],
      boolean: ["help"],
      collect: ["label", "kernel-module"],
      alias: { h: "help", o: "out" },
      unknown: (arg: string, key?: string) => {
        if (key !== undefined) {
          throw new UsageError(`unknown option ${arg}; see attnbench report --help`);
        }
        return true;
      },
    });
    if (flags.help === true) {
      io.out(HELP);
      return 0;
    }
    const inputs = (flags._ as unknown[]).map(String);
    if (inputs.length === 0) {
      throw new UsageError("report needs at least one results file; see --help");
    }
    const out = typeof flags.out === "string" ? flags.out : "";
    if (out === "") throw new UsageError("report needs --out FILE (e.g. --out out/report.html)");
    const format = formatOf(out, flags.format);
    const title = typeof flags.title === "string" ? flags.title : undefined;
    const labels = ((flags.label ?? []) as unknown[]).map(String);
    if (labels.length > inputs.length) {
      throw new UsageError(`${labels.length} --label given for ${inputs.length} results files`);
    }
    for (const input of inputs) {
      if (await sameFile(input, out)) {
        throw new UsageError(`--out ${out} is one of the input files; pick another name`);
      }
    }
    checkOutputPaths([out], "--out");
    await loadKernelModules(kernelModulePaths(flags));
    const results: ResultsFile[] = [];
    for (const input of inputs) results.push(await readResults(input, kernelCatalog()));
    const text = render(format, results, title, labels);
    await writeFileAtomic(out, text);
    const runs = results.reduce((s, r) => s + r.runs.length, 0);
    io.out(
      `wrote ${out} (${format}: ${runs} runs from ${inputs.length} results file${
        inputs.length > 1 ? "s" : ""
      })`,
    );
    return 0;
  },
};
