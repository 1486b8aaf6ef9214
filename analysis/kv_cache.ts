/**
 * The KV-cache memory model of PagedAttention (Kwon et al., 2023, "Efficient Memory Management for
 * Large Language Model Serving with PagedAttention", the vLLM paper): pure functions, no GPU.
 *
 * A serving system keeps, for every sequence it decodes, the keys and values of every token so
 * far: `2 · kvHeads · d · dtypeBytes · layers` bytes a token. How it lays that memory out decides
 * how much of it holds tokens:
 *
 * - **contiguous-max**: each sequence reserves one region for the maximum length up front (as
 *   FasterTransformer and Orca do). Slots past the current length are reserved but unused.
 * - **contiguous-pow2**: the region is the final length rounded up to a power of two (the paper's
 *   "Orca (Pow2)", which knows the output length to within 2×).
 * - **contiguous-oracle**: the region is exactly the final length ("Orca (Oracle)").
 * - **paged**: the cache is a pool of blocks of `blockSize` tokens; a sequence holds
 *   ⌈len / blockSize⌉ blocks through its block table, allocated as it grows. The only waste is
 *   the unfilled part of each sequence's last block (internal fragmentation).
 *
 * With parallel sampling (n samples of one prompt) or a prompt prefix shared by many requests,
 * paged blocks can be shared: the prompt's full blocks are stored once, with reference counts.
 * A partly filled last prompt block is shared until a sample writes into it; then it is copied
 * (copy-on-write): every sample that has written owns a copy, except that the last writer keeps
 * the original when no sample still reads it unchanged. A prefix shared across requests shares
 * full blocks only (as prefix caching does).
 *
 * The paper's external fragmentation (holes left by the contiguous allocator) is not modeled:
 * the contiguous figures here are an upper bound on the memory those schemes put to use.
 *
 * @module
 */

import { mulberry32 } from "../core/rng.ts";
import { type Dtype, dtypeBytes } from "../core/shapes.ts";

/** How the KV cache of one model is shaped. */
export interface KvLayout {
  /** Head dimension. */
  d: number;
  /** KV heads (fewer than query heads with grouped-query attention). */
  kvHeads: number;
  /** Transformer layers, each with its own K and V cache; 1 when absent. */
  layers?: number;
  dtype: Dtype;
  /** Tokens per block of the paged cache. */
  blockSize: number;
}

/** One sequence at the moment of the snapshot. */
export interface KvSequence {
  /** Tokens in the cache now (prompt plus tokens generated so far), ≥ 1. */
  len: number;
  /** Length the sequence will have when it finishes (≥ len); `len` when absent. */
  final?: number;
  /** Of `len`, the prompt's tokens (the rest were generated), where known. */
  prompt?: number;
}

/** The memory schemes the model compares. */
export type KvScheme = "contiguous-max" | "contiguous-pow2" | "contiguous-oracle" | "paged";

/** Every scheme, contiguous ones first. */
export const KV_SCHEMES: readonly KvScheme[] = [
  "contiguous-max",
  "contiguous-pow2",
  "contiguous-oracle",
  "paged",
];

/** Where the slots of one scheme go, in tokens and bytes, summed over the sequences. */
export interface KvUsage {
  scheme: KvScheme;
  /** Token slots the scheme holds (reserved regions, or allocated blocks × block size). */
  slots: number;
  /** Slots holding a token now. */
  tokens: number;
  /** Slots reserved for tokens the sequence will still generate (final − len; contiguous only). */
  future: number;
  /** Slots past the final length that are never used (contiguous reservation beyond `final`). */
  overReserved: number;
  /** Unfilled slots of the last, partly filled block of each sequence (paged only). */
  fragmentation: number;
  /** Slots not holding a token now: future + overReserved + fragmentation = slots − tokens. */
  wasteSlots: number;
  /** `slots · bytesPerToken`. */
  bytes: number;
  /** `tokens · bytesPerToken`. */
  tokenBytes: number;
  /** `slots − tokens`, in bytes. */
  wasteBytes: number;
  /** tokens / slots: the share of the memory that holds tokens. */
  tokenShare: number;
}

/**
 * Bytes of K and V one token takes in the cache: `2 · kvHeads · d · dtypeBytes · layers`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { kvBytesPerToken } from "./kv_cache.ts";
 * // OPT-13B: 40 layers, 40 heads of 128, f16: 800 KiB a token (the paper's figure).
 * assert(kvBytesPerToken({ d: 128, kvHeads: 40, layers: 40, dtype: "f16", blockSize: 16 }) === 819200);
 * ```
 */
export function kvBytesPerToken(layout: KvLayout): number {
  checkLayout(layout);
  return 2 * layout.kvHeads * layout.d * dtypeBytes(layout.dtype) * (layout.layers ?? 1);
}

/**
 * The smallest power of two ≥ n (n ≥ 1).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { nextPow2 } from "./kv_cache.ts";
 * assert(nextPow2(1) === 1 && nextPow2(5) === 8 && nextPow2(8) === 8);
 * ```
 */
export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Token slots one sequence takes under `scheme` (its reservation, or its blocks × block size). */
export function slotsOf(
  scheme: KvScheme,
  seq: KvSequence,
  maxLen: number,
  blockSize: number,
): number {
  const final = seq.final ?? seq.len;
  switch (scheme) {
    case "contiguous-max":
      return maxLen;
    case "contiguous-pow2":
      return Math.min(maxLen, nextPow2(final));
    case "contiguous-oracle":
      return final;
    case "paged":
      return Math.ceil(seq.len / blockSize) * blockSize;
  }
}

/**
 * Where the KV memory of a batch of sequences goes under each scheme.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { kvCacheUsage } from "./kv_cache.ts";
 * const layout = { d: 64, kvHeads: 1, dtype: "f32", blockSize: 16 } as const;
 * const [max, , , paged] = kvCacheUsage([{ len: 20 }], layout, 64);
 * assert(max!.wasteSlots === 44 && paged!.fragmentation === 12);
 * ```
 */
export function kvCacheUsage(seqs: KvSequence[], layout: KvLayout, maxLen: number): KvUsage[] {
  const perToken = kvBytesPerToken(layout);
  checkSequences(seqs, maxLen);
  return KV_SCHEMES.map((scheme) => {
    let slots = 0, tokens = 0, future = 0, overReserved = 0, fragmentation = 0;
    for (const s of seqs) {
      const final = s.final ?? s.len;
      const held = slotsOf(scheme, s, maxLen, layout.blockSize);
      slots += held;
      tokens += s.len;
      if (scheme === "paged") fragmentation += held - s.len;
      else {
        future += final - s.len;
        overReserved += held - final;
      }
    }
    const waste = slots - tokens;
    return {
      scheme,
      slots,
      tokens,
      future,
      overReserved,
      fragmentation,
      wasteSlots: waste,
      bytes: slots * perToken,
      tokenBytes: tokens * perToken,
      wasteBytes: waste * perToken,
      tokenShare: slots === 0 ? 1 : tokens / slots,
    };
  });
}

/**
 * A request that shares its prompt: parallel sampling with `generated.length` samples, each of
 * which has generated `generated[i]` tokens after the prompt.
 */
export interface KvSharedRequest {
  /** Prompt tokens, ≥ 1. */
  prompt: number;
  /** Tokens each sample has generated so far (one entry per sample; ≥ 0 each). */
  generated: number[];
}

/** Blocks a set of requests needs with and without block sharing. */
export interface KvSharing {
  /** Sequences (samples) in all the requests. */
  sequences: number;
  /** Blocks when every sample holds its own copy of the prompt. */
  blocksUnshared: number;
  /** Blocks with the prompt's full blocks (and a shared prefix) stored once, copy-on-write. */
  blocksShared: number;
  /** Of which copies of a partly filled last prompt block made by copy-on-write. */
  copies: number;
  /** blocksUnshared − blocksShared. */
  blocksSaved: number;
  /** blocksSaved / blocksUnshared. */
  savedShare: number;
  /** Bytes of the blocks, unshared and shared. */
  bytesUnshared: number;
  bytesShared: number;
}

/**
 * Blocks that requests with parallel samples take in a paged cache, with and without sharing;
 * `sharedPrefix` tokens at the start of every prompt are common to all requests (a system prompt)
 * and their full blocks are stored once across requests.
 *
 * Per request with prompt P and samples that generated g₁…gₙ, block size B:
 * unshared Σᵢ ⌈(P + gᵢ) / B⌉; shared: the ⌊P / B⌋ full prompt blocks once, the partly filled
 * prompt block (when P mod B ≠ 0) once per sample that wrote into it plus one more if some
 * sample has not (copy-on-write), and each sample's own blocks past the prompt.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { kvSharing } from "./kv_cache.ts";
 * const layout = { d: 64, kvHeads: 1, dtype: "f32", blockSize: 16 } as const;
 * // A 40-token prompt (2 full blocks + 8 tokens), 4 samples of 5 tokens each:
 * // unshared 4 · ⌈45/16⌉ = 12 blocks; shared 2 + 4 (each sample's copy of block 2) = 6.
 * const s = kvSharing([{ prompt: 40, generated: [5, 5, 5, 5] }], layout);
 * assert(s.blocksUnshared === 12 && s.blocksShared === 6 && s.copies === 3);
 * ```
 */
export function kvSharing(
  requests: KvSharedRequest[],
  layout: KvLayout,
  sharedPrefix = 0,
): KvSharing {
  const perBlock = kvBytesPerToken(layout) * layout.blockSize;
  const b = layout.blockSize;
  if (!Number.isInteger(sharedPrefix) || sharedPrefix < 0) {
    throw new RangeError(`shared prefix must be a non-negative integer, got ${sharedPrefix}`);
  }
  const prefixBlocks = Math.floor(sharedPrefix / b);
  let unshared = 0, shared = requests.length > 0 ? prefixBlocks : 0, copies = 0, sequences = 0;
  for (const [i, r] of requests.entries()) {
    if (!Number.isInteger(r.prompt) || r.prompt < 1) {
      throw new RangeError(`request ${i}: prompt must be a positive integer, got ${r.prompt}`);
    }
    if (r.prompt < sharedPrefix) {
      throw new RangeError(
        `request ${i}: prompt ${r.prompt} is shorter than the shared prefix ${sharedPrefix}`,
      );
    }
    if (r.generated.length === 0) throw new RangeError(`request ${i}: no samples`);
    if (r.generated.some((g) => !Number.isInteger(g) || g < 0)) {
      throw new RangeError(`request ${i}: generated lengths must be non-negative integers`);
    }
    sequences += r.generated.length;
    const full = Math.floor(r.prompt / b);
    const partial = r.prompt % b !== 0;
    shared += full - prefixBlocks;
    let writers = 0;
    for (const g of r.generated) {
      unshared += Math.ceil((r.prompt + g) / b);
      if (partial) {
        // Tokens past the partial prompt block, in this sample's own blocks.
        const room = b - r.prompt % b;
        if (g > 0) writers++;
        shared += Math.ceil(Math.max(0, g - room) / b);
      } else {
        shared += Math.ceil(g / b);
      }
    }
    if (partial) {
      const readers = r.generated.length - writers;
      const physical = writers + (readers > 0 ? 1 : 0);
      shared += physical;
      copies += physical - 1;
    }
  }
  const saved = unshared - shared;
  return {
    sequences,
    blocksUnshared: unshared,
    blocksShared: shared,
    copies,
    blocksSaved: saved,
    savedShare: unshared === 0 ? 0 : saved / unshared,
    bytesUnshared: unshared * perBlock,
    bytesShared: shared * perBlock,
  };
}

/** How many sequences of a workload fit in a memory budget at once, per scheme. */
export interface KvFit {
  scheme: KvScheme | "paged-shared";
  /** Sequences admitted. */
  sequences: number;
  /** Bytes they take. */
  bytes: number;
}

/**
 * How many sequences fit at once in `budgetBytes` of KV memory. Sequences are admitted in the
 * order given, cycling through `seqs` as a stream of requests, until the next one does not fit;
 * each scheme takes what {@linkcode slotsOf} says. With `requests`, also `paged-shared`: whole
 * requests (all their samples) admitted in order, cycling, with blocks shared as
 * {@linkcode kvSharing} counts them (the shared prefix is paid once).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { kvFit } from "./kv_cache.ts";
 * const layout = { d: 64, kvHeads: 1, dtype: "f32", blockSize: 16 } as const; // 512 B a token
 * const fit = kvFit(512 * 256, [{ len: 20 }], layout, 64);
 * // contiguous-max: 256 / 64 = 4 sequences; paged: 256 / 32 = 8.
 * assert(fit[0]!.sequences === 4 && fit[3]!.sequences === 8);
 * ```
 */
export function kvFit(
  budgetBytes: number,
  seqs: KvSequence[],
  layout: KvLayout,
  maxLen: number,
  sharing?: { requests: KvSharedRequest[]; sharedPrefix?: number },
): KvFit[] {
  const perToken = kvBytesPerToken(layout);
  checkSequences(seqs, maxLen);
  if (seqs.length === 0) throw new RangeError("no sequences");
  if (!(budgetBytes >= 0)) throw new RangeError(`budget must be ≥ 0 bytes, got ${budgetBytes}`);
  const budgetSlots = Math.floor(budgetBytes / perToken);
  const out: KvFit[] = KV_SCHEMES.map((scheme) => {
    const need = seqs.map((s) => slotsOf(scheme, s, maxLen, layout.blockSize));
    const { count, used } = admit(need, budgetSlots);
    return { scheme, sequences: count, bytes: used * perToken };
  });
  if (sharing) {
    const { requests } = sharing;
    if (requests.length === 0) throw new RangeError("no requests");
    const prefix = sharing.sharedPrefix ?? 0;
    const perBlock = perToken * layout.blockSize;
    const prefixBlocks = Math.floor(prefix / layout.blockSize);
    // Each request's blocks beyond the prefix it shares with the others.
    const need = requests.map((r) => kvSharing([r], layout, prefix).blocksShared - prefixBlocks);
    const budgetBlocks = Math.floor(budgetBytes / perBlock) - prefixBlocks;
    const { count, used } = budgetBlocks < 0 ? { count: 0, used: 0 } : admit(need, budgetBlocks);
    let sequences = 0;
    for (let i = 0; i < count; i++) sequences += requests[i % requests.length]!.generated.length;
    out.push({
      scheme: "paged-shared",
      sequences,
      bytes: count === 0 ? 0 : (used + prefixBlocks) * perBlock,
    });
  }
  return out;
}

/** Admits items of size `need[i % need.length]` in order until the next exceeds `budget`. */
function admit(need: number[], budget: number): { count: number; used: number } {
  const cycle = need.reduce((a, b) => a + b, 0);
  if (cycle <= 0) throw new RangeError("every sequence takes no memory");
  // Whole cycles at once, then one item at a time (at most one cycle more).
  const cycles = Math.floor(budget / cycle);
  let count = cycles * need.length;
  let used = cycles * cycle;
  for (let i = 0; i < need.length; i++) {
    if (used + need[i]! > budget) break;
    used += need[i]!;
    count++;
  }
  return { count, used };
}

function checkLayout(layout: KvLayout): void {
  const ints: [string, number][] = [
    ["d", layout.d],
    ["kvHeads", layout.kvHeads],
    ["layers", layout.layers ?? 1],
    ["blockSize", layout.blockSize],
  ];
  for (const [name, x] of ints) {
    if (!Number.isInteger(x) || x < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${x}`);
    }
  }
}

function checkSequences(seqs: KvSequence[], maxLen: number): void {
  if (!Number.isInteger(maxLen) || maxLen < 1) {
    throw new RangeError(`maximum length must be a positive integer, got ${maxLen}`);
  }
  for (const [i, s] of seqs.entries()) {
    const final = s.final ?? s.len;
    if (!Number.isInteger(s.len) || s.len < 1) {
      throw new RangeError(`sequence ${i}: length must be a positive integer, got ${s.len}`);
    }
    if (!Number.isInteger(final) || final < s.len || final > maxLen) {
      throw new RangeError(
        `sequence ${i}: final length ${final} must be an integer in [${s.len}, ${maxLen}]`,
      );
    }
  }
}

/** Mean prompt and output lengths of the ShareGPT trace in the vLLM paper (its Figure 11a). */
export const SHAREGPT_MEANS = { prompt: 161, output: 338 } as const;

/**
 * A seeded snapshot of a running batch, shaped like the vLLM paper's ShareGPT workload: each
 * sequence has a prompt uniform in [1, 2·161 − 1] tokens and an output uniform in
 * [1, 2·338 − 1] (the means of the paper's trace), and is caught a uniform fraction of the way
 * through its output; `final` is prompt + output, capped at `maxLen`. The paper measured its
 * figures while serving OPT-13B with a 2048-token maximum; this is a stand-in with the same
 * means, not the trace.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { sharegptSnapshot } from "./kv_cache.ts";
 * const seqs = sharegptSnapshot(1, 100, 2048);
 * assert(seqs.length === 100 && seqs.every((s) => s.len <= s.final!));
 * ```
 */
export function sharegptSnapshot(seed: number, count: number, maxLen: number): KvSequence[] {
  const rand = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  return Array.from({ length: count }, () => {
    const prompt = int(1, 2 * SHAREGPT_MEANS.prompt - 1);
    const output = int(1, 2 * SHAREGPT_MEANS.output - 1);
    const final = Math.min(maxLen, prompt + output);
    const len = Math.min(final, prompt + int(0, output));
    return { len, final, prompt: Math.min(prompt, len) };
  });
}
