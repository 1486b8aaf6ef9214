/**
 * `attnbench model`: the IO model of the three kernels as tables (or JSON), without a GPU.
 *
 * For each sequence length it prints, per kernel, the tiles it would run with, the paper's
 * theoretical HBM traffic, the query-outer count of our flash kernel's loop order, the bytes our
 * kernels move with those tiles (`kernels/modeled.ts`, injectable through {@linkcode ModelDeps}),
 * the compulsory lower bound, the standard/flash ratio, FLOPs, arithmetic intensity and the
 * buffer footprint. The formulas are in `analysis/IO_MODEL.md`.
 *
 * Tiles are chosen as the GPU would ({@linkcode defaultTiles} with `--sram` as the workgroup
 * storage limit), unless `--br`/`--bc` give them. Block-sparse builds its real block mask on its
 * tiles ({@linkcode makeMask}) and reports the density that mask reaches.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import {
  maskGridProblem,
  parseCommandFlags,
  parsePositiveInt,
  parseSizeList,
  type RawFlags,
  SHAPE_HELP,
  shapeAt,
  type ShapeOptions,
  shapeOptions,
} from "../flags.ts";
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
import { type BlockMask, makeMask } from "../../kernels/masks.ts";
import { modeledTraffic, totalBytes } from "../../kernels/modeled.ts";
import {
  defaultTiles,
  TILE_CANDIDATES,
  type TileLimits,
  tileProblem,
  workgroupBytes,
} from "../../kernels/tiles.ts";
import {
  type AttentionShape,
  type Dtype,
  dtypeBytes,
  type KernelName,
  type MaskKind,
  type Tiles,
} from "../../kernels/types.ts";

/**
 * The kernels' own exact byte count for `shape` with `tiles` (and `mask`, block-sparse only;
 * null otherwise), or null when the kernel has none.
 */
export type ModeledBytesFn = (
  kernel: KernelName,
  shape: AttentionShape,
  tiles: Tiles,
  mask: BlockMask | null,
) => number | null;

/**
 * The real modeled bytes: {@linkcode totalBytes} of {@linkcode modeledTraffic}.
 *
 * @example
 * ```ts
 * import { kernelModeledBytes } from "./model.ts";
 * const shape = { batch: 1, heads: 1, n: 64, d: 64, dtype: "f32", causal: false } as const;
 * // Q, K, V read once, O written once, 64 LSE floats, one 16-byte uniform read per workgroup.
 * const bytes = kernelModeledBytes("flash", shape, { br: 64, bc: 64, rm: 1, tx: 1 }, null);
 * console.assert(bytes === 4 * 64 * 64 * 4 + 64 * 4 + 16);
 * ```
 */
export const kernelModeledBytes: ModeledBytesFn = (kernel, shape, tiles, mask) =>
  totalBytes(modeledTraffic(kernel, shape, tiles, mask));

/** What the model command needs from outside `analysis/`; injectable for tests. */
export interface ModelDeps {
  /** The kernels' modeled bytes; when absent (or it returns null) the table shows "—". */
  modeled?: ModeledBytesFn;
}

/** Everything the flags decide: the shared shape flags plus the model's own. */
export interface ModelOptions extends ShapeOptions {
  sramBytes: number;
  /** Block sizes of the block-size table, or null for no such table. */
  blockSizes: number[] | null;
  /** `--br` / `--bc`: tiles to model instead of the ones the GPU would choose; null when absent. */
  br: number | null;
  bc: number | null;
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
  density: 0.25,
  /** A typical `maxComputeWorkgroupStorageSize`. */
  sramBytes: 49152,
  /** `maxComputeInvocationsPerWorkgroup` of the modeled device (WebGPU's default is 256). */
  maxInvocations: 1024,
} as const;

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
  --help              this text

Columns: tiles br×bc each kernel runs with; theoretical, the paper's count for M; query-outer,
our flash loop order's count with its br; modeled, the exact bytes our kernels move with their
tiles (kernels/modeled.ts); lower bound, the compulsory bytes. block-sparse uses its real mask
(--mask, --density, --seed) on its tiles and reports the density that mask reaches; its
theoretical count visits Algorithm 5's Br×Bc blocks holding an entry of that mask, and its lower
bound counts only the rows the mask uses. With --causal every column skips what lies above the
diagonal. bench uses the adapter's maxComputeWorkgroupStorageSize as M and records it.
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
 * console.assert(o !== "help" && o.ns[0] === 1024 && o.kernels.join() === "flash" && o.causal);
 * ```
 */
export function parseModelArgs(args: string[]): ModelOptions | "help" {
  const raw = parseCommandFlags("model", args, {
    string: ["sram", "block-sizes", "br", "bc"],
    boolean: ["json"],
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
export interface KernelTiles {
  kernel: KernelName;
  /** null when no candidate fits M: the kernel could not run, and modeled shows "—". */
  tiles: Tiles | null;
  /** `"sram"`: the first candidate that fits `--sram`; `"flags"`: `--br`/`--bc`. */
  source: "sram" | "flags";
  /** Why there are no tiles, or why the given ones would not build; null when all is well. */
  note: string | null;
}

/**
 * The tiles `kernel` is modeled with: `--br`/`--bc` (with rm = tx = 1: modeled bytes depend on
 * br and bc only) or, as the GPU would choose, {@linkcode defaultTiles} with `--sram` as the
 * workgroup storage limit.
 *
 * @example
 * ```ts
 * import { chooseTiles, parseModelArgs } from "./model.ts";
 * const o = parseModelArgs([]);
 * if (o !== "help") console.assert(chooseTiles("flash", o).tiles?.bc === 32);
 * ```
 */
export function chooseTiles(kernel: KernelName, opts: ModelOptions): KernelTiles {
  const limits: TileLimits = {
    maxComputeWorkgroupStorageSize: opts.sramBytes,
    maxComputeInvocationsPerWorkgroup: MODEL_DEFAULTS.maxInvocations,
  };
  const { d, dtype } = opts;
  const fits = TILE_CANDIDATES.some((t) => tileProblem(kernel, d, dtype, t, limits) === null);
  const chosen = fits ? defaultTiles(kernel, d, dtype, limits) : null;
  if (opts.br === null && opts.bc === null) {
    if (chosen) return { kernel, tiles: chosen, source: "sram", note: null };
    const smallest = Math.min(...TILE_CANDIDATES.map((t) => workgroupBytes(kernel, d, dtype, t)));
    return {
      kernel,
      tiles: null,
      source: "sram",
      note: `no tile candidate fits M = ${opts.sramBytes} bytes (the smallest needs ` +
        `${smallest} bytes); modeled shows —; raise --sram or give --br/--bc`,
    };
  }
  const br = opts.br ?? chosen?.br ?? opts.bc!;
  const bc = opts.bc ?? chosen?.bc ?? opts.br!;
  const tiles: Tiles = { br, bc, rm: 1, tx: 1 };
  const bytes = workgroupBytes(kernel, d, dtype, tiles);
  return {
    kernel,
    tiles,
    source: "flags",
    note: bytes > opts.sramBytes
      ? `${br}×${bc} needs ${bytes} bytes of workgroup memory, more than M = ${opts.sramBytes}; ` +
        `modeled anyway`
      : null,
  };
}

/** The block-sparse mask actually built. */
export interface MaskModel {
  kind: MaskKind;
  seed: number;
  /** `--density`: the fraction asked for. */
  targetDensity: number;
  /** The fraction of blocks the mask keeps: the s every block-sparse number uses. */
  density: number;
  nnz: number;
  /** Blocks of the `⌈N/br⌉ × ⌈N/bc⌉` grid. */
  blocks: number;
}

/** One kernel at one N. */
export interface KernelModel {
  kernel: KernelName;
  /** Tiles modeled, or null when none fits M. */
  tiles: Tiles | null;
  /**
   * s of the kernel's FLOPs: the density its mask reaches on its own tiles for block-sparse, 1
   * otherwise (the theoretical count's s, on Algorithm 5's grid, is `theoretical.density`).
   */
  density: number;
  /** Block-sparse's mask; null for the other kernels and when there are no tiles. */
  mask: MaskModel | null;
  theoretical: TheoreticalTraffic;
  /**
   * Query-outer loop-order count with the kernel's br (flash only), bytes; when causal, each query
   * block reads only the keys up to its last row.
   */
  queryOuterBytes: number | null;
  /** The kernels' modeled bytes, or null when not wired in or without tiles. */
  modeledBytes: number | null;
  /** Compulsory bytes; for block-sparse only the rows its mask uses. */
  lowerBoundBytes: number;
  flops: number;
  /** FLOPs per byte of theoretical and of modeled traffic. */
  intensity: { theoretical: number; modeled: number | null };
  /** Buffer bytes; null for block-sparse without tiles (its mask has no grid). */
  footprintBytes: number | null;
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
    /** `--density`: the target; each block-sparse row reports what its mask reached. */
    density: number;
    mask: MaskKind;
    seed: number;
    /** The tiles of each kernel, in the order of `kernels`. */
    tiles: KernelTiles[];
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
  const tiles = opts.kernels.map((kernel) => chooseTiles(kernel, opts));
  const elements = Math.floor(opts.sramBytes / dtypeBytes(opts.dtype));
  const block = ceilDiv(elements, 4 * opts.d);
  const sizes = opts.ns.map((n): SizeModel => {
    const shape = shapeAt(opts, n);
    const kernels = opts.kernels.map((kernel, i): KernelModel => {
      const t = tiles[i]?.tiles ?? null;
      const tooLarge = kernel === "block-sparse" && t !== null
        ? maskGridProblem(n, t.br, t.bc)
        : null;
      if (tooLarge) throw new UsageError(tooLarge);
      const blockMask = kernel === "block-sparse" && t !== null
        ? makeMask({
          kind: opts.mask,
          n,
          br: t.br,
          bc: t.bc,
          density: opts.density,
          seed: opts.seed,
        })
        : null;
      // Without tiles the kernel cannot run; the theoretical count then builds the mask on
      // Algorithm 5's own Br × Bc grid.
      const theoryMask = kernel !== "block-sparse" ? null : blockMask ?? makeMask({
        kind: opts.mask,
        n,
        br: Math.min(block, opts.d),
        bc: block,
        density: opts.density,
        seed: opts.seed,
      });
      const density = theoryMask?.density ?? 1;
      const theoretical = theoreticalBytes(kernel, shape, {
        sramBytes: opts.sramBytes,
        mask: theoryMask,
      });
      const modeled = t === null ? null : deps.modeled?.(kernel, shape, t, blockMask) ?? null;
      const modeledBytes = modeled !== null && modeled > 0 ? modeled : null;
      const flopCount = flops(kernel, shape, density);
      // Standard's and flash's buffers do not depend on the tiles; block-sparse's mask does.
      const footprint = kernel !== "block-sparse"
        ? footprintBytes(kernel, shape, { tiles: t ?? { br: n, bc: n } })
        : t !== null && blockMask !== null
        ? footprintBytes(kernel, shape, { tiles: t, maskNnz: blockMask.nnz })
        : null;
      return {
        kernel,
        tiles: t,
        density,
        mask: blockMask === null ? null : {
          kind: blockMask.kind,
          seed: opts.seed,
          targetDensity: opts.density,
          density: blockMask.density,
          nnz: blockMask.nnz,
          blocks: blockMask.bits.length,
        },
        theoretical,
        queryOuterBytes: kernel === "flash" && t !== null
          ? flashQueryOuterBytes(shape, t.br)
          : null,
        modeledBytes,
        lowerBoundBytes: lowerBoundBytes(shape, theoryMask),
        flops: flopCount,
        intensity: {
          theoretical: arithmeticIntensity(flopCount, theoretical.bytes),
          modeled: modeledBytes === null ? null : arithmeticIntensity(flopCount, modeledBytes),
        },
        footprintBytes: footprint,
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

  let blockSizes: ModelReport["blockSizes"] = null;
  if (opts.blockSizes !== null) {
    const bs = opts.blockSizes;
    blockSizes = opts.ns.map((n) => {
      const shape = shapeAt(opts, n);
      return {
        n,
        rows: bs.map((b) => ({
          blockSize: b,
          blocks: ceilDiv(n, b),
          flashTheoreticalBytes: theoreticalBytes("flash", shape, {
            sramBytes: opts.sramBytes,
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
      mask: opts.mask,
      seed: opts.seed,
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
  const attention = c.causal ? "causal" : "full (non-causal)";
  const sparse = c.kernels.includes("block-sparse")
    ? `, block-sparse ${c.mask} mask (seed ${c.seed}) of target density s = ${c.density}`
    : "";
  lines.push(
    `attnbench model: batch ${c.batch} × heads ${c.heads}, d = ${c.d}, ${c.dtype}, ` +
      `${attention}${sparse}`,
  );
  lines.push(
    `M = ${sram.bytes} bytes = ${sram.elements} ${sram.dtype} elements (--sram; bench uses the ` +
      `adapter's maxComputeWorkgroupStorageSize and records it as hbmBytes.sramBytes); ` +
      `Algorithm 1: Bc = ⌈M/4d⌉ = ${sram.bc}, Br = min(⌈M/4d⌉, d) = ${sram.br}`,
  );
  const bySram = c.tiles.some((t) => t.source === "sram");
  lines.push(
    `tiles br×bc: ` + (bySram
      ? `the first candidate of kernels/tiles.ts that fits M and ` +
        `${MODEL_DEFAULTS.maxInvocations} threads`
      : `from --br/--bc, rm = tx = 1`) +
      `; modeled: the bytes our kernels move with them (kernels/modeled.ts)`,
  );
  for (const t of c.tiles) {
    if (t.note !== null) lines.push(`note: ${t.kernel}: ${t.note}`);
  }
  lines.push(
    `HBM bytes read + written by all heads, decimal units (1 MB = 10^6 B); ` +
      `query-outer uses flash's br; FLOP/B on theoretical bytes`,
  );
  if (c.causal) {
    lines.push(
      `causal: every column skips what lies above the diagonal: theoretical and the block-size ` +
        `table Algorithm 1's blocks wholly above it, query-outer the keys past each query ` +
        `block's last row, modeled our kernels' key blocks on their own tiles`,
    );
  }
  if (c.kernels.includes("block-sparse")) {
    lines.push(
      `block-sparse: theoretical visits Algorithm 5's Br×Bc blocks that hold an entry of the ` +
        `mask (s on that grid below); lower bound: only the rows of Q, K, V, O the mask uses`,
    );
  }
  const flashBr = c.tiles.find((t) => t.kernel === "flash")?.tiles?.br;
  for (const size of report.sizes) {
    // flash and block-sparse share M, Bc, Br, Tc and the causal fraction.
    const tiled = size.kernels.find((k) => k.theoretical.tc !== null)?.theoretical;
    const notes: string[] = [];
    if (tiled) {
      notes.push(`Tc = ⌈N/Bc⌉ = ${tiled.tc}`);
      if (c.causal) notes.push(`causal keeps ${tiled.causalFraction.toFixed(3)} of the Tc term`);
    }
    if (flashBr !== undefined && size.kernels.some((k) => k.queryOuterBytes !== null)) {
      notes.push(`query-outer Tr = ⌈N/br⌉ = ${ceilDiv(size.n, flashBr)}`);
    }
    lines.push("", notes.length ? `N = ${size.n}  (${notes.join("; ")})` : `N = ${size.n}`);
    const rows = size.kernels.map((k) => [
      k.kernel,
      k.tiles === null ? DASH : `${k.tiles.br}×${k.tiles.bc}`,
      formatBytes(k.theoretical.bytes),
      k.queryOuterBytes === null ? DASH : formatBytes(k.queryOuterBytes),
      k.modeledBytes === null ? DASH : formatBytes(k.modeledBytes),
      k.modeledBytes === null ? DASH : ratioText(k.modeledBytes / k.theoretical.bytes),
      formatBytes(k.lowerBoundBytes),
      formatSi(k.flops, "FLOP"),
      k.intensity.theoretical.toPrecision(3),
      k.footprintBytes === null ? DASH : formatBytes(k.footprintBytes),
    ]);
    lines.push(
      ...table(
        [
          "kernel",
          "tiles",
          "theoretical",
          "query-outer",
          "modeled",
          "mod/theo",
          "lower bound",
          "FLOPs",
          "FLOP/B",
          "footprint",
        ],
        rows,
      ),
    );
    for (const k of size.kernels) {
      if (k.mask === null) continue;
      lines.push(
        `${k.kernel} mask: s = ${k.mask.density.toFixed(3)} reached, ${k.mask.nnz} of ` +
          `${k.mask.blocks} blocks kept (target ${k.mask.targetDensity}); on Algorithm 5's ` +
          `${k.theoretical.br}×${k.theoretical.bc} grid s = ${k.theoretical.density.toFixed(3)}`,
      );
    }
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
        `flash theoretical with Bc = Br = B, query-outer with br = B` +
        (c.causal ? ` (both skip what lies above the diagonal)` : ""),
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
