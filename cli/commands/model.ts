/**
 * `attnbench model`: the IO model of the three kernels as tables (or JSON), without a GPU.
 *
 * For each sequence length it prints, per kernel, the paper's theoretical HBM traffic, the
 * query-outer count of our flash kernel's loop order, the kernels' modeled bytes (injected, see
 * {@linkcode ModelDeps}), the compulsory lower bound, the standard/flash ratio, FLOPs, arithmetic
 * intensity and the buffer footprint. The formulas are in `analysis/IO_MODEL.md`.
 *
 * @module
 */

import { parseArgs } from "@std/cli/parse-args";
import { UsageError } from "../errors.ts";
import type { Output } from "../output.ts";
import {
  arithmeticIntensity,
  ceilDiv,
  flashQueryOuterBytes,
  flops,
  footprintBytes,
  formatBytes,
  formatSi,
  lowerBoundBytes,
  theoreticalBytes,
  type TheoreticalTraffic,
} from "../../analysis/io_model.ts";
import {
  type AttentionShape,
  type Dtype,
  dtypeBytes,
  DTYPES,
  HEAD_DIMS,
  type KernelName,
  KERNELS,
} from "../../kernels/types.ts";

/**
 * The kernels' own exact byte count (from their tiles and loop structure), or null when the
 * kernel has none for this shape. `density` is 1 for standard and flash.
 */
export type ModeledBytesFn = (
  kernel: KernelName,
  shape: AttentionShape,
  density: number,
) => number | null;

/** What the model command needs from outside `analysis/`; injectable for tests. */
export interface ModelDeps {
  /** The kernels' modeled bytes; when absent (or it returns null) the table shows "—". */
  modeled?: ModeledBytesFn;
}

/** Everything the flags decide. */
export interface ModelOptions {
  kernels: KernelName[];
  ns: number[];
  d: number;
  batch: number;
  heads: number;
  dtype: Dtype;
  causal: boolean;
  density: number;
  sramBytes: number;
  /** Block sizes of the block-size table, or null for no such table. */
  blockSizes: number[] | null;
  /** Tiles of the query-outer count and the footprint. */
  br: number;
  bc: number;
  json: boolean;
}

/**
 * Defaults of the flags.
 *
 * @example
 * ```ts
 * import { MODEL_DEFAULTS } from "./model.ts";
 * console.assert(MODEL_DEFAULTS.sramBytes === 49152);
 * ```
 */
export const MODEL_DEFAULTS = {
  ns: [256, 512, 1024, 2048, 4096, 8192, 16384],
  d: 64,
  batch: 1,
  heads: 16,
  dtype: "f32" as Dtype,
  density: 0.25,
  /** A typical `maxComputeWorkgroupStorageSize`. */
  sramBytes: 49152,
  br: 64,
  bc: 64,
} as const;

const HELP = `attnbench model — HBM traffic, FLOPs and footprint of each kernel (IO model, no GPU)

Usage: attnbench model [flags]

Flags:
  --kernels LIST      comma list of standard, flash, block-sparse (default: all)
  --n LIST            sequence lengths, comma list and/or power-of-two ranges like 256..16384
                      (default: 256,512,1024,2048,4096,8192,16384)
  --d D               head dimension: 32, 64 or 128 (default: 64)
  --batch B           batch size (default: 1)
  --heads H           heads (default: 16)
  --dtype T           f32 or f16 (default: f32)
  --causal            causal masking
  --density S         block-sparse fraction of nonzero blocks, in (0, 1] (default: 0.25)
  --sram BYTES        on-chip memory M of the paper's model, in bytes (default: 49152, a typical
                      maxComputeWorkgroupStorageSize; the paper's A100 figure is ~100 KB: 102400)
  --block-sizes LIST  also tabulate traffic as the block size grows at each N (paper Figure 2,
                      middle): flash theoretical with Bc = Br = B, query-outer with br = B
  --br R, --bc C      tiles of the query-outer count and of the footprint (default: 64, 64)
  --json              print the same data as JSON
  --help              this text

Bytes are HBM reads plus writes of all batch·heads heads, in decimal units (1 MB = 10^6 B).
Formulas and sources: analysis/IO_MODEL.md.`;

const SIZE_FLAGS = ["batch", "heads", "sram", "br", "bc"] as const;

const STRING_FLAGS: readonly string[] = [
  "kernels",
  "n",
  "d",
  "dtype",
  "density",
  "block-sizes",
  ...SIZE_FLAGS,
];

type StringFlag =
  | "kernels"
  | "n"
  | "d"
  | "dtype"
  | "density"
  | "block-sizes"
  | typeof SIZE_FLAGS[number];

/** What `parseArgs` returns for the options in {@linkcode parseModelArgs}. */
type RawFlags = { [K in StringFlag]?: string } & { causal: boolean; json: boolean; help: boolean };

/**
 * Parses a list of positive integers: comma-separated items, each a number or a power-of-two
 * range `lo..hi` (both powers of two) that expands to `lo, 2·lo, …, hi`. Duplicates are dropped.
 * Throws {@linkcode UsageError} naming `flag` on bad input.
 *
 * @example
 * ```ts
 * import { parseSizeList } from "./model.ts";
 * console.assert(parseSizeList("256..2048", "--n").join() === "256,512,1024,2048");
 * console.assert(parseSizeList("100,64..128", "--n").join() === "100,64,128");
 * ```
 */
export function parseSizeList(text: string, flag: string): number[] {
  const what =
    `${flag} takes positive integers or power-of-two ranges like 256..16384, got "${text}"`;
  const sizes: number[] = [];
  const items = text.split(",").map((s) => s.trim());
  if (items.some((s) => s === "")) throw new UsageError(what);
  for (const item of items) {
    const range = /^(\d+)\.\.(\d+)$/.exec(item);
    if (range) {
      const lo = parsePositiveInt(range[1] ?? "", flag);
      const hi = parsePositiveInt(range[2] ?? "", flag);
      if (!isPowerOfTwo(lo) || !isPowerOfTwo(hi) || lo > hi) {
        throw new UsageError(
          `${flag} range "${item}" must go from a power of two up to a power of two, ` +
            `e.g. 256..16384`,
        );
      }
      for (let v = lo; v <= hi; v *= 2) sizes.push(v);
    } else {
      sizes.push(parsePositiveInt(item, flag));
    }
  }
  return [...new Set(sizes)];
}

function isPowerOfTwo(v: number): boolean {
  return Number.isSafeInteger(v) && v > 0 && 2 ** Math.round(Math.log2(v)) === v;
}

function parsePositiveInt(text: string, flag: string): number {
  const v = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(v) || v <= 0) {
    throw new UsageError(`${flag} must be a positive integer, got "${text}"`);
  }
  return v;
}

/**
 * Turns the command's arguments into {@linkcode ModelOptions}, or `"help"` for `--help`.
 * Throws {@linkcode UsageError} on an unknown flag, a stray argument or a bad value.
 *
 * @example
 * ```ts
 * import { parseModelArgs } from "./model.ts";
 * const o = parseModelArgs(["--n", "1024", "--kernels", "flash", "--causal"]);
 * console.assert(o !== "help" && o.ns[0] === 1024 && o.kernels.join() === "flash" && o.causal);
 * ```
 */
export function parseModelArgs(args: string[]): ModelOptions | "help" {
  // parseArgs reads `--flag ""` as an empty value plus a stray "", and `--flag -5` as an empty
  // value plus a flag -5: name the flag instead.
  args.forEach((arg, i) => {
    const prev = args[i - 1];
    if (arg === "" && prev?.startsWith("--")) {
      throw new UsageError(`${prev} needs a value, got ""; see attnbench model --help`);
    }
    if (/^-\d/.test(arg) && prev !== undefined && STRING_FLAGS.includes(prev.slice(2))) {
      throw new UsageError(`${prev} takes a positive value, got "${arg}"`);
    }
  });
  // The npm build of std ships no types: state what the options above guarantee.
  const flags: RawFlags = parseArgs(args, {
    string: [...STRING_FLAGS],
    boolean: ["causal", "json", "help"],
    unknown: (arg: string) => {
      if (arg.startsWith("-")) {
        throw new UsageError(`unknown flag ${arg.split("=")[0]}; see attnbench model --help`);
      }
      throw new UsageError(
        `model takes no positional arguments, got "${arg}"; see attnbench model --help`,
      );
    },
  });
  if (flags.help) return "help";

  let kernels: KernelName[] = [...KERNELS];
  if (flags.kernels !== undefined) {
    const names = flags.kernels.split(",").map((s) => s.trim());
    kernels = [];
    for (const name of names) {
      if (!(KERNELS as readonly string[]).includes(name)) {
        throw new UsageError(
          `unknown kernel "${name}" in --kernels; use a comma list of ${KERNELS.join(", ")}`,
        );
      }
      if (!kernels.includes(name as KernelName)) kernels.push(name as KernelName);
    }
  }

  const ns = flags.n === undefined ? [...MODEL_DEFAULTS.ns] : parseSizeList(flags.n, "--n");

  let d: number = MODEL_DEFAULTS.d;
  if (flags.d !== undefined) {
    d = Number(flags.d);
    if (!/^\d+$/.test(flags.d) || !HEAD_DIMS.includes(d)) {
      throw new UsageError(`--d must be one of ${HEAD_DIMS.join(", ")}, got "${flags.d}"`);
    }
  }

  let dtype: Dtype = MODEL_DEFAULTS.dtype;
  if (flags.dtype !== undefined) {
    if (!(DTYPES as readonly string[]).includes(flags.dtype)) {
      throw new UsageError(`--dtype must be ${DTYPES.join(" or ")}, got "${flags.dtype}"`);
    }
    dtype = flags.dtype as Dtype;
  }

  let density: number = MODEL_DEFAULTS.density;
  if (flags.density !== undefined) {
    density = Number(flags.density);
    if (flags.density.trim() === "" || !(density > 0 && density <= 1)) {
      throw new UsageError(
        `--density must be a number in (0, 1], e.g. 0.25, got "${flags.density}"`,
      );
    }
  }

  const size = (flag: typeof SIZE_FLAGS[number], fallback: number): number => {
    const text = flags[flag];
    return text === undefined ? fallback : parsePositiveInt(text, `--${flag}`);
  };
  const sramBytes = size("sram", MODEL_DEFAULTS.sramBytes);
  if (sramBytes < dtypeBytes(dtype)) {
    throw new UsageError(
      `--sram ${sramBytes} bytes holds no ${dtype} element; give at least ${dtypeBytes(dtype)}`,
    );
  }

  const blockSizes = flags["block-sizes"] === undefined
    ? null
    : parseSizeList(flags["block-sizes"], "--block-sizes");

  return {
    kernels,
    ns,
    d,
    batch: size("batch", MODEL_DEFAULTS.batch),
    heads: size("heads", MODEL_DEFAULTS.heads),
    dtype,
    causal: flags.causal,
    density,
    sramBytes,
    blockSizes,
    br: size("br", MODEL_DEFAULTS.br),
    bc: size("bc", MODEL_DEFAULTS.bc),
    json: flags.json,
  };
}

/** One kernel at one N. */
export interface KernelModel {
  kernel: KernelName;
  /** s used for this kernel: the density for block-sparse, 1 otherwise. */
  density: number;
  theoretical: TheoreticalTraffic;
  /** Query-outer loop-order count (flash only), bytes. */
  queryOuterBytes: number | null;
  /** The kernels' modeled bytes, or null when not wired in. */
  modeledBytes: number | null;
  lowerBoundBytes: number;
  flops: number;
  /** FLOPs per byte of theoretical and of modeled traffic. */
  intensity: { theoretical: number; modeled: number | null };
  footprintBytes: number;
}

/** All kernels at one N. */
export interface SizeModel {
  n: number;
  kernels: KernelModel[];
  /** standard bytes / flash bytes; null when either kernel is missing (or not modeled). */
  standardOverFlash: { theoretical: number | null; modeled: number | null };
}

/** One row of the block-size table. */
export interface BlockSizeRow {
  blockSize: number;
  /** ⌈N / B⌉: key blocks of Algorithm 1 and query blocks of the query-outer order. */
  blocks: number;
  flashTheoreticalBytes: number;
  queryOuterBytes: number;
}

/** The whole report: what the tables show and `--json` prints. */
export interface ModelReport {
  config: {
    kernels: KernelName[];
    batch: number;
    heads: number;
    d: number;
    dtype: Dtype;
    causal: boolean;
    density: number;
    tiles: { br: number; bc: number };
  };
  /** M of the paper: bytes, and elements of the dtype; Algorithm 1's block sizes from it. */
  sram: { bytes: number; elements: number; dtype: Dtype; bc: number; br: number };
  sizes: SizeModel[];
  blockSizes: { n: number; rows: BlockSizeRow[] }[] | null;
}

/**
 * Computes the report from parsed options: pure, no GPU.
 *
 * @example
 * ```ts
 * import { buildModel, parseModelArgs } from "./model.ts";
 * const o = parseModelArgs(["--n", "1024"]);
 * if (o !== "help") {
 *   const r = buildModel(o, {});
 *   console.assert(r.sram.elements === 12288 && r.sizes.length === 1);
 * }
 * ```
 */
export function buildModel(opts: ModelOptions, deps: ModelDeps): ModelReport {
  const tiles = { br: opts.br, bc: opts.bc };
  const sizes = opts.ns.map((n): SizeModel => {
    const shape: AttentionShape = {
      batch: opts.batch,
      heads: opts.heads,
      n,
      d: opts.d,
      dtype: opts.dtype,
      causal: opts.causal,
    };
    const kernels = opts.kernels.map((kernel): KernelModel => {
      const density = kernel === "block-sparse" ? opts.density : 1;
      const theoretical = theoreticalBytes(kernel, shape, {
        sramBytes: opts.sramBytes,
        density,
      });
      const modeled = deps.modeled?.(kernel, shape, density) ?? null;
      const modeledBytes = modeled !== null && modeled > 0 ? modeled : null;
      const flopCount = flops(kernel, shape, density);
      const maskNnz = Math.max(
        1,
        Math.round(density * ceilDiv(n, tiles.br) * ceilDiv(n, tiles.bc)),
      );
      return {
        kernel,
        density,
        theoretical,
        queryOuterBytes: kernel === "flash" ? flashQueryOuterBytes(shape, tiles.br) : null,
        modeledBytes,
        lowerBoundBytes: lowerBoundBytes(shape),
        flops: flopCount,
        intensity: {
          theoretical: arithmeticIntensity(flopCount, theoretical.bytes),
          modeled: modeledBytes === null ? null : arithmeticIntensity(flopCount, modeledBytes),
        },
        footprintBytes: footprintBytes(kernel, shape, { tiles, maskNnz }),
      };
    });
    const std = kernels.find((k) => k.kernel === "standard");
    const fl = kernels.find((k) => k.kernel === "flash");
    const ratio = (a: number | null | undefined, b: number | null | undefined) =>
      a == null || b == null ? null : a / b;
    return {
      n,
      kernels,
      standardOverFlash: {
        theoretical: ratio(std?.theoretical.bytes, fl?.theoretical.bytes),
        modeled: ratio(std?.modeledBytes, fl?.modeledBytes),
      },
    };
  });

  const elements = Math.floor(opts.sramBytes / dtypeBytes(opts.dtype));
  const block = ceilDiv(elements, 4 * opts.d);

  let blockSizes: ModelReport["blockSizes"] = null;
  if (opts.blockSizes !== null) {
    const bs = opts.blockSizes;
    blockSizes = opts.ns.map((n) => {
      const shape: AttentionShape = {
        batch: opts.batch,
        heads: opts.heads,
        n,
        d: opts.d,
        dtype: opts.dtype,
        causal: opts.causal,
      };
      return {
        n,
        rows: bs.map((b) => ({
          blockSize: b,
          blocks: ceilDiv(n, b),
          flashTheoreticalBytes: theoreticalBytes("flash", shape, {
            sramBytes: opts.sramBytes,
            density: 1,
            bc: b,
            br: b,
          }).bytes,
          queryOuterBytes: flashQueryOuterBytes(shape, b),
        })),
      };
    });
  }

  return {
    config: {
      kernels: opts.kernels,
      batch: opts.batch,
      heads: opts.heads,
      d: opts.d,
      dtype: opts.dtype,
      causal: opts.causal,
      density: opts.density,
      tiles,
    },
    sram: {
      bytes: opts.sramBytes,
      elements,
      dtype: opts.dtype,
      bc: block,
      br: Math.min(block, opts.d),
    },
    sizes,
    blockSizes,
  };
}

const DASH = "—";

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((cell, c) => {
      const w = widths[c] ?? 0;
      return c === 0 ? cell.padEnd(w) : cell.padStart(w);
    }).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

function ratioText(r: number | null): string {
  return r === null ? DASH : `${r.toPrecision(3)}×`;
}

/**
 * The report as text lines: a header stating M and its unit, a table per N and, with
 * `--block-sizes`, a block-size table per N.
 *
 * @example
 * ```ts
 * import { buildModel, parseModelArgs, renderModel } from "./model.ts";
 * const o = parseModelArgs(["--n", "512"]);
 * if (o !== "help") {
 *   const lines = renderModel(buildModel(o, {}));
 *   console.assert(lines.some((l) => l.includes("M = 49152 bytes = 12288 f32 elements")));
 * }
 * ```
 */
export function renderModel(report: ModelReport): string[] {
  const { config: c, sram } = report;
  const lines: string[] = [];
  const mask = c.causal ? "causal" : "full (non-causal)";
  const sparse = c.kernels.includes("block-sparse")
    ? `, block-sparse density s = ${c.density}`
    : "";
  lines.push(
    `attnbench model: batch ${c.batch} × heads ${c.heads}, d = ${c.d}, ${c.dtype}, ${mask}${sparse}`,
  );
  lines.push(
    `M = ${sram.bytes} bytes = ${sram.elements} ${sram.dtype} elements; ` +
      `Algorithm 1: Bc = ⌈M/4d⌉ = ${sram.bc}, Br = min(⌈M/4d⌉, d) = ${sram.br}`,
  );
  lines.push(
    `HBM bytes read + written by all heads, decimal units (1 MB = 10^6 B); ` +
      `query-outer and footprint use tiles br = ${c.tiles.br}, bc = ${c.tiles.bc}; ` +
      `FLOP/B on theoretical bytes`,
  );
  for (const size of report.sizes) {
    // flash and block-sparse share M, Bc, Br, Tc and the causal fraction.
    const tiled = size.kernels.find((k) => k.theoretical.tc !== null)?.theoretical;
    const notes: string[] = [];
    if (tiled) {
      notes.push(`Tc = ⌈N/Bc⌉ = ${tiled.tc}`);
      if (c.causal) notes.push(`causal keeps ${tiled.causalFraction.toFixed(3)} of the Tc term`);
    }
    if (size.kernels.some((k) => k.queryOuterBytes !== null)) {
      notes.push(`query-outer Tr = ⌈N/br⌉ = ${ceilDiv(size.n, c.tiles.br)}`);
    }
    lines.push("", notes.length ? `N = ${size.n}  (${notes.join("; ")})` : `N = ${size.n}`);
    const rows = size.kernels.map((k) => [
      k.kernel,
      formatBytes(k.theoretical.bytes),
      k.queryOuterBytes === null ? DASH : formatBytes(k.queryOuterBytes),
      k.modeledBytes === null ? DASH : formatBytes(k.modeledBytes),
      formatBytes(k.lowerBoundBytes),
      formatSi(k.flops, "FLOP"),
      k.intensity.theoretical.toPrecision(3),
      formatBytes(k.footprintBytes),
    ]);
    lines.push(
      ...table(
        [
          "kernel",
          "theoretical",
          "query-outer",
          "modeled",
          "lower bound",
          "FLOPs",
          "FLOP/B",
          "footprint",
        ],
        rows,
      ),
    );
    const r = size.standardOverFlash;
    if (r.theoretical !== null) {
      lines.push(
        `standard/flash: theoretical ${ratioText(r.theoretical)}, modeled ${ratioText(r.modeled)}`,
      );
    }
  }
  for (const bs of report.blockSizes ?? []) {
    lines.push(
      "",
      `HBM traffic vs block size at N = ${bs.n} (paper Figure 2, middle): ` +
        `flash theoretical with Bc = Br = B, query-outer with br = B`,
    );
    lines.push(
      ...table(
        ["B", "⌈N/B⌉", "flash theoretical", "query-outer"],
        bs.rows.map((row) => [
          String(row.blockSize),
          String(row.blocks),
          formatBytes(row.flashTheoreticalBytes),
          formatBytes(row.queryOuterBytes),
        ]),
      ),
    );
  }
  return lines;
}

/** The command object the CLI dispatches to. */
export interface ModelCommand {
  name: "model";
  summary: string;
  help: string;
  run(args: string[], io: Output): Promise<number>;
}

/**
 * The `model` command with its dependencies injected (tests pass a fake `modeled`).
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
    run(args: string[], io: Output): Promise<number> {
      // A UsageError thrown in the executor rejects the promise.
      return new Promise((resolve) => {
        const opts = parseModelArgs(args);
        if (opts === "help") {
          for (const line of HELP.split("\n")) io.out(line);
        } else if (opts.json) {
          io.out(JSON.stringify(buildModel(opts, deps), null, 2));
        } else {
          for (const line of renderModel(buildModel(opts, deps))) io.out(line);
        }
        resolve(0);
      });
    },
  };
}

/**
 * The `model` command without modeled bytes (shown as "—") until `kernels/modeled.ts` is wired
 * in through {@linkcode createModelCommand}.
 *
 * @example
 * ```ts
 * import { modelCommand } from "./model.ts";
 * import { captureOutput } from "../output.ts";
 * const io = captureOutput();
 * console.assert(await modelCommand.run(["--n", "256..512"], io) === 0);
 * ```
 */
export const modelCommand: ModelCommand = createModelCommand();
