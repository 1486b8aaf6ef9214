// Standard kernel variants on one GPU in one call (BENCHMARKS.md, issue 10, stdgemm): for each
// variant (P·V tiles, scores tiles, P·V key splits, softmax layout, subgroups on/off), first check
// it against the float64 reference at odd sizes with poisoned outputs, causal and not, with the
// device's tiles (a failing variant is not timed), then time it with the tool's own timer at
// B·N = 16384 tokens, 16 heads: the whole run, then each pass of its first chunk alone (the
// softmax's GB/s from its modeled bytes), beside PyTorch's MATH from a peer_sdpa.py file.
// Prints one JSON line per timing and a table last.
//
//   deno run -A scripts/standard_variants.ts [--n 1024,4096,16384] [--d 64] [--reps 5]
//     [--tiles 128x32x2x4] [--variants base,ks1,sc64x64x4x8+ks8,sm32x64,nosg] [--check-n 77,300]
//     [--peers peers.jsonl]
//
// A variant is `+`-joined knobs: `base` (none), `ks<K>` (P·V split in K key ranges; ks0: picked
// from the grid), `sm<T>x<C>` (softmax: at most T threads a row, C elements a thread cached),
// `sc<br>x<bc>x<rm>x<tx>` (scores tiles), `t<br>x<bc>x<rm>x<tx>` (P·V tiles, default --tiles),
// `nosg` (the portable softmax reductions).
import { parseArgs } from "@std/cli/parse-args";
import { AttentionKernels, prepareAttention } from "../kernels/attention.ts";
import { checkPrepared } from "../kernels/check.ts";
import { type Gpu, openGpu } from "../kernels/gpu.ts";
import { timeDispatches } from "../kernels/timing.ts";
import { tolerance } from "../core/tolerances.ts";
import type { AttentionShape, Tiles } from "../core/shapes.ts";
import { attentionFlops, passTrafficOf } from "../kernels/kernel.ts";
import { type StandardOptions, standardWith } from "../kernels/standard/mod.ts";

const a = parseArgs(Deno.args, {
  string: ["n", "d", "reps", "tiles", "variants", "check-n", "peers"],
});
const ns = (a.n ?? "1024,4096,16384").split(",").map(Number);
const d = Number(a.d ?? 64);
const reps = Number(a.reps ?? 5);
const parseTiles = (s: string): Tiles => {
  const [br, bc, rm, tx] = s.split("x").map(Number);
  return { br: br!, bc: bc!, rm: rm!, tx: tx! };
};
const baseTiles = parseTiles(a.tiles ?? "128x32x2x4");

function parseVariant(text: string): { tiles: Tiles; o: StandardOptions } {
  let tiles = baseTiles;
  const o: StandardOptions = {};
  for (const knob of text.split("+")) {
    if (knob === "base") continue;
    else if (knob === "nosg") o.subgroups = false;
    else if (knob.startsWith("ks")) o.pvSplits = Number(knob.slice(2));
    else if (knob.startsWith("sc")) o.scoresTiles = parseTiles(knob.slice(2));
    else if (knob.startsWith("sm")) {
      const [t, c] = knob.slice(2).split("x").map(Number);
      o.softmaxThreads = t;
      o.softmaxCache = c;
    } else if (knob.startsWith("t")) tiles = parseTiles(knob.slice(1));
    else throw new Error(`unknown variant knob ${knob}`);
  }
  return { tiles, o };
}

// PyTorch MATH (f32, non-causal) at this d, by N, from peer_sdpa.py's JSON lines.
const math = new Map<number, number>();
if (a.peers) {
  for (const line of (await Deno.readTextFile(a.peers)).split("\n")) {
    if (!line.trim()) continue;
    const r = JSON.parse(line);
    if (r.backend === "MATH" && r.d === d && r.dtype === "float32" && !r.causal && r.ms) {
      math.set(r.n, r.ms);
    }
  }
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const rows: string[] = [];
const gpu: Gpu = await openGpu();
const kernels = new AttentionKernels(gpu);
console.log(`# ${gpu.info.description} subgroups=${gpu.info.subgroups} size=${gpu.subgroupSize}`);

for (const text of (a.variants ?? "base").split(",")) {
  const { tiles, o } = parseVariant(text);
  const kernel = standardWith(`standard-${text}`, o);
  const name = text.padEnd(24);
  let ok = true;
  for (const n of (a["check-n"] ?? "77,300").split(",").map(Number)) {
    for (const causal of [false, true]) {
      const shape: AttentionShape = { batch: 2, heads: 3, n, d, dtype: "f32", causal };
      try {
        const p = await prepareAttention(kernels, { kernel, shape, tiles });
        const r = await checkPrepared(p, 1000 + n);
        p.destroy();
        const good = r.nonFinite === 0 && r.error <= tolerance("f32");
        console.log(
          `check ${text} n=${n} causal=${causal}: err ${r.error.toExponential(2)} ${
            good ? "ok" : "FAIL"
          }`,
        );
        ok &&= good;
      } catch (e) {
        console.log(`check ${text} n=${n}: ${(e as Error).message.split("\n")[0]}`);
        ok = false;
      }
    }
  }
  if (!ok) {
    rows.push(`${name} FAILED CHECK`);
    continue;
  }
  for (const n of ns) {
    const shape: AttentionShape = {
      batch: Math.max(1, 16384 / n),
      heads: 16,
      n,
      d,
      dtype: "f32",
      causal: false,
    };
    let p;
    try {
      p = await prepareAttention(kernels, { kernel, shape, tiles });
    } catch (e) {
      rows.push(`${name} n=${String(n).padStart(5)} ${(e as Error).message.split("\n")[0]}`);
      continue;
    }
    // One input set: S and P (GBs) dwarf the inputs, so rotating inputs against caches is moot,
    // and at B·N = 16384 each set is 50M normals drawn on the CPU.
    p.upload(p.plan.randomInputs(7), 0);
    // Settle the clocks (300 ms of GPU time, then two batches that agree; kernels/timing.ts) as
    // bench and tune do. A wall-clock warm-up of awaited runs left the GPU idle between runs, and
    // on the H200 the first variant timed after the checks ran at clocks still coming up (stop 11).
    const r = await timeDispatches(gpu, (pass) => p.encode(pass, 0), {
      warmup: 2,
      reps,
      ...(gpu.info.isFallbackAdapter ? {} : { settleMs: 300 }),
    });
    if (r.settle && !r.settle.settled) {
      console.error(`${name} n=${n}: the GPU's clocks did not settle`);
    }
    const ms = median(r.samplesMs);
    const tf = attentionFlops(shape, "fwd") / (ms * 1e-3) / 1e12;
    // Each pass of the first chunk alone; the softmax's bytes: that dispatch's modeled S read
    // and P write.
    const passes = p.plan.passes();
    const chunks = passes.filter((x) => x.name.startsWith("softmax")).length;
    const traffic = passTrafficOf(p.plan);
    const per: Record<string, number> = {};
    let softmaxGBs = 0;
    for (const [index, pass] of passes.entries()) {
      const base = pass.name.replace("#1", "");
      if (pass.name.includes("#") && !pass.name.endsWith("#1")) continue;
      const t = await timeDispatches(gpu, (enc) => p.encodePass(enc, index), { warmup: 2, reps });
      per[base] = median(t.samplesMs);
      if (base === "softmax") {
        const own = traffic[index]!.s!.read + traffic[index]!.p!.write;
        softmaxGBs = own / (per[base]! * 1e6);
      }
    }
    const peer = math.get(n);
    const ratio = peer ? peer / ms : NaN;
    const ks = passes.find((x) => x.key.includes("-ks"))?.key.match(/-ks(\d+)/)?.[1] ?? "?";
    console.log(
      JSON.stringify({ variant: text, n, ms, tflops: tf, math: peer, per, softmaxGBs, ks }),
    );
    const perText = Object.entries(per).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ");
    rows.push(
      `${name} n=${String(n).padStart(5)} ${ms.toFixed(2).padStart(8)} ms ${
        tf.toFixed(2).padStart(6)
      } TFLOP/s  ${Number.isNaN(ratio) ? "  —  " : ratio.toFixed(3)}× MATH  ks ${ks}  ` +
        `softmax ${softmaxGBs.toFixed(0)} GB/s  [${perText}${
          chunks > 1 ? `; 1 of ${chunks} chunks` : ""
        }]`,
    );
    p.destroy();
  }
}
gpu.device.destroy();
console.log(
  `\nvariant                  N          time    TFLOP/s  vs MATH (${
    [...math].map(([n, ms]) => `${n}: ${ms} ms`).join(", ")
  })`,
);
console.log(rows.join("\n"));
