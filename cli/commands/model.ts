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
  --json              print the same data as JSON
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

function stringFlag(raw: RawFlags, name: string): string | undefined {
  const v = raw[name];
  return typeof v === "string" ? v : undefined;
}

/** Largest `--br`, `--bc` and `--block-sizes` (a workgroup has at most 1024 threads anyway). */
const MAX_TILE_EDGE = 1024;

/**
 * Turns the command's arguments into {@linkcode ModelOptions}, or `"help"` for `--help`.
 * Throws {@linkcode UsageError} on an unknown flag, a stray argument or a bad value.
 *
 * @example
 * ```ts
 * import { parseModelArgs } from "./model.ts";
 * const o = parseModelArgs(["--n", "1024", "--kernels", "flash", "--causal"]);
 * console.assert(o !== "help" && o.ns[0] === 1024 && o.kernels[0]?.name === "flash" && o.causal);
 * ```
 */
export function parseModelArgs(args: string[]): ModelOptions | "help" {
  const raw = parseCommandFlags("model", args, {
    string: ["sram", "block-sizes", "br", "bc", "kernel-module"],
    boolean: ["json"],
    collect: ["kernel-module"],
  });
  if (raw.help === true) return "help";
  const shape = shapeOptions(raw, {
    ns: [...MODEL_DEFAULTS.ns],
    batch: MODEL_DEFAULTS.batch,
    heads: MODEL_DEFAULTS.heads,
    d: MODEL_DEFAULTS.d,
    density: MODEL_DEFAULTS.density,
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
 * import { createModelCommand } from "./model.ts";
 * import { captureOutput } from "../output.ts";
 * const io = captureOutput();
 * const cmd = createModelCommand({ modeled: () => 1e6 });
 * await cmd.run(["--n", "256", "--json"], io);
 * console.assert(JSON.parse(io.stdout.join("\n")).sizes[0].kernels[0].modeledBytes === 1e6);
 * ```
 */
export function createModelCommand(deps: ModelDeps = {}): ModelCommand {
  return {
    name: "model",
    summary: "IO model: HBM traffic, FLOPs and footprint of each kernel, no GPU",
    help: HELP,
    async run(args: string[], io: Output): Promise<number> {
      await loadKernelModules(kernelModulePaths(
        parseCommandFlags("model", args, {
          string: ["sram", "block-sizes", "br", "bc", "kernel-module"],
          boolean: ["json"],
          collect: ["kernel-module"],
        }),
      ));
      const opts = parseModelArgs(args);
      if (opts === "help") {
        for (const line of HELP.split("\n")) io.out(line);
      } else if (opts.json) {
        io.out(JSON.stringify(buildModel(opts, deps), null, 2));
      } else {
        for (const line of renderModel(buildModel(opts, deps))) io.out(line);
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
 * import { modelCommand } from "./model.ts";
 * import { captureOutput } from "../output.ts";
 * const io = captureOutput();
 * console.assert(await modelCommand.run(["--n", "256..512"], io) === 0);
 * ```
 */
export const modelCommand: ModelCommand = createModelCommand({ modeled: kernelModeledBytes });
