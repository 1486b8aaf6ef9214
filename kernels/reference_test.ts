import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { BlockMask } from "./masks.ts";
import { maxRelError, referenceAttention } from "./reference.ts";
import { mulberry32 } from "../core/rng.ts";
import type { AttentionShape } from "../core/shapes.ts";

// The expected values below are worked out by hand (in the comments), not by running the code.

function shape(n: number, d: number, causal = false, batch = 1, heads = 1): AttentionShape {
  return { batch, heads, n, d, dtype: "f32", causal };
}

function assertClose(actual: ArrayLike<number>, expected: number[], eps = 1e-12): void {
  assertEquals(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assertAlmostEquals(actual[i]!, expected[i]!, eps, `element ${i}: ${Array.from(actual)}`);
  }
}

Deno.test("reference: one key gets all the weight, whatever q, k and the scale", () => {
  // n = 1: softmax of a single score is 1, so O = V.
  const o = referenceAttention(shape(1, 2), [5, -3], [2, 7], [0.25, -4]);
  assertEquals(Array.from(o), [0.25, -4]);
  const o2 = referenceAttention(shape(1, 2, true), [5, -3], [2, 7], [0.25, -4], { scale: 30 });
  assertEquals(Array.from(o2), [0.25, -4]);
});

Deno.test("reference: two keys with scale 1, full and causal", () => {
  // q0 = (1, 0), q1 = (0, 1); k0 = (0, 0), k1 = (ln 3, 0); v0 = (4, 0), v1 = (0, 8).
  // Row 0: scores (0, ln 3) → weights (1/4, 3/4) → o0 = (1, 6).
  // Row 1: scores (0, 0) → weights (1/2, 1/2) → o1 = (2, 4).
  // Causal: row 0 sees only key 0 → o0 = v0 = (4, 0); row 1 unchanged.
  const q = [1, 0, 0, 1];
  const k = [0, 0, Math.log(3), 0];
  const v = [4, 0, 0, 8];
  assertClose(referenceAttention(shape(2, 2), q, k, v, { scale: 1 }), [1, 6, 2, 4]);
  assertClose(referenceAttention(shape(2, 2, true), q, k, v, { scale: 1 }), [4, 0, 2, 4]);
});

Deno.test("reference: the default scale is 1/√d", () => {
  // d = 4, scale 1/2. q0 = (1,1,1,1), q1 = 0; k0 = 0, k1 = (ln 2, ln 2, 0, 0).
  // Row 0: q0·k1 = 2 ln 2, scaled ln 2 → weights (1/3, 2/3); v0 = (3,0,0,0), v1 = (0,3,0,0)
  //   → o0 = (1, 2, 0, 0). Row 1: scores (0, 0) → o1 = (1.5, 1.5, 0, 0).
  const q = [1, 1, 1, 1, 0, 0, 0, 0];
  const k = [0, 0, 0, 0, Math.LN2, Math.LN2, 0, 0];
  const v = [3, 0, 0, 0, 0, 3, 0, 0];
  assertClose(referenceAttention(shape(2, 4), q, k, v), [1, 2, 0, 0, 1.5, 1.5, 0, 0]);
  // With scale 1 instead, row 0's weights are (1/5, 4/5) → (0.6, 2.4, 0, 0).
  assertClose(referenceAttention(shape(2, 4), q, k, v, { scale: 1 }), [
    0.6,
    2.4,
    0,
    0,
    1.5,
    1.5,
    0,
    0,
  ]);
});

Deno.test("reference: heads are independent slices of [B, H, N, d]", () => {
  // Two (batch, head) pairs, n = 2, d = 1, scale 1.
  // Head 0: q = (0, 0) → uniform weights over v = (10, 20) → (15, 15).
  // Head 1: k = (0, ln 4); row 0 q = 1 → weights (1/5, 4/5) over v = (5, 10) → 9;
  //         row 1 q = 0 → 7.5.
  const q = [0, 0, 1, 0];
  const k = [1, 2, 0, Math.log(4)];
  const v = [10, 20, 5, 10];
  const expected = [15, 15, 9, 7.5];
  assertClose(referenceAttention(shape(2, 1, false, 2, 1), q, k, v, { scale: 1 }), expected);
  assertClose(referenceAttention(shape(2, 1, false, 1, 2), q, k, v, { scale: 1 }), expected);
});

Deno.test("reference: a block mask drops whole blocks", () => {
  // n = 4, d = 1, blocks of 2 × 2, q = 0 so every allowed key weighs the same; v = (1, 2, 3, 4).
  const q = [0, 0, 0, 0];
  const k = [0.3, -1, 2, 0.5];
  const v = [1, 2, 3, 4];
  const diag = new BlockMask("local", 4, 2, 2, new Uint8Array([1, 0, 0, 1]));
  // Rows 0–1 see keys 0–1 → 1.5; rows 2–3 see keys 2–3 → 3.5.
  assertClose(referenceAttention(shape(4, 1), q, k, v, { mask: diag }), [1.5, 1.5, 3.5, 3.5]);
  // Causal as well: row 0 → 1; row 1 → 1.5; row 2 → 3; row 3 → 3.5.
  assertClose(referenceAttention(shape(4, 1, true), q, k, v, { mask: diag }), [1, 1.5, 3, 3.5]);
  // No mask: every row averages all four → 2.5.
  assertClose(referenceAttention(shape(4, 1), q, k, v), [2.5, 2.5, 2.5, 2.5]);
  // Query blocks of 1 row, key blocks of 2: row i keeps key block bits[i].
  const rows = new BlockMask("random", 4, 1, 2, new Uint8Array([1, 0, 0, 1, 1, 1, 0, 1]));
  assertClose(referenceAttention(shape(4, 1), q, k, v, { mask: rows }), [1.5, 3.5, 2.5, 3.5]);
});

Deno.test("reference: a row with every key masked is exactly zero", () => {
  const q = [1, -2, 0.5, 3];
  const k = [0.3, -1, 2, 0.5];
  const v = [1, 2, 3, 4];
  // Block row 0 keeps nothing: rows 0–1 are zero; rows 2–3 see all keys (q·k scaled, d = 1).
  const empty = new BlockMask("random", 4, 2, 2, new Uint8Array([0, 0, 1, 1]));
  const o = referenceAttention(shape(4, 1), q, k, v, { mask: empty, scale: 0 });
  assertEquals(Array.from(o), [0, 0, 2.5, 2.5]);
  // Causal empties rows too: block row 0 keeps only keys 2–3, which rows 0–1 may not see.
  const late = new BlockMask("random", 4, 2, 2, new Uint8Array([0, 1, 0, 1]));
  const c = referenceAttention(shape(4, 1, true), q, k, v, { mask: late, scale: 0 });
  assertEquals(Array.from(c), [0, 0, 3, 3.5]);
  for (const x of c) assert(!Object.is(x, -0), "zero rows are +0");
});

Deno.test("reference: huge scores do not overflow (the row maximum is subtracted)", () => {
  // Scores 1000 and 1000: equal weights → mean of v = 3.
  assertClose(referenceAttention(shape(1, 1), [1000], [1], [2]), [2]);
  assertClose(referenceAttention(shape(2, 1), [1000, 1000], [1, 1], [2, 4], { scale: 1 }), [3, 3]);
  // Scores 1000 and 0: exp(−1000) underflows to 0 → o = v0 = 2 exactly.
  const o = referenceAttention(shape(2, 1), [1000, -1000], [1, 0], [2, 4], { scale: 1 });
  assertEquals(Array.from(o), [2, 4]);
});

Deno.test("reference: agrees with a naive softmax written independently", () => {
  // Small random problems, computed as Σ exp(s)·v / Σ exp(s) with no max subtraction (the scores
  // are small enough), over an explicit list of allowed keys.
  const rand = mulberry32(20240601);
  for (let trial = 0; trial < 40; trial++) {
    const n = 1 + Math.floor(rand() * 9);
    const d = 1 + Math.floor(rand() * 5);
    const heads = 1 + Math.floor(rand() * 2);
    const causal = rand() < 0.5;
    const br = 1 + Math.floor(rand() * 3);
    const bc = 1 + Math.floor(rand() * 3);
    const rb = Math.ceil(n / br);
    const cb = Math.ceil(n / bc);
    const bits = Uint8Array.from({ length: rb * cb }, () => (rand() < 0.7 ? 1 : 0));
    const mask = trial % 2 === 0 ? new BlockMask("random", n, br, bc, bits) : undefined;
    const len = heads * n * d;
    const q = Array.from({ length: len }, () => rand() * 2 - 1);
    const k = Array.from({ length: len }, () => rand() * 2 - 1);
    const v = Array.from({ length: len }, () => rand() * 2 - 1);
    const scale = 0.5 + rand();
    const got = referenceAttention(shape(n, d, causal, 1, heads), q, k, v, { scale, mask });
    const want: number[] = [];
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < n; i++) {
        const keys: number[] = [];
        for (let j = 0; j < n; j++) {
          const blockKept = !mask || bits[Math.floor(i / br) * cb + Math.floor(j / bc)] === 1;
          if (blockKept && !(causal && j > i)) keys.push(j);
        }
        const w = keys.map((j) => {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[(h * n + i) * d + c]! * k[(h * n + j) * d + c]!;
          return Math.exp(scale * dot);
        });
        const sum = w.reduce((a, b) => a + b, 0);
        for (let c = 0; c < d; c++) {
          let acc = 0;
          keys.forEach((j, idx) => acc += w[idx]! * v[(h * n + j) * d + c]!);
          want.push(keys.length === 0 ? 0 : acc / sum);
        }
      }
    }
    assertClose(got, want, 1e-12);
  }
});

Deno.test("maxRelError: max absolute error over the largest reference magnitude", () => {
  assertEquals(maxRelError(new Float32Array([1, 2]), new Float64Array([1, 2])), 0);
  // |1.5 − 1| / max(|−4|, |1|) = 0.125 (the denominator is the largest |ref|, not the element's).
  assertEquals(maxRelError([-4, 1.5], [-4, 1]), 0.125);
  assertEquals(maxRelError([0.5, 100], [0.25, 100]), 0.0025);
  // Both zero: no error. Reference zero but output not: never passes.
  assertEquals(maxRelError([0, 0], [0, 0]), 0);
  assertEquals(maxRelError([0, 1e-30], [0, 0]), Infinity);
  assertEquals(maxRelError([], []), 0);
});

Deno.test("maxRelError: NaN or ±∞ anywhere in the output is Infinity", () => {
  assertEquals(maxRelError(new Float32Array([NaN, 2]), new Float64Array([1, 2])), Infinity);
  assertEquals(maxRelError([1, 2, 3, NaN], [1, 2, 3, 4]), Infinity);
  assertEquals(maxRelError([Infinity], [1]), Infinity);
  assertEquals(maxRelError([1, -Infinity], [1, 2]), Infinity);
  // A poisoned f32 buffer read back: every element NaN.
  const poisoned = new Float32Array(new Uint32Array(8).fill(0x7fc00000).buffer);
  assertEquals(maxRelError(poisoned, new Float64Array(8)), Infinity);
});

Deno.test("maxRelError: lengths must match", () => {
  assertThrows(() => maxRelError([1, 2], [1]), Error, "length mismatch");
});
