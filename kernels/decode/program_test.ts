import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { UsageError } from "../../core/errors.ts";
import { totalBytes } from "../kernel.ts";
import { referenceAttention } from "../reference.ts";
import { decode, pagedDecode } from "./mod.ts";
import { compulsoryDecodeBytes } from "./modeled.ts";
import {
  DECODE_KERNELS,
  DECODE_UNIFORMS,
  decodeFlops,
  decodeKey,
  decodePlan,
  decodeSource,
  decodeWorkgroupBytes,
  defaultSplitTokens,
} from "./program.ts";
import { randomDecodeInputs, referenceDecode } from "./reference.ts";
import { attentionProblem, type DecodeProblem } from "./testing.ts";
import { BlockTableError, buildBlockTables, type DecodeShape } from "./workload.ts";

/** Tiles are not a knob of the decode kernels; any will do. */
const TILES = { br: 8, bc: 8, rm: 1, tx: 4 };

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
  for (const kernel of DECODE_KERNELS) {
    for (const d of [64, 128]) {
      for (const group of [1, 4]) {
        for (const pass of ["split", "combine"] as const) {
          const knobs = { kernel, d, group };
          const key = decodeKey(knobs, pass);
          const src = decodeSource(knobs, pass);
          if (seen.has(key)) assertEquals(seen.get(key), src, key);
          seen.set(key, src);
        }
      }
    }
  }
  // 2 kernels × 2 d × 2 groups split keys, 2 combine keys (dtype and counting: the runner's).
  assertEquals(seen.size, 8 + 2);
  assertEquals(new Set(seen.values()).size, seen.size, "distinct keys, distinct sources");
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

Deno.test("default split: about 512 workgroups, whole tiles, never more splits than tiles", () => {
  const s = (lens: number[], kvHeads: number) =>
    defaultSplitTokens({ lens, heads: kvHeads, kvHeads, d: 128, dtype: "f16" });
  assertEquals(s([8192], 8), 128); // 64 splits × 8 heads = 512 workgroups
  assertEquals(s(Array(32).fill(8192), 8), 4096); // 2 splits: 512 already
  assertEquals(s(Array(256).fill(8192), 8), 8192); // 1 split
  assertEquals(s([100], 1), 64); // 2 tiles: 2 splits
  assertEquals(s([1], 1), 64);
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
  // Tiles are not a knob: any tiles, the same plan.
  const other = decode.plan({ shape, tiles: { br: 64, bc: 64, rm: 4, tx: 8 } });
  assertEquals(other.passes().map((p) => p.key), plan({}).passes().map((p) => p.key));
  assertEquals(decode.tileProblem(64, { br: 3, bc: 5, rm: 7, tx: 9 }), null);
  assert(decodeWorkgroupBytes(128) <= 16384, "fits WebGPU's default workgroup memory");
});
