import { assert, assertEquals } from "@std/assert";
import { BlockMask, makeMask } from "../masks.ts";
import { referenceAttention } from "../reference.ts";
import { mulberry32, randomNormal } from "../../core/rng.ts";
import type { AttentionShape } from "../../core/shapes.ts";
import { referenceBackward } from "./reference.ts";

// The gradients of referenceBackward against central finite differences of the forward oracle
// (referenceAttention, written independently): L = Σ O ∘ dO, so ∂L/∂Q = dQ, and so on.

function lossOf(
  shape: AttentionShape,
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  dout: Float64Array,
  mask?: BlockMask,
): number {
  const o = referenceAttention(shape, q, k, v, { mask });
  let l = 0;
  for (let i = 0; i < o.length; i++) l += o[i]! * dout[i]!;
  return l;
}

function normal(seed: number, len: number): Float64Array {
  return new Float64Array(randomNormal(mulberry32(seed), len));
}

/** max |analytic − numeric| / max |numeric| over every element of Q, K and V. */
function finiteDifferenceError(shape: AttentionShape, seed: number, mask?: BlockMask): number {
  const len = shape.batch * shape.heads * shape.n * shape.d;
  const inputs = [normal(seed, len), normal(seed + 1, len), normal(seed + 2, len)] as const;
  const dout = normal(seed + 3, len);
  const g = referenceBackward(shape, ...inputs, dout, { mask });
  const analytic = [g.dq, g.dk, g.dv];
  const h = 1e-5;
  let maxErr = 0;
  let maxRef = 0;
  for (let t = 0; t < 3; t++) {
    const x = inputs[t]!;
    for (let i = 0; i < len; i++) {
      const keep = x[i]!;
      x[i] = keep + h;
      const up = lossOf(shape, ...inputs, dout, mask);
      x[i] = keep - h;
      const down = lossOf(shape, ...inputs, dout, mask);
      x[i] = keep;
      const numeric = (up - down) / (2 * h);
      maxRef = Math.max(maxRef, Math.abs(numeric));
      maxErr = Math.max(maxErr, Math.abs(analytic[t]![i]! - numeric));
    }
  }
  assert(maxRef > 0.01, "the gradients are not trivially zero");
  return maxErr / maxRef;
}

const SHAPES: AttentionShape[] = [
  { batch: 1, heads: 1, n: 1, d: 3, dtype: "f32", causal: false },
  { batch: 1, heads: 2, n: 5, d: 3, dtype: "f32", causal: false },
  { batch: 2, heads: 1, n: 7, d: 4, dtype: "f32", causal: true },
  { batch: 1, heads: 1, n: 11, d: 2, dtype: "f32", causal: true },
];

for (const shape of SHAPES) {
  Deno.test(
    `reference gradients match central differences: n=${shape.n} d=${shape.d} B·H=${
      shape.batch * shape.heads
    }${shape.causal ? " causal" : ""}`,
    () => {
      const err = finiteDifferenceError(shape, shape.n * 31 + shape.d);
      assert(err < 1e-7, `relative error ${err}`);
    },
  );
}

Deno.test("reference gradients match central differences with a block mask (rows all masked)", () => {
  // 9 rows in blocks of 4 × 2 keys: query block 0 keeps only key block 3 (keys 6–7), so with
  // causal masking its rows see no key at all; block 2 keeps blocks 0 and 4.
  const bits = new Uint8Array(3 * 5);
  bits[0 * 5 + 3] = 1;
  bits[1 * 5 + 1] = bits[1 * 5 + 2] = 1;
  bits[2 * 5 + 0] = bits[2 * 5 + 4] = 1;
  const mask = new BlockMask("random", 9, 4, 2, bits);
  for (const causal of [false, true]) {
    const shape: AttentionShape = { batch: 1, heads: 2, n: 9, d: 3, dtype: "f32", causal };
    const err = finiteDifferenceError(shape, causal ? 5 : 6, mask);
    assert(err < 1e-7, `causal=${causal}: relative error ${err}`);
  }
  const random = makeMask({ kind: "random", n: 10, br: 4, bc: 4, density: 0.5, seed: 3 });
  const shape: AttentionShape = { batch: 1, heads: 1, n: 10, d: 2, dtype: "f32", causal: false };
  assert(finiteDifferenceError(shape, 9, random) < 1e-7);
});

Deno.test("reference backward: O equals the forward oracle, D = rowsum(dO ∘ O), P kept on request", () => {
  const shape: AttentionShape = { batch: 2, heads: 1, n: 6, d: 4, dtype: "f32", causal: true };
  const len = 2 * 6 * 4;
  const [q, k, v, dout] = [1, 2, 3, 4].map((s) => normal(s, len)) as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  const g = referenceBackward(shape, q, k, v, dout, { keepP: true });
  const o = referenceAttention(shape, q, k, v);
  for (let i = 0; i < len; i++) assert(Math.abs(g.o[i]! - o[i]!) < 1e-12);
  for (let r = 0; r < 12; r++) {
    let dot = 0;
    for (let c = 0; c < 4; c++) dot += g.o[r * 4 + c]! * dout[r * 4 + c]!;
    assert(Math.abs(dot - g.delta[r]!) < 1e-12);
    // lse: exp(s_ij − lse_i) is P, so the row of P sums to 1 and is zero above the diagonal.
    const i = r % 6;
    const row = g.p!.subarray(r * 6, r * 6 + 6);
    assert(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    assertEquals([...row.subarray(i + 1)].every((x) => x === 0), true);
  }
  assertEquals(referenceBackward(shape, q, k, v, dout).p, null);
});

Deno.test("reference backward: a row with every key masked has lse −∞ and no gradient", () => {
  const mask = new BlockMask("random", 4, 2, 2, new Uint8Array([0, 0, 1, 1]));
  const shape: AttentionShape = { batch: 1, heads: 1, n: 4, d: 2, dtype: "f32", causal: false };
  const x = normal(7, 8);
  const g = referenceBackward(shape, x, x, x, x, { mask });
  assertEquals([g.lse[0], g.lse[1]], [-Infinity, -Infinity]);
  assertEquals([...g.dq.subarray(0, 4)], [0, 0, 0, 0]);
  assertEquals([...g.o.subarray(0, 4)], [0, 0, 0, 0]);
  assert(Number.isFinite(g.lse[2]!) && g.dq.subarray(4).some((v) => v !== 0));
});

Deno.test("reference backward: storedO moves D only, dQ and dK exactly by the linear term", () => {
  // dS_ij = P_ij (dP_ij − D_i) is linear in D: a D off by ΔD_i moves dQ_i by −τ ΔD_i Σ_j P_ij K_j
  // and dK_j by −τ Σ_i P_ij ΔD_i Q_i, and dV not at all.
  const shape: AttentionShape = { batch: 1, heads: 2, n: 5, d: 4, dtype: "f16", causal: true };
  const [n, d, rows] = [5, 4, 10];
  const [q, k, v, dout] = [11, 12, 13, 14].map((s) => normal(s, rows * d)) as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  const exact = referenceBackward(shape, q, k, v, dout, { keepP: true });
  const o16 = new Float32Array(new Float16Array(exact.o));
  const rounded = referenceBackward(shape, q, k, v, dout, { storedO: "f16" });
  const given = referenceBackward(shape, q, k, v, dout, { storedO: o16 });
  const dD = Array.from({ length: rows }, (_, r) => {
    let x = 0;
    for (let c = 0; c < d; c++) x += dout[r * d + c]! * o16[r * d + c]!;
    return x - exact.delta[r]!;
  });
  assert(dD.some((x) => x !== 0), "the rounding moved D");
  const tau = 1 / Math.sqrt(d);
  for (let h = 0; h < 2; h++) {
    const p = (i: number, j: number) => exact.p![h * n * n + i * n + j]!;
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < d; c++) {
        let dq = 0;
        let dk = 0;
        for (let j = 0; j < n; j++) {
          dq += p(r, j) * k[(h * n + j) * d + c]!;
          dk += p(j, r) * dD[h * n + j]! * q[(h * n + j) * d + c]!;
        }
        const at = (h * n + r) * d + c;
        assert(Math.abs(rounded.dq[at]! - (exact.dq[at]! - tau * dD[h * n + r]! * dq)) < 1e-12);
        assert(Math.abs(rounded.dk[at]! - (exact.dk[at]! - tau * dk)) < 1e-12);
      }
    }
  }
  assertEquals([rounded.dv, given.dq, given.dk], [exact.dv, rounded.dq, rounded.dk]);
  // O itself stays the float64 one.
  assertEquals(rounded.o, exact.o);
});
