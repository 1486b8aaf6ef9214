/**
 * The decode workload flags (`--context`, `--lengths`, `--kv-heads`, `--block-size`) and the
 * problems they describe for the decode kernels (`decode`, `paged-decode`). A decode problem is
 * not the forward attention shape: a batch of sequences, each with its own context length, one
 * query token per (sequence, query head), `--heads` query heads over `--kv-heads` KV heads.
 *
 * - `--lengths fixed` (default): every sequence of the batch is `n` tokens long, one problem per
 *   value of `--n` (the context lengths); `--batch` sequences (bench: B·N held constant when
 *   `--batch` is not given).
 * - `--lengths uniform:LO..HI`: `--batch` lengths drawn uniformly in [LO, HI] with `--seed`.
 * - `--lengths trace:FILE`: `--batch` lengths drawn from a file of integers with `--seed`.
 * - `--context LIST`: the lengths themselves, one sequence each.
 *
 * Every bad value is a {@linkcode UsageError}: one line, exit 2.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { AttentionShape } from "../core/shapes.ts";
import type { RunDecode } from "../core/schema.ts";
import type { Kernel } from "../kernels/kernel.ts";
import { problemOf } from "../kernels/registry.ts";
import {
  BLOCK_SIZES,
  contextLengths,
  type DecodeOptions,
  isPagedDecode,
  readLengthTrace,
} from "../kernels/decode/mod.ts";
import { parsePositiveInt, type RawFlags, type ShapeOptions, stringFlag } from "./flags.ts";

/** The decode flags that take a value. */
export const DECODE_STRING_FLAGS = ["context", "lengths", "kv-heads", "block-size"] as const;

/** Help lines of the decode flags. */
export const DECODE_HELP =
  `Decode flags (kernels decode and paged-decode; --n is the context length, --batch the
sequences, --heads the query heads; one query token per sequence and head):
  --lengths SPEC      context lengths: fixed (every sequence n tokens, one problem per --n;
                      default), uniform:LO..HI (--batch lengths drawn with --seed) or
                      trace:FILE (--batch lengths drawn from a file of integers)
  --context LIST      the context lengths themselves, one sequence each (e.g. 17,300,8192)
  --kv-heads K        KV heads, dividing --heads (grouped-query attention; default: --heads)
  --block-size B      paged-decode: tokens per KV block, ${BLOCK_SIZES.min}..${BLOCK_SIZES.max} (default: ${BLOCK_SIZES.default})`;

/** How the context lengths are made. */
export type LengthsFlag =
  | { kind: "fixed" }
  | { kind: "uniform"; min: number; max: number }
  | { kind: "trace"; path: string; values: number[] }
  | { kind: "list"; lens: number[] };

/** What the decode flags decide. */
export interface DecodeFlags {
  lengths: LengthsFlag;
  /** KV heads; null: as many as query heads. */
  kvHeads: number | null;
  blockSize: number;
}

/** One decode problem: the registry's shape and options, and what the run record keeps. */
export interface DecodeProblemSpec {
  shape: AttentionShape;
  /** The context length of each sequence. */
  lens: readonly number[];
  /** Options for `kernel`: the block size only for a paged kernel. */
  optionsFor(kernel: Kernel): DecodeOptions;
  /** The run record's `decode` field for `kernel`. */
  recordFor(kernel: Kernel): RunDecode;
}

/**
 * The decode flags, checked against the shape options: refused when no decode kernel is
 * selected, `--kv-heads` must divide `--heads`, `--context` goes with neither `--lengths` nor
 * `--n` nor `--batch`, `uniform`/`trace` not with `--n`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodeFlags } from "./decode_flags.ts";
 * import { parseCommandFlags, shapeOptions } from "./flags.ts";
 * const args = ["--kernels", "paged-decode", "--heads", "8", "--kv-heads", "2"];
 * const raw = parseCommandFlags("verify", args, { string: ["context", "lengths", "kv-heads", "block-size"] });
 * const f = await decodeFlags(raw, shapeOptions(raw, { ns: [64], batch: 2, heads: 1 }));
 * assert(f.kvHeads === 2 && f.blockSize === 16 && f.lengths.kind === "fixed");
 * ```
 */
export async function decodeFlags(raw: RawFlags, o: ShapeOptions): Promise<DecodeFlags> {
  const given = DECODE_STRING_FLAGS.filter((f) => stringFlag(raw, f) !== undefined);
  if (given.length > 0 && !o.kernels.some((k) => problemOf(k) === "decode")) {
    throw new UsageError(
      `--${given[0]} applies to the decode kernels; add decode or paged-decode to --kernels`,
    );
  }
  let kvHeads: number | null = null;
  const kvText = stringFlag(raw, "kv-heads");
  if (kvText !== undefined) {
    kvHeads = parsePositiveInt(kvText, "--kv-heads");
    if (o.heads % kvHeads !== 0) {
      throw new UsageError(`--kv-heads ${kvHeads} must divide --heads ${o.heads}`);
    }
  }
  let blockSize: number = BLOCK_SIZES.default;
  const bsText = stringFlag(raw, "block-size");
  if (bsText !== undefined && !o.kernels.some(isPagedDecode)) {
    throw new UsageError("--block-size applies to paged-decode; add it to --kernels");
  }
  if (bsText !== undefined) {
    blockSize = parsePositiveInt(bsText, "--block-size");
    if (blockSize < BLOCK_SIZES.min || blockSize > BLOCK_SIZES.max) {
      throw new UsageError(
        `--block-size must be from ${BLOCK_SIZES.min} to ${BLOCK_SIZES.max} tokens, got ${blockSize}`,
      );
    }
  }
  const contextText = stringFlag(raw, "context");
  const lengthsText = stringFlag(raw, "lengths");
  let lengths: LengthsFlag = { kind: "fixed" };
  if (contextText !== undefined) {
    for (const other of ["lengths", "n", "batch"]) {
      if (stringFlag(raw, other) !== undefined) {
        throw new UsageError(`--context gives the lengths and the batch; drop --${other}`);
      }
    }
    lengths = { kind: "list", lens: parseContextList(contextText) };
  } else if (lengthsText !== undefined) {
    lengths = await parseLengths(lengthsText);
    if (lengths.kind !== "fixed" && stringFlag(raw, "n") !== undefined) {
      throw new UsageError(`--lengths ${lengthsText} draws the lengths; drop --n`);
    }
  }
  return { lengths, kvHeads, blockSize };
}

/**
 * A comma list of positive integer context lengths (repeats kept: they are sequences).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseContextList } from "./decode_flags.ts";
 * assert(parseContextList("17,300,17").join() === "17,300,17");
 * ```
 */
export function parseContextList(text: string): number[] {
  const items = text.split(",").map((s) => s.trim());
  if (items.some((s) => s === "")) {
    throw new UsageError(`--context takes a comma list of context lengths, got "${text}"`);
  }
  return items.map((s) => parsePositiveInt(s, "--context"));
}

/**
 * `fixed`, `uniform:LO..HI` or `trace:FILE` (the file is read and checked here).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseLengths } from "./decode_flags.ts";
 * const u = await parseLengths("uniform:1..300");
 * assert(u.kind === "uniform" && u.max === 300);
 * ```
 */
export async function parseLengths(text: string): Promise<LengthsFlag> {
  if (text === "fixed") return { kind: "fixed" };
  const uniform = /^uniform:(\d+)\.\.(\d+)$/.exec(text);
  if (uniform) {
    const min = parsePositiveInt(uniform[1]!, "--lengths uniform LO");
    const max = parsePositiveInt(uniform[2]!, "--lengths uniform HI");
    if (max < min) throw new UsageError(`--lengths ${text}: HI must be at least LO`);
    return { kind: "uniform", min, max };
  }
  if (text.startsWith("trace:") && text.length > "trace:".length) {
    const path = text.slice("trace:".length);
    return { kind: "trace", path, values: await readLengthTrace(path) };
  }
  throw new UsageError(
    `--lengths must be fixed, uniform:LO..HI or trace:FILE, got "${text}"`,
  );
}

/** The `--lengths` value as recorded (`fixed`, `uniform:1..300`, `trace:FILE`, `list`). */
function lengthsLabel(l: LengthsFlag): string {
  switch (l.kind) {
    case "uniform":
      return `uniform:${l.min}..${l.max}`;
    case "trace":
      return `trace:${l.path}`;
    default:
      return l.kind;
  }
}

/**
 * The decode problems the flags describe, for the batch sizes given (fixed lengths: one per
 * batch and context length n; drawn lengths and `--context`: one per batch). `batchAt(n)` is the
 * command's batch rule at context length n (a batch of 0 or absent: the command's default).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodeProblems } from "./decode_flags.ts";
 * const o = { ns: [5, 9], heads: 4, d: 32, dtype: "f32" as const, causal: false, seed: 1 };
 * const f = { lengths: { kind: "fixed" }, kvHeads: 2, blockSize: 16 } as const;
 * const ps = decodeProblems(f, o, [3]);
 * assert(ps.length === 2 && ps[1]!.shape.batch === 3 && ps[1]!.shape.n === 9);
 * ```
 */
export function decodeProblems(
  f: DecodeFlags,
  o: Pick<ShapeOptions, "ns" | "heads" | "d" | "dtype" | "causal" | "seed">,
  batches: readonly number[],
): DecodeProblemSpec[] {
  const lensList: number[][] = [];
  const l = f.lengths;
  for (const batch of batches) {
    switch (l.kind) {
      case "fixed":
        for (const n of o.ns) {
          lensList.push(contextLengths({ kind: "fixed", len: n, count: batch }));
        }
        break;
      case "uniform":
        lensList.push(contextLengths({ ...l, count: batch, seed: o.seed }));
        break;
      case "trace":
        lensList.push(
          contextLengths({ kind: "trace", values: l.values, count: batch, seed: o.seed }),
        );
        break;
      case "list":
        lensList.push([...l.lens]);
        break;
    }
    if (l.kind === "list") break;
  }
  const kvHeads = f.kvHeads ?? o.heads;
  return lensList.map((lens) => {
    const shape: AttentionShape = {
      batch: lens.length,
      heads: o.heads,
      n: Math.max(...lens),
      d: o.d,
      dtype: o.dtype,
      causal: o.causal,
    };
    const paged = isPagedDecode;
    return {
      shape,
      lens,
      optionsFor: (k) => ({ lens, kvHeads, ...(paged(k) ? { blockSize: f.blockSize } : {}) }),
      recordFor: (k) => ({
        contexts: lens,
        kvHeads,
        blockSize: paged(k) ? f.blockSize : null,
        lengths: lengthsLabel(l),
      }),
    };
  });
}
