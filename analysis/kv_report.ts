/**
 * The KV-cache memory model of a decode workload as one report (what `attnbench model` prints
 * for the decode kernels): where the KV memory of the batch goes under each scheme, how the
 * paged cache's waste grows with the block size, what block sharing saves with parallel
 * sampling or a shared prompt prefix, and how many sequences fit in a memory budget. Pure: the
 * numbers come from `kv_cache.ts`; this file only gathers and prints them.
 *
 * @module
 */

import {
  kvBytesPerToken,
  kvCacheUsage,
  type KvFit,
  kvFit,
  type KvLayout,
  type KvScheme,
  type KvSequence,
  type KvSharedRequest,
  type KvSharing,
  kvSharing,
  type KvUsage,
  sharegptSnapshot,
} from "./kv_cache.ts";
import { formatBytes } from "./io_model.ts";
import { formatTable } from "./table.ts";

/** What to model. */
export interface KvReportOptions {
  /** One line naming the workload (how its lengths were made). */
  workload: string;
  /** The sequences: current length, and final length where known. */
  seqs: KvSequence[];
  layout: KvLayout;
  /** Length a contiguous scheme reserves (the serving system's maximum). */
  maxLen: number;
  /** KV memory budget, bytes. */
  memoryBytes: number;
  /** Parallel sampling: samples per request (1: none). */
  samples: number;
  /** Tokens at the start of every prompt shared by all requests (0: none). */
  sharedPrefix: number;
  /** Block sizes of the waste-vs-block-size table. */
  blockSizes: readonly number[];
}

/** The report. */
export interface KvReport {
  workload: string;
  layout: KvLayout;
  maxLen: number;
  memoryBytes: number;
  bytesPerToken: number;
  sequences: number;
  /** Where the slots go, per scheme. */
  usage: KvUsage[];
  /** The paged scheme at each block size: share of its slots holding tokens, and the waste. */
  wasteByBlockSize: { blockSize: number; tokenShare: number; wasteBytes: number }[];
  /** Block sharing (null without samples > 1 or a shared prefix). */
  sharing: KvSharing | null;
  /** Sequences that fit in the budget, per scheme (and `paged-shared` with sharing). */
  fit: KvFit[];
}

/** The vLLM paper's measured share of reserved KV memory that holds tokens (its Figure 2). */
export const VLLM_PAPER_TOKEN_SHARE: Readonly<Record<KvScheme, number>> = {
  "contiguous-max": 0.204,
  "contiguous-pow2": 0.268,
  "contiguous-oracle": 0.382,
  paged: 0.963,
};

/**
 * The documented workload that reproduces the paper's waste figures in shape: a ShareGPT-shaped
 * snapshot (`sharegptSnapshot`: the paper's mean prompt and output lengths) of `count`
 * sequences, served as OPT-13B (40 layers, 40 KV heads of d = 128, f16, 800 KiB a token) with a
 * 2048-token maximum and vLLM's 16-token blocks.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { sharegptWorkload } from "./kv_report.ts";
 * const w = sharegptWorkload(2023, 512);
 * assert(w.seqs.length === 512 && w.layout.layers === 40 && w.maxLen === 2048);
 * ```
 */
export function sharegptWorkload(
  seed: number,
  count: number,
): { seqs: KvSequence[]; layout: KvLayout; maxLen: number; workload: string } {
  return {
    seqs: sharegptSnapshot(seed, count, 2048),
    layout: { d: 128, kvHeads: 40, layers: 40, dtype: "f16", blockSize: 16 },
    maxLen: 2048,
    workload: `sharegpt: ${count} sequences shaped like the vLLM paper's ShareGPT trace ` +
      `(seed ${seed}), OPT-13B layout, maximum 2048`,
  };
}

/**
 * Gathers the memory model of a workload.
 *
 * With `samples` > 1 every sequence is one request of that many samples: its prompt is the
 * sequence's `prompt` where known (the ShareGPT snapshot), else its whole length, and every
 * sample has generated the rest of the current length.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { buildKvReport } from "./kv_report.ts";
 * const r = buildKvReport({
 *   workload: "two", seqs: [{ len: 20 }, { len: 40 }], maxLen: 64, memoryBytes: 1e6,
 *   layout: { d: 64, kvHeads: 1, dtype: "f32", blockSize: 16 },
 *   samples: 1, sharedPrefix: 0, blockSizes: [8, 16],
 * });
 * assert(r.usage[3]!.fragmentation === 12 + 8 && r.sharing === null);
 * ```
 */
export function buildKvReport(o: KvReportOptions): KvReport {
  const usage = kvCacheUsage(o.seqs, o.layout, o.maxLen);
  const wasteByBlockSize = o.blockSizes.map((blockSize) => {
    const paged = kvCacheUsage(o.seqs, { ...o.layout, blockSize }, o.maxLen)[3]!;
    return { blockSize, tokenShare: paged.tokenShare, wasteBytes: paged.wasteBytes };
  });
  let sharing: KvSharing | null = null;
  let requests: KvSharedRequest[] | null = null;
  if (o.samples > 1 || o.sharedPrefix > 0) {
    requests = o.seqs.map((s) => {
      const prompt = Math.max(s.prompt ?? s.len, o.sharedPrefix);
      return { prompt, generated: Array(o.samples).fill(Math.max(0, s.len - prompt)) };
    });
    sharing = kvSharing(requests, o.layout, o.sharedPrefix);
  }
  const fit = kvFit(
    o.memoryBytes,
    o.seqs,
    o.layout,
    o.maxLen,
    requests ? { requests, sharedPrefix: o.sharedPrefix } : undefined,
  );
  return {
    workload: o.workload,
    layout: o.layout,
    maxLen: o.maxLen,
    memoryBytes: o.memoryBytes,
    bytesPerToken: kvBytesPerToken(o.layout),
    sequences: o.seqs.length,
    usage,
    wasteByBlockSize,
    sharing,
    fit,
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * The report as text lines.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { buildKvReport, renderKvReport } from "./kv_report.ts";
 * const lines = renderKvReport(buildKvReport({
 *   workload: "one", seqs: [{ len: 20 }], maxLen: 64, memoryBytes: 1e6,
 *   layout: { d: 64, kvHeads: 1, dtype: "f32", blockSize: 16 },
 *   samples: 1, sharedPrefix: 0, blockSizes: [16],
 * }));
 * assert(lines.some((l) => l.startsWith("paged")));
 * ```
 */
export function renderKvReport(r: KvReport): string[] {
  const l = r.layout;
  const lines = [
    "KV-cache memory model (PagedAttention, Kwon et al. 2023)",
    `workload: ${r.workload}`,
    `layout: d=${l.d} kv-heads=${l.kvHeads} layers=${l.layers ?? 1} ${l.dtype}, ` +
    `${formatBytes(r.bytesPerToken)} a token; block size ${l.blockSize}; ` +
    `contiguous reservation ${r.maxLen} tokens; ${r.sequences} sequences`,
    "",
  ];
  lines.push(
    ...formatTable(
      [
        "scheme",
        "reserved",
        "tokens",
        "reserved unused",
        "fragmentation",
        "holding tokens",
        "paper",
      ],
      r.usage.map((u) => [
        u.scheme,
        formatBytes(u.bytes),
        formatBytes(u.tokenBytes),
        formatBytes((u.future + u.overReserved) * r.bytesPerToken),
        formatBytes(u.fragmentation * r.bytesPerToken),
        pct(u.tokenShare),
        pct(VLLM_PAPER_TOKEN_SHARE[u.scheme]),
      ]),
    ),
  );
  lines.push(
    "",
    "paged waste vs block size:",
    ...formatTable(
      ["block size", "holding tokens", "waste"],
      r.wasteByBlockSize.map((w) => [
        String(w.blockSize),
        pct(w.tokenShare),
        formatBytes(w.wasteBytes),
      ]),
    ),
  );
  if (r.sharing) {
    const s = r.sharing;
    lines.push(
      "",
      `block sharing (${s.sequences} sequences): ${s.blocksUnshared} blocks unshared, ` +
        `${s.blocksShared} shared (${s.copies} copy-on-write copies): ` +
        `${formatBytes(s.bytesUnshared - s.bytesShared)} saved (${pct(s.savedShare)})`,
    );
  }
  lines.push(
    "",
    `sequences that fit in ${formatBytes(r.memoryBytes)} of KV memory:`,
    ...formatTable(
      ["scheme", "sequences", "bytes"],
      r.fit.map((f) => [f.scheme, String(f.sequences), formatBytes(f.bytes)]),
    ),
  );
  lines.push(
    "",
    "reserved unused: slots a contiguous scheme reserves past the current length; fragmentation:",
    "the unfilled slots of each sequence's last block. The paper's column is its Figure 2 (OPT-13B",
    "on ShareGPT); external fragmentation of contiguous allocators is not modeled.",
  );
  return lines;
}
