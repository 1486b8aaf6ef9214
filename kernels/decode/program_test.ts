import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { UsageError } from "../../core/errors.ts";
import { COUNTER_BINDING } from "./prelude.ts";
import { referenceAttention } from "../reference.ts";
import { compulsoryDecodeBytes, decodeTotalBytes, modeledDecodeTraffic } from "./modeled.ts";
import {
  DECODE_KERNELS,
  decodeKey,
  decodePlan,
  decodeSource,
  defaultSplitTokens,
  paramsBytes,
} from "./program.ts";
import { randomDecodeInputs, referenceDecode } from "./reference.ts";
import { BlockTableError, buildBlockTables, type DecodeShape } from "./workload.ts";

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
  const plan = decodePlan({ kernel: "paged-decode", shape: SHAPE, tables, splitTokens: 64 });
  assertEquals(plan.maxSplits, 2);
  const bytes = Object.fromEntries(plan.buffers.map((b) => [b.name, b.bytes]));
  assertEquals(bytes, {
    params: 32,
    q: 2 * 2 * 32 * 4,
    k: tables.poolBlocks * 16 * 32 * 4,
    v: tables.poolBlocks * 16 * 32 * 4,
    lens: 8,
    table: 2 * 7 * 4,
    part_ml: 2 * 2 * 2 * 8,
    part_o: 2 * 2 * 2 * 32 * 4,
    o: 2 * 2 * 32 * 4,
  });
  assertEquals(plan.passes.map((p) => [p.name, p.grid, p.workgroupSize]), [
    ["split", [2, 1, 2], 64],
    ["combine", [2, 2, 1], 8],
  ]);
  assertEquals(plan.params, {
    seqs: 2,
    heads: 2,
    kv_heads: 1,
    stride: 7,
    block: 16,
    chunk: 64,
    max_splits: 2,
    scale_log2e: Math.LOG2E / Math.sqrt(32),
  });
  const words = new Uint32Array(paramsBytes(plan));
  assertEquals([...words.subarray(0, 7)], [2, 2, 1, 7, 16, 64, 2]);
  assertAlmostEquals(new Float32Array(paramsBytes(plan))[7]!, Math.LOG2E / Math.sqrt(32), 1e-7);
  const contiguous = decodePlan({ kernel: "decode", shape: SHAPE, cap: 128 });
  assertEquals(contiguous.params.stride, 128);
  assertEquals(contiguous.buffers.find((b) => b.name === "k")!.bytes, 2 * 128 * 32 * 4);
  assert(!contiguous.buffers.some((b) => b.name === "table"));
});

Deno.test("plan: every pass binds exactly the buffers its WGSL declares, at their numbers", () => {
  for (const kernel of DECODE_KERNELS) {
    for (const count of [false, true]) {
      const plan = decodePlan({ kernel, shape: SHAPE, count });
      const numbers = new Map(plan.buffers.map((b) => [b.name, b.binding]));
      assertEquals(new Set(numbers.values()).size, numbers.size, "binding numbers unique");
      for (const pass of plan.passes) {
        const declared = [...pass.source.matchAll(/@binding\((\d+)\) var/g)].map((m) => +m[1]!);
        const bound = pass.bindings.map((n) => numbers.get(n)!);
        if (count) bound.push(COUNTER_BINDING);
        assertEquals(declared.sort(), bound.sort(), `${kernel} ${pass.name} count=${count}`);
      }
    }
  }
});

Deno.test("plan: keys change with every knob that changes the source", () => {
  const seen = new Map<string, string>();
  for (const kernel of DECODE_KERNELS) {
    for (const dtype of ["f32", "f16"] as const) {
      for (const d of [64, 128]) {
        for (const group of [1, 4]) {
          for (const count of [false, true]) {
            for (const pass of ["split", "combine"] as const) {
              const knobs = { kernel, dtype, d, group, count };
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
  // 2 kernels × 2 dtypes × 2 d × 2 groups × 2 count split keys, 2 × 2 × 2 combine keys.
  assertEquals(seen.size, 32 + 8);
  assertEquals(new Set(seen.values()).size, seen.size, "distinct keys, distinct sources");
});

Deno.test("plan: bad problems refused before anything is built", () => {
  const tables = buildBlockTables(SHAPE.lens, 16, { seed: 1 });
  tables.table[0] = tables.poolBlocks + 3;
  assertThrows(
    () => decodePlan({ kernel: "paged-decode", shape: SHAPE, tables }),
    BlockTableError,
    "outside the pool",
  );
  const short = buildBlockTables([100, 5], 16, { seed: 1 });
  assertThrows(
    () =>
      decodePlan({ kernel: "paged-decode", shape: { ...SHAPE, lens: [120, 5] }, tables: short }),
    BlockTableError,
    "sequence 0: context length 120 needs 8 blocks of 16 tokens, its table holds 7",
  );
  assertThrows(
    () => decodePlan({ kernel: "paged-decode", shape: SHAPE, blockSize: 4 }),
    UsageError,
    "from 8 to 256",
  );
  assertThrows(() => decodePlan({ kernel: "decode", shape: SHAPE, cap: 99 }), UsageError, "99");
  assertThrows(
    () => decodePlan({ kernel: "decode", shape: SHAPE, blockSize: 16 }),
    UsageError,
    "paged-decode only",
  );
  assertThrows(
    () => decodePlan({ kernel: "decode", shape: { ...SHAPE, heads: 32 } }),
    UsageError,
    "at most 16",
  );
  assertThrows(
    () => decodePlan({ kernel: "decode", shape: SHAPE, splitTokens: 0 }),
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
  const plan = decodePlan({ kernel: "paged-decode", shape: SHAPE, splitTokens: 64 });
  const t = modeledDecodeTraffic(plan);
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
  assertEquals(t.partialMl, { read: 48, write: 48 });
  assertEquals(t.partialO, { read: 6 * 128, write: 6 * 128 });
  assertEquals(t.o, { read: 0, write: 4 * 128 });
  // Contiguous: the same without the table.
  const c = modeledDecodeTraffic(decodePlan({ kernel: "decode", shape: SHAPE, splitTokens: 64 }));
  assertEquals(c, { ...t, table: { read: 0, write: 0 } });
  // Splits of 40 cut tiles across blocks: [0,40) blocks 0–2, [40,80) 2–4, [80,100) 5–6, and
  // [0,5) block 0: 9 entries; with blocks of 256 one entry a tile: 4.
  const at = (splitTokens: number, blockSize: number) =>
    modeledDecodeTraffic(
      decodePlan({ kernel: "paged-decode", shape: SHAPE, splitTokens, blockSize }),
    ).table.read;
  assertEquals(at(40, 16), 9 * 4);
  assertEquals(at(40, 256), 4 * 4);
  // Compulsory: K and V once (2 · 105 · 128), Q and O once (2 · 4 · 128).
  assertEquals(compulsoryDecodeBytes(SHAPE), 2 * 105 * 128 + 2 * 4 * 128);
  assert(decodeTotalBytes(t) > compulsoryDecodeBytes(SHAPE));
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
    const t = modeledDecodeTraffic(decodePlan({ kernel: "paged-decode", shape, splitTokens }));
    const kv = 495 * 2 * 64 * 2;
    assertEquals([t.k.read, t.v.read], [kv, kv]);
    assertEquals(t.q.read + t.o.write >= 2 * 6 * 8 * 64 * 2, true);
  }
});
