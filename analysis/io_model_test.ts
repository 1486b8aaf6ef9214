import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { makeMask } from "../kernels/masks.ts";
import type { AttentionShape } from "../core/shapes.ts";
import {
  arithmeticIntensity,
  fitsDevice,
  flashAttentionBytes,
  flashQueryOuterBytes,
  footprintBytes,
  formatBytes,
  formatSi,
  lowerBoundBytes,
  type MaskGrid,
  standardAttentionBytes,
} from "./io_model.ts";

/** A shape with the fields that matter overridden; one f32 head by default. */
function shape(over: Partial<AttentionShape>): AttentionShape {
  return { batch: 1, heads: 1, n: 8, d: 2, dtype: "f32", causal: false, ...over };
}

// Hand-computed small case: N = 8, d = 2, SRAM 64 bytes of f32 = 16 elements:
// Bc = ⌈16 / 8⌉ = 2, Br = min(2, 2) = 2, Tc = 4.

Deno.test("standard: 4N² + 4Nd elements a head", () => {
  // 4·64 + 4·16 = 320 elements · 4 bytes
  const t = standardAttentionBytes(shape({}));
  assertEquals(t.elementsPerHead, 320);
  assertEquals(t.bytes, 1280);
  assertEquals([t.mElements, t.bc, t.br, t.tc], [null, null, null, null]);
  // f16, 2 × 3 heads: 320 · 2 · 6
  const many = standardAttentionBytes(shape({ batch: 2, heads: 3, dtype: "f16" }));
  assertEquals(many.bytes, 3840);
  // causal does not change the standard algorithm's traffic
  const causal = standardAttentionBytes(shape({ causal: true }));
  assertEquals(causal.bytes, 1280);
});

Deno.test("flash: 2Nd + Tc(3Nd + 4N) with Algorithm 1's block sizes", () => {
  const t = flashAttentionBytes(shape({}), { sramBytes: 64 });
  assertEquals([t.mElements, t.bc, t.br, t.tc, t.tr], [16, 2, 2, 4, 4]);
  // 2·16 + 4·(3·16 + 4·8) = 32 + 320
  assertEquals(t.elementsPerHead, 352);
  assertEquals(t.bytes, 1408);
  assertEquals(t.causalFraction, 1);
});

Deno.test("flash: the paper's setting, N = 1024, d = 64", () => {
  const s = shape({ n: 1024, d: 64, heads: 16 });
  // M = 49152 / 4 = 12288; Bc = ⌈12288 / 256⌉ = 48 = Br; Tc = ⌈1024 / 48⌉ = 22
  const t = flashAttentionBytes(s, { sramBytes: 49152 });
  assertEquals([t.mElements, t.bc, t.br, t.tc], [12288, 48, 48, 22]);
  // 131072 + 22 · (196608 + 4096) = 4546560 elements, · 4 bytes · 16 heads
  assertEquals(t.bytes, 290979840);
  // f16, 100 KB: M = 51200, Bc = 200, Br = min(200, 64) = 64, Tc = 6
  const h = flashAttentionBytes({ ...s, dtype: "f16" }, { sramBytes: 102400 });
  assertEquals([h.mElements, h.bc, h.br, h.tc], [51200, 200, 64, 6]);
  assertEquals(h.elementsPerHead, 131072 + 6 * 200704);
});

Deno.test("flash: M is rounded down to whole elements", () => {
  const t = flashAttentionBytes(shape({}), { sramBytes: 67 });
  assertEquals(t.mElements, 16);
});

Deno.test("causal rule: Tc term × row-weighted share of blocks on or below the diagonal", () => {
  // Square blocks (Bc = Br = 2, Tc = 4): rows visited 8 + 6 + 4 + 2 = 20 of 32.
  const t = flashAttentionBytes(shape({ causal: true }), { sramBytes: 64 });
  assertEquals(t.causalFraction, 0.625);
  // 32 + (3·2 + 4) · 20
  assertEquals(t.elementsPerHead, 232);
  // Bc = ⌈40 / 8⌉ = 5, Br = 2, Tc = 2: key block 1 (keys 5..7) needs query rows 4..7 only.
  // Rows 8 + 4 = 12 of 16; 32 + 10 · 12 = 152.
  const r = flashAttentionBytes(shape({ causal: true }), { sramBytes: 160 });
  assertEquals([r.bc, r.br, r.tc], [5, 2, 2]);
  assertEquals(r.causalFraction, 0.75);
  assertEquals(r.elementsPerHead, 152);
  // Large N: the fraction tends to one half.
  const big = flashAttentionBytes(shape({ n: 65536, d: 64, causal: true }), {
    sramBytes: 49152,
  });
  assertAlmostEquals(big.causalFraction, 0.5, 1e-3);
});

/** A mask over an `n`-token problem on a `br × bc` grid keeping the listed (row, col) blocks. */
function grid(n: number, br: number, bc: number, kept: [number, number][]): MaskGrid {
  const rowBlocks = Math.ceil(n / br);
  const colBlocks = Math.ceil(n / bc);
  const bits = new Uint8Array(rowBlocks * colBlocks);
  for (const [i, j] of kept) bits[i * colBlocks + j] = 1;
  return { br, bc, rowBlocks, colBlocks, bits };
}

Deno.test("block-sparse: Algorithm 5 visits its Br × Bc blocks that hold a kept entry", () => {
  // Bc = Br = 2, Tc = Tr = 4. The kernel's 4 × 4 block (0, 0) covers 2 × 2 of Algorithm 5's
  // blocks: s = 4/16, passRows = 4 blocks · 2 rows; 32 + 8 · (3·2 + 4) = 32 + 0.25 · 320.
  const t = flashAttentionBytes(shape({}), {
    sramBytes: 64,
    mask: grid(8, 4, 4, [[0, 0]]),
  });
  assertEquals([t.density, t.passRows, t.elementsPerHead], [0.25, 8, 112]);
  // A 3 × 3 kernel grid keeps 1/9 of its blocks, but its block (0, 0) (queries and keys 0..2)
  // touches the same 4 of Algorithm 5's blocks: s is measured there, the bytes stay whole.
  const odd = flashAttentionBytes(shape({}), {
    sramBytes: 64,
    mask: grid(8, 3, 3, [[0, 0]]),
  });
  assertEquals([odd.density, odd.passRows, odd.elementsPerHead], [0.25, 8, 112]);
  // Causal: block (0, 1) (queries 0..1, keys 2..3) lies above the diagonal; 32 + 6 · 10.
  const causal = flashAttentionBytes(shape({ causal: true }), {
    sramBytes: 64,
    mask: grid(8, 4, 4, [[0, 0]]),
  });
  assertEquals([causal.density, causal.passRows, causal.elementsPerHead], [0.25, 6, 92]);
  // Nothing kept: K and V are still loaded for every key block (Algorithm 5, line 6).
  const none = flashAttentionBytes(shape({}), {
    sramBytes: 64,
    mask: grid(8, 4, 4, []),
  });
  assertEquals([none.density, none.elementsPerHead], [0, 32]);
});

Deno.test("block-sparse: with full blocks it is Proposition 4's 2Nd + s · Tc · (3Nd + 4N)", () => {
  // f32 at 48 KiB: Bc = Br = 48. N = 48 · 85, so every block of Algorithm 5 is full; a mask on
  // the same grid has the same s.
  const n = 48 * 85;
  const sh = shape({ n, d: 64 });
  for (const density of [1, 0.5, 0.25, 0.0625]) {
    const mask = makeMask({ kind: "random", n, br: 48, bc: 48, density, seed: 3 });
    const t = flashAttentionBytes(sh, { sramBytes: 49152, mask });
    assertEquals(t.density, mask.density);
    const expected = (2 * n * 64 + mask.density * t.tc! * (3 * n * 64 + 4 * n)) * 4;
    assertAlmostEquals(t.bytes, expected, 1e-6 * expected);
    assert(Number.isInteger(t.bytes));
  }
  // Every block kept is flash.
  const s = shape({ n: 4096, d: 64 });
  const all = makeMask({ kind: "random", n: 4096, br: 64, bc: 32, density: 1, seed: 1 });
  for (const causal of [false, true]) {
    assertEquals(
      flashAttentionBytes({ ...s, causal }, { sramBytes: 49152, mask: all }).bytes,
      flashAttentionBytes({ ...s, causal }, { sramBytes: 49152 }).bytes,
    );
  }
});

Deno.test("block-sparse: a mask that does not cover N is a bug (RangeError)", () => {
  assertThrows(
    () => flashAttentionBytes(shape({}), { sramBytes: 64, mask: grid(9, 4, 4, []) }),
    RangeError,
  );
  assertThrows(() => lowerBoundBytes(shape({}), grid(16, 4, 4, [])), RangeError);
});

Deno.test("flash traffic falls as SRAM grows", () => {
  const s = shape({ n: 4096, d: 64, heads: 16 });
  const srams = [4096, 8192, 16384, 32768, 49152, 102400, 262144];
  const bytes = srams.map((sramBytes) => flashAttentionBytes(s, { sramBytes }).bytes);
  for (let i = 1; i < bytes.length; i++) {
    assert(bytes[i]! < bytes[i - 1]!, `SRAM ${srams[i]} moved ${bytes[i]} ≥ ${bytes[i - 1]}`);
  }
  // Θ(N²d²/M): doubling M roughly halves the Tc term
  const t1 = flashAttentionBytes(s, { sramBytes: 16384 });
  const t2 = flashAttentionBytes(s, { sramBytes: 32768 });
  assertEquals([t1.tc, t2.tc], [256, 128]);
});

Deno.test("standard traffic grows as N²", () => {
  const at = (n: number) => standardAttentionBytes(shape({ n, d: 64 })).bytes;
  // (4·4N² + 8Nd) / (4N² + 4Nd) at N = 1024, d = 64: 16896 / 4352
  assertAlmostEquals(at(2048) / at(1024), 16896 / 4352, 1e-12);
  assertAlmostEquals(at(65536) / at(32768), 4, 0.01);
});

Deno.test("block-size override: Bc = B gives Tc = ⌈N / B⌉", () => {
  const s = shape({ n: 1024, d: 64 });
  const at = (b: number) => flashAttentionBytes(s, { sramBytes: 49152, bc: b });
  assertEquals(at(64).tc, 16);
  assertEquals(at(128).tc, 8);
  // 2Nd + 8 · (3Nd + 4N) elements · 4 bytes
  assertEquals(at(128).bytes, (131072 + 8 * 200704) * 4);
});

Deno.test("lowerBoundBytes: read Q, K, V and write O once", () => {
  assertEquals(lowerBoundBytes(shape({})), 256); // 4 · 8 · 2 · 4
  assertEquals(lowerBoundBytes(shape({ causal: true })), 256);
  assertEquals(
    lowerBoundBytes(shape({ batch: 2, heads: 16, n: 1024, d: 64, dtype: "f16" })),
    16777216,
  );
});

Deno.test("lowerBoundBytes with a mask: only the rows of Q, K, V (and O) it uses", () => {
  // Block (0, 1) of a 4 × 4 grid: queries 0..3 read and written, keys 4..7 read; 2·2·(4 + 4)·4.
  assertEquals(lowerBoundBytes(shape({}), grid(8, 4, 4, [[0, 1]])), 128);
  // Causal: that block is wholly above the diagonal, nothing is attended.
  assertEquals(lowerBoundBytes(shape({ causal: true }), grid(8, 4, 4, [[0, 1]])), 0);
  // Causal, block (1, 0) of a 3-row × 5-col grid: queries 3..5 × keys 0..4, k ≤ q: every query,
  // keys 0..4 (key 4 ≤ query 5); block (0, 1): queries 0..2 × keys 5..7, all above: unused.
  assertEquals(
    lowerBoundBytes(shape({ causal: true }), grid(8, 3, 5, [[1, 0], [0, 1]])),
    2 * 2 * (3 + 5) * 4,
  );
  // Every block kept: 4Nd.
  const all = grid(8, 3, 5, [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]);
  assertEquals(lowerBoundBytes(shape({}), all), 256);
  assertEquals(lowerBoundBytes(shape({ causal: true }), all), 256);
});

Deno.test("flashQueryOuterBytes: Q and O once, K and V per query block, LSE in f32", () => {
  // N = 8, d = 2, br = 2: Tr = 4; (32 + 4 · 32) · 4 + 8 · 4
  assertEquals(flashQueryOuterBytes(shape({}), 2), 672);
  // partial last block: N = 10, br = 4: Tr = 3; (40 + 3 · 40) · 4 + 40
  assertEquals(flashQueryOuterBytes(shape({ n: 10 }), 4), 680);
  // f16 and heads: per head (2·16·4 + 2·2·16·4) · 2 + 16 · 4 = 832, Tr = 2
  assertEquals(flashQueryOuterBytes(shape({ n: 16, d: 4, dtype: "f16", heads: 3 }), 8), 3 * 832);
  // falls as br grows
  const s = shape({ n: 4096, d: 64 });
  assert(flashQueryOuterBytes(s, 128) < flashQueryOuterBytes(s, 64));
  // causal: query block i reads keys 0 .. min(N, (i+1)·br) − 1; N = 10, br = 4: 4 + 8 + 10 keys
  assertEquals(flashQueryOuterBytes(shape({ n: 10, causal: true }), 4), (40 + 2 * 2 * 22) * 4 + 40);
});

Deno.test("arithmeticIntensity: FLOPs per byte", () => {
  assertEquals(arithmeticIntensity(512, 256), 2);
  assertThrows(() => arithmeticIntensity(1, 0), RangeError);
});

Deno.test("footprintBytes: the sum of the buffers", () => {
  assertEquals(footprintBytes([]), 0);
  assertEquals(footprintBytes([{ bytes: 256 }, { bytes: 512 }]), 768);
});

Deno.test("fitsDevice: null when every buffer fits, else names buffer and limit", () => {
  // Q of 16 heads · 16384 · 64 f32, and standard's S of 16 · 16384² f32
  const q = { name: "Q", bytes: 67108864 };
  const big = [q, { name: "S", bytes: 17179869184 }];
  const roomy = { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 32 };
  assertEquals(fitsDevice([q], roomy), null);
  assertEquals(
    fitsDevice(big, roomy),
    "does not fit: S is 17.2 GB, device binding limit is 2.15 GB",
  );
  // the tighter limit is named
  const smallBuffer = { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 30 };
  assertEquals(
    fitsDevice(big, smallBuffer),
    "does not fit: S is 17.2 GB, device buffer limit is 1.07 GB",
  );
  // equal to the limit fits, one byte less does not
  const exact = { maxStorageBufferBindingSize: 67108864, maxBufferSize: 2 ** 30 };
  assertEquals(fitsDevice([q], exact), null);
  const tight = { maxStorageBufferBindingSize: 67108863, maxBufferSize: 2 ** 30 };
  assertEquals(
    fitsDevice([q], tight),
    "does not fit: Q is 67.1 MB (67108864 B), device binding limit is 67.1 MB (67108863 B)",
  );
});

Deno.test("formatSi and formatBytes", () => {
  assertEquals(formatBytes(0), "0 B");
  assertEquals(formatBytes(512), "512 B");
  assertEquals(formatBytes(1000), "1.00 kB");
  assertEquals(formatBytes(999_600), "1.00 MB");
  assertEquals(formatBytes(290979840), "291 MB");
  assertEquals(formatSi(2.147483648e9, "FLOP"), "2.15 GFLOP");
});

Deno.test("bad shapes are bugs (RangeError)", () => {
  assertThrows(() => lowerBoundBytes(shape({ n: 0 })), RangeError);
  assertThrows(() => lowerBoundBytes(shape({ d: 1.5 })), RangeError);
  assertThrows(
    () => flashAttentionBytes(shape({}), { sramBytes: 2 }),
    RangeError,
  );
  assertThrows(() => flashQueryOuterBytes(shape({}), 0), RangeError);
});
