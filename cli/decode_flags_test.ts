import { assert, assertEquals, assertRejects } from "@std/assert";
import { UsageError } from "../core/errors.ts";
import { runKey } from "../core/schema.ts";
import { DECODE_STRING_FLAGS, decodeFlags, decodeProblems } from "./decode_flags.ts";
import { parseCommandFlags, shapeOptions } from "./flags.ts";
import { findKernel } from "../kernels/registry.ts";

const TRACE = new URL("../testdata/decode/lengths.txt", import.meta.url).pathname;

async function parse(args: string[], batch = 2) {
  const raw = parseCommandFlags("verify", args, { string: [...DECODE_STRING_FLAGS] });
  const o = shapeOptions(raw, { ns: [64], batch, heads: 4 });
  return { o, f: await decodeFlags(raw, o) };
}

Deno.test("decode flags: fixed lengths make one problem per n and batch", async () => {
  const { o, f } = await parse([
    "--kernels",
    "decode,paged-decode",
    "--n",
    "5,70",
    "--kv-heads",
    "2",
  ]);
  const ps = decodeProblems(f, o, [3, 1]);
  assertEquals(ps.map((p) => [p.shape.batch, p.shape.n]), [[3, 5], [3, 70], [1, 5], [1, 70]]);
  const paged = findKernel("paged-decode")!;
  const decode = findKernel("decode")!;
  assertEquals(ps[1]!.optionsFor(paged), { lens: [70, 70, 70], kvHeads: 2, blockSize: 16 });
  assertEquals(ps[1]!.optionsFor(decode), { lens: [70, 70, 70], kvHeads: 2 });
  assertEquals(ps[1]!.recordFor(decode), {
    contexts: [70, 70, 70],
    kvHeads: 2,
    blockSize: null,
    lengths: "fixed",
  });
  // Every problem plans (the options agree with the shape).
  for (const p of ps) {
    for (const k of [decode, paged]) {
      k.plan({ shape: p.shape, tiles: { br: 8, bc: 8, rm: 1, tx: 4 }, options: p.optionsFor(k) });
    }
  }
});

Deno.test("decode flags: uniform, trace and a list; seeded", async () => {
  const u = await parse(["--kernels", "decode", "--lengths", "uniform:1..300", "--seed", "3"], 6);
  const [a] = decodeProblems(u.f, u.o, [6]);
  const lens = a!.recordFor(findKernel("decode")!).contexts;
  assertEquals(lens.length, 6);
  assert(lens.every((n) => n >= 1 && n <= 300) && a!.shape.n === Math.max(...lens));
  assertEquals(decodeProblems(u.f, u.o, [6])[0]!.shape, a!.shape, "same seed, same lengths");
  const t = await parse(["--kernels", "decode", "--lengths", `trace:${TRACE}`], 5);
  assertEquals(decodeProblems(t.f, t.o, [5])[0]!.shape.batch, 5);
  const l = await parse([
    "--kernels",
    "paged-decode",
    "--context",
    "17,300,17",
    "--block-size",
    "32",
  ]);
  const [p] = decodeProblems(l.f, l.o, [2]);
  assertEquals([p!.shape.batch, p!.shape.n], [3, 300]);
  assertEquals(p!.recordFor(findKernel("paged-decode")!).blockSize, 32);
});

Deno.test("decode flags: bad values are one-line UsageErrors", async () => {
  const bad: [string[], string][] = [
    [["--kv-heads", "2"], "applies to the decode kernels"],
    [["--kernels", "decode", "--kv-heads", "3"], "must divide --heads 4"],
    [["--kernels", "decode", "--kv-heads", "0"], "--kv-heads must be a positive integer"],
    [["--kernels", "decode", "--block-size", "16"], "--block-size applies to paged-decode"],
    [["--kernels", "paged-decode", "--block-size", "4"], "from 8 to 256"],
    [["--kernels", "paged-decode", "--block-size", "300"], "from 8 to 256"],
    [["--kernels", "decode", "--lengths", "normal"], "fixed, uniform:LO..HI or trace:FILE"],
    [["--kernels", "decode", "--lengths", "uniform:9..3"], "HI must be at least LO"],
    [["--kernels", "decode", "--lengths", "uniform:0..3"], "positive integer"],
    [["--kernels", "decode", "--lengths", "trace:/nonexistent/x"], "cannot read length trace"],
    [["--kernels", "decode", "--lengths", "uniform:1..9", "--n", "4"], "drop --n"],
    [["--kernels", "decode", "--context", "3,,4"], "comma list"],
    [["--kernels", "decode", "--context", "3,0"], "--context must be a positive integer"],
    [["--kernels", "decode", "--context", "3", "--n", "3"], "drop --n"],
    [["--kernels", "decode", "--context", "3", "--batch", "1"], "drop --batch"],
  ];
  for (const [args, why] of bad) {
    await assertRejects(() => parse(args), UsageError, why, args.join(" "));
  }
});

Deno.test("a decode run's key holds its workload; other keys are unchanged", () => {
  const base = {
    kernel: "flash",
    dtype: "f32",
    batch: 1,
    heads: 2,
    n: 37,
    d: 64,
    causal: false,
    density: 1,
    mask: null,
    tile: { br: 8, bc: 8, rm: 2, tx: 4 },
  } as const;
  // deno-lint-ignore no-explicit-any
  const key = (r: any) => runKey(r);
  assertEquals(key(base), "flash/f32/b1/h2/n37/d64/full/s1/dense/t8x8x2x4");
  const d = {
    ...base,
    kernel: "paged-decode",
    decode: { contexts: [37], kvHeads: 1, blockSize: 16, lengths: "fixed" },
  };
  const k1 = key(d);
  assert(k1.startsWith("paged-decode/f32/b1/h2/n37/") && k1.includes("/kv1/block16/ctx1-"));
  assert(key({ ...d, decode: { ...d.decode, contexts: [36] } }) !== k1);
});
