/**
 * `attnbench bench`: sweeps the kernels across sequence lengths (or block sizes, or densities)
 * on the local GPU, times them, and writes `results.json` and `report.html`.
 *
 * @module
 */

import { F16_MATH_HELP, f16MathFlag } from "../f16_math_flag.ts";
import { DQ_HELP, dqFlag, requireDqFeature } from "../dq_flag.ts";
import { F16_MATH_KERNELS, type F16Math } from "../../kernels/flash/mod.ts";
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
  stringFlag,
} from "../flags.ts";
import { maskTooLarge, type MeasureOptions, measureSweep, type RunSpec } from "../bench_runner.ts";
import {
  DECODE_HELP,
  DECODE_STRING_FLAGS,
  type DecodeFlags,
  decodeFlags,
  decodeProblems,
} from "../decode_flags.ts";
import { problemOf } from "../../kernels/registry.ts";
import { progressText, summaryLines, tileText } from "../bench_summary.ts";
import { KERNEL_MODULE_HELP, kernelModulePaths, loadKernelModules } from "../kernel_modules.ts";
import { readTuned, tunedKey, type TunedKnobs, tunedKnobsFor } from "../tuned.ts";
import { VERSION } from "../version.ts";
import {
  DQ_KERNELS,
  type PeerRecord,
  RESULTS_SCHEMA,
  type ResultsFile,
  type RunRecord,
} from "../../core/schema.ts";
import { checkOutputPaths, readInputFile, writeFileSet } from "../../analysis/results_io.ts";
import { checkResults, validatePeerLine } from "../../analysis/validate.ts";
import { kernelCatalog } from "../../kernels/catalog.ts";
import { AttentionKernels } from "../../kernels/attention.ts";
import { measureCeilings } from "../../kernels/ceilings.ts";
import { openGpu, requireDtype } from "../../kernels/gpu.ts";
import type { AttentionShape, Tiles } from "../../core/shapes.ts";
import type { Kernel } from "../../kernels/kernel.ts";
import { renderHtml, toCsv, toGithubActionBenchmark, toMarkdown } from "../../reports/mod.ts";

const GPU_NS = [256, 512, 1024, 2048, 4096, 8192, 16384];
const FALLBACK_NS = [64, 128, 256, 512];
/** Tokens per batch (B·N) kept constant across N, as the flash-attention benchmarks do. */
const GPU_TOKENS = 16384;
const FALLBACK_TOKENS = 512;
const GPU_HEADS = 16;
const FALLBACK_HEADS = 2;
/** `--sweep decode` defaults: context lengths and batch sizes (sequences). */
const GPU_DECODE_NS = [1024, 2048, 4096, 8192, 16384];
const FALLBACK_DECODE_NS = [64, 257];
const GPU_DECODE_BATCHES = [1, 4, 16, 64];
const FALLBACK_DECODE_BATCHES = [1, 3];
/** Sequences of a decode run whose lengths are drawn (uniform, trace) without --batch. */
const DECODE_DRAWN_BATCH = 8;

const HELP = `attnbench bench — time the kernels across sequence lengths; write results and a report

Usage: attnbench bench [shape flags] [flags]

${SHAPE_HELP}
  (bench defaults: all kernels, d 64, f32, not causal, density 0.25; --n 256..16384 on a GPU,
   64..512 on a fallback (software) adapter; --heads 16 (2 on a fallback adapter) and --batch
   chosen so that batch·N = 16384 tokens (512 on a fallback adapter) unless given)

Flags:
  --out DIR           where results.json and report.html go (default: out)
  --sweep KIND        n (default), block-size (paper Fig. 2 middle), density (Fig. 2 right) or
                      decode (the decode kernels over context length --n and --batches; default
                      --kernels decode,paged-decode, --n 1024..16384 and --batches 1,4,16,64 on a
                      GPU, 64,257 and 1,3 on a fallback adapter)
  --batches LIST      --sweep decode: batch sizes (sequences)
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
${DECODE_HELP}
  --no-ceilings       skip the copy / FMA / launch micro-benchmarks
  --no-subgroups      never ask for subgroups: the portable kernels (workgroup-memory reductions)
${F16_MATH_HELP}
${DQ_HELP}
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
        "batches",
        "f16-math",
        "dq",
        ...DECODE_STRING_FLAGS,
      ],
      boolean: ["count-io", "verify", "json", "no-ceilings", "no-report", "quiet", "no-subgroups"],
      collect: ["kernel-module"],
    });
    if (flags.help) {
      io.out(HELP);
      return 0;
    }
    // User kernels first: the shape flags' --kernels and the tuned file may name them.
    await loadKernelModules(kernelModulePaths(flags));
    const str = (k: string) => stringFlag(flags, k);
    // Every flag, the output paths and the input files are checked before the GPU is opened.
    const sweep = (str("sweep") ?? "n") as SweepKind;
    if (!["n", "block-size", "density", "decode"].includes(sweep)) {
      throw new UsageError(`--sweep must be n, block-size, density or decode, got "${sweep}"`);
    }
    if (str("batches") !== undefined && sweep !== "decode") {
      throw new UsageError("--batches applies to --sweep decode");
    }
    const f16Math = f16MathFlag(flags, str("dtype") === "f16" ? "f16" : "f32");
    const exports = (str("export") ?? "").split(",").filter((x) => x !== "");
    for (const x of exports) {
      if (!["csv", "markdown", "gab"].includes(x)) {
        throw new UsageError(`--export takes csv, markdown and gab, got "${x}"`);
      }
    }
    const measure: Omit<MeasureOptions, "sramBytes" | "warmupMs"> = {
      warmup: str("warmup") === undefined ? 3 : nonNegativeInt(str("warmup")!, "--warmup"),
      reps: str("reps") === undefined ? 20 : parsePositiveInt(str("reps")!, "--reps", MAX_REPS),
      minTimeMs: str("min-time") === undefined ? 0 : positiveNumber(str("min-time")!, "--min-time"),
      countIo: flags["count-io"] === true,
      verify: flags.verify === true,
    };
    const blockSizes = parseSizeList(
      str("block-sizes") ?? "16,32,64,128",
      "--block-sizes",
      MAX_BLOCK_SIZE,
    );
    const densities = (str("densities") ?? "1,0.5,0.25,0.125,0.0625").split(",").map((x) =>
      parseFraction(x.trim(), "--densities")
    );
    const warmupMsText = str("warmup-ms");
    const warmupMsFlag = warmupMsText === undefined
      ? undefined
      : nonNegativeInt(warmupMsText, "--warmup-ms", MAX_MS);
    // The shape flags' values, checked now; the defaults depend on the adapter (below).
    const problem = sweep === "decode" ? "decode" : "attention";
    const early = shapeOptions(flags, { ns: [], batch: 0, heads: GPU_HEADS, problem });
    checkSweepKernels(early.kernels, sweep);
    const dq = dqFlag(flags, early.pass);
    await decodeFlags(flags, early);
    const batchesFlag = str("batches") === undefined
      ? undefined
      : parseSizeList(str("batches")!, "--batches");
    if (str("out") === "") throw new UsageError("--out needs a value; see attnbench bench --help");
    const outDir = (str("out") ?? "out").replace(/(.)\/+$/, "$1");
    const noReport = flags["no-report"] === true;
    checkOutputPaths(outputNames(exports, noReport).map((f) => `${outDir}/${f}`), "--out", {
      createDirs: true,
    });
    const peers = str("peers") === undefined ? undefined : await readPeers(str("peers")!);
    const tunedFile = await readTuned(str("tuned"));

    const gpu = await openGpu({ subgroups: flags["no-subgroups"] !== true });
    const fallback = gpu.info.isFallbackAdapter;
    const decodeSweep = sweep === "decode";
    const o = shapeOptions(flags, {
      ns: decodeSweep
        ? (fallback ? FALLBACK_DECODE_NS : GPU_DECODE_NS)
        : (fallback ? FALLBACK_NS : GPU_NS),
      batch: 0, // 0: derived per N below
      heads: fallback ? FALLBACK_HEADS : GPU_HEADS,
      problem,
    });
    let decode: DecodeFlags;
    try {
      decode = await decodeFlags(flags, o);
    } catch (e) {
      gpu.device.destroy();
      throw e;
    }
    const batches = batchesFlag ?? (fallback ? FALLBACK_DECODE_BATCHES : GPU_DECODE_BATCHES);
    requireDtype(gpu, o.dtype);
    try {
      requireDqFeature(gpu, dq, o.kernels.map((k) => k.name));
    } catch (e) {
      gpu.device.destroy();
      throw e;
    }
    if (fallback) {
      // Say which defaults were chosen for the fallback adapter, and only those.
      const chosen = [
        flags.n === undefined ? `--n ${FALLBACK_NS[0]}..${FALLBACK_NS.at(-1)}` : "",
        flags.heads === undefined ? `--heads ${FALLBACK_HEADS}` : "",
        flags.batch === undefined ? `batch·N = ${FALLBACK_TOKENS} tokens` : "",
      ].filter((x) => x !== "");
      io.err(
        `fallback (software) adapter "${gpu.info.description}": timings say nothing about a ` +
          `GPU${chosen.length > 0 ? `; small defaults for it: ${chosen.join(", ")}` : ""}`,
      );
    }
    const tuned = tunedKnobsFor(tunedFile, gpu.info);
    const kernels = new AttentionKernels(gpu);
    // A kernel may use another's tuned knobs (block-sparse is the flash program with a mask).
    const knobsFor = (kernel: Kernel, shape: AttentionShape): TunedKnobs | undefined =>
      tuned?.[tunedKey(kernel.name, shape.dtype, shape.d)] ??
        (kernel.tunedLike === null
          ? undefined
          : tuned?.[tunedKey(kernel.tunedLike, shape.dtype, shape.d)]);
    const tilesFor = (kernel: Kernel, shape: AttentionShape): Tiles =>
      knobsFor(kernel, shape)?.tiles ?? kernels.defaultTiles(kernel, shape);
    const specs = withTunedKnobs(
      withDq(
        withF16Math(
          planRuns(o, sweep, {
            blockSizes,
            densities,
            fallback,
            tilesFor,
            decode,
            batches,
          }),
          f16Math,
        ),
        dq,
      ),
      knobsFor,
      { f16MathGiven: flags["f16-math"] !== undefined, subgroups: gpu.subgroupSize > 0 },
    );
    for (const spec of specs) {
      const why = maskTooLarge(spec);
      if (why) {
        gpu.device.destroy();
        throw new UsageError(why);
      }
    }

    const sramBytes = gpu.device.limits.maxComputeWorkgroupStorageSize;
    const warmupMs = warmupMsFlag ?? (fallback ? 0 : 200);
    let ceilings = null;
    if (flags["no-ceilings"] !== true) {
      io.progress("measuring device ceilings (copy, FMA, launch)");
      // A GPU fault here leaves the ceilings unmeasured (null); the sweep then judges the device.
      const c = await measureCeilings(gpu, { quick: fallback }).catch((e) => {
        if (e instanceof UsageError) throw e;
        io.err(`warning: device ceilings not measured: ${String(e?.message ?? e).split("\n")[0]}`);
        return null;
      });
      // A ceiling that came out NaN, infinite or negative (noise) was not measured: null.
      const finite = (x: number | null) => (x !== null && Number.isFinite(x) && x >= 0 ? x : null);
      ceilings = c && {
        ...c,
        copyGBs: finite(c.copyGBs),
        fmaTflops: finite(c.fmaTflops),
        launchOverheadUs: finite(c.launchOverheadUs),
      };
    }
    const started = performance.now();
    const runs = await measureSweep(kernels, specs, { ...measure, sramBytes, warmupMs }, {
      onRun: (i, spec) => {
        const { shape, tiles } = spec;
        const label = `${spec.kernel.name} n=${shape.n} b×h=${shape.batch}×${shape.heads} ` +
          `tile ${tileText(tiles, spec.decode)}`;
        io.progress(
          progressText(i, specs.length, label, performance.now() - started, io.isTerminal),
        );
      },
    });
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
    // What is written must read back: a NaN or an infinity here is a bug, not a result.
    checkResults(results, kernelCatalog());

    const written = await writeOutputs(results, outDir, exports, noReport);
    if (flags.json) {
      io.out(JSON.stringify(results, null, 2));
    } else {
      printSummary(results, io);
      for (const path of written) io.err(`wrote ${path}`);
    }
    // A run that failed (wrong output, kernel or device error) fails the command; its reason
    // and the finished runs are in the files.
    return runs.some((r) => r.status === "failed") ? 1 : 0;
  },
};

/** Largest `--reps`, `--warmup`; largest `--min-time` and `--warmup-ms` (one hour). */
const MAX_REPS = 1_000_000;
const MAX_MS = 3_600_000;
/** Largest query-block size `--block-sizes` takes (threads per workgroup cap it anyway). */
const MAX_BLOCK_SIZE = 1024;

/** The file names one bench writes into `--out`, in order. */
function outputNames(exports: string[], noReport: boolean): string[] {
  return [
    "results.json",
    ...(noReport ? [] : ["report.html"]),
    ...(exports.includes("csv") ? ["results.csv"] : []),
    ...(exports.includes("markdown") ? ["results.md"] : []),
    ...(exports.includes("gab") ? ["benchmark.json"] : []),
  ];
}

function nonNegativeInt(text: string, flag: string, max = MAX_REPS): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} must be an integer ≥ 0, got "${text}"`);
  const v = Number(text);
  if (v > max) throw new UsageError(`${flag} must be at most ${max}, got ${text}`);
  return v;
}

function positiveNumber(text: string, flag: string, max = MAX_MS): number {
  const v = Number(text);
  if (text.trim() === "" || !(v > 0) || !Number.isFinite(v)) {
    throw new UsageError(`${flag} must be a positive number, got "${text}"`);
  }
  if (v > max) throw new UsageError(`${flag} must be at most ${max}, got ${text}`);
  return v;
}

/** What {@linkcode planRuns} needs besides the shape options. */
interface PlanContext {
  blockSizes: number[];
  densities: number[];
  fallback: boolean;
  tilesFor: (kernel: Kernel, shape: AttentionShape) => Tiles;
  /** The decode workload flags, for the decode kernels. */
  decode: DecodeFlags;
  /** `--sweep decode`: batch sizes. */
  batches: number[];
}

/**
 * Which kernels a sweep takes: `--sweep decode` only the decode kernels, the block-size sweep
 * only kernels with tiles.
 */
function checkSweepKernels(kernels: readonly Kernel[], sweep: SweepKind): void {
  const decode = kernels.filter((k) => problemOf(k) === "decode");
  const attention = kernels.filter((k) => problemOf(k) === "attention");
  if (sweep === "decode" && attention.length > 0) {
    throw new UsageError(
      `--sweep decode runs the decode kernels; drop ${attention[0]!.name} from --kernels`,
    );
  }
  if (sweep === "block-size" && decode.length > 0) {
    throw new UsageError(
      `--sweep block-size varies attention tiles, which ${
        decode[0]!.name
      } has none of; use --sweep decode`,
    );
  }
}

/**
 * The decode kernels' runs: `--sweep decode` one per context length (fixed lengths) and batch
 * of `--batches`; otherwise one per context length with the sweep's batch (fixed lengths), or
 * one batch of drawn or listed lengths.
 */
function decodeRuns(
  o: ShapeOptions,
  sweep: SweepKind,
  ctx: PlanContext,
  tokens: number,
  seed: number,
): RunSpec[] {
  const kernels = o.kernels.filter((k) => problemOf(k) === "decode");
  // A density sweep varies masks: the decode kernels have none (densitySweep "none").
  if (kernels.length === 0 || sweep === "density") return [];
  const f = ctx.decode;
  const problems = sweep === "decode"
    ? decodeProblems(f, o, ctx.batches)
    : f.lengths.kind === "fixed"
    ? o.ns.flatMap((n) => decodeProblems(f, { ...o, ns: [n] }, [shapeAt(o, n, tokens).batch]))
    : decodeProblems(f, o, [o.batch > 0 ? o.batch : DECODE_DRAWN_BATCH]);
  const mask = { kind: o.mask, density: o.density, seed: o.seed };
  return problems.flatMap((p) =>
    kernels.map((kernel) => ({
      kernel,
      shape: p.shape,
      tiles: ctx.tilesFor(kernel, p.shape),
      mask,
      sweep,
      seed: seed++,
      options: p.optionsFor(kernel),
      decode: p.recordFor(kernel),
    }))
  );
}

/**
 * The f16 flash programs' arithmetic (`--f16-math`) on the runs of the kernels that take it, as
 * their kernel option and in their record.
 */
function withF16Math(specs: RunSpec[], f16Math: F16Math | null): RunSpec[] {
  if (f16Math === null) return specs;
  return specs.map((s) =>
    F16_MATH_KERNELS.includes(s.kernel.name)
      ? { ...s, options: { ...s.options, f16Math }, f16Math }
      : s
  );
}

/** flash's backward dQ (`--dq`) on the runs of the kernels that take it, as option and record. */
function withDq(specs: RunSpec[], dq: RunRecord["dq"] | null): RunSpec[] {
  if (dq === null) return specs;
  return specs.map((s) =>
    DQ_KERNELS.includes(s.kernel.name) ? { ...s, options: { ...s.options, dq }, dq } : s
  );
}

/**
 * The tuned knobs beside the tiles on the runs that use a tuned entry: its f16 arithmetic
 * (unless `--f16-math` was given) and its portable path (only where the device has subgroups:
 * without them every run is portable anyway), as kernel options and in the records.
 */
export function withTunedKnobs(
  specs: RunSpec[],
  knobsFor: (kernel: Kernel, shape: AttentionShape) => TunedKnobs | undefined,
  opts: { f16MathGiven: boolean; subgroups: boolean },
): RunSpec[] {
  return specs.map((s) => {
    const k = knobsFor(s.kernel, s.shape);
    if (!k) return s;
    const math = !opts.f16MathGiven && k.f16Math !== undefined && s.shape.dtype === "f16" &&
        F16_MATH_KERNELS.includes(s.kernel.name)
      ? { options: { ...s.options, f16Math: k.f16Math }, f16Math: k.f16Math }
      : {};
    const sg = opts.subgroups && k.subgroups === false ? { subgroups: false as const } : {};
    return { ...s, ...math, ...sg };
  });
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
  const attention = { ...o, kernels: o.kernels.filter((k) => problemOf(k) === "attention") };
  for (const n of attention.kernels.length > 0 ? o.ns : []) {
    const shape = shapeAt(o, n, tokens);
    if (sweep === "n") {
      for (const kernel of attention.kernels) {
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
      for (const kernel of attention.kernels) {
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
      for (const kernel of attention.kernels.filter((k) => k.densitySweep === "once")) {
        specs.push({
          kernel,
          shape,
          tiles: ctx.tilesFor(kernel, shape),
          mask,
          sweep,
          seed: seed++,
        });
      }
      for (const kernel of attention.kernels.filter((k) => k.densitySweep === "each")) {
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
  specs.push(...decodeRuns(o, sweep, ctx, tokens, seed));
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

async function readPeers(path: string): Promise<PeerRecord[]> {
  let text: string;
  try {
    text = await readInputFile(path);
  } catch (e) {
    throw new UsageError(`cannot read --peers ${path}: ${(e as Error).message}`);
  }
  const records: PeerRecord[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new UsageError(`--peers ${path}: line ${i + 1} is not JSON`);
    }
    records.push(validatePeerLine(row, `--peers ${path}`, i + 1));
  });
  return records;
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

/** Renders everything first, then writes the set all or nothing (see `writeFileSet`). */
async function writeOutputs(
  results: ResultsFile,
  outDir: string,
  exports: string[],
  noReport: boolean,
): Promise<string[]> {
  const render: Record<string, () => string> = {
    "results.json": () => JSON.stringify(results, null, 2) + "\n",
    "report.html": () => renderHtml([results]),
    "results.csv": () => toCsv([results]),
    "results.md": () => toMarkdown([results]),
    "benchmark.json": () => JSON.stringify(toGithubActionBenchmark([results]), null, 2) + "\n",
  };
  const files = outputNames(exports, noReport).map((name) =>
    [`${outDir}/${name}`, render[name]!()] as const
  );
  await writeFileSet(files, { createDirs: true });
  return files.map(([p]) => p);
}

function printSummary(results: ResultsFile, io: Output): void {
  for (const line of summaryLines(results)) io.out(line);
}
