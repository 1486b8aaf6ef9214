/**
 * Decode workloads: a batch of sequences, each with its context length, and the KV cache laid out
 * two ways: contiguous (one region per sequence) and paged (a pool of blocks found through a
 * block table per sequence, allocated from a free list).
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import { mulberry32 } from "../../core/rng.ts";
import type { Dtype } from "../../core/shapes.ts";

/** One decode step of a batch: every sequence has one new query token per query head. */
export interface DecodeShape {
  /** Context length of each sequence (tokens in its KV cache), ≥ 1 each. */
  lens: readonly number[];
  /** Query heads. */
  heads: number;
  /** KV heads; `heads` must be a multiple (grouped-query attention when fewer). */
  kvHeads: number;
  /** Head dimension. */
  d: number;
  dtype: Dtype;
}

/** Smallest and largest block size of the paged cache, and the default (vLLM's). */
export const BLOCK_SIZES = { min: 8, max: 256, default: 16 } as const;

/** How to get the context lengths of a batch. */
export type LengthSpec =
  | { kind: "list"; lens: number[] }
  | { kind: "fixed"; len: number; count: number }
  | { kind: "uniform"; min: number; max: number; count: number; seed: number }
  | { kind: "trace"; values: number[]; count: number; seed: number };

/**
 * Context lengths from a spec: given as a list, all the same, uniform in [min, max], or drawn
 * with replacement from a trace of observed lengths. Seeded: the same spec gives the same lengths.
 * Throws {@linkcode UsageError} for a length that is not a positive integer.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { contextLengths } from "./workload.ts";
 * assert(contextLengths({ kind: "fixed", len: 7, count: 3 }).join() === "7,7,7");
 * const a = contextLengths({ kind: "uniform", min: 1, max: 100, count: 5, seed: 1 });
 * assert(a.every((n) => n >= 1 && n <= 100));
 * ```
 */
export function contextLengths(spec: LengthSpec): number[] {
  const positive = (x: number, what: string) => {
    if (!Number.isInteger(x) || x < 1) {
      throw new UsageError(`${what} must be a positive integer, got ${x}`);
    }
  };
  let out: number[];
  switch (spec.kind) {
    case "list":
      out = [...spec.lens];
      break;
    case "fixed":
      positive(spec.count, "sequence count");
      out = Array(spec.count).fill(spec.len);
      break;
    case "uniform": {
      positive(spec.count, "sequence count");
      positive(spec.min, "minimum context length");
      if (!Number.isInteger(spec.max) || spec.max < spec.min) {
        throw new UsageError(`maximum context length ${spec.max} is below the minimum ${spec.min}`);
      }
      const rand = mulberry32(spec.seed);
      out = Array.from(
        { length: spec.count },
        () => spec.min + Math.floor(rand() * (spec.max - spec.min + 1)),
      );
      break;
    }
    case "trace": {
      positive(spec.count, "sequence count");
      if (spec.values.length === 0) throw new UsageError("the length trace holds no lengths");
      const rand = mulberry32(spec.seed);
      out = Array.from(
        { length: spec.count },
        () => spec.values[Math.floor(rand() * spec.values.length)]!,
      );
      break;
    }
  }
  if (out.length === 0) throw new UsageError("a decode batch needs at least one sequence");
  out.forEach((n, i) => positive(n, `context length of sequence ${i}`));
  return out;
}

/**
 * The integers of a length-trace file: one or more a line, separated by spaces or commas; `#`
 * starts a comment. Throws {@linkcode UsageError} naming the line of anything else.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseLengthTrace } from "./workload.ts";
 * assert(parseLengthTrace("# lengths\n12, 40\n7\n").join() === "12,40,7");
 * ```
 */
export function parseLengthTrace(text: string, name = "length trace"): number[] {
  const out: number[] = [];
  text.split("\n").forEach((line, i) => {
    for (const word of line.replace(/#.*/, "").split(/[\s,]+/)) {
      if (word === "") continue;
      const n = Number(word);
      if (!/^\d+$/.test(word) || n < 1) {
        throw new UsageError(
          `${name} line ${i + 1}: "${word}" is not a positive integer context length`,
        );
      }
      out.push(n);
    }
  });
  if (out.length === 0) throw new UsageError(`${name} holds no lengths`);
  return out;
}

/**
 * Reads a length-trace file (see {@linkcode parseLengthTrace}).
 *
 * @example
 * ```ts ignore
 * import { readLengthTrace } from "./workload.ts";
 * const lens = await readLengthTrace("testdata/decode/lengths.txt");
 * ```
 */
export async function readLengthTrace(path: string): Promise<number[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(`cannot read length trace ${path}: ${(e as Error).message}`);
  }
  return parseLengthTrace(text, path);
}

/**
 * A pool of KV blocks handed out from a free list, as a serving engine does: freed blocks go back
 * on the list and are handed out again last-in first-out, so after some serving a sequence's
 * blocks lie scattered over the pool.
 */
export class BlockAllocator {
  readonly blocks: number;
  /** The free list as a stack: `#free[0 .. #top)`, the next block handed out on top. */
  #free: Uint32Array;
  #top: number;

  /** A pool of `blocks` blocks, all free, handed out in order 0, 1, 2, … at first. */
  constructor(blocks: number) {
    if (!Number.isInteger(blocks) || blocks < 1) {
      throw new UsageError(`the block pool needs at least one block, got ${blocks}`);
    }
    this.blocks = blocks;
    this.#free = new Uint32Array(blocks);
    for (let i = 0; i < blocks; i++) this.#free[i] = blocks - 1 - i;
    this.#top = blocks;
  }

  /** Free blocks left. */
  get free(): number {
    return this.#top;
  }

  /** One block; throws {@linkcode UsageError} when the pool is exhausted. */
  allocate(): number {
    if (this.#top === 0) throw new UsageError(`the pool of ${this.blocks} blocks is exhausted`);
    return this.#free[--this.#top]!;
  }

  /** Returns blocks to the free list. */
  release(ids: Iterable<number>): void {
    for (const b of ids) {
      if (this.#top === this.blocks) throw new Error("more blocks released than the pool holds");
      this.#free[this.#top++] = b;
    }
  }

  /**
   * Serves a while: `rounds` of sequences that grow block by block in turns and finish in a
   * random order, which leaves the free list shuffled the way a busy server leaves it. Each
   * round takes half the free blocks, at most {@linkcode CHURN_BLOCKS}: a huge pool is shuffled
   * where the next blocks come from, in linear time.
   */
  churn(seed: number, rounds = 4): void {
    const rand = mulberry32(seed);
    for (let r = 0; r < rounds; r++) {
      const live: number[][] = [];
      const target = Math.min(CHURN_BLOCKS, Math.floor(this.free / 2));
      for (let taken = 0; taken < target; taken++) {
        if (live.length === 0 || rand() < 0.3) live.push([]);
        live[Math.floor(rand() * live.length)]!.push(this.allocate());
      }
      // Finish the sequences in a random order: swap a random one to the end and take it.
      while (live.length > 0) {
        const i = Math.floor(rand() * live.length);
        [live[i], live[live.length - 1]] = [live[live.length - 1]!, live[i]!];
        this.release(live.pop()!.reverse());
      }
    }
  }
}

/** Most blocks one round of {@linkcode BlockAllocator.churn} takes. */
export const CHURN_BLOCKS = 1 << 16;

/** The block tables of a batch: `table[s · stride + i]` is the pool block of sequence s's i-th. */
export interface BlockTables {
  /** Tokens per block. */
  blockSize: number;
  /** Blocks in the pool. */
  poolBlocks: number;
  /** Entries per sequence (the longest sequence's block count, or more). */
  stride: number;
  /** `[sequences · stride]`; entries past a sequence's blocks are 0xffffffff. */
  table: Uint32Array;
}

/** Entry value past the end of a sequence's blocks. */
export const NO_BLOCK = 0xffffffff;

/**
 * Block tables built by a real allocator: a pool of `poolBlocks` (default: the blocks the batch
 * needs plus a quarter) is first churned, then the batch's sequences grow one token a step in
 * turns, as decoding does, each taking a new block from the free list when its last one fills.
 * A sequence's blocks end up scattered over the pool and interleaved with the others'.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { buildBlockTables } from "./workload.ts";
 * const t = buildBlockTables([20, 5], 16, { seed: 1 });
 * assert(t.stride === 2 && t.table[2] !== 0xffffffff && t.table[3] === 0xffffffff);
 * ```
 */
export function buildBlockTables(
  lens: readonly number[],
  blockSize: number,
  opts: { seed: number; poolBlocks?: number },
): BlockTables {
  checkBlockSize(blockSize);
  const need = lens.map((n) => Math.ceil(n / blockSize));
  const total = need.reduce((a, b) => a + b, 0);
  const poolBlocks = opts.poolBlocks ?? total + Math.ceil(total / 4) + 1;
  if (poolBlocks < total) {
    throw new UsageError(`the batch needs ${total} blocks, the pool holds ${poolBlocks}`);
  }
  const stride = Math.max(1, ...need);
  const table = new Uint32Array(lens.length * stride).fill(NO_BLOCK);
  const alloc = new BlockAllocator(poolBlocks);
  alloc.churn(opts.seed);
  const held = new Array<number>(lens.length).fill(0);
  const longest = Math.max(...lens);
  // Only a position at a block boundary takes a block: step from one to the next.
  for (let pos = 0; pos < longest; pos += blockSize) {
    lens.forEach((n, s) => {
      if (pos < n) table[s * stride + held[s]!++] = alloc.allocate();
    });
  }
  return { blockSize, poolBlocks, stride, table };
}

/** A block table that cannot serve its batch: the kernel is never dispatched with it. */
export class BlockTableError extends UsageError {
  constructor(message: string) {
    super(`block table: ${message}`);
    this.name = "BlockTableError";
  }
}

/**
 * Throws {@linkcode BlockTableError} unless every sequence's table holds a block for each of its
 * tokens and every block it uses lies in the pool.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { buildBlockTables, validateBlockTables } from "./workload.ts";
 * const t = buildBlockTables([20, 5], 16, { seed: 1 });
 * validateBlockTables([20, 5], t);
 * t.table[1] = t.poolBlocks; // out of the pool
 * let refused = false;
 * try { validateBlockTables([20, 5], t); } catch { refused = true; }
 * assert(refused);
 * ```
 */
export function validateBlockTables(lens: readonly number[], t: BlockTables): void {
  checkBlockSize(t.blockSize, BlockTableError);
  if (!Number.isInteger(t.stride) || t.stride < 1) {
    throw new BlockTableError(`stride must be a positive integer, got ${t.stride}`);
  }
  if (t.table.length !== lens.length * t.stride) {
    throw new BlockTableError(
      `${lens.length} sequences of ${t.stride} entries need ${lens.length * t.stride} entries, ` +
        `the table holds ${t.table.length}`,
    );
  }
  lens.forEach((n, s) => {
    const need = Math.ceil(n / t.blockSize);
    if (need > t.stride) {
      throw new BlockTableError(
        `sequence ${s}: context length ${n} needs ${need} blocks of ${t.blockSize} tokens, ` +
          `its table holds ${t.stride}`,
      );
    }
    for (let i = 0; i < need; i++) {
      const b = t.table[s * t.stride + i]!;
      if (b >= t.poolBlocks) {
        throw new BlockTableError(
          `sequence ${s}: entry ${i} is ${b === NO_BLOCK ? "empty" : `block ${b}`}, outside ` +
            `the pool of ${t.poolBlocks} blocks (context length ${n} needs ${need} blocks)`,
        );
      }
    }
  });
}

function checkBlockSize(b: number, E: new (m: string) => Error = UsageError): void {
  if (!Number.isInteger(b) || b < BLOCK_SIZES.min || b > BLOCK_SIZES.max) {
    throw new E(
      `block size must be an integer from ${BLOCK_SIZES.min} to ${BLOCK_SIZES.max} tokens, got ${b}`,
    );
  }
}

/**
 * Checks a decode shape; throws {@linkcode UsageError} with what to fix.
 *
 * @example
 * ```ts
 * import { checkDecodeShape } from "./workload.ts";
 * checkDecodeShape({ lens: [3, 9], heads: 4, kvHeads: 2, d: 64, dtype: "f32" });
 * ```
 */
export function checkDecodeShape(shape: DecodeShape): void {
  if (shape.lens.length === 0) throw new UsageError("a decode batch needs at least one sequence");
  shape.lens.forEach((n, i) => {
    if (!Number.isInteger(n) || n < 1) {
      throw new UsageError(`context length of sequence ${i} must be a positive integer, got ${n}`);
    }
  });
  for (const [name, x] of [["heads", shape.heads], ["KV heads", shape.kvHeads]] as const) {
    if (!Number.isInteger(x) || x < 1) {
      throw new UsageError(`${name} must be a positive integer, got ${x}`);
    }
  }
  if (shape.heads % shape.kvHeads !== 0) {
    throw new UsageError(
      `query heads (${shape.heads}) must be a multiple of KV heads (${shape.kvHeads})`,
    );
  }
  if (![32, 64, 128].includes(shape.d)) {
    throw new UsageError(`decode head dim must be 32, 64 or 128, got ${shape.d}`);
  }
}

/** Sequences × query heads × d: the elements of Q and of O. */
export function queryElements(shape: DecodeShape): number {
  return shape.lens.length * shape.heads * shape.d;
}

/**
 * The paged K or V pool `[poolBlocks, kvHeads, blockSize, d]` holding the same values as the
 * contiguous cache `[sequences, kvHeads, cap, d]`: token p of sequence s, KV head h, lies at row
 * `(table[s][p / blockSize] · kvHeads + h) · blockSize + p mod blockSize`. Slots no live token
 * fills (free blocks, the tail of a last block) hold `fill` (NaN by default: a kernel that reads
 * one cannot pass its check).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { buildBlockTables, pageCache } from "./workload.ts";
 * const t = buildBlockTables([3], 8, { seed: 1 });
 * const pool = pageCache(new Float32Array([1, 2, 3]), [3], 1, 1, 3, t);
 * assert(pool[t.table[0]! * 8 + 2] === 3 && Number.isNaN(pool[t.table[0]! * 8 + 3]!));
 * ```
 */
export function pageCache(
  contiguous: Float32Array,
  lens: readonly number[],
  kvHeads: number,
  d: number,
  cap: number,
  t: BlockTables,
  fill = NaN,
): Float32Array {
  const b = t.blockSize;
  const pool = new Float32Array(t.poolBlocks * kvHeads * b * d).fill(fill);
  lens.forEach((n, s) => {
    for (let h = 0; h < kvHeads; h++) {
      for (let p = 0; p < n; p++) {
        const block = t.table[s * t.stride + Math.floor(p / b)]!;
        const dst = ((block * kvHeads + h) * b + (p % b)) * d;
        const src = ((s * kvHeads + h) * cap + p) * d;
        pool.set(contiguous.subarray(src, src + d), dst);
      }
    }
  });
  return pool;
}
