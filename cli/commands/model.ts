/**
 * `attnbench model`: the IO model of the kernels as tables (or JSON), without a GPU. This file
 * parses the flags and runs the command; `model_build.ts` computes the report, `model_render.ts`
 * prints it.
 *
 * For each sequence length it prints, per kernel, the tiles it would run with, the paper's
 * theoretical HBM traffic, the query-outer count of our flash kernel's loop order, the bytes our
 * kernels move with those tiles (each kernel plan's `modeledTraffic`, injectable through
 * `ModelDeps`), the compulsory lower bound, the standard/flash ratio, FLOPs, arithmetic
 * intensity and the buffer footprint. The formulas are in `analysis/IO_MODEL.md`.
 *
 * Tiles are chosen as the GPU would (`defaultTiles` with `--sram` as the workgroup storage
 * limit), unless `--br`/`--bc` give them. Block-sparse builds its real block mask on its tiles
 * and reports the density that mask reaches.
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import {
  parseCommandFlags,
  parsePositiveInt,
  parseSizeList,
  type RawFlags,
  SHAPE_HELP,
  shapeOptions,
  stringFlag,
} from "../flags.ts";
import type { Output } from "../output.ts";
import { dtypeBytes } from "../../core/shapes.ts";
import { KERNEL_MODULE_HELP, kernelModulePaths, loadKernelModules } from "../kernel_modules.ts";
import {
  buildModel,
  kernelModeledBytes,
  MODEL_DEFAULTS,
  type ModelDeps,
  type ModelOptions,
} from "./model_build.ts";
import { renderModel } from "./model_render.ts";
import { DECODE_HELP, DECODE_STRING_FLAGS, decodeFlags, decodeProblems } from "../decode_flags.ts";
import { problemOf } from "../../kernels/registry.ts";
import type { Kernel } from "../../kernels/kernel.ts";
import {
  buildKvReport,
  type KvReport,
  type KvReportOptions,
  renderKvReport,
  sharegptWorkload,
} from "../../analysis/kv_report.ts";
import { BLOCK_SIZES } from "../../kernels/decode/mod.ts";

export * from "./model_build.ts";
export { renderModel } from "./model_render.ts";

const HELP = `attnbench model — HBM traffic, FLOPs and footprint of each kernel (IO model, no GPU)

Usage: attnbench model [flags]

${SHAPE_HELP}
  Defaults here: --n 256..16384, --batch 1, --heads 16.

Model flags:
  --sram BYTES        on-chip memory M of the paper's model, in bytes, and the workgroup storage
                      limit the tiles must fit (default: 49152, a typical
                      maxComputeWorkgroupStorageSize; the paper's A100 figure is ~100 KB: 102400)
  --br R, --bc C      model these tiles (rm = tx = 1) instead of the first of kernels/tiles.ts's
                      candidates that fits M and ${MODEL_DEFAULTS.maxInvocations} threads; \
one alone
                      keeps the other from that choice
  --block-sizes LIST  also tabulate traffic as the block size grows at each N (paper Figure 2,
                      middle): flash theoretical with Bc = Br = B, query-outer with br = B
  --json              print the same data as JSON (with the decode kernels: and kvCache)

${DECODE_HELP}

KV-cache memory model (printed when a decode kernel is selected; PagedAttention, the vLLM
paper): where the KV memory of the decode workload goes when each sequence reserves a
contiguous region (to --max-len, to its length's power of two, to its length) or holds blocks
of --block-size tokens; the paged waste at block sizes 8..256; what block sharing saves; how
many sequences fit in --memory. The workload: the sequences of every decode problem above
(with fixed lengths: --batch sequences of each --n), or --workload sharegpt.
  --memory BYTES      KV memory budget (default: 16e9; decimal, e.g. 12e9 or 12000000000)
  --layers L          transformer layers, each with its own K and V cache (default: 1)
  --max-len L         tokens a contiguous scheme reserves per sequence (default: the longest)
  --samples N         parallel sampling: N samples per sequence's prompt (default: 1)
  --shared-prefix T   tokens of every prompt shared by all requests (default: 0)
  --workload sharegpt the documented workload that reproduces the paper's waste figures in
                      shape: --batch (default 512) sequences with the ShareGPT trace's mean
                      lengths (seed --seed), OPT-13B (40 layers, 40 KV heads of d=128, f16),
                      maximum 2048 (selects the decode kernels when --kernels is not given)
${KERNEL_MODULE_HELP}
  --help              this text

Columns: tiles br×bc each kernel runs with; theoretical, the paper's count for M; query-outer,
our flash loop order's count with its br; modeled, the exact bytes our kernels move with their
tiles (each kernel's plan, kernels/<name>/mod.ts); lower bound, the compulsory bytes.
block-sparse uses its real mask (--mask, --density, --seed) on its tiles and reports the density
that mask reaches; its theoretical count visits Algorithm 5's Br×Bc blocks holding an entry of
that mask, and its lower bound counts only the rows the mask uses. With --causal every column
skips what lies above the diagonal. bench uses the adapter's maxComputeWorkgroupStorageSize as M
and records it.
Bytes are HBM reads plus writes of all batch·heads heads, in decimal units (1 MB = 10^6 B).
Formulas and sources: analysis/IO_MODEL.md.`;

/** Largest `--br`, `--bc` and `--block-sizes` (a workgroup has at most 1024 threads anyway). */
const MAX_TILE_EDGE = 1024;

/**
 * Turns the command's arguments into {@linkcode ModelOptions}, or `"help"` for `--help`.
 * Throws {@linkcode UsageError} on an unknown flag, a stray argument or a bad value.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseModelArgs } from "./model.ts";
 * const o = parseModelArgs(["--n", "1024", "--kernels", "flash", "--causal"]);
 * assert(o !== "help" && o.ns[0] === 1024 && o.kernels[0]?.name === "flash" && o.causal);
 * ```
 */
export function parseModelArgs(args: string[]): ModelOptions | "help" {
  const raw = parseModelFlags(args);
  if (raw.help === true) return "help";
  const shape = shapeOptions(raw, {
    ns: [...MODEL_DEFAULTS.ns],
    batch: MODEL_DEFAULTS.batch,
    heads: MODEL_DEFAULTS.heads,
    d: MODEL_DEFAULTS.d,
    density: MODEL_DEFAULTS.density,
    problem: stringFlag(raw, "workload") === undefined ? "attention" : "decode",
  });
  const size = (flag: string): number | null => {
    const text = stringFlag(raw, flag);
    return text === undefined
      ? null
      : parsePositiveInt(text, `--${flag}`, flag === "sram" ? 2 ** 40 : MAX_TILE_EDGE);
  };
  const sramBytes = size("sram") ?? MODEL_DEFAULTS.sramBytes;
  const e = dtypeBytes(shape.dtype);
  if (sramBytes < e) {
    throw new UsageError(
      `--sram ${sramBytes} bytes holds no ${shape.dtype} element; give at least ${e}`,
    );
  }
  const blockSizesText = stringFlag(raw, "block-sizes");
  return {
    ...shape,
    sramBytes,
    blockSizes: blockSizesText === undefined
      ? null
      : parseSizeList(blockSizesText, "--block-sizes", MAX_TILE_EDGE),
    br: size("br"),
    bc: size("bc"),
    json: raw.json === true,
  };
}

/** The model's own flags that take a value. */
const MODEL_STRING_FLAGS = [
  "sram",
  "block-sizes",
  "br",
  "bc",
  "kernel-module",
  ...DECODE_STRING_FLAGS,
  "memory",
  "layers",
  "max-len",
  "samples",
  "shared-prefix",
  "workload",
];
const KV_FLAGS = ["memory", "layers", "max-len", "samples", "shared-prefix", "workload"];

function parseModelFlags(args: string[]): RawFlags {
  return parseCommandFlags("model", args, {
    string: MODEL_STRING_FLAGS,
    boolean: ["json"],
    collect: ["kernel-module"],
  });
}

/** Default `--memory`: 16 GB of KV cache. */
const DEFAULT_MEMORY = 16e9;
/** Largest `--memory`: 1 PB. */
const MAX_MEMORY = 1e15;

/**
 * The decode kernels' part of `model`: their options at each n (KV heads, block size) and the
 * KV-cache memory model's workload. Null when no decode kernel is selected (the KV flags are
 * then refused).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseKvArgs, parseModelArgs } from "./model.ts";
 * const args = ["--kernels", "paged-decode", "--n", "100", "--batch", "4", "--memory", "1e9"];
 * const o = parseModelArgs(args);
 * const kv = o === "help" ? null : await parseKvArgs(args, o);
 * assert(kv?.report.seqs.length === 4 && kv.report.memoryBytes === 1e9);
 * ```
 */
export async function parseKvArgs(
  args: string[],
  o: ModelOptions,
): Promise<
  {
    optionsFor: (kernel: Kernel, n: number) => Record<string, unknown> | undefined;
    report: KvReportOptions;
  } | null
> {
  const raw = parseModelFlags(args);
  const str = (name: string) => stringFlag(raw, name);
  const decode = await decodeFlags(raw, o);
  if (!o.kernels.some((k) => problemOf(k) === "decode")) {
    const given = KV_FLAGS.find((f) => str(f) !== undefined);
    if (given) {
      throw new UsageError(
        `--${given} applies to the decode kernels; add decode or paged-decode to --kernels`,
      );
    }
    return null;
  }
  const int = (name: string, fallback: number, min = 1) => {
    const t = str(name);
    if (t === undefined) return fallback;
    if (min === 0 && t === "0") return 0;
    return parsePositiveInt(t, `--${name}`, 2 ** 31);
  };
  const memText = str("memory");
  let memoryBytes = DEFAULT_MEMORY;
  if (memText !== undefined) {
    memoryBytes = Number(memText);
    if (!/^\d+(\.\d+)?(e\d+)?$/.test(memText) || !(memoryBytes > 0) || memoryBytes > MAX_MEMORY) {
      throw new UsageError(
        `--memory must be a number of bytes in (0, 1e15], e.g. 12e9, got "${memText}"`,
      );
    }
  }
  const samples = int("samples", 1);
  const sharedPrefix = int("shared-prefix", 0, 0);
  const blockSizes = [8, 16, 32, 64, 128, 256].filter((b) => b >= BLOCK_SIZES.min);
  const workload = str("workload");
  // The IO table's rows: a decode kernel at each --n with the decode flags' KV heads and block.
  const optionsFor = (kernel: Kernel, n: number) =>
    problemOf(kernel) === "decode"
      ? decodeProblems({ ...decode, lengths: { kind: "fixed" } }, { ...o, ns: [n] }, [o.batch])[0]!
        .optionsFor(kernel)
      : undefined;
  if (workload !== undefined) {
    if (workload !== "sharegpt") {
      throw new UsageError(`--workload must be sharegpt, got "${workload}"`);
    }
    for (const f of ["context", "lengths", "layers", "max-len", "kv-heads"]) {
      if (str(f) !== undefined) {
        throw new UsageError(`--workload sharegpt fixes the lengths and layout; drop --${f}`);
      }
    }
    const count = str("batch") === undefined ? 512 : o.batch;
    const w = sharegptWorkload(str("seed") === undefined ? 2023 : o.seed, count);
    return {
      optionsFor,
      report: {
        ...w,
        layout: { ...w.layout, blockSize: decode.blockSize },
        memoryBytes,
        samples,
        sharedPrefix,
        blockSizes,
      },
    };
  }
  const problems = decodeProblems(decode, o, [o.batch]);
  const lens = problems.flatMap((p) => [...p.lens]);
  const longest = Math.max(...lens);
  const maxLen = int("max-len", longest);
  if (maxLen < longest) {
    throw new UsageError(`--max-len ${maxLen} is shorter than the longest context ${longest}`);
  }
  const kvHeads = decode.kvHeads ?? o.heads;
  return {
    optionsFor,
    report: {
      workload: `${lens.length} sequences (${
        decode.lengths.kind === "fixed" ? `${o.batch} of each --n` : decode.lengths.kind
      }), lengths ${Math.min(...lens)}..${longest}`,
      seqs: lens.map((len) => ({ len })),
      layout: {
        d: o.d,
        kvHeads,
        layers: int("layers", 1),
        dtype: o.dtype,
        blockSize: decode.blockSize,
      },
      maxLen,
      memoryBytes,
      samples,
      sharedPrefix,
      blockSizes,
    },
  };
}

/** The tiles one kernel is modeled with. */
export interface ModelCommand {
  name: "model";
  summary: string;
  help: string;
  run(args: string[], io: Output): Promise<number>;
}

/**
 * The `model` command with its dependencies injected (tests pass a fake `modeled`; without one
 * the modeled column shows "—").
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createModelCommand } from "./model.ts";
 * import { captureOutput } from "../output.ts";
 * const io = captureOutput();
 * const cmd = createModelCommand({ modeled: () => 1e6 });
 * await cmd.run(["--n", "256", "--json"], io);
 * assert(JSON.parse(io.stdout.join("\n")).sizes[0].kernels[0].modeledBytes === 1e6);
 * ```
 */
export function createModelCommand(deps: ModelDeps = {}): ModelCommand {
  return {
    name: "model",
    summary: "IO model: HBM traffic, FLOPs and footprint of each kernel, no GPU",
    help: HELP,
    async run(args: string[], io: Output): Promise<number> {
      await loadKernelModules(kernelModulePaths(parseModelFlags(args)));
      const opts = parseModelArgs(args);
      if (opts === "help") {
        for (const line of HELP.split("\n")) io.out(line);
        return 0;
      }
      const kv = await parseKvArgs(args, opts);
      const model = buildModel({ ...opts, optionsFor: kv?.optionsFor }, deps);
      const kvCache: KvReport | null = kv ? buildKvReport(kv.report) : null;
      if (opts.json) {
        io.out(JSON.stringify(kvCache ? { ...model, kvCache } : model, null, 2));
      } else {
        for (const line of renderModel(model)) io.out(line);
        if (kvCache) { for (const line of ["", ...renderKvReport(kvCache)]) io.out(line); }
      }
      return 0;
    },
  };
}

/**
 * The `model` command with the kernels' real modeled bytes ({@linkcode kernelModeledBytes}).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { modelCommand } from "./model.ts";
 * import { captureOutput } from "../output.ts";
 * const io = captureOutput();
 * assert(await modelCommand.run(["--n", "256..512"], io) === 0);
 * ```
 */
export const modelCommand: ModelCommand = createModelCommand({ modeled: kernelModeledBytes });
