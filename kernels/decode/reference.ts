/**
 * The decode oracle in float64, and seeded decode inputs.
 *
 * @module
 */

import { mulberry32, randomNormal } from "../../core/rng.ts";
import { type BlockTables, type DecodeShape, queryElements } from "./workload.ts";

/** Q `[sequences, heads, d]` and the contiguous K and V caches `[sequences, kvHeads, cap, d]`. */
export interface DecodeInputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  /** Rows reserved per (sequence, KV head) in the contiguous caches: ≥ the longest context. */
  cap: number;
}

/**
 * For every sequence s and query head h, with g = heads / kvHeads query heads per KV head and
 * L = lens[s]: o[s, h] = softmax(scale · K[s, h / g, 0..L) · q[s, h]) · V[s, h / g, 0..L), in
 * float64. Rows past L are never read.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { referenceDecode } from "./reference.ts";
 * const shape = { lens: [2], heads: 1, kvHeads: 1, d: 1, dtype: "f32" } as const;
 * const o = referenceDecode(shape, {
 *   q: new Float32Array([1]), k: new Float32Array([0, 0, NaN]), v: new Float32Array([2, 4, NaN]),
 *   cap: 3,
 * });
 * assert(o[0] === 3);
 * ```
 */
export function referenceDecode(
  shape: DecodeShape,
  inputs: DecodeInputs,
  scale = 1 / Math.sqrt(shape.d),
): Float64Array {
  const { d, heads, kvHeads } = shape;
  const { q, k, v, cap } = inputs;
  const group = heads / kvHeads;
  const out = new Float64Array(queryElements(shape));
  shape.lens.forEach((len, s) => {
    const p = new Float64Array(len);
    for (let h = 0; h < heads; h++) {
      const qa = (s * heads + h) * d;
      const kv = (s * kvHeads + Math.floor(h / group)) * cap * d;
      let max = -Infinity;
      for (let j = 0; j < len; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[qa + c]! * k[kv + j * d + c]!;
        p[j] = dot * scale;
        if (p[j]! > max) max = p[j]!;
      }
      let sum = 0;
      for (let j = 0; j < len; j++) {
        p[j] = Math.exp(p[j]! - max);
        sum += p[j]!;
      }
      for (let j = 0; j < len; j++) {
        const w = p[j]! / sum;
        for (let c = 0; c < d; c++) out[qa + c] = out[qa + c]! + w * v[kv + j * d + c]!;
      }
    }
  });
  return out;
}

/**
 * Fresh inputs drawn from N(0, 1) with a seed, rounded to f16 when the dtype is f16 (so the
 * reference sees what the kernel sees). Cache rows past a sequence's length hold NaN: a kernel
 * that reads one fails its check.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { randomDecodeInputs } from "./reference.ts";
 * const x = randomDecodeInputs({ lens: [1, 3], heads: 2, kvHeads: 1, d: 32, dtype: "f32" }, 1);
 * assert(x.cap === 3 && x.k.length === 2 * 3 * 32 && Number.isNaN(x.k[32]!));
 * ```
 */
export function randomDecodeInputs(
  shape: DecodeShape,
  seed: number,
  cap = Math.max(...shape.lens),
): DecodeInputs {
  const rand = mulberry32(seed);
  const draw = (n: number) => {
    const x = randomNormal(rand, n);
    return shape.dtype === "f16" ? new Float32Array(new Float16Array(x)) : x;
  };
  const q = draw(queryElements(shape));
  const cache = () => {
    const x = draw(shape.lens.length * shape.kvHeads * cap * shape.d);
    shape.lens.forEach((len, s) => {
      for (let h = 0; h < shape.kvHeads; h++) {
        const row = (s * shape.kvHeads + h) * cap;
        x.fill(NaN, (row + len) * shape.d, (row + cap) * shape.d);
      }
    });
    return x;
  };
  return { q, k: cache(), v: cache(), cap };
}

/** Length of the repeated pattern of {@linkcode timingDecodeInputs} (a prime: rows differ). */
export const TIMING_PATTERN = 65521;

/**
 * Inputs for timed runs (the plan's `timingInputs`): as {@linkcode randomDecodeInputs} (NaN past
 * each sequence's length), but the cache repeats a seeded pattern of {@linkcode TIMING_PATTERN}
 * normal values instead of drawing every element: at the issue's target shape (2 · 268 M
 * elements) drawing took tens of seconds, which the one device call cannot spare. The decode
 * kernels' work does not depend on the values; these are finite, varied and not compressible to
 * a constant.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { timingDecodeInputs } from "./reference.ts";
 * const shape = { lens: [3, 9], heads: 2, kvHeads: 1, d: 32, dtype: "f32" } as const;
 * const x = timingDecodeInputs(shape, 1);
 * assert(x.k.length === 2 * 9 * 32 && Number.isNaN(x.k[3 * 32]) && isFinite(x.k[0]!));
 * ```
 */
export function timingDecodeInputs(
  shape: DecodeShape,
  seed: number,
  cap = Math.max(...shape.lens),
): DecodeInputs {
  // x[i] = pattern[i mod P]: the first P set, then doubled (every copy starts at a multiple of P).
  const fill = (n: number, salt: number) => {
    const unit = { ...shape, lens: [1], kvHeads: 1, d: TIMING_PATTERN };
    const pattern = randomDecodeInputs(unit, seed * 7919 + salt).k;
    const x = new Float32Array(n);
    x.set(pattern.subarray(0, Math.min(n, TIMING_PATTERN)));
    for (let done = Math.min(n, TIMING_PATTERN); done < n;) {
      const len = Math.min(done, n - done);
      x.copyWithin(done, 0, len);
      done += len;
    }
    return x;
  };
  const cache = (salt: number) => {
    const x = fill(shape.lens.length * shape.kvHeads * cap * shape.d, salt);
    shape.lens.forEach((len, s) => {
      for (let h = 0; h < shape.kvHeads; h++) {
        const row = (s * shape.kvHeads + h) * cap;
        x.fill(NaN, (row + len) * shape.d, (row + cap) * shape.d);
      }
    });
    return x;
  };
  return { q: fill(queryElements(shape), 1), k: cache(2), v: cache(3), cap };
}

/**
 * The contiguous cache `[sequences, kvHeads, longest, d]` read back out of a paged pool through
 * the block tables (the inverse of `pageCache` for the live tokens); rows past a sequence's
 * length hold NaN.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { buildBlockTables, pageCache } from "./workload.ts";
 * import { gatherCache } from "./reference.ts";
 * const t = buildBlockTables([3, 1], 8, { seed: 1 });
 * const c = new Float32Array([1, 2, 3, 4, NaN, NaN]);
 * const back = gatherCache(pageCache(c, [3, 1], 1, 1, 3, t), [3, 1], 1, 1, t);
 * assert(back[2] === 3 && back[3] === 4 && Number.isNaN(back[4]!));
 * ```
 */
export function gatherCache(
  pool: Float32Array,
  lens: readonly number[],
  kvHeads: number,
  d: number,
  t: BlockTables,
): Float32Array {
  const cap = Math.max(...lens);
  const b = t.blockSize;
  const out = new Float32Array(lens.length * kvHeads * cap * d).fill(NaN);
  lens.forEach((n, s) => {
    for (let h = 0; h < kvHeads; h++) {
      for (let p = 0; p < n; p++) {
        const block = t.table[s * t.stride + Math.floor(p / b)]!;
        const src = ((block * kvHeads + h) * b + (p % b)) * d;
        out.set(pool.subarray(src, src + d), ((s * kvHeads + h) * cap + p) * d);
      }
    }
  });
  return out;
}
