import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import type { AttentionShape } from "../core/shapes.ts";
import { flashAttentionBytes } from "./io_model.ts";
import {
  lowerBoundBackwardBytes,
  theoreticalBackwardBytes,
  theoreticalForwardBackwardBytes,
} from "./io_model_backward.ts";

const SRAM = { sramBytes: 49152 };

function shape(n: number, d: number, extra: Partial<AttentionShape> = {}): AttentionShape {
  return { batch: 1, heads: 1, n, d, dtype: "f32", causal: false, ...extra };
}

Deno.test("standard backward (Algorithm 3): 7N² + 8Nd elements, causal or not", () => {
  // Steps: P, dO → dV (N² + 2Nd); dO, V → dP (2Nd + N²); P, dP → dS (3N²);
  // dS, K → dQ (N² + 2Nd); dS, Q → dK (N² + 2Nd).
  const t = theoreticalBackwardBytes("standard", shape(100, 32), SRAM);
  assertEquals(t.elementsPerHead, 7 * 100 * 100 + 8 * 100 * 32);
  assertEquals(t.bytes, t.elementsPerHead * 4);
  const causal = theoreticalBackwardBytes("standard", shape(100, 32, { causal: true }), SRAM);
  assertEquals(causal.bytes, t.bytes);
  const many = theoreticalBackwardBytes(
    "standard",
    shape(100, 32, { batch: 2, heads: 3, dtype: "f16" }),
    SRAM,
  );
  assertEquals(many.bytes, t.elementsPerHead * 2 * 6);
});

Deno.test("flash backward (Algorithm 4): 4Nd + Tc·(5Nd + 2N) with Algorithm 1's blocks", () => {
  // f32, 48 KiB: M = 12288, Bc = ⌈12288 / 256⌉ = 48, Tc = ⌈1000 / 48⌉ = 21.
  const t = theoreticalBackwardBytes("flash", shape(1000, 64), SRAM);
  assertEquals([t.mElements, t.bc, t.br, t.tc], [12288, 48, 48, 21]);
  assertEquals(t.elementsPerHead, 4 * 1000 * 64 + 21 * (5 * 1000 * 64 + 2 * 1000));
  // Block-sparse: the Tc term over the blocks Algorithm 5 visits (a quarter of them here: the
  // mask keeps Algorithm 5's blocks of key columns 0, 4, 8, …, each of them whole).
  const cols = 21;
  const bits = new Uint8Array(21 * cols).map((_, i) => (i % cols) % 4 === 0 ? 1 : 0);
  const mask = { br: 48, bc: 48, rowBlocks: 21, colBlocks: cols, bits };
  const sparse = theoreticalBackwardBytes("flash", shape(1000, 64), { ...SRAM, mask });
  assertEquals(sparse.algorithm, "Algorithm 5 backward");
  assertEquals(sparse.elementsPerHead, 4 * 1000 * 64 + 6 * 1000 * (5 * 64 + 2));
  const c = shape(1000, 64, { causal: true });
  const causal = theoreticalBackwardBytes("flash", c, SRAM);
  const fraction = flashAttentionBytes(c, SRAM).causalFraction;
  assertAlmostEquals(fraction, 0.5 + 1 / 42, 0.01);
  assertEquals(causal.causalFraction, fraction);
  assertAlmostEquals(
    causal.elementsPerHead,
    4 * 64000 + fraction * 21 * (5 * 64000 + 2000),
    1e-6 * causal.elementsPerHead,
  );
  assertThrows(() => theoreticalBackwardBytes("flash", c, { sramBytes: 0 }));
});

Deno.test("flash backward moves fewer bytes than standard backward once d² ≪ M", () => {
  // The same condition as the forward: the ratio tends to 7N² / (5Nd · Tc) ≈ 7Bc / 5d.
  const opts = { sramBytes: 102400 };
  const s = shape(4096, 64, { dtype: "f16" });
  const ratio = theoreticalBackwardBytes("standard", s, opts).bytes /
    theoreticalBackwardBytes("flash", s, opts).bytes;
  // M = 51200 f16, Bc = 200: 7 · 200 / (5 · 64) ≈ 4.4, less the 4Nd and 2N terms.
  assertAlmostEquals(ratio, 4.2, 0.1);
});

Deno.test("Figure 2 (left)'s shape: forward + backward as the paper's algorithms count them", () => {
  // GPT-2 medium: N = 1024, d = 64, 16 heads, batch 64, f16, M ≈ 100 KB on an A100. The paper
  // measured 40.3 GB (standard) and 4.4 GB (flash); the algorithms alone count 25.2 GB and
  // 7.3 GB (Bc = 200 leaves Tc = 6 passes over Q, O, dO, dQ; the PyTorch baseline also moves
  // dropout masks and more).
  const s: AttentionShape = { batch: 64, heads: 16, n: 1024, d: 64, dtype: "f16", causal: false };
  const opts = { sramBytes: 102400 };
  const std = theoreticalForwardBackwardBytes("standard", s, opts);
  const flash = theoreticalForwardBackwardBytes("flash", s, opts);
  const heads = 64 * 16;
  assertEquals(std, (4 * 1024 ** 2 + 4 * 65536 + 7 * 1024 ** 2 + 8 * 65536) * 2 * heads);
  assertEquals(
    flash,
    (2 * 65536 + 6 * (3 * 65536 + 4 * 1024) + 4 * 65536 + 6 * (5 * 65536 + 2 * 1024)) * 2 * heads,
  );
  assertAlmostEquals(std / 1e9, 25.2, 0.05);
  assertAlmostEquals(flash / 1e9, 7.3, 0.05);
});

Deno.test("backward lower bound: Q, K, V, dO read and dQ, dK, dV written, over the rows used", () => {
  const s = shape(16, 32, { batch: 2, heads: 3 });
  assertEquals(lowerBoundBackwardBytes(s), 7 * 16 * 32 * 4 * 6);
  // One kept block of 8 queries × 4 keys: 3 · 8 query rows, 4 · 4 key rows.
  const bits = new Uint8Array(8);
  bits[0] = 1;
  const mask = { br: 8, bc: 4, rowBlocks: 2, colBlocks: 4, bits };
  assertEquals(lowerBoundBackwardBytes(s, mask), (3 * 8 + 4 * 4) * 32 * 4 * 6);
});
