/**
 * Seeded random numbers, so a failing check can be replayed with `--seed`.
 *
 * @module
 */

/**
 * mulberry32: a small, fast 32-bit PRNG. Returns floats in [0, 1).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { mulberry32 } from "./rng.ts";
 * const a = mulberry32(7), b = mulberry32(7);
 * assert(a() === b());
 * ```
 */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` standard-normal samples (Box–Muller) from `rand`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { mulberry32, randomNormal } from "./rng.ts";
 * const x = randomNormal(mulberry32(1), 1000);
 * assert(x.length === 1000);
 * ```
 */
export function randomNormal(rand: () => number, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const u = 1 - rand();
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * rand();
    out[i] = r * Math.cos(theta);
    if (i + 1 < count) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}
