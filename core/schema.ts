/**
 * The results file: the public contract that `report`, `check` and CI consumers read.
 * Versioned by {@linkcode RESULTS_SCHEMA}; a breaking change bumps the version.
 *
 * @module
 */

import type { Dtype, MaskKind, TileVariant } from "./shapes.ts";

/** Schema identifier written into and required of every results file. */
export const RESULTS_SCHEMA = "attnbench/results@1";

/** What the adapter is, as the results file records it. */
export interface DeviceRecord {
  vendor: string;
  architecture: string;
  description: string;
  /** The adapter's `device` string from GPUAdapterInfo (may be empty). */
  device: string;
  isFallbackAdapter: boolean;
  /** The limits that matter for attention (bytes or counts). */
  limits: Record<string, number>;
  features: string[];
  /**
   * Whether the kernels used subgroup operations (the device granted `subgroups` and the probe
   * passed; false with `--no-subgroups`). Absent in results written before subgroups.
   */
  subgroups?: boolean;
  /** Lanes per subgroup when {@linkcode subgroups}; 0 otherwise. */
  subgroupSize?: number;
}

/** Which clock timed a run. */
export type ClockKind = "timestamp-query" | "wall";

/** Device ceilings measured by micro-kernels at the start of a bench run. */
export interface Ceilings {
  /** Streaming copy, bytes read plus written per second, in GB/s (1e9). */
  copyGBs: number | null;
  /** FMA loop, in TFLOP/s (1e12, one FMA = 2 FLOPs). */
  fmaTflops: number | null;
  /** Median time of an empty dispatch, in microseconds. */
  launchOverheadUs: number | null;
  clock: ClockKind;
}

/** Summary statistics of the timed samples of one run, all in milliseconds. */
export interface TimeStats {
  median: number;
  mean: number;
  stdev: number;
  min: number;
  max: number;
  p99: number;
  /** Coefficient of variation, stdev / mean. */
  cv: number;
  /** The raw samples in milliseconds, in the order they were taken. */
  samples: number[];
  /** Indices into `samples` that the modified z-score flags as outliers (kept in the stats). */
  outliers: number[];
}

/**
 * HBM traffic of one run in bytes, three ways plus the compulsory floor, and the parameters of
 * the theoretical count (`analysis/IO_MODEL.md`).
 */
export interface HbmBytes {
  /**
   * The FlashAttention paper's model with its algorithm's constants, for M = `sramBytes` (Bc =
   * ⌈M/4d⌉, Br = min(⌈M/4d⌉, d) with M in elements) and, for block-sparse, the kernel's mask on
   * Algorithm 5's Br × Bc grid (`theoreticalDensity`).
   */
  theoretical: number;
  /** Exact bytes derived from our kernel's tiles and loop structure. */
  modeled: number;
  /**
   * Compulsory traffic: read Q, K, V once, write O once (4Nd·b·B·H); for block-sparse only the
   * rows the mask uses (IO_MODEL.md). Files written before this rule hold 4Nd·b·B·H for
   * block-sparse too.
   */
  lowerBound: number;
  /** Bytes counted by the instrumented kernel (only with `--count-io`). */
  counted: number | null;
  /**
   * M, the on-chip memory in bytes `theoretical` assumed: `bench` takes the adapter's
   * `maxComputeWorkgroupStorageSize` (`model` defaults to 49152). Optional: absent in files
   * written before it was recorded.
   */
  sramBytes?: number;
  /**
   * s of `theoretical`: for block-sparse the share of Algorithm 5's Br × Bc blocks holding an
   * entry of the kernel's mask (the record's `density` is on the kernel's own tile grid); 1 for
   * dense kernels. Optional: absent in older files.
   */
  theoreticalDensity?: number;
}

/** Outcome of one run. */
export type RunStatus = "ok" | "skipped" | "failed";

/** What a run computes: forward, backward, or forward then backward back to back. */
export type RunPass = "fwd" | "bwd" | "fwd+bwd";

/** One kernel × shape. */
export interface RunRecord {
  /** The kernel's registry name (a user kernel's own name). */
  kernel: string;
  /**
   * What the kernel computes (`--pass`): absent or `"fwd"` for a forward run (every file before
   * the backward kernels), `"bwd"`, or `"fwd+bwd"`. Part of a run's identity ({@linkcode runKey}).
   */
  pass?: RunPass;
  dtype: Dtype;
  batch: number;
  heads: number;
  n: number;
  d: number;
  causal: boolean;
  /** Fraction of blocks kept: 1 for dense kernels, the mask's real density for block-sparse. */
  density: number;
  /** The mask generator (block-sparse only). */
  mask: MaskKind | null;
  /**
   * Tile sizes: the compile-time knobs; flash and block-sparse may add `variant` (`"v7"`, or a
   * v8 prefetch layout: a tuned layout, part of a run's identity, {@linkcode runKey}).
   */
  tile: { br: number; bc: number; rm: number; tx: number; variant?: TileVariant };
  /**
   * false: the kernel ran its portable path although the device has subgroups (a tuned knob,
   * part of a run's identity, {@linkcode runKey}). Absent: the device's `subgroups` say.
   */
  subgroups?: false;
  /**
   * f16 flash and block-sparse runs (`--f16-math`): `"f32"`, f16 storage with f32 arithmetic
   * (also what a run without the field did), or `"packed"`, half arithmetic in short chunks
   * summed in f32. `"packed"` is part of a run's identity ({@linkcode runKey}).
   */
  f16Math?: "f32" | "packed";
  /**
   * flash's backward (`flash-bwd`, `flash-fwd+bwd`, `--dq`): how dQ was computed when not in its
   * own pass (absent: `"pass"`): `"atomic"`, atomicAdd from the dK/dV pass, or
   * `"atomic-stagger"`, the same walking the query blocks from a staggered start. Part of a
   * run's identity ({@linkcode runKey}).
   */
  dq?: "atomic" | "atomic-stagger";
  /** Which sweep produced this run. */
  sweep: "n" | "block-size" | "density" | "decode";
  status: RunStatus;
  /** Why it was skipped or failed; null when ok. */
  reason: string | null;
  clock: ClockKind | null;
  /** Pipeline creation (shader compile) time in ms, measured on its own. */
  compileMs: number | null;
  timeMs: TimeStats | null;
  /**
   * FLOPs actually computed: forward 4·B·H·N²·d, halved when causal, × density; backward 2.5×
   * and forward + backward 3.5× that (flash-attention's convention).
   */
  flops: number;
  tflops: number | null;
  /** FLOPs of the dense (non-sparse) problem over the measured time. */
  tflopsDenseEquivalent: number | null;
  hbmBytes: HbmBytes;
  /** Modeled bytes over the median time, in GB/s. */
  achievedGBs: number | null;
  /** Peak bytes of GPU buffers the kernel allocates. */
  footprintBytes: number;
  /** max |O − O_ref| / max |O_ref| against the float64 reference (only with `--verify`). */
  maxRelError: number | null;
  warnings: string[];
  /**
   * The kernel's dispatches timed one at a time (standard only: scores, softmax, pv), with the
   * modeled bytes each moves (uniform reads left out) and the bandwidth that makes.
   */
  passes?: PassRecord[];
  /**
   * Decode kernels only: the workload. `batch` is then the number of sequences, `n` the longest
   * context, `heads` the query heads (one query token each).
   */
  decode?: RunDecode;
}

/** The workload of a decode run (`RunRecord.decode`). */
export interface RunDecode {
  /** Context length of each sequence (tokens in its KV cache). */
  contexts: number[];
  /** KV heads (fewer than `heads`: grouped-query attention). */
  kvHeads: number;
  /** Tokens per KV block (paged kernels); null for a contiguous cache. */
  blockSize: number | null;
  /** How the lengths were made: `fixed`, `uniform:LO..HI`, `trace:FILE` or `list`. */
  lengths: string;
}

/** One dispatch of a multi-pass kernel, timed alone. */
export interface PassRecord {
  name: string;
  medianMs: number;
  bytes: number;
  achievedGBs: number;
}

/** A peer's timing (PyTorch SDPA), recorded in the same device call for ratios. */
export interface PeerRecord {
  backend: string;
  n: number;
  d: number;
  batchHeads: number;
  dtype: string;
  causal: boolean;
  ms: number | null;
  tflops: number | null;
  gpu: string;
  error?: string;
  /** `peer_sdpa.py --decode`: one query token per row against a KV cache of `n` tokens. */
  decode?: boolean;
  /** Decode peers: GB/s of reading K and V once. */
  gbs?: number;
  /** What the peer timed (`peer_sdpa.py --pass`); absent: the forward. */
  pass?: RunPass;
}

/** The whole results file. */
export interface ResultsFile {
  schema: typeof RESULTS_SCHEMA;
  createdAt: string;
  tool: { name: "attnbench"; version: string };
  denoVersion: string;
  gitCommit: string | null;
  device: DeviceRecord;
  ceilings: Ceilings | null;
  /** The command line and settings that produced the runs. */
  config: Record<string, unknown>;
  runs: RunRecord[];
  peers?: PeerRecord[];
}

/** The kernels that take `--dq` (kernel option `dq`): flash's backward, alone or after its forward. */
export const DQ_KERNELS: readonly string[] = ["flash-bwd", "flash-fwd+bwd"];

/**
 * The configuration key `check` matches runs by. A backward or forward + backward run's key ends
 * in its pass; a forward run's key has none (so keys of files before `pass` existed still match).
 * The tuned knobs add a part only when they leave the default: `packed`, `v7`, `portable`; so
 * does a non-default dQ (`dq-atomic`, `dq-atomic-stagger`).
 */
export function runKey(r: RunRecord): string {
  return [
    r.kernel,
    r.dtype,
    `b${r.batch}`,
    `h${r.heads}`,
    `n${r.n}`,
    `d${r.d}`,
    r.causal ? "causal" : "full",
    `s${r.density}`,
    `${r.mask ?? "dense"}`,
    `t${r.tile.br}x${r.tile.bc}x${r.tile.rm}x${r.tile.tx}`,
    ...(r.decode ? decodeKeyParts(r.decode) : []),
    ...(r.pass && r.pass !== "fwd" ? [r.pass] : []),
    ...(r.f16Math === "packed" ? ["packed"] : []),
    ...(r.tile.variant ? [r.tile.variant] : []),
    ...(r.subgroups === false ? ["portable"] : []),
    ...(r.dq ? [`dq-${r.dq}`] : []),
  ].join("/");
}

/** A decode run's workload in its key: KV heads, block size and a digest of the lengths. */
function decodeKeyParts(d: RunDecode): string[] {
  let h = 0x811c9dc5;
  for (const c of d.contexts.join(",")) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return [
    `kv${d.kvHeads}`,
    d.blockSize === null ? "contiguous" : `block${d.blockSize}`,
    `ctx${d.contexts.length}-${(h >>> 0).toString(16)}`,
  ];
}
