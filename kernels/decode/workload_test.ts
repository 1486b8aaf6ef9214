import { assert, assertEquals, assertThrows } from "@std/assert";
import { UsageError } from "../../core/errors.ts";
import {
  BlockAllocator,
  BlockTableError,
  buildBlockTables,
  checkDecodeShape,
  contextLengths,
  NO_BLOCK,
  pageCache,
  parseLengthTrace,
  readLengthTrace,
  validateBlockTables,
} from "./workload.ts";

Deno.test("context lengths: list, fixed, uniform and trace, seeded", () => {
  assertEquals(contextLengths({ kind: "list", lens: [3, 1, 4] }), [3, 1, 4]);
  assertEquals(contextLengths({ kind: "fixed", len: 9, count: 2 }), [9, 9]);
  const u = contextLengths({ kind: "uniform", min: 5, max: 8, count: 200, seed: 3 });
  assertEquals(new Set(u), new Set([5, 6, 7, 8]));
  assertEquals(contextLengths({ kind: "uniform", min: 5, max: 8, count: 200, seed: 3 }), u);
  const trace = [17, 1000, 2];
  const t = contextLengths({ kind: "trace", values: trace, count: 100, seed: 9 });
  assert(t.every((n) => trace.includes(n)) && new Set(t).size === 3);
  assertThrows(() => contextLengths({ kind: "list", lens: [3, 0] }), UsageError, "sequence 1");
  assertThrows(() => contextLengths({ kind: "list", lens: [] }), UsageError, "at least one");
  assertThrows(
    () => contextLengths({ kind: "uniform", min: 5, max: 4, count: 1, seed: 1 }),
    UsageError,
    "below the minimum",
  );
  assertThrows(
    () => contextLengths({ kind: "trace", values: [], count: 1, seed: 1 }),
    UsageError,
    "no lengths",
  );
});

Deno.test("length traces: integers, commas, comments; anything else names its line", async () => {
  assertEquals(parseLengthTrace("# a trace\n 12, 40 7\n\n3 # tail\n"), [12, 40, 7, 3]);
  assertThrows(() => parseLengthTrace("12\n4.5\n"), UsageError, 'line 2: "4.5"');
  assertThrows(() => parseLengthTrace("12\n0\n"), UsageError, 'line 2: "0"');
  assertThrows(() => parseLengthTrace("# nothing\n"), UsageError, "holds no lengths");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/t.txt`, "5 6\n");
    assertEquals(await readLengthTrace(`${dir}/t.txt`), [5, 6]);
    await assertRejectsUsage(() => readLengthTrace(`${dir}/missing.txt`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function assertRejectsUsage(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof UsageError && e.message.includes("cannot read"), String(e));
    return;
  }
  throw new Error("did not reject");
}

Deno.test("the allocator hands out every block once and reuses freed ones", () => {
  const a = new BlockAllocator(6);
  const got = [a.allocate(), a.allocate(), a.allocate()];
  assertEquals(got, [0, 1, 2]);
  a.release([1]);
  assertEquals(a.allocate(), 1);
  assertEquals(a.free, 3);
  a.churn(7);
  assertEquals(a.free, 3, "churn returns what it takes");
  const rest = [a.allocate(), a.allocate(), a.allocate()];
  assertEquals(new Set([...got, ...rest]).size, 6);
  assertThrows(() => a.allocate(), UsageError, "exhausted");
  assertThrows(() => new BlockAllocator(0), UsageError);
});

Deno.test("block tables: every token has a block, blocks distinct, scattered, not in order", () => {
  const lens = [1, 16, 17, 100, 33, 250];
  const t = buildBlockTables(lens, 16, { seed: 5 });
  validateBlockTables(lens, t);
  assertEquals(t.stride, Math.ceil(250 / 16));
  const used: number[] = [];
  let outOfOrder = 0, pairs = 0;
  lens.forEach((n, s) => {
    const need = Math.ceil(n / 16);
    const row = [...t.table.subarray(s * t.stride, (s + 1) * t.stride)];
    assert(row.slice(need).every((b) => b === NO_BLOCK), `sequence ${s}: tail empty`);
    const blocks = row.slice(0, need);
    used.push(...blocks);
    for (let i = 1; i < blocks.length; i++, pairs++) {
      if (blocks[i] !== blocks[i - 1]! + 1) outOfOrder++;
    }
  });
  assertEquals(new Set(used).size, used.length, "no block handed out twice");
  assert(used.every((b) => b < t.poolBlocks));
  // A fresh allocator would give sequence 5 consecutive blocks; after churn and interleaved
  // growth, most neighbours in a table are not neighbours in the pool.
  assertEquals(pairs, used.length - lens.length);
  assert(outOfOrder > pairs / 2, `only ${outOfOrder} of ${pairs} neighbours out of order`);
  // Seeded.
  assertEquals(buildBlockTables(lens, 16, { seed: 5 }), t);
  assert(buildBlockTables(lens, 16, { seed: 6 }).table.some((b, i) => b !== t.table[i]));
  assertThrows(() => buildBlockTables(lens, 16, { seed: 1, poolBlocks: 10 }), UsageError, "needs");
});

Deno.test("a malformed block table is refused with a clear message", () => {
  const lens = [20, 40];
  const good = () => buildBlockTables(lens, 16, { seed: 2 });
  const out = good();
  out.table[out.stride + 1] = out.poolBlocks;
  assertThrows(
    () => validateBlockTables(lens, out),
    BlockTableError,
    `block table: sequence 1: entry 1 is block ${out.poolBlocks}, outside the pool`,
  );
  const empty = good();
  empty.table[2] = NO_BLOCK; // sequence 0 (stride 3) needs 2 blocks; entry 2 unused: fine
  validateBlockTables(lens, empty);
  empty.table[1] = NO_BLOCK;
  assertThrows(() => validateBlockTables(lens, empty), BlockTableError, "entry 1 is empty");
  // Too short: sequence 1 needs 3 blocks of 16, a table of stride 2 holds 2.
  const short = { ...good(), stride: 2, table: new Uint32Array(4) };
  assertThrows(
    () => validateBlockTables(lens, short),
    BlockTableError,
    "sequence 1: context length 40 needs 3 blocks of 16 tokens, its table holds 2",
  );
  const wrongSize = { ...good(), table: new Uint32Array(5) };
  assertThrows(() => validateBlockTables(lens, wrongSize), BlockTableError, "holds 5");
  assertThrows(
    () => validateBlockTables(lens, { ...good(), blockSize: 4 }),
    BlockTableError,
    "from 8 to 256",
  );
  assert(new BlockTableError("x") instanceof UsageError);
});

Deno.test("the paged pool holds each token's rows where the table says, NaN elsewhere", () => {
  const lens = [3, 10];
  const kvHeads = 2, d = 4, cap = 12, b = 8;
  const t = buildBlockTables(lens, b, { seed: 3 });
  const contiguous = new Float32Array(2 * kvHeads * cap * d).map((_, i) => i);
  const pool = pageCache(contiguous, lens, kvHeads, d, cap, t);
  let live = 0;
  lens.forEach((n, s) => {
    for (let h = 0; h < kvHeads; h++) {
      for (let p = 0; p < n; p++) {
        const block = t.table[s * t.stride + Math.floor(p / b)]!;
        const at = ((block * kvHeads + h) * b + (p % b)) * d;
        const from = ((s * kvHeads + h) * cap + p) * d;
        assertEquals([...pool.subarray(at, at + d)], [...contiguous.subarray(from, from + d)]);
        live += d;
      }
    }
  });
  assertEquals(pool.filter((x) => !Number.isNaN(x)).length, live);
});

Deno.test("decode shapes: heads a multiple of KV heads, d of 32, 64, 128", () => {
  checkDecodeShape({ lens: [1], heads: 8, kvHeads: 2, d: 128, dtype: "f16" });
  const bad = { lens: [1], heads: 6, kvHeads: 4, d: 64, dtype: "f32" } as const;
  assertThrows(() => checkDecodeShape(bad), UsageError, "multiple of KV heads");
  assertThrows(() => checkDecodeShape({ ...bad, heads: 4, d: 48 }), UsageError, "head dim");
  assertThrows(
    () => checkDecodeShape({ ...bad, heads: 4, lens: [2, 0] }),
    UsageError,
    "sequence 1",
  );
});

Deno.test("a length-trace file drives a batch and its block tables", async () => {
  const values = await readLengthTrace(
    new URL("../../testdata/decode/lengths.txt", import.meta.url).pathname,
  );
  assertEquals(values.length, 48);
  const lens = contextLengths({ kind: "trace", values, count: 16, seed: 1 });
  assert(lens.every((n) => values.includes(n)));
  validateBlockTables(lens, buildBlockTables(lens, 16, { seed: 1 }));
});
