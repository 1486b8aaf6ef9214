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
import { timeDispatches } from "../../kernels/timing.ts";
import { FALLBACK_TILE_CANDIDATES, tileProblem } from "../../kernels/tiles.ts";
import { tolerance } from "../../core/tolerances.ts";
import type { AttentionShape, Tiles } from "../../core/shapes.ts";

const HELP = `attnbench tune — find the fastest correct tiles for each kernel on this adapter

Usage: attnbench tune [shape flags] [--out FILE] [--reps N] [--max-candidates N]

For each kernel (at --d, --dtype, one N) it tries every tile configuration that the device can
build (br, bc in 16..128, rm, tx), checks each against the float64 reference at a small odd size,
times the correct ones at N (default 4096; 256 on a fallback adapter) and saves the fastest in
FILE (default: ${DEFAULT_TUNED_PATH}), keyed by the adapter's identity. 'bench' then uses them.
Beside the measured best it prints the IO model's prediction: the tile that moves the fewest
HBM bytes.

${SHAPE_HELP}

  --out FILE          tuned-tiles file to update (default: ${DEFAULT_TUNED_PATH})
  --reps N            timed runs per candidate (default: 10)
  --max-candidates N  try at most N candidates per kernel, the likeliest first
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

/** The `tune` command. */
export const tuneCommand: Command = {
  name: "tune",
  summary: "search tile sizes on this adapter; save the winners for bench",
  help: HELP,
  async run(args, io) {
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
    const str = (k: string) => (typeof flags[k] === "string" ? flags[k] as string : undefined);
    const reps = str("reps") === undefined
      ? 10
      : parsePositiveInt(str("reps")!, "--reps", 1_000_000);
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
      const candidates = (fallback ? [...FALLBACK_TILE_CANDIDATES] : candidateTiles())
        .filter((t) => tileProblem(kernel, o.d, o.dtype, t, gpu.device.limits) === null)
        .slice(0, maxCandidates);
      const mask = { kind: o.mask, density: o.density, seed: o.seed };
      const rows: { tiles: Tiles; ms: number | null; note: string; bytes: number }[] = [];
      for (const [i, tiles] of candidates.entries()) {
        io.progress(`tune ${kernel.name} ${i + 1}/${candidates.length} ${JSON.stringify(tiles)}`);
        try {
          const check = await prepareAttention(kernels, { kernel, shape: small, tiles, mask });
          const err = await checkAgainstReference(check, o.seed);
          check.destroy();
          const prepared = await prepareAttention(kernels, { kernel, shape, tiles, mask });
          const bytes = totalBytes(prepared.plan.modeledTraffic());
          if (!(err <= tolerance(o.dtype))) {
            rows.push({ tiles, ms: null, note: `wrong: error ${err.toExponential(1)}`, bytes });
            prepared.destroy();
            continue;
          }
          prepared.upload(inputsToTime(prepared.plan, o.seed));
          // Warm for 100 ms first: an idle GPU clocks down (see bench --warmup-ms).
          await timeDispatches(gpu, (pass) => prepared.encode(pass), {
            warmup: 1,
            reps: 1,
            minTimeMs: fallback ? 0 : 100,
          });
          const t = await timeDispatches(gpu, (pass) => prepared.encode(pass), {
            warmup: 1,
            reps,
          });
          prepared.destroy();
          rows.push({ tiles, ms: median(t.samplesMs), note: "", bytes });
        } catch (e) {
          rows.push({
            tiles,
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
        tiles: best.tiles,
        medianMs: best.ms!,
        n,
        batch,
        heads: o.heads,
        tunedAt: new Date().toISOString(),
      };
      const fmt = (t: Tiles) => `${t.br}x${t.bc} rm${t.rm} tx${t.tx}`;
      io.out(
        `${kernel.name} ${o.dtype} d=${o.d} n=${n} b×h=${batch}×${o.heads}: ` +
          `${ok.length} of ${rows.length} candidates correct`,
      );
      const table = [...ok, ...rows.filter((r) => r.ms === null)].slice(0, 12).map((r) => [
        fmt(r.tiles),
        r.ms === null ? "" : r.ms.toPrecision(4),
        r.bytes ? (r.bytes / 1e6).toPrecision(4) : "",
        r.note,
      ]);
      for (const line of formatTable(["tiles", "median ms", "HBM MB", "note"], table)) io.out(line);
      io.out(
        `measured best: ${fmt(best.tiles)} (${best.ms!.toPrecision(4)} ms); IO model's ` +
          `best (fewest bytes): ${fmt(predicted.tiles)} (${predicted.ms!.toPrecision(4)} ms)`,
      );
    }
    gpu.device.destroy();
    if (Object.keys(winners).length > 0) {
      await saveTuned(out, gpu.info, winners);
      io.err(`wrote ${out}`);
    }
    return 0;
  },
};
