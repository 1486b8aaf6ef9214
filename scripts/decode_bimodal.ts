// Issue 14, "open: bimodal timing" (BENCHMARKS.md, decode v2): the same decode kernel on the same
// shape (f16, d = 128, 16 sequences × 16 heads, context 8192) timed at ~4 TB/s in
// scripts/decode_variants.ts and at ~1 TB/s in `bench`, sometimes within one prepared plan
// (whole run slow, split pass alone fast). Outcome (stop 10, BENCHMARKS.md "Stop 10"): the GPU's
// clocks, after seconds of host-side work; kernels/timing.ts now settles them before timing. This
// script puts the candidate causes side by side in one call, every row timed with the tool's
// timer (kernels/timing.ts):
//
//   check    both kernels against the float64 reference (odd lengths, GQA, poisoned outputs; the
//            contiguous kernel with a padded stride too); nothing is timed if one fails
//   ceil     bench's ceilings first (copy, FMA, launch), as `bench` does before its sweep
//   bench    `measureRun` itself (bench's path: its seeds 1 and 2, its inputs, 200 ms warm-up,
//            whole run, then each pass alone), decode then paged, twice
//   stream   one prepared plan (decode_variants' seed 7): whole run, split alone, combine alone,
//            alternating, 64 reps each, several cycles (a state that flips inside one plan shows)
//   ramp     2 s idle, then 1024 whole runs (then split passes) with no warm-up, in batches of
//            256: medians of 8 buckets of 128 (clocks coming up show as a falling row)
//   seed     the same plan, inputs of seed 1 (bench's) and 7 (decode_variants') uploaded in turn
//   fresh    fresh allocations of the same plan, one after another (physical placement), one
//            after a 97 MiB buffer (placement shifted), one with the stride padded by 16 rows
//            (2 MiB + 4 KiB between (sequence, head) rows: power-of-two camping), paged twice
//
// With `nvidia-smi` on the machine, it samples SM/memory clocks, power and the clock-event
// reasons every 100 ms in the background; each row shows the samples inside its timing window.
// Prints one JSON line per row as it goes, then the raw nvidia-smi lines ("smi …"), the table last.
//
//   deno run -A scripts/decode_bimodal.ts [--n 8192] [--batches 16] [--heads 16] [--d 128]
//     [--dtype f16] [--cycles 6] [--phases check,ceil,bench,stream,ramp,seed,fresh]
import { parseArgs } from "@std/cli/parse-args";
import {
  AttentionKernels,
  prepareAttention,
  type PreparedAttention,
} from "../kernels/attention.ts";
import { openGpu } from "../kernels/gpu.ts";
import { timeDispatches } from "../kernels/timing.ts";
import { measureCeilings } from "../kernels/ceilings.ts";
import { tolerance } from "../core/tolerances.ts";
import type { AttentionShape, Dtype } from "../core/shapes.ts";
import { measureRun, type RunSpec } from "../cli/bench_runner.ts";
import { KERNELS } from "../kernels/registry.ts";
import { maxRelError } from "../kernels/reference.ts";
import {
  attentionProblem,
  checkDecode,
  type DecodeProblem,
  setupOf,
} from "../kernels/decode/testing.ts";
import {
  compulsoryDecodeBytes,
  type DecodeKernelName,
  referenceDecode,
} from "../kernels/decode/mod.ts";

const a = parseArgs(Deno.args, {
  string: ["n", "batches", "heads", "d", "dtype", "cycles", "phases"],
});
const n = Number(a.n ?? 8192);
const batch = Number(a.batches ?? 16);
const heads = Number(a.heads ?? 16);
const d = Number(a.d ?? 128);
const dtype = (a.dtype ?? "f16") as Dtype;
const cycles = Number(a.cycles ?? 6);
const phases = new Set((a.phases ?? "check,ceil,bench,stream,ramp,seed,fresh").split(","));
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- nvidia-smi in the background: (epoch ms, SM MHz, memory MHz, W, °C, reasons, util %) ----
interface Smi {
  t: number;
  sm: number;
  mem: number;
  watts: number;
  temp: number;
  reasons: string;
  util: number;
}
const smiRows: Smi[] = [];
const smiRaw: string[] = [];
const FIELDS = "timestamp,pstate,clocks.sm,clocks.mem,power.draw,temperature.gpu";
let smiProcess: Deno.ChildProcess | null = null;
async function startSmi(): Promise<string> {
  for (const reasons of ["clocks_event_reasons.active", "clocks_throttle_reasons.active", ""]) {
    const query = `--query-gpu=${FIELDS}${reasons ? `,${reasons}` : ""},utilization.gpu`;
    const args = [query, "--format=csv,noheader,nounits"];
    try {
      const once = await new Deno.Command("nvidia-smi", { args, stdout: "piped", stderr: "null" })
        .output();
      if (!once.success) continue;
      smiProcess = new Deno.Command("nvidia-smi", {
        args: [...args, "-lms", "100"],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      (async () => {
        let rest = "";
        for await (const chunk of smiProcess!.stdout.pipeThrough(new TextDecoderStream())) {
          const lines = (rest + chunk).split("\n");
          rest = lines.pop()!;
          for (const line of lines) {
            smiRaw.push(line);
            const row = parseSmi(line, reasons !== "");
            if (row) smiRows.push(row);
          }
        }
      })();
      return query;
    } catch {
      return "nvidia-smi not found";
    }
  }
  return "nvidia-smi refused every query";
}

/** One nvidia-smi CSV line (local time stamp "YYYY/MM/DD HH:MM:SS.mmm"), or null. */
function parseSmi(line: string, withReasons: boolean): Smi | null {
  const f = line.split(",").map((s) => s.trim());
  const m = /^(\d+)\/(\d+)\/(\d+) (\d+):(\d+):(\d+)\.(\d+)$/.exec(f[0] ?? "");
  if (!m) return null;
  const [y, mo, da, h, mi, s, ms] = m.slice(1).map(Number) as number[];
  const t = new Date(y!, mo! - 1, da!, h!, mi!, s!, ms!).getTime();
  const num = (x: string | undefined) => (x === undefined ? NaN : Number(x));
  return {
    t,
    sm: num(f[2]),
    mem: num(f[3]),
    watts: num(f[4]),
    temp: num(f[5]),
    // The clock-event bitmask without its leading zeros (0x0: none; 0x1: idle; else a cap).
    reasons: withReasons ? (f[6] ?? "").replace(/^0x0*(?=[0-9a-fA-F])/, "0x") : "",
    util: num(f[withReasons ? 7 : 6]),
  };
}

/** The nvidia-smi samples of [t0, t1] (the nearest one when none fell inside), summarised. */
function smiDuring(t0: number, t1: number): string {
  if (smiRows.length === 0) return "-";
  let inside = smiRows.filter((r) => r.t >= t0 && r.t <= t1);
  if (inside.length === 0) {
    const mid = (t0 + t1) / 2;
    inside = [smiRows.reduce((b, r) => (Math.abs(r.t - mid) < Math.abs(b.t - mid) ? r : b))];
  }
  const sm = inside.map((r) => r.sm);
  const reasons = [...new Set(inside.map((r) => r.reasons))].join("/");
  return `sm ${Math.min(...sm)}-${Math.max(...sm)} mem ${median(inside.map((r) => r.mem))} ` +
    `${median(inside.map((r) => r.watts)).toFixed(0)}W ${median(inside.map((r) => r.temp))}C ` +
    `${reasons} (${inside.length})`;
}

/** The SM clock range of the samples in a window, "sm -" without any. */
function smiSm(w: { t0: number; t1: number }): string {
  const sm = smiRows.filter((r) => r.t >= w.t0 && r.t <= w.t1).map((r) => r.sm);
  return sm.length ? `sm ${Math.min(...sm)}-${Math.max(...sm)}` : "sm -";
}

// ---- the device, the problem -----------------------------------------------------------------
const gpu = await openGpu({ subgroups: true });
const kernels = new AttentionKernels(gpu);
const smiState = await startSmi();
const lens = Array(batch).fill(n);
const dshape = { lens, heads, kvHeads: heads, d, dtype } as const;
const shape: AttentionShape = { batch, heads, n, d, dtype, causal: false };
const bytes = compulsoryDecodeBytes(dshape);
const KERNELS_: DecodeKernelName[] = ["decode", "paged-decode"];
const tilesOf = (k: DecodeKernelName) => kernels.defaultTiles(k, shape);
const problemOf = (k: DecodeKernelName, extra: Partial<DecodeProblem> = {}) => ({
  ...attentionProblem({
    kernel: k,
    shape: dshape,
    blockSize: k === "paged-decode" ? 16 : undefined,
    ...extra,
  }),
  tiles: tilesOf(k),
});
console.log(
  `# ${gpu.info.description} subgroups=${gpu.subgroupSize} timestamps=${gpu.timestamps} ` +
    `smi: ${smiState}; tiles decode ${JSON.stringify(tilesOf("decode"))} ` +
    `paged ${JSON.stringify(tilesOf("paged-decode"))}; ${(bytes / 1e9).toFixed(3)} GB a run`,
);

interface Row {
  phase: string;
  what: string;
  kernel: string;
  wholeMs: number | null;
  splitMs: number | null;
  combineMs: number | null;
  spread: string;
  smi: string;
}
const rows: Row[] = [];
const ms3 = (x: number | null) => (x === null ? "-" : x.toFixed(3));
function emit(r: Row): void {
  rows.push(r);
  console.log(JSON.stringify(r));
}
/** min / median / max of samples, and how many exceed 1.5× the minimum. */
function spreadOf(xs: number[]): string {
  const lo = Math.min(...xs);
  const slow = xs.filter((x) => x > 1.5 * lo).length;
  return `${lo.toFixed(3)}/${median(xs).toFixed(3)}/${
    Math.max(...xs).toFixed(3)
  } ${slow}/${xs.length}>1.5min`;
}

/** Times pass `only` (undefined: the whole run) of p; returns the samples and the window. */
async function time(
  p: PreparedAttention,
  only: number | undefined,
  warmup: number,
  reps: number,
): Promise<{ samples: number[]; t0: number; t1: number }> {
  const t0 = Date.now();
  const r = await timeDispatches(
    gpu,
    (pass) => (only === undefined ? p.encode(pass) : p.encodePass(pass, only)),
    { warmup, reps },
  );
  return { samples: r.samplesMs, t0, t1: Date.now() };
}

/** Warm-up reps for about `ms` of runs of p (bench's estimate: one probe of 3 reps). */
async function warmupFor(p: PreparedAttention, ms: number): Promise<number> {
  const probe = await time(p, undefined, 1, 3);
  return Math.max(3, Math.min(5000, Math.ceil(ms / median(probe.samples))));
}

/** A whole-run timing after `warmMs` of warm-up, then the split pass and combine alone. */
async function triple(p: PreparedAttention, phase: string, what: string, warmMs = 200) {
  const whole = await time(p, undefined, await warmupFor(p, warmMs), 20);
  const split = await time(p, 0, 2, 10);
  const combine = await time(p, 1, 2, 10);
  emit({
    phase,
    what,
    kernel: p.kernel.name,
    wholeMs: median(whole.samples),
    splitMs: median(split.samples),
    combineMs: median(combine.samples),
    spread: spreadOf(whole.samples),
    smi: smiDuring(whole.t0, combine.t1),
  });
}

// ---- check: correct first ------------------------------------------------------------------
if (phases.has("check")) {
  let ok = true;
  const cases: [DecodeKernelName, DecodeProblem["shape"], Partial<DecodeProblem>][] = [];
  for (const k of KERNELS_) {
    cases.push([k, { lens: [1, 37, 257, 1000], heads: 8, kvHeads: 2, d, dtype }, {}]);
    cases.push([k, { lens: [4099], heads: 4, kvHeads: 4, d, dtype }, {}]);
  }
  // The padded stride timed below (cap = longest + 16).
  cases.push(["decode", { lens: [37, 1000], heads: 4, kvHeads: 4, d, dtype }, { cap: 1016 }]);
  for (const [kernel, s, extra] of cases) {
    const p = await prepareAttention(kernels, {
      ...attentionProblem({ kernel, shape: s, ...extra }),
      tiles: tilesOf(kernel),
    });
    try {
      const r = await checkDecode(p, 11);
      const pass = r.nonFinite === 0 && r.error <= tolerance(dtype);
      console.log(`check ${r.label}: err ${r.error.toExponential(2)} ${pass ? "ok" : "FAIL"}`);
      ok &&= pass;
    } finally {
      p.destroy();
    }
  }
  if (!ok) {
    console.log("a check failed: nothing timed");
    Deno.exit(1);
  }
}

// ---- ceil: bench's ceilings, as bench measures them before its sweep --------------------------
let copyGBs = 0;
if (phases.has("ceil")) {
  const t0 = Date.now();
  const c = await measureCeilings(gpu, { quick: gpu.info.isFallbackAdapter });
  copyGBs = c.copyGBs ?? 0;
  const f = (x: number | null, digits: number) => (x === null ? "-" : x.toFixed(digits));
  console.log(
    `# ceilings: copy ${f(c.copyGBs, 0)} GB/s, FMA ${f(c.fmaTflops, 1)} TFLOP/s, ` +
      `launch ${f(c.launchOverheadUs, 1)} µs; ${smiDuring(t0, Date.now())}`,
  );
}

// ---- bench: measureRun itself, with bench's options and seeds ---------------------------------
if (phases.has("bench")) {
  const opts = {
    warmup: 3,
    warmupMs: gpu.info.isFallbackAdapter ? 0 : 200,
    reps: 20,
    minTimeMs: 0,
    countIo: false,
    verify: false,
    sramBytes: gpu.device.limits.maxComputeWorkgroupStorageSize,
  };
  for (let round = 1; round <= 2; round++) {
    for (const [i, k] of KERNELS_.entries()) {
      const paged = k === "paged-decode";
      const spec: RunSpec = {
        kernel: KERNELS[k],
        shape,
        tiles: tilesOf(k),
        mask: { kind: "random", density: 1, seed: 1 },
        sweep: "decode",
        seed: 1 + i, // bench --seed 1: decode 1, paged-decode 2
        options: { lens, kvHeads: heads, ...(paged ? { blockSize: 16 } : {}) },
        decode: { contexts: lens, kvHeads: heads, blockSize: paged ? 16 : null, lengths: "fixed" },
      };
      // bench's own timer, wrapped to note each call's window and samples: the probe, the
      // whole run, then each pass alone.
      const calls: { samples: number[]; t0: number; t1: number }[] = [];
      const r = await measureRun(kernels, spec, opts, {
        timeDispatches: async (g, encode, o) => {
          const t0 = Date.now();
          const x = await timeDispatches(g, encode, o);
          calls.push({ samples: x.samplesMs, t0, t1: Date.now() });
          return x;
        },
      });
      const whole = calls.at(-3);
      const pass = (name: string) => r.passes?.find((x) => x.name === name)?.medianMs ?? null;
      emit({
        phase: "bench",
        what: `measureRun seed ${spec.seed} #${round}${r.status === "ok" ? "" : ` ${r.reason}`}`,
        kernel: k,
        wholeMs: r.timeMs?.median ?? null,
        splitMs: pass("split"),
        combineMs: pass("combine"),
        spread: whole ? spreadOf(whole.samples) : "-",
        // The whole run's window; the split pass alone's SM clocks after the bar.
        smi: whole ? `${smiDuring(whole.t0, whole.t1)} | split ${smiSm(calls.at(-2)!)}` : "-",
      });
    }
  }
}

// ---- one plan kept: stream, ramp, seed -------------------------------------------------------
const seven = phases.has("stream") || phases.has("ramp") || phases.has("seed");
if (seven) {
  const p = await prepareAttention(kernels, problemOf("decode"));
  const inputs7 = p.plan.timingInputs!(7);
  p.upload(inputs7, 0);
  if (phases.has("stream")) {
    await time(p, undefined, await warmupFor(p, 300), 3);
    for (let c = 0; c < cycles; c++) {
      const whole = await time(p, undefined, 1, 64);
      const split = await time(p, 0, 1, 64);
      const combine = await time(p, 1, 1, 64);
      emit({
        phase: "stream",
        what: `cycle ${c} seed 7 (64 reps each)`,
        kernel: "decode",
        wholeMs: median(whole.samples),
        splitMs: median(split.samples),
        combineMs: median(combine.samples),
        spread: spreadOf([...whole.samples, ...split.samples]),
        smi: smiDuring(whole.t0, combine.t1),
      });
    }
    // The timed plan's own output: finite, and sequence 0 against the float64 reference.
    const o = await p.readOutput();
    const bad = o.filter((x) => !Number.isFinite(x)).length;
    const one = { ...dshape, lens: [n] };
    const ref = referenceDecode(one, {
      q: inputs7.q!.subarray(0, heads * d),
      k: inputs7.k!.subarray(0, heads * n * d),
      v: inputs7.v!.subarray(0, heads * n * d),
      cap: n,
    }, setupOf(p).scale);
    const err = maxRelError(o.subarray(0, heads * d), ref);
    console.log(
      `check timed plan (seed 7, sequence 0): err ${err.toExponential(2)}, ${bad} non-finite ` +
        `${bad === 0 && err <= tolerance(dtype) ? "ok" : "FAIL"}`,
    );
  }
  if (phases.has("ramp")) {
    for (const only of [undefined, 0]) {
      const idle = Date.now();
      await sleep(2000);
      const r = await time(p, only, 1, 1024);
      const buckets = Array.from(
        { length: 8 },
        (_, b) => median(r.samples.slice(128 * b, 128 * b + 128)),
      );
      emit({
        phase: "ramp",
        what: `2 s idle (${smiSm({ t0: idle + 500, t1: idle + 2000 })}), no warm-up; ` +
          `8 bucket medians: ${buckets.map((x) => x.toFixed(3)).join(" ")}`,
        kernel: "decode",
        wholeMs: only === undefined ? median(r.samples) : null,
        splitMs: only === 0 ? median(r.samples) : null,
        combineMs: null,
        spread: spreadOf(r.samples),
        smi: smiDuring(r.t0, r.t1),
      });
    }
  }
  if (phases.has("seed")) {
    const inputs1 = p.plan.timingInputs!(1);
    for (const [seed, x] of [[1, inputs1], [7, inputs7], [1, inputs1]] as const) {
      p.upload(x, 0);
      await triple(p, "seed", `same plan, inputs of seed ${seed}`);
    }
  }
  p.destroy();
}

// ---- fresh: new allocations of the same plan -------------------------------------------------
if (phases.has("fresh")) {
  // Inputs made once per layout (contiguous, padded, paged) and uploaded to each allocation.
  const made = new Map<string, Record<string, Float32Array>>();
  const fresh = async (
    k: DecodeKernelName,
    what: string,
    extra: Partial<DecodeProblem> = {},
    before = 0,
  ) => {
    const pad = before > 0
      ? gpu.device.createBuffer({ size: before, usage: GPUBufferUsage.STORAGE })
      : null;
    const p = await prepareAttention(kernels, problemOf(k, extra));
    const key = `${k}/${extra.cap ?? ""}`;
    if (!made.has(key)) made.set(key, p.plan.timingInputs!(7));
    p.upload(made.get(key)!, 0);
    await triple(p, "fresh", what);
    p.destroy();
    pad?.destroy();
  };
  for (let i = 1; i <= 3; i++) await fresh("decode", `fresh allocation #${i}, seed 7`);
  await fresh("decode", "after a 97 MiB buffer (placement shifted)", {}, 97 * 2 ** 20);
  await fresh("decode", `stride padded: cap ${n + 16} rows`, { cap: n + 16 });
  for (let i = 1; i <= 2; i++) await fresh("paged-decode", `fresh allocation #${i}, seed 7`);
}

(smiProcess as Deno.ChildProcess | null)?.kill();
const floor = copyGBs > 0 ? bytes / copyGBs / 1e6 : null;
const head =
  `phase  kernel        whole ms  split ms  combine ms  GB/s (whole)  whole min/med/max slow  ` +
  `nvidia-smi in the window (SM MHz, mem MHz, W, C, reasons, samples)  what`;
// The raw samples first (the step keeps them in its file, not on the screen), the table last.
for (const line of smiRaw) console.log(`smi ${line}`);
const lines = rows.map((r) =>
  [
    r.phase.padEnd(6),
    r.kernel.padEnd(13),
    ms3(r.wholeMs).padStart(8),
    ms3(r.splitMs).padStart(9),
    ms3(r.combineMs).padStart(11),
    (r.wholeMs ? (bytes / r.wholeMs / 1e6).toFixed(0) : "-").padStart(13),
    ` ${r.spread}`.padEnd(30),
    r.smi.padEnd(50),
    r.what,
  ].join(" ")
);
console.log(`\n${head}\n${lines.join("\n")}`);
console.log(
  `(GB/s: ${(bytes / 1e9).toFixed(3)} GB compulsory over the median; ` +
    `${floor ? `floor at the copy ceiling ${floor.toFixed(3)} ms; ` : ""}` +
    `slow: samples over 1.5x the row's minimum)`,
);
gpu.device.destroy();
