/**
 * `attnbench bench`: sweeps the kernels across sequence lengths (or block sizes, or densities)
 * on the local GPU, times them, and writes `results.json` and `report.html`.
 *
 * @module
 */

import type { Command } from "../command.ts";
import { UsageError } from "../../core/errors.ts";
import type { Output } from "../output.ts";
import {
  parseCommandFlags,
  parseFraction,
  parsePositiveInt,
  parseSizeList,
  SHAPE_HELP,
  shapeAt,
  type ShapeOptions,
  shapeOptions,
} from "../flags.ts";
import { type MeasureOptions, measureRun, type RunSpec } from "../bench_runner.ts";
import { KERNEL_MODULE_HELP, kernelModulePaths, loadKernelModules } from "../kernel_modules.ts";
import { formatTable } from "../../analysis/table.ts";
import { loadTuned, tunedKey } from "../tuned.ts";
import { VERSION } from "../version.ts";
import {
  type PeerRecord,
  RESULTS_SCHEMA,
  type ResultsFile,
  type RunRecord,
} from "../../core/schema.ts";
import { writeFileAtomic } from "../../analysis/results_io.ts";
import { AttentionKernels } from "../../kernels/attention.ts";
import { measureCeilings } from "../../kernels/ceilings.ts";
import { openGpu, requireDtype } from "../../kernels/gpu.ts";
import type { AttentionShape, Tiles } from "../../core/shapes.ts";
import type { Kernel } from "../../kernels/kernel.ts";
import { findKernel } from "../../kernels/registry.ts";
import { renderHtml, toCsv, toGithubActionBenchmark, toMarkdown } from "../../reports/mod.ts";

const GPU_NS = [256, 512, 1024, 2048, 4096, 8192, 16384];
const FALLBACK_NS = [64, 128, 256, 512];
/** Tokens per batch (B·N) kept constant across N, as the flash-attention benchmarks do. */
const GPU_TOKENS = 16384;
const FALLBACK_TOKENS = 512;
const GPU_HEADS = 16;
const FALLBACK_HEADS = 2;

const HELP = `attnbench bench — time the kernels across sequence lengths; write results and a report

Usage: attnbench bench [shape flags] [flags]

${SHAPE_HELP}
  (bench defaults: all kernels, d 64, f32, not causal, density 0.25; --n 256..16384 on a GPU,
   64..512 on a fallback (software) adapter; --heads 16 (2 on a fallback adapter) and --batch
   chosen so that batch·N = 16384 tokens (512 on a fallback adapter) unless given)

Flags:
  --out DIR           where results.json and report.html go (default: out)
  --sweep KIND        n (default), block-size (paper Fig. 2 middle) or density (Fig. 2 right)
  --block-sizes LIST  query-block sizes Br for --sweep block-size (default: 16,32,64,128)
  --densities LIST    densities for --sweep density (default: 1,0.5,0.25,0.125,0.0625)
  --warmup N          untimed runs before timing, the first (compiling) run included (default: 3)
  --warmup-ms MS      then keep the GPU busy with the kernel for MS ms, so its clocks are up
                      (default: 200 on a GPU, 0 on a fallback adapter)
  --reps N            timed runs at least (default: 20)
  --min-time MS       keep timing until the timed runs add up to MS milliseconds (default: 0)
  --count-io          also run the counting variant and record counted HBM bytes
  --verify            also check each kernel against the float64 reference (one head)
  --tuned FILE        tuned tiles from 'attnbench tune' (default: attnbench-tuned.json if it
                      exists); entries for another adapter are ignored
  --peers FILE        PyTorch SDPA timings (JSON lines from peer_sdpa.py) to record beside ours
  --export LIST       also write csv, markdown and/or gab (github-action-benchmark JSON)
${KERNEL_MODULE_HELP}
  --no-ceilings       skip the copy / FMA / launch micro-benchmarks
  --no-subgroups      never ask for subgroups: the portable kernels (workgroup-memory reductions)
  --no-report         write results.json only
  --json              print the results file to stdout instead of the summary table
  --quiet             no progress on stderr`;

type SweepKind = RunRecord["sweep"];

/** The `bench` command. */
export const benchCommand: Command = {
  name: "bench",
  summary: "time the kernels across N on this GPU; write results.json and report.html",
  help: HELP,
  async run(args, io) {
    const flags = parseCommandFlags("bench", args, {
      string: [
        "out",
        "sweep",
        "block-sizes",
        "densities",
        "warmup",
        "warmup-ms",
        "reps",
        "min-time",
        "tuned",
        "peers",
        "export",
        "kernel-module",
      ],
      boolean: ["count-io", "verify", "json", "no-ceilings", "no-report", "quiet", "no-subgroups"],
      collect: ["kernel-module"],
    });
    if (flags.help) {
      io.out(HELP);
      return 0;
    }
    const str = (k: string) => (typeof flags[k] === "string" ? flags[k] as string : undefined);
    const sweep = (str("sweep") ?? "n") as SweepKind;
    if (!["n", "block-size", "density"].includes(sweep)) {
      throw new UsageError(`--sweep must be n, block-size or density, got "${sweep}"`);
    }
    const exports = (str("export") ?? "").split(",").filter((x) => x !== "");
    for (const x of exports) {
      if (!["csv", "markdown", "gab"].includes(x)) {
        throw new UsageError(`--export takes csv, markdown and gab, got "${x}"`);
      }
    }
    const measure: Omit<MeasureOptions, "sramBytes" | "warmupMs"> = {
      warmup: str("warmup") === undefined ? 3 : nonNegativeInt(str("warmup")!, "--warmup"),
      reps: str("reps") === undefined ? 20 : parsePositiveInt(str("reps")!, "--reps"),
      minTimeMs: str("min-time") === undefined ? 0 : positiveNumber(str("min-time")!, "--min-time"),
      countIo: flags["count-io"] === true,
      verify: flags.verify === true,
    };
    const blockSizes = parseSizeList(str("block-sizes") ?? "16,32,64,128", "--block-sizes");
    const densities = (str("densities") ?? "1,0.5,0.25,0.125,0.0625").split(",").map((x) =>
      parseFraction(x.trim(), "--densities")
    );
    const warmupMsText = str("warmup-ms");
    const warmupMsFlag = warmupMsText === undefined
      ? undefined
      : nonNegativeInt(warmupMsText, "--warmup-ms");
    const outDir = str("out") ?? "out";
    const peers = str("peers") === undefined ? undefined : await readPeers(str("peers")!);
    await loadKernelModules(kernelModulePaths(flags));

    const gpu = await openGpu({ subgroups: flags["no-subgroups"] !== true });
    const fallback = gpu.info.isFallbackAdapter;
    const o = shapeOptions(flags, {
      ns: fallback ? FALLBACK_NS : GPU_NS,
      batch: 0, // 0: derived per N below
      heads: fallback ? FALLBACK_HEADS : GPU_HEADS,
    });
    requireDtype(gpu, o.dtype);
    if (fallback) {
      io.err(
        `fallback (software) adapter "${gpu.info.description}": timings say nothing about a ` +
          `GPU; using a small default sweep`,
      );
    }
    const tuned = await loadTuned(str("tuned"), gpu.info);
    const kernels = new AttentionKernels(gpu);
    // A kernel may use another's tuned tiles (block-sparse is the flash program with a mask).
    const tilesFor = (kernel: Kernel, shape: AttentionShape): Tiles =>
      tuned?.[tunedKey(kernel.name, shape.dtype, shape.d)] ??
        (kernel.tunedLike === null
          ? undefined
          : tuned?.[tunedKey(kernel.tunedLike, shape.dtype, shape.d)]) ??
        kernels.defaultTiles(kernel, shape);
    const specs = planRuns(o, sweep, { blockSizes, densities, fallback, tilesFor });

    await Deno.mkdir(outDir, { recursive: true }).catch((e) => {
      throw new UsageError(`cannot create --out ${outDir}: ${(e as Error).message}`);
    });

    const sramBytes = gpu.device.limits.maxComputeWorkgroupStorageSize;
    const warmupMs = warmupMsFlag ?? (fallback ? 0 : 200);
    let ceilings = null;
    if (flags["no-ceilings"] !== true) {
      io.progress("measuring device ceilings (copy, FMA, launch)");
      ceilings = await measureCeilings(gpu, { quick: fallback });
    }
    const runs: RunRecord[] = [];
    for (const [i, spec] of specs.entries()) {
      io.progress(progressBar(i, specs.length, `${spec.kernel.name} n=${spec.shape.n}`));
      runs.push(await measureRun(kernels, spec, { ...measure, sramBytes, warmupMs }));
    }
    io.progress("");

    const results: ResultsFile = {
      schema: RESULTS_SCHEMA,
      createdAt: new Date().toISOString(),
      tool: { name: "attnbench", version: VERSION },
      denoVersion: Deno.version.deno,
      gitCommit: await gitCommit(),
      device: gpu.info,
      ceilings,
      config: { args, sweep, ...measure, warmupMs, tuned: tuned !== null },
      runs,
      ...(peers ? { peers } : {}),
    };
    gpu.device.destroy();

    const written = await writeOutputs(results, outDir, exports, flags["no-report"] === true);
    if (flags.json) {
      io.out(JSON.stringify(results, null, 2));
    } else {
      printSummary(results, io);
      for (const path of written) io.err(`wrote ${path}`);
    }
    return 0;
  },
};

function nonNegativeInt(text: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} must be an integer ≥ 0, got "${text}"`);
  return Number(text);
}

function positiveNumber(text: string, flag: string): number {
  const v = Number(text);
  if (text.trim() === "" || !(v > 0) || !Number.isFinite(v)) {
    throw new UsageError(`${flag} must be a positive number, got "${text}"`);
  }
  return v;
}

/** What {@linkcode planRuns} needs besides the shape options. */
interface PlanContext {
  blockSizes: number[];
  densities: number[];
  fallback: boolean;
  tilesFor: (kernel: Kernel, shape: AttentionShape) => Tiles;
}

/**
 * The runs a sweep makes, in order. Batch is derived from N (B·N tokens constant) unless
 * `--batch` was given.
 */
function planRuns(o: ShapeOptions, sweep: SweepKind, ctx: PlanContext): RunSpec[] {
  const tokens = ctx.fallback ? FALLBACK_TOKENS : GPU_TOKENS;
  const mask = { kind: o.mask, density: o.density, seed: o.seed };
  const specs: RunSpec[] = [];
  let seed = o.seed;
  for (const n of o.ns) {
    const shape = shapeAt(o, n, tokens);
    if (sweep === "n") {
      for (const kernel of o.kernels) {
        specs.push({
          kernel,
          shape,
          tiles: ctx.tilesFor(kernel, shape),
          mask,
          sweep,
          seed: seed++,
        });
      }
    } else if (sweep === "block-size") {
      for (const kernel of o.kernels) {
        const base = ctx.tilesFor(kernel, shape);
        for (const br of ctx.blockSizes) {
          specs.push({
            kernel,
            shape,
            tiles: blockSizeTiles(base, br),
            mask,
            sweep,
            seed: seed++,
          });
        }
      }
    } else {
      // Each kernel as it asks: dense references once, sparse kernels at every density.
      for (const kernel of o.kernels.filter((k) => k.densitySweep === "once")) {
        specs.push({
          kernel,
          shape,
          tiles: ctx.tilesFor(kernel, shape),
          mask,
          sweep,
          seed: seed++,
        });
      }
      for (const kernel of o.kernels.filter((k) => k.densitySweep === "each")) {
        for (const density of ctx.densities) {
          specs.push({
            kernel,
            shape,
            tiles: ctx.tilesFor(kernel, shape),
            mask: { ...mask, density },
            sweep,
            seed: seed++,
          });
        }
      }
    }
  }
  return specs;
}

/**
 * Tiles with `br` query rows per workgroup, other knobs from `base`; rows per thread grow with
 * br so the workgroup stays at most 16 rows of threads. Invalid choices are kept: the run is
 * recorded as skipped with the reason.
 */
function blockSizeTiles(base: Tiles, br: number): Tiles {
  const rm = Math.max(1, Math.min(br, Math.ceil(br / 16)));
  return { ...base, br, rm };
}

function progressBar(done: number, total: number, label: string): string {
  const width = 24;
  const fill = Math.round((done / total) * width);
  return `[${"#".repeat(fill)}${".".repeat(width - fill)}] ${done}/${total} ${label}`;
}

async function readPeers(path: string): Promise<PeerRecord[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(`cannot read --peers ${path}: ${(e as Error).message}`);
  }
  return text.split("\n").filter((l) => l.trim().startsWith("{")).map((line, i) => {
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line);
    } catch {
      throw new UsageError(`--peers ${path}: line ${i + 1} is not JSON`);
    }
    return {
      backend: String(row.backend),
      n: Number(row.n),
      d: Number(row.d),
      batchHeads: Number(row.batch_heads),
      dtype: String(row.dtype),
      causal: Boolean(row.causal),
      ms: typeof row.ms === "number" ? row.ms : null,
      tflops: typeof row.tflops === "number" ? row.tflops : null,
      gpu: String(row.gpu ?? ""),
      ...(typeof row.error === "string" ? { error: row.error } : {}),
    };
  });
}

async function gitCommit(): Promise<string | null> {
  const fromEnv = Deno.env.get("ATTNBENCH_GIT_COMMIT");
  if (fromEnv) return fromEnv;
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "HEAD"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

/** Renders everything first, then writes each file atomically: no half-written report. */
async function writeOutputs(
  results: ResultsFile,
  outDir: string,
  exports: string[],
  noReport: boolean,
): Promise<string[]> {
  const files: [string, string][] = [
    [`${outDir}/results.json`, JSON.stringify(results, null, 2) + "\n"],
  ];
  if (!noReport) files.push([`${outDir}/report.html`, renderHtml([results])]);
  if (exports.includes("csv")) files.push([`${outDir}/results.csv`, toCsv([results])]);
  if (exports.includes("markdown")) files.push([`${outDir}/results.md`, toMarkdown([results])]);
  if (exports.includes("gab")) {
    files.push([
      `${outDir}/benchmark.json`,
      JSON.stringify(toGithubActionBenchmark([results]), null, 2) + "\n",
    ]);
  }
  for (const [path, text] of files) await writeFileAtomic(path, text);
  return files.map(([p]) => p);
}

function printSummary(results: ResultsFile, io: Output): void {
  const c = results.ceilings;
  io.out(
    `device: ${results.device.description}${results.device.isFallbackAdapter ? " (fallback)" : ""}`,
  );
  if (c) {
    io.out(
      `ceilings: copy ${c.copyGBs?.toFixed(1)} GB/s, FMA ${c.fmaTflops?.toFixed(2)} TFLOP/s, ` +
        `launch ${c.launchOverheadUs?.toFixed(1)} µs (${c.clock})`,
    );
  }
  const rows = results.runs.map((r) => [
    r.kernel,
    r.dtype,
    String(r.n),
    String(r.d),
    `${r.batch}×${r.heads}`,
    r.causal ? "causal" : "",
    findKernel(r.kernel)?.sparse ? r.density.toFixed(3) : "",
    `${r.tile.br}x${r.tile.bc}`,
    r.status === "ok" ? r.timeMs!.median.toPrecision(4) : r.status,
    r.tflops === null ? "" : r.tflops.toFixed(2),
    (r.hbmBytes.modeled / 1e6).toPrecision(4),
    r.achievedGBs === null ? "" : r.achievedGBs.toFixed(0),
    r.maxRelError === null ? "" : r.maxRelError.toExponential(1),
  ]);
  const header = [
    "kernel",
    "dtype",
    "n",
    "d",
    "b×h",
    "mask",
    "density",
    "tile",
    "median ms",
    "TFLOP/s",
    "HBM MB",
    "GB/s",
    "rel err",
  ];
  for (const line of formatTable(header, rows)) io.out(line);
  for (const r of results.runs) {
    if (r.status !== "ok") io.out(`${r.kernel} n=${r.n}: ${r.status}: ${r.reason}`);
    if (r.passes) {
      const parts = r.passes.map((p) =>
        `${p.name} ${p.medianMs.toPrecision(3)} ms (${p.achievedGBs.toFixed(0)} GB/s)`
      );
      io.out(`${r.kernel} n=${r.n} passes: ${parts.join(", ")}`);
    }
  }
}
