// Decode kernel variants on one GPU in one call (BENCHMARKS.md, issue 14, decode v2): for each
// variant (the split pass's tiles: threads, lanes per token, tokens per round, segment; subgroups
// on/off; the split size), first check both decode kernels against the float64 reference at odd
// context lengths with poisoned outputs (a failing variant is not timed), then time them with
// the tool's own timer at the issue's target shape (f16, d = 128, 16 sequences × 16 heads, MHA,
// block size 16), the whole run and the split pass alone. Prints one JSON line per timing and a
// table last: GB/s over the compulsory bytes (every K and V element once, Q and O), against
// PyTorch's decode GB/s from `--peers` (peer_sdpa.py --decode) and the copy ceiling measured here.
//
//   deno run -A scripts/decode_variants.ts [--n 2048,8192] [--variants default,u1,...]
//     [--peers FILE] [--reps 20] [--all-n default]
import { parseArgs } from "@std/cli/parse-args";
import { AttentionKernels, prepareAttention } from "../kernels/attention.ts";
import { openGpu } from "../kernels/gpu.ts";
import { timeDispatches } from "../kernels/timing.ts";
import { measureCopy } from "../kernels/ceilings.ts";
import { tolerance } from "../core/tolerances.ts";
import type { Tiles } from "../core/shapes.ts";
import { checkDecode } from "../kernels/decode/testing.ts";
import { attentionProblem } from "../kernels/decode/testing.ts";
import { compulsoryDecodeBytes, type DecodeKernelName } from "../kernels/decode/mod.ts";

interface Variant {
  name: string;
  tiles: Tiles;
  sg: boolean;
  /** Splits of the longest context (null: the default split count). */
  splits: number | null;
}

const T = (br: number, bc: number, rm: number, tx: number): Tiles => ({ br, bc, rm, tx });
const VARIANTS: Variant[] = [
  { name: "default", tiles: T(256, 256, 2, 8), sg: true, splits: null },
  { name: "u1", tiles: T(256, 256, 1, 8), sg: true, splits: null },
  { name: "u4", tiles: T(256, 256, 4, 8), sg: true, splits: null },
  { name: "l32", tiles: T(256, 256, 2, 32), sg: true, splits: null },
  { name: "split8", tiles: T(256, 256, 2, 8), sg: true, splits: 8 },
  { name: "portable", tiles: T(256, 256, 2, 8), sg: false, splits: null },
];

const a = parseArgs(Deno.args, { string: ["n", "variants", "peers", "reps", "all-n"] });
const ns = (a.n ?? "2048,8192").split(",").map(Number);
const reps = Number(a.reps ?? 20);
const wanted = a.variants?.split(",");
const variants = wanted ? VARIANTS.filter((v) => wanted.includes(v.name)) : VARIANTS;
// Variants timed at every --n; the others at the longest only (the target).
const allN = (a["all-n"] ?? "default").split(",");
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

/** PyTorch EFFICIENT_ATTENTION decode GB/s by context length, from peer_sdpa.py --decode. */
const peerGBs = new Map<number, number>();
if (a.peers) {
  for (const line of (await Deno.readTextFile(a.peers)).split("\n")) {
    if (!line.trim()) continue;
    const r = JSON.parse(line);
    if (r.decode && r.backend === "EFFICIENT_ATTENTION") peerGBs.set(r.n, r.gbs);
  }
}

const KERNELS: DecodeKernelName[] = ["decode", "paged-decode"];
const target = (n: number) => ({
  shape: { lens: Array(16).fill(n), heads: 16, kvHeads: 16, d: 128, dtype: "f16" } as const,
});
const timed: Record<string, { ms: number; splitMs: number; shuffles: boolean }> = {};
let copyGBs = 0;

for (const sg of [true, false]) {
  const mine = variants.filter((v) => v.sg === sg);
  if (mine.length === 0) continue;
  const gpu = await openGpu({ subgroups: sg });

  const kernels = new AttentionKernels(gpu);
  console.log(`# ${gpu.info.description} subgroups=${gpu.info.subgroups} size=${gpu.subgroupSize}`);
  if (copyGBs === 0) {
    copyGBs = (await measureCopy(gpu)).gbs;
    console.log(`# copy ceiling ${copyGBs.toFixed(0)} GB/s`);
  }
  // Correct first: odd lengths (1, primes, not multiples of a block or a round), GQA and MHA,
  // several splits, poisoned outputs, fresh inputs; a failing variant is not timed.
  const good = new Map<string, boolean>();
  for (const v of mine) {
    let ok = true;
    for (const kernel of KERNELS) {
      for (const [lens, heads, kvHeads] of [[[1, 37, 257, 1000], 8, 2], [[4099], 4, 4]] as const) {
        const p = await prepareAttention(kernels, {
          ...attentionProblem({
            kernel,
            shape: { lens, heads, kvHeads, d: 128, dtype: "f16" },
            splitTokens: v.splits ? Math.ceil(Math.max(...lens) / v.splits) : undefined,
          }),
          tiles: v.tiles,
        });
        try {
          const r = await checkDecode(p, 11);
          const pass = r.nonFinite === 0 && r.error <= tolerance("f16");
          console.log(
            `check ${v.name} ${kernel} ${r.label}: err ${r.error.toExponential(2)} ${
              pass ? "ok" : "FAIL"
            }`,
          );
          ok &&= pass;
        } catch (e) {
          console.log(`check ${v.name} ${kernel}: ${(e as Error).message.split("\n")[0]}`);
          ok = false;
        } finally {
          p.destroy();
        }
      }
    }
    good.set(v.name, ok);
  }
  for (const n of ns) {
    const longest = n === Math.max(...ns);
    for (const kernel of KERNELS) {
      let inputs: Record<string, Float32Array> | null = null;
      for (const v of mine) {
        if (!good.get(v.name) || (!longest && !allN.includes(v.name))) continue;
        const { shape: ds } = target(n);
        const problem = attentionProblem({
          kernel,
          shape: ds,
          blockSize: kernel === "paged-decode" ? 16 : undefined,
          splitTokens: v.splits ? Math.ceil(n / v.splits) : undefined,
        });
        const p = await prepareAttention(kernels, { ...problem, tiles: v.tiles });
        // The same values for every variant (the pool and tables depend on the lengths only).
        inputs ??= p.plan.timingInputs!(7);
        p.upload(inputs, 0);
        const warm = await timeDispatches(gpu, (pass) => p.encode(pass), { warmup: 1, reps: 3 });
        const warmup = Math.min(5000, Math.ceil(300 / median(warm.samplesMs)));
        const r = await timeDispatches(gpu, (pass) => p.encode(pass), { warmup, reps });
        const s = await timeDispatches(gpu, (pass) => p.encodePass(pass, 0), {
          warmup: 20,
          reps: Math.min(reps, 10),
        });
        const ms = median(r.samplesMs);
        const splitMs = median(s.samplesMs);
        const splits = (p.plan as unknown as { decode: { maxSplits: number } }).decode.maxSplits;
        // Whether the split pass sums lanes through subgroup shuffles (its key says so).
        const shuffles = p.plan.passes()[0]!.key.endsWith("-sg");
        timed[`${v.name}|${n}|${kernel}`] = { ms, splitMs, shuffles };
        const bytes = compulsoryDecodeBytes(ds);
        console.log(JSON.stringify({
          variant: v.name,
          tiles: v.tiles,
          sg: gpu.subgroupSize,
          kernel,
          n,
          splits,
          ms,
          splitMs,
          gbs: bytes / ms / 1e6,
          clock: r.clock,
        }));
        p.destroy();
      }
      inputs = null;
    }
  }
  gpu.device.destroy();
}

const rows = [
  "variant   tiles (br x bc x rm x tx)  context  decode ms  paged ms  paged/contig  GB/s (paged)  x PyTorch  % copy  split ms (paged)",
];
for (const v of variants) {
  for (const n of ns) {
    const c = timed[`${v.name}|${n}|decode`];
    const p = timed[`${v.name}|${n}|paged-decode`];
    if (!c && !p) continue;
    const bytes = compulsoryDecodeBytes(target(n).shape);
    const gbs = p ? bytes / p.ms / 1e6 : NaN;
    const peer = peerGBs.get(n);
    const t = v.tiles;
    rows.push([
      v.name.padEnd(9),
      // "sg": the split pass sums lanes through subgroup shuffles (else the portable path).
      `${t.br}x${t.bc}x${t.rm}x${t.tx}${(p ?? c)!.shuffles ? " sg" : ""}${
        v.splits ? ` s${v.splits}` : ""
      }`.padEnd(26),
      String(n).padStart(7),
      (c ? c.ms.toFixed(3) : "-").padStart(10),
      (p ? p.ms.toFixed(3) : "-").padStart(9),
      (c && p ? (p.ms / c.ms).toFixed(3) : "-").padStart(13),
      gbs.toFixed(0).padStart(13),
      (peer ? (gbs / peer).toFixed(2) : "-").padStart(10),
      (copyGBs ? ((100 * gbs) / copyGBs).toFixed(0) : "-").padStart(7),
      (p ? p.splitMs.toFixed(3) : "-").padStart(17),
    ].join(" "));
  }
}
console.log("\n" + rows.join("\n"));
console.log(
  `(GB/s: the compulsory bytes, K and V once plus Q and O, over the whole run's median; ` +
    `PyTorch: EFFICIENT_ATTENTION from the peers file; copy: ${copyGBs.toFixed(0)} GB/s here)`,
);
