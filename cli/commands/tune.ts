/**
 * `attnbench tune`: searches tile sizes per kernel, dtype and head dim on the present adapter
 * and saves the fastest correct ones for `bench`.
 *
 * @module
 */

import type { Command } from "../command.ts";
import { UsageError } from "../../core/errors.ts";
import {
  parseCommandFlags,
  parsePositiveInt,
  SHAPE_HELP,
  shapeAt,
  shapeOptions,
  stringFlag,
} from "../flags.ts";
import { KERNEL_MODULE_HELP, kernelModulePaths, loadKernelModules } from "../kernel_modules.ts";
import { formatTable } from "../../analysis/table.ts";
import {
  DEFAULT_TUNED_PATH,
  readTunedFile,
  saveTuned,
  type TunedEntry,
  tunedKey,
} from "../tuned.ts";
import { checkOutputPaths } from "../../analysis/results_io.ts";
import { AttentionKernels, prepareAttention } from "../../kernels/attention.ts";
import { checkAgainstReference } from "../../kernels/check.ts";
import { openGpu, requireDtype } from "../../kernels/gpu.ts";
import { problemOf } from "../../kernels/registry.ts";
import { inputsToTime, totalBytes } from "../../kernels/kernel.ts";
import { median } from "../../analysis/stats.ts";
import { timeDispatches as realTimeDispatches } from "../../kernels/timing.ts";
import { FALLBACK_TILE_CANDIDATES, tileProblem } from "../../kernels/tiles.ts";
import { tolerance } from "../../core/tolerances.ts";
import type { AttentionShape, Tiles, TileVariant } from "../../core/shapes.ts";
import { F16_MATH_KERNELS, F16_MATHS, type F16Math } from "../../kernels/flash/mod.ts";
import { planFor } from "../../kernels/registry.ts";
import type { Kernel, ProblemRequest } from "../../kernels/kernel.ts";
import type { Output } from "../output.ts";

const HELP = `attnbench tune — find the fastest correct tiles for each kernel on this adapter

Usage: attnbench tune [shape flags] [--out FILE] [--reps N] [--max-candidates N]

For each kernel (at --d, --dtype, one N) it tries every tile configuration that the device can
build (br, bc in 16..128, rm, tx), each with the knobs that change its program: flash's layout
(v5, v7, or v8e and v8: the next K/V block fetched into registers while this one is used), at
f16 the flash arithmetic (f32 or packed), and where the device grants subgroups the subgroup and
the portable path. It checks each against the float64 reference at a small odd size, times the
correct ones at N (default 4096; 256 on a fallback adapter) and saves the fastest tiles and knobs
in FILE (default: ${DEFAULT_TUNED_PATH}), keyed by the adapter's identity. 'bench' then uses
them. Beside the measured best it prints the IO model's prediction: the tile that moves the fewest
HBM bytes.

${SHAPE_HELP}

  --out FILE          tuned-tiles file to update (default: ${DEFAULT_TUNED_PATH})
  --reps N            timed runs per candidate (default: 10)
  --max-candidates N  try at most N candidates (tiles and knobs) per kernel, the likeliest first
  --no-subgroups      never ask for subgroups: tune the portable kernels
${KERNEL_MODULE_HELP}`;

/**
 * Every tile configuration worth trying, the likeliest first: 128 to 256 threads, 32 to 64
 * query rows and 32 key rows a block, two or four rows a thread (what won on an H200, see
 * BENCHMARKS.md), so that `--max-candidates` keeps the promising ones.
 */
function candidateTiles(): Tiles[] {
  const out: Tiles[] = [];
  for (const br of [128, 64, 32, 16]) {
    for (const bc of [128, 64, 32, 16]) {
      for (const rm of [8, 4, 2, 1]) {
        for (const tx of [16, 8, 4]) {
          const threads = tx * (br / rm);
          if (br % rm !== 0 || threads < 32 || threads > 256 || bc % tx !== 0) continue;
          out.push({ br, bc, rm, tx });
        }
      }
    }
  }
  const score = (t: Tiles) =>
    Math.abs(Math.log2(t.tx * (t.br / t.rm)) - 7.5) + Math.abs(Math.log2(t.br) - 5.5) +
    Math.abs(Math.log2(t.bc) - 5) + Math.abs(Math.log2(t.rm) - 1.5);
  return out.sort((a, b) => score(a) - score(b));
}

/**
 * The layouts `tune` tries on each tile (`undefined`: the one the sizes pick), in this order:
 * v7, and the two register-prefetch layouts that were fastest on the H200 (flash f32 d = 64,
 * N = 16384, same call: v8e 15% less time than v7, v8 7%, v8k 5%; BENCHMARKS.md, stop 11).
 * v8k and v8v stay out of the search (a tuned file can still name them).
 */
export const TUNE_LAYOUTS: readonly (TileVariant | undefined)[] = [undefined, "v7", "v8e", "v8"];

/** One configuration `tune` tries: tiles (flash's `variant` among them) and knobs. */
export interface TuneCandidate {
  tiles: Tiles;
  /** f16 flash and block-sparse: the arithmetic; absent for every other kernel and dtype. */
  f16Math?: F16Math;
  /** false: the portable path although the device has subgroups. */
  subgroups: boolean;
}

/**
 * Every knob combination of each tile, in the tiles' order (each tile's default program first),
 * keeping only those that build a program not seen before: the pass keys name every knob that
 * changes a source, so a knob a kernel ignores (v7 for standard, subgroups where the program
 * has no subgroup path, a layout beside packed) adds no candidate.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { knobCandidates } from "./tune.ts";
 * const shape = { batch: 1, heads: 1, n: 77, d: 32, dtype: "f32", causal: false } as const;
 * const tiles = [{ br: 8, bc: 8, rm: 2, tx: 4 }];
 * const mask = { kind: "random", density: 0.5, seed: 1 } as const;
 * const flash = knobCandidates("flash", shape, tiles, 0, mask);
 * assert(flash.map((c) => c.tiles.variant ?? "v5").join() === "v5,v7,v8e,v8");
 * assert(knobCandidates("standard", shape, tiles, 0, mask).length === 1);
 * ```
 */
export function knobCandidates(
  kernel: Kernel | string,
  shape: AttentionShape,
  tiles: readonly Tiles[],
  subgroupSize: number,
  mask: ProblemRequest["mask"],
): TuneCandidate[] {
  const name = typeof kernel === "string" ? kernel : kernel.name;
  const maths: (F16Math | undefined)[] = shape.dtype === "f16" && F16_MATH_KERNELS.includes(name)
    ? [...F16_MATHS]
    : [undefined];
  const seen = new Set<string>();
  const out: TuneCandidate[] = [];
  for (const t of tiles) {
    for (const variant of TUNE_LAYOUTS) {
      const layout: Tiles = variant ? { ...t, variant } : { ...t };
      for (const f16Math of maths) {
        for (const subgroups of subgroupSize > 0 ? [true, false] : [true]) {
          const c: TuneCandidate = { tiles: layout, ...(f16Math ? { f16Math } : {}), subgroups };
          let key: string;
          try {
            key = planFor(kernel, {
              shape,
              tiles: layout,
              mask,
              options: f16Math ? { f16Math } : undefined,
              subgroupSize: subgroups ? subgroupSize : 0,
            }).passes().map((p) => p.key).join(" ");
          } catch {
            // A plan that cannot be made is tried (and fails there, with its reason) once.
            key = JSON.stringify(c);
          }
          if (seen.has(key)) continue;
          seen.add(key);
          out.push(c);
        }
      }
    }
  }
  return out;
}

/**
 * A candidate's knobs in a table, those off the default only (`v7`, `v8e`, `v8`, `packed`,
 * `portable`); `-` for the default program (flash's layout then follows the sizes: v5, or rt
 * from rm = 8).
 */
function knobText(c: TuneCandidate): string {
  const set = [
    ...(c.tiles.variant ? [c.tiles.variant] : []),
    ...(c.f16Math === "packed" ? ["packed"] : []),
    ...(c.subgroups ? [] : ["portable"]),
  ];
  return set.length > 0 ? set.join(" ") : "-";
}

/** What `tune` measures with (tests pass a mock timer). */
export interface TuneDeps {
  timeDispatches: typeof realTimeDispatches;
}

/** The `tune` command. */
export const tuneCommand: Command = {
  name: "tune",
  summary: "search tile sizes and kernel knobs on this adapter; save the winners for bench",
  help: HELP,
  run: (args, io) => runTune(args, io),
};

/**
 * `tune` with its timer injectable: the command's body.
 *
 * @example
 * ```ts ignore
 * import { runTune } from "./tune.ts";
 * await runTune(["--kernels", "flash", "--n", "64", "--out", "t.json"], io);
 * ```
 */
export async function runTune(
  args: string[],
  io: Output,
  deps: Partial<TuneDeps> = {},
): Promise<number> {
  const timeDispatches = deps.timeDispatches ?? realTimeDispatches;
  const flags = parseCommandFlags("tune", args, {
    string: ["out", "reps", "max-candidates", "kernel-module"],
    boolean: ["no-subgroups"],
    collect: ["kernel-module"],
  });
  if (flags.help) {
    io.out(HELP);
    return 0;
  }
  await loadKernelModules(kernelModulePaths(flags));
  const str = (k: string) => stringFlag(flags, k);
  const reps = str("reps") === undefined ? 10 : parsePositiveInt(str("reps")!, "--reps", 1_000_000);
  const maxCandidates = str("max-candidates") === undefined
    ? Infinity
    : parsePositiveInt(str("max-candidates")!, "--max-candidates");
  const out = str("out") ?? DEFAULT_TUNED_PATH;
  // Flags, the output path and the file to add to are checked before the GPU is opened.
  const given = shapeOptions(flags, { ns: [1], batch: 0, heads: 1 });
  if (given.ns.length !== 1) throw new UsageError("tune takes one --n");
  const untiled = given.kernels.find((k) => problemOf(k) !== "attention");
  if (untiled) {
    throw new UsageError(
      `tune does not tune ${untiled.name} (its tiles are the split pass's knobs, compared by ` +
        "scripts/decode_variants.ts; its split size is chosen per problem)",
    );
  }
  checkOutputPaths([out], "--out");
  await readTunedFile(out, false);
  const gpu = await openGpu({ subgroups: flags["no-subgroups"] !== true });
  const fallback = gpu.info.isFallbackAdapter;
  const o = shapeOptions(flags, {
    ns: [fallback ? 256 : 4096],
    batch: 0, // 0: 16384 tokens on a GPU, 1 on a fallback adapter (shapeAt)
    heads: fallback ? 2 : 16,
  });
  if (o.ns.length !== 1) throw new UsageError("tune takes one --n");
  requireDtype(gpu, o.dtype);
  const kernels = new AttentionKernels(gpu);
  const winners: Record<string, TunedEntry> = {};
  const n = o.ns[0]!;
  const shape = shapeAt(o, n, fallback ? 0 : 16384);
  const batch = shape.batch;
  for (const kernel of o.kernels) {
    const small: AttentionShape = { ...shape, batch: 1, heads: 1, n: 77 };
    const mask = { kind: o.mask, density: o.density, seed: o.seed };
    const tileList = (fallback ? [...FALLBACK_TILE_CANDIDATES] : candidateTiles())
      .filter((t) => tileProblem(kernel, o.d, o.dtype, t, gpu.device.limits) === null);
    const candidates = knobCandidates(kernel, shape, tileList, gpu.subgroupSize, mask)
      .filter((c) => tileProblem(kernel, o.d, o.dtype, c.tiles, gpu.device.limits) === null)
      .slice(0, maxCandidates);
    const rows: { c: TuneCandidate; ms: number | null; note: string; bytes: number }[] = [];
    for (const [i, c] of candidates.entries()) {
      io.progress(
        `tune ${kernel.name} ${i + 1}/${candidates.length} ${fmt(c.tiles)} ${knobText(c)}`,
      );
      const { tiles } = c;
      const knobs = {
        ...(c.f16Math ? { options: { f16Math: c.f16Math } } : {}),
        subgroups: c.subgroups,
      };
      try {
        const check = await prepareAttention(kernels, {
          kernel,
          shape: small,
          tiles,
          mask,
          ...knobs,
        });
        const err = await checkAgainstReference(check, o.seed);
        check.destroy();
        const prepared = await prepareAttention(kernels, {
          kernel,
          shape,
          tiles,
          mask,
          ...knobs,
        });
        const bytes = totalBytes(prepared.plan.modeledTraffic());
        if (!(err <= tolerance(o.dtype))) {
          rows.push({ c, ms: null, note: `wrong: error ${err.toExponential(1)}`, bytes });
          prepared.destroy();
          continue;
        }
        prepared.upload(inputsToTime(prepared.plan, o.seed));
        // The check above kept the host busy and the GPU idle, so its clocks are down: settle
        // them (300 ms of GPU time, then two agreeing batches) before timing (bench does too).
        const t = await timeDispatches(gpu, (pass) => prepared.encode(pass), {
          warmup: 1,
          reps,
          ...(fallback ? {} : { settleMs: 300 }),
        });
        prepared.destroy();
        const unsettled = t.settle && !t.settle.settled ? "clocks did not settle" : "";
        rows.push({ c, ms: median(t.samplesMs), note: unsettled, bytes });
      } catch (e) {
        rows.push({
          c,
          ms: null,
          note: `failed: ${(e as Error).message.split("\n")[0]}`,
          bytes: 0,
        });
      }
    }
    io.progress("");
    const ok = rows.filter((r) => r.ms !== null).sort((a, b) => a.ms! - b.ms!);
    if (ok.length === 0) {
      io.err(`tune ${kernel.name}: no candidate ran correctly`);
      continue;
    }
    const best = ok[0]!;
    const predicted = [...ok].sort((a, b) => a.bytes - b.bytes || a.ms! - b.ms!)[0]!;
    winners[tunedKey(kernel.name, o.dtype, o.d)] = {
      tiles: best.c.tiles,
      ...(best.c.f16Math ? { f16Math: best.c.f16Math } : {}),
      // Compared only where the device has subgroups.
      ...(gpu.subgroupSize > 0 ? { subgroups: best.c.subgroups } : {}),
      medianMs: best.ms!,
      n,
      batch,
      heads: o.heads,
      tunedAt: new Date().toISOString(),
    };
    io.out(
      `${kernel.name} ${o.dtype} d=${o.d} n=${n} b×h=${batch}×${o.heads}: ` +
        `${ok.length} of ${rows.length} candidates correct`,
    );
    const table = [...ok, ...rows.filter((r) => r.ms === null)].slice(0, 12).map((r) => [
      fmt(r.c.tiles),
      knobText(r.c),
      r.ms === null ? "" : r.ms.toPrecision(4),
      r.bytes ? (r.bytes / 1e6).toPrecision(4) : "",
      r.note,
    ]);
    const head = ["tiles", "knobs", "median ms", "HBM MB", "note"];
    for (const line of formatTable(head, table)) io.out(line);
    io.out(
      `measured best: ${fmt(best.c.tiles)} ${knobText(best.c)} (${best.ms!.toPrecision(4)} ` +
        `ms); IO model's best (fewest bytes): ${fmt(predicted.c.tiles)} ` +
        `${knobText(predicted.c)} (${predicted.ms!.toPrecision(4)} ms)`,
    );
  }
  gpu.device.destroy();
  if (Object.keys(winners).length > 0) {
    await saveTuned(out, gpu.info, winners);
    io.err(`wrote ${out}`);
  }
  return 0;
}

/** Tiles in a table: `64x32 rm4 tx16`. */
function fmt(t: Tiles): string {
  return `${t.br}x${t.bc} rm${t.rm} tx${t.tx}`;
}
