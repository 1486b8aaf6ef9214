import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { UsageError } from "../../core/errors.ts";
import { totalBytes } from "../kernel.ts";
import { referenceAttention } from "../reference.ts";
import { decode, pagedDecode } from "./mod.ts";
import { compulsoryDecodeBytes } from "./modeled.ts";
import {
  DECODE_FALLBACK_TILES,
  DECODE_KERNELS,
  DECODE_TILE_CANDIDATES,
  DECODE_UNIFORMS,
  decodeFlops,
  decodeKey,
  decodePlan,
  decodeSource,
  decodeTileProblem,
  decodeWorkgroupBytes,
  defaultSplitTokens,
} from "./program.ts";
import { randomDecodeInputs, referenceDecode } from "./reference.ts";
import { attentionProblem, type DecodeProblem } from "./testing.ts";
import { BlockTableError, buildBlockTables, type DecodeShape } from "./workload.ts";

/** The software adapter's decode tiles: 64 threads, 4 lanes a token, 2 tokens a round. */
const TILES = { br: 64, bc: 64, rm: 2, tx: 4 };

function planOf(p: Omit<DecodeProblem, "count">) {
  const { shape, options, scale } = attentionProblem(p);
  return decodePlan(p.kernel === "decode" ? decode : pagedDecode, {
    shape,
    tiles: TILES,
    options,
    scale,
  });
}

Deno.test("reference: the last row of causal attention over the context", () => {
  // Decode of a sequence of length L is row L − 1 of causal attention over those L tokens.
  const L = 13, d = 32;
  const shape: DecodeShape = { lens: [L], heads: 1, kvHeads: 1, d, dtype: "f32" };
  const x = randomDecodeInputs(shape, 4);
  const q = new Float32Array(L * d);
  q.set(x.q, (L - 1) * d);
  const full = referenceAttention(
    { batch: 1, heads: 1, n: L, d, dtype: "f32", causal: true },
    q,
    x.k,
    x.v,
  );
  const dec = referenceDecode(shape, x);
  for (let c = 0; c < d; c++) assertAlmostEquals(dec[c]!, full[(L - 1) * d + c]!, 1e-12);
});

Deno.test("reference: grouped-query attention equals MHA with the KV heads repeated", () => {
  const gqa: DecodeShape = { lens: [5, 1, 9], heads: 4, kvHeads: 2, d: 32, dtype: "f32" };
  const x = randomDecodeInputs(gqa, 8);
  const mha = { ...gqa, kvHeads: 4 };
  const repeat = (c: Float32Array) => {
    const out = new Float32Array(3 * 4 * x.cap * 32);
    const rows = x.cap * 32;
    for (let s = 0; s < 3; s++) {
      for (let h = 0; h < 4; h++) {
        const from = (s * 2 + Math.floor(h / 2)) * rows;
        out.set(c.subarray(from, from + rows), (s * 4 + h) * rows);
      }
    }
    return out;
  };
  const a = referenceDecode(gqa, x);
  const b = referenceDecode(mha, { ...x, k: repeat(x.k), v: repeat(x.v) });
  assertEquals(a, b);
  // The NaN past each sequence's length is never read.
  assert(a.every(Number.isFinite));
  // Heads 0 and 1 share a KV head but not their query: different outputs.
  assert(a[0] !== a[32]);
});

const SHAPE: DecodeShape = { lens: [100, 5], heads: 2, kvHeads: 1, d: 32, dtype: "f32" };
/** A request's shape for plans made directly: 2 sequences of 300, 4 heads, d = 128. */
const SHAPE_4D = { batch: 2, heads: 4, n: 300, d: 128, dtype: "f16", causal: false } as const;

Deno.test("plan: buffers, bindings, grids and uniforms", () => {
  const tables = buildBlockTables(SHAPE.lens, 16, { seed: 1 });
  const plan = planOf({ kernel: "paged-decode", shape: SHAPE, tables, splitTokens: 64 });
  assertEquals(plan.decode.maxSplits, 2);
  const bytes = Object.fromEntries(plan.buffers.map((b) => [b.name, b.bytes]));
  assertEquals(bytes, {
    q: 2 * 2 * 32 * 4,
    k: tables.poolBlocks * 16 * 32 * 4,
    v: tables.poolBlocks * 16 * 32 * 4,
    lens: 8,
    table: 2 * 7 * 4,
    part_ml: 2 * 2 * 2 * 8,
    part_o: 2 * 2 * 2 * 32 * 4,
    o: 2 * 2 * 32 * 4,
  });
  assertEquals(plan.passes().map((p) => [p.name, p.grid]), [
    ["split", [2, 1, 2]],
    ["combine", [2, 2]],
  ]);
  // The lengths and the tables are structure: written once by the runner, never rotated.
  assertEquals(plan.buffers.filter((b) => b.data).map((b) => b.name), ["lens", "table"]);
  assertEquals(plan.buffers.filter((b) => b.role === "output").map((b) => b.name), ["o"]);
  for (const pass of plan.passes()) {
    const values = Object.fromEntries(pass.uniforms.map((u) => [u.name, u.value]));
    assertEquals(pass.uniforms.map((u) => u.name), DECODE_UNIFORMS.map(([n]) => n));
    assertEquals(values.scale_log2e, Math.LOG2E / Math.sqrt(32));
    delete values.scale_log2e;
    assertEquals(values, {
      seqs: 2,
      heads: 2,
      kv_heads: 1,
      stride: 7,
      block: 16,
      chunk: 64,
      max_splits: 2,
    });
  }
  assertEquals(plan.slots, ["q", "k", "v", "o", "uniform", "lens", "part_ml", "part_o", "table"]);
  const contiguous = planOf({ kernel: "decode", shape: SHAPE, cap: 128 });
  const stride = contiguous.passes()[0]!.uniforms.find((u) => u.name === "stride")!.value;
  assertEquals(stride, 128);
  assert(!contiguous.slots.includes("table"));
  assertEquals(contiguous.buffers.find((b) => b.name === "k")!.bytes, 2 * 128 * 32 * 4);
  assert(!contiguous.buffers.some((b) => b.name === "table"));
});

Deno.test("plan: passes declare no binding of their own and use every buffer they bind", () => {
  for (const kernel of DECODE_KERNELS) {
    const plan = planOf({ kernel, shape: SHAPE });
    for (const pass of plan.passes()) {
      // Bindings and struct Params come from the generated header, numbered from the list.
      assert(!/@binding|struct Params/.test(pass.source), `${kernel} ${pass.name}`);
      for (const b of pass.bindings) {
        assert(pass.source.includes(`${b.buffer}[`), `${kernel} ${pass.name} binds ${b.buffer}`);
      }
      for (const [slot] of pass.moves) assert(plan.slots.includes(slot));
    }
  }
});

Deno.test("plan: keys change with every knob that changes the source", () => {
  const seen = new Map<string, string>();
  const tileSets = [
    { threads: 64, lanes: 4, unroll: 2, segment: 64 },
    { threads: 256, lanes: 8, unroll: 1, segment: 256 },
    { threads: 256, lanes: 8, unroll: 2, segment: 512 },
  ];
  for (const kernel of DECODE_KERNELS) {
    for (const d of [64, 128]) {
      for (const group of [1, 4]) {
        for (const tiles of tileSets) {
          for (const subgroupSize of [0, 32]) {
            for (const pass of ["split", "combine"] as const) {
              const knobs = { kernel, d, group, tiles, subgroupSize };
              const key = decodeKey(knobs, pass);
              const src = decodeSource(knobs, pass);
              if (seen.has(key)) assertEquals(seen.get(key), src, key);
              seen.set(key, src);
            }
          }
        }
      }
    }
  }
  // 2 kernels × 2 d × 2 groups × 3 tiles × subgroups on/off split keys, 2 combine keys (dtype
  // and counting: the runner's).
  assertEquals(seen.size, 48 + 2);
  assertEquals(new Set(seen.values()).size, seen.size, "distinct keys, distinct sources");
  const sg = [...seen.entries()].filter(([k]) => k.endsWith("-sg"));
  assertEquals(sg.length, 24);
  for (const [, src] of sg) assert(src.includes("subgroupShuffleXor") && !src.includes(" red["));
});

Deno.test("tiles: the split pass's knobs, refused when they cannot build it", () => {
  assertEquals(decodeTileProblem(128, TILES), null);
  for (const t of [...DECODE_TILE_CANDIDATES, ...DECODE_FALLBACK_TILES]) {
    for (const d of [32, 64, 128]) assertEquals(decodeTileProblem(d, t), null, `${d}`);
    assert(decodeWorkgroupBytes(128, t) <= 16384, "fits WebGPU's default workgroup memory");
  }
  const bad = (t: Partial<typeof TILES>, d = 128) => decodeTileProblem(d, { ...TILES, ...t });
  assertStringIncludes(bad({ br: 48 }) ?? "", "power of two from 32");
  assertStringIncludes(bad({ br: 16, bc: 16 }) ?? "", "power of two from 32");
  assertStringIncludes(bad({ tx: 3 }) ?? "", "dividing d/4");
  assertStringIncludes(bad({ tx: 16 }, 32) ?? "", "dividing d/4 = 8");
  assertStringIncludes(bad({ rm: 9 }) ?? "", "from 1 to 8");
  assertStringIncludes(bad({ bc: 48 }) ?? "", "multiple of the round (32 tokens)");
  assertStringIncludes(bad({ bc: 4096 }) ?? "", "up to 2048");
  // The kernel's tile rule is this one (the runner refuses such tiles before planning).
  assertEquals(decode.tileProblem(128, { ...TILES, tx: 3 }), bad({ tx: 3 }));
  // The tiles reach the split pass: threads, lanes, tokens per round, segment.
  const plan = decodePlan(decode, { shape: SHAPE_4D, tiles: { br: 128, bc: 256, rm: 4, tx: 8 } });
  const split = plan.passes()[0]!;
  assertStringIncludes(split.key, "/w128-l8-u4-s256");
  assertStringIncludes(split.source, "const WG: u32 = 128u;");
  assertStringIncludes(split.source, "const NG: u32 = 16u;");
  assertStringIncludes(split.source, "const SEG: u32 = 256u;");
});

Deno.test("plan: bad problems refused before anything is built", () => {
  const tables = buildBlockTables(SHAPE.lens, 16, { seed: 1 });
  tables.table[0] = tables.poolBlocks + 3;
  assertThrows(
    () => planOf({ kernel: "paged-decode", shape: SHAPE, tables }),
    BlockTableError,
    "outside the pool",
  );
  const short = buildBlockTables([100, 5], 16, { seed: 1 });
  assertThrows(
    () => planOf({ kernel: "paged-decode", shape: { ...SHAPE, lens: [120, 5] }, tables: short }),
    BlockTableError,
    "sequence 0: context length 120 needs 8 blocks of 16 tokens, its table holds 7",
  );
  assertThrows(
    () => planOf({ kernel: "paged-decode", shape: SHAPE, blockSize: 4 }),
    UsageError,
    "from 8 to 256",
  );
  assertThrows(() => planOf({ kernel: "decode", shape: SHAPE, cap: 99 }), UsageError, "99");
  assertThrows(
    () =>
      planOf({ kernel: "decode", shape: SHAPE, tables: buildBlockTables([5], 16, { seed: 1 }) }),
    UsageError,
    "paged-decode only",
  );
  assertThrows(
    () => planOf({ kernel: "decode", shape: SHAPE, blockSize: 16 }),
    UsageError,
    "paged-decode only",
  );
  assertThrows(
    () => planOf({ kernel: "decode", shape: { ...SHAPE, heads: 32 } }),
    UsageError,
    "at most 16",
  );
  assertThrows(
    () => planOf({ kernel: "decode", shape: SHAPE, splitTokens: 0 }),
    UsageError,
    "per split",
  );
});

Deno.test("default split: a few workgroups per SM of the H200, whole segments", () => {
  const gpu = DECODE_TILE_CANDIDATES[0]!; // 256 threads, segments of 256
  const s = (lens: number[], kvHeads: number, tiles = gpu) =>
    defaultSplitTokens({ lens, heads: kvHeads, kvHeads, d: 128, dtype: "f16" }, tiles);
  // The target: 16 × 16 rows; 132 · 2048 threads / (256 rows · 256) ≈ 4 splits.
  assertEquals(s(Array(16).fill(8192), 16), 2048);
  assertEquals(s(Array(16).fill(2048), 16), 512);
  assertEquals(s([8192], 8), 256); // 132 splits wanted, 32 segments: one segment a split
  assertEquals(s(Array(256).fill(8192), 8), 8192); // 2048 rows: 1 split
  assertEquals(s([100], 1), 256);
  assertEquals(s([1], 1), 256);
  // Smaller workgroups, more splits: 128 threads, 8 splits.
  assertEquals(s(Array(16).fill(8192), 16, DECODE_TILE_CANDIDATES[1]!), 1024);
});

Deno.test("modeled bytes of paged-decode, worked by hand", () => {
  // Sequences of 100 and 5 tokens, 2 query heads on 1 KV head, d = 32 f32 (128 bytes a row),
  // splits of 64, blocks of 16. Split grid 2 × 1 × 2 = 4 workgroups, combine 2 × 2 = 4.
  const plan = planOf({ kernel: "paged-decode", shape: SHAPE, splitTokens: 64 });
  const t = plan.modeledTraffic();
  // Uniforms (32 bytes) and a length (4) per workgroup, 8 workgroups.
  assertEquals(t.uniform, { read: 8 * 32, write: 0 });
  assertEquals(t.lens, { read: 8 * 4, write: 0 });
  // Q: the 2 query rows of the group, once per live split: 2 + 1 live splits.
  assertEquals(t.q, { read: 3 * 2 * 128, write: 0 });
  // K and V: every live row once.
  assertEquals(t.k, { read: 105 * 128, write: 0 });
  assertEquals(t.v, { read: 105 * 128, write: 0 });
  // Table: tile [0, 64) blocks 0–3, tile [64, 100) blocks 4–6, tile [0, 5) block 0: 8 entries.
  assertEquals(t.table, { read: 8 * 4, write: 0 });
  // Partials: 3 live splits × 2 heads, (m, l) 8 bytes and 32 f32 each, written and read once.
  assertEquals(t.part_ml, { read: 48, write: 48 });
  assertEquals(t.part_o, { read: 6 * 128, write: 6 * 128 });
  assertEquals(t.o, { read: 0, write: 4 * 128 });
  // Contiguous: the same without the table.
  const c = planOf({ kernel: "decode", shape: SHAPE, splitTokens: 64 }).modeledTraffic();
  const { table: _, ...rest } = t;
  assertEquals(c, rest);
  // Splits of 40 cut tiles across blocks: [0,40) blocks 0–2, [40,80) 2–4, [80,100) 5–6, and
  // [0,5) block 0: 9 entries; with blocks of 256 one entry a tile: 4.
  const at = (splitTokens: number, blockSize: number) =>
    planOf({ kernel: "paged-decode", shape: SHAPE, splitTokens, blockSize }).modeledTraffic()
      .table!.read;
  assertEquals(at(40, 16), 9 * 4);
  assertEquals(at(40, 256), 4 * 4);
  // Compulsory: K and V once (2 · 105 · 128), Q and O once (2 · 4 · 128).
  assertEquals(compulsoryDecodeBytes(SHAPE), 2 * 105 * 128 + 2 * 4 * 128);
  assert(totalBytes(t) > compulsoryDecodeBytes(SHAPE));
  assertEquals(plan.lowerBoundBytes(), compulsoryDecodeBytes(SHAPE));
  // FLOPs: 4 · 105 tokens · 2 heads · 32.
  assertEquals(plan.flops("fwd"), 4 * 105 * 2 * 32);
  assertEquals(decodeFlops(SHAPE, "bwd"), 2.5 * plan.flops("fwd"));
});

Deno.test("modeled K and V bytes are the compulsory ones for any split", () => {
  for (const splitTokens of [1, 7, 64, 1000]) {
    const shape: DecodeShape = {
      lens: [1, 2, 63, 64, 65, 300],
      heads: 8,
      kvHeads: 2,
      d: 64,
      dtype: "f16",
    };
    const t = planOf({ kernel: "paged-decode", shape, splitTokens }).modeledTraffic();
    const kv = 495 * 2 * 64 * 2;
    assertEquals([t.k!.read, t.v!.read], [kv, kv]);
    assertEquals(t.q!.read + t.o!.write >= 2 * 6 * 8 * 64 * 2, true);
  }
});

Deno.test("the shape and the options must agree; unknown options are refused", () => {
  const shape = { batch: 2, heads: 2, n: 100, d: 32, dtype: "f32", causal: false } as const;
  const plan = (options: Record<string, unknown>) =>
    decodePlan(decode, { shape, tiles: TILES, options });
  assertThrows(() => plan({ lens: [100] }), UsageError, "1 context lengths for a batch of 2");
  assertThrows(() => plan({ lens: [5, 99] }), UsageError, "the longest context is 99");
  assertThrows(() => plan({ kvHeads: 3 }), UsageError, "multiple of KV heads");
  assertThrows(() => plan({ blockSz: 16 }), UsageError, "unknown decode option blockSz");
  assertThrows(() => plan({ lens: [0, 100] }), UsageError, "sequence 0");
  // Without options: every sequence n tokens long, as many KV heads as query heads.
  assertEquals(plan({}).decode.shape.lens, [100, 100]);
  assertEquals(plan({}).decode.shape.kvHeads, 2);
});
