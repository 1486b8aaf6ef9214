// Flash kernel variants on one GPU in one call (BENCHMARKS.md, issue 10): for each variant
// (tiles × subgroups on/off × the options below), first check it against the float64 reference
// at an odd size with poisoned outputs (a failing variant is not timed), then time it with the
// tool's own timer at B·N = 16384 tokens, 16 heads. Prints one JSON line per timing and a table
// last.
//
//   deno run -A scripts/speed_variants.ts [--n 1024,4096,16384] [--d 64] [--reps 10]
//     [--tiles 64x32x8x8,64x32x4x16,64x32x4x8v7,64x32x4x16v8] [--sg both|on|off] [--causal]
//     [--kernel flash-bwd] [--batch-heads 64] [--dtype f16 --f16-math f32,packed]
//     [--f16-chunk 16,64] [--dq pass,atomic] [--prefetch off,on] [--pad 0,4096,9456]
//     [--peers peers.jsonl] [--table rows.txt]
//
// Any kernel of the registry: a backward one (flash-bwd, flash-fwd+bwd, …) is timed on its
// timing inputs (O(N·d) on the host) and counted with its pass's FLOPs (2.5× / 3.5× the
// forward's); a fwd+bwd kernel's tiles are its forward's; the table names the tiles each pass
// ran with. --f16-math: the f16 programs' arithmetic, each timed as its own variant (kernel
// option f16Math); packed once per --f16-chunk (elements per f16 partial sum, kernel option
// f16Chunk; default 16). --dq: how flash-bwd (and the backward half of flash-fwd+bwd) computes
// dQ, each a variant (kernel option dq: "pass", the dQ pass; "atomic", atomicAdd in the dK/dV
// pass, on devices granting wgpu-shader-float32-atomic). --prefetch: flash-bwd's (and the
// backward half of flash-fwd+bwd's) loads of the next inner block's tiles one block ahead, each
// value a variant (kernel option prefetch: off, false, the default source; on, true;
// kernels/backward/prefetch.ts). --pad: bytes of unused workgroup memory added to flash's (and
// block-sparse's) program, each value a variant (kernel option padWorkgroupBytes, a multiple of
// 16; 0, the default, is the unpadded program): fewer workgroups then fit an SM, with the same
// work and bytes (the pad adds one branch that never runs; issue 10's occupancy experiment,
// docs/analysis/flash_inner_loop.md). A value may repeat (0,9456,0: the first timed again last,
// to see drift); a pad past the device's limit fails its check with one line. --peers:
// peer_sdpa.py's JSON lines; each timing's row then shows its ratio to PyTorch
// EFFICIENT_ATTENTION's TFLOP/s of the same pass, n, d, dtype and causality. --table: the
// table's rows are also appended to this file (one step's several runs make one table).
import { parseArgs } from "@std/cli/parse-args";
import { AttentionKernels, prepareAttention } from "../kernels/attention.ts";
import { checkPrepared } from "../kernels/check.ts";
import { type Gpu, openGpu } from "../kernels/gpu.ts";
import { timeDispatches } from "../kernels/timing.ts";
import { tolerance } from "../core/tolerances.ts";
import { type AttentionShape, TILE_VARIANTS, type Tiles } from "../core/shapes.ts";
import { attentionFlops, inputsToTime } from "../kernels/kernel.ts";

const a = parseArgs(Deno.args, {
  string: [
    "n",
    "d",
    "reps",
    "tiles",
    "sg",
    "kernel",
    "dtype",
    "check-n",
    "f16-math",
    "f16-chunk",
    "peers",
    "table",
    "batch-heads",
    "dq",
    "prefetch",
    "pad",
  ],
  boolean: ["causal"],
});
const ns = (a.n ?? "1024,4096,16384").split(",").map(Number);
const d = Number(a.d ?? 64);
const reps = Number(a.reps ?? 10);
const kernel = a.kernel ?? "flash";
const dtype = (a.dtype ?? "f32") as "f32" | "f16";
const tilesText: string = a.tiles ?? "64x32x8x8";
// A tile is BRxBCxRMxTX, with a layout suffix for flash's variants: "v7" (interleaved output
// columns), "v8", "v8k", "v8v", "v8e" (v7 with K and/or V prefetched: kernels/flash/mod.ts).
const tiles: Tiles[] = tilesText.split(",").map((s: string) => {
  const variant = TILE_VARIANTS.find((v) => s.endsWith(v));
  const [br, bc, rm, tx] = s.slice(0, s.length - (variant?.length ?? 0)).split("x").map(Number);
  return { br: br!, bc: bc!, rm: rm!, tx: tx!, ...(variant ? { variant } : {}) };
});
// PyTorch EFFICIENT_ATTENTION TFLOP/s by pass, n, d, dtype and causality.
const peerPass = { fwd: "fwd", bwd: "bwd", fwd_bwd: "fwdbwd" } as const;
const peerKey = (pass: string, n: number, causal: boolean) =>
  `${pass}/${n}/${d}/${dtype === "f32" ? "float32" : "float16"}/${causal}`;
const peers = new Map<string, number>();
if (a.peers) {
  for (const line of (await Deno.readTextFile(a.peers)).split("\n")) {
    if (!line.trim()) continue;
    const r = JSON.parse(line);
    if (r.backend === "EFFICIENT_ATTENTION" && typeof r.tflops === "number") {
      peers.set(peerKey(r.pass, r.n, r.causal), r.tflops);
    }
  }
}
const sgModes = a.sg === "on" ? [true] : a.sg === "off" ? [false] : [true, false];
const chunks = (a["f16-chunk"] ?? "16").split(",").map(Number);
/** The arithmetic variants: f32, and packed at each chunk length. */
const maths: { f16Math: string; f16Chunk?: number }[] = (a["f16-math"] ?? "f32").split(",")
  .flatMap((m: string) =>
    m === "packed" ? chunks.map((c: number) => ({ f16Math: m, f16Chunk: c })) : [{ f16Math: m }]
  );
const dqs: (string | null)[] = a.dq ? a.dq.split(",") : [null];
// Prefetch on/off; null: the option is not passed (the default source).
const prefetches: (boolean | null)[] = a.prefetch
  ? a.prefetch.split(",").map((x: string) => {
    if (x !== "on" && x !== "off") throw new Error(`--prefetch: on or off, got ${x}`);
    return x === "on";
  })
  : [null];
// Workgroup-memory pads in bytes; null: the option is not passed (the unpadded program).
const pads: (number | null)[] = a.pad ? a.pad.split(",").map(Number) : [null];
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const rows: string[] = [];

for (const sg of sgModes) {
  const gpu: Gpu = await openGpu({ subgroups: sg });
  const kernels = new AttentionKernels(gpu);
  console.log(`# ${gpu.info.description} subgroups=${gpu.info.subgroups} size=${gpu.subgroupSize}`);
  const variants = tiles.flatMap((t) =>
    maths.flatMap((m) =>
      dqs.flatMap((q) => prefetches.flatMap((f) => pads.map((pad) => [t, m, q, f, pad] as const)))
    )
  );
  for (const [t, math, dq, prefetch, pad] of variants) {
    const options = {
      ...math,
      ...(dq === null ? {} : { dq }),
      ...(prefetch === null ? {} : { prefetch }),
      ...(pad === null ? {} : { padWorkgroupBytes: pad }),
    };
    const mathName = math.f16Chunk ? `${math.f16Math}${math.f16Chunk}` : math.f16Math;
    const name = `${kernel} ${dtype}${
      dtype === "f16" ? `/${mathName}` : ""
    } d${d} ${t.br}x${t.bc}x${t.rm}x${t.tx}${t.variant ?? ""} sg=${gpu.subgroupSize}${
      dq === null ? "" : ` dq=${dq}`
    }${prefetch === null ? "" : ` prefetch=${prefetch ? "on" : "off"}`}${
      pad === null ? "" : ` pad=${pad}`
    }`;
    // Correct first: odd sizes, several heads, poisoned outputs, fresh inputs.
    let ok = true;
    let maxErr = 0;
    for (const n of (a["check-n"] ?? "1,77,1000").split(",").map(Number)) {
      const shape: AttentionShape = { batch: 2, heads: 3, n, d, dtype, causal: a.causal };
      try {
        const p = await prepareAttention(kernels, { kernel, shape, tiles: t, options });
        const r = await checkPrepared(p, 1000 + n);
        maxErr = Math.max(maxErr, r.error);
        p.destroy();
        const good = r.nonFinite === 0 && r.error <= tolerance(dtype);
        console.log(
          `check ${name} n=${n}: err ${r.error.toExponential(2)} ${good ? "ok" : "FAIL"}`,
        );
        ok &&= good;
      } catch (e) {
        console.log(`check ${name} n=${n}: ${(e as Error).message.split("\n")[0]}`);
        ok = false;
      }
    }
    if (!ok) {
      rows.push(`${name.padEnd(44)} FAILED CHECK`);
      continue;
    }
    for (const n of ns) {
      const bh = Number(a["batch-heads"] ?? 0);
      const shape: AttentionShape = {
        batch: bh > 0 ? 1 : Math.max(1, 16384 / n),
        heads: bh > 0 ? bh : 16,
        n,
        d,
        dtype,
        causal: a.causal,
      };
      const p = await prepareAttention(kernels, { kernel, shape, tiles: t, options }, {
        inputSets: 2,
      });
      p.upload(inputsToTime(p.plan, 7), 0);
      p.upload(inputsToTime(p.plan, 8), 1);
      // Settle the clocks (300 ms of GPU time, then two batches that agree; kernels/timing.ts)
      // as bench and tune do. A wall-clock warm-up of awaited runs left the GPU idle between
      // runs, and on the H200 the first variant timed after the checks ran at clocks still
      // coming up (stop 11).
      const r = await timeDispatches(gpu, (pass, rep) => p.encode(pass, rep % 2), {
        warmup: 2,
        reps,
        ...(gpu.info.isFallbackAdapter ? {} : { settleMs: 300 }),
      });
      if (r.settle && !r.settle.settled) {
        console.error(`${name} n=${n}: the GPU's clocks did not settle`);
      }
      const ms = median(r.samplesMs);
      const mode = p.plan.kernel.mode;
      const tf = attentionFlops(shape, mode) / (ms * 1e-3) / 1e12;
      const peer = peers.get(peerKey(peerPass[mode], n, shape.causal));
      const ratio = peer ? tf / peer : null;
      // Each dispatch on its own (5 reps), and the tiles its program was built with (its key).
      const perPass: string[] = [];
      for (const [i, pass] of p.plan.passes().entries()) {
        const one = await timeDispatches(gpu, (enc) => p.encodePass(enc, i), {
          warmup: 1,
          reps: 5,
        });
        perPass.push(`${pass.name} ${median(one.samplesMs).toFixed(2)} ms (${pass.key})`);
      }
      console.log(
        JSON.stringify({ name, pass: mode, n, ms, tflops: tf, maxErr, ratio, clock: r.clock }),
      );
      rows.push(
        `${name.padEnd(52)} ${mode.padEnd(7)} n=${String(n).padStart(5)} ${
          ms.toFixed(3).padStart(9)
        } ms ${tf.toFixed(2).padStart(6)} TFLOP/s  err ${maxErr.toExponential(1)}${
          ratio === null ? "" : `  ${ratio.toFixed(3)}x of EFFICIENT ${peer!.toFixed(2)}`
        }`,
      );
      console.log(`passes ${name} n=${n}: ${perPass.join(", ")}`);
      p.destroy();
    }
  }
  gpu.device.destroy();
}
console.log("\n" + rows.join("\n"));
if (a.table) Deno.writeTextFileSync(a.table, rows.join("\n") + "\n", { append: true });
