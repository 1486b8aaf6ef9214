import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { UsageError } from "../errors.ts";
import { captureOutput } from "../output.ts";
import {
  createModelCommand,
  modelCommand,
  type ModelOptions,
  type ModelReport,
  parseModelArgs,
  parseSizeList,
} from "./model.ts";

/** Parses flags that are not `--help` (the std assert build is untyped: it cannot narrow). */
function options(args: string[]): ModelOptions {
  const o = parseModelArgs(args);
  if (o === "help") throw new Error("unexpected help");
  return o;
}

async function runJson(args: string[], cmd = modelCommand): Promise<ModelReport> {
  const io = captureOutput();
  assertEquals(await cmd.run([...args, "--json"], io), 0);
  return JSON.parse(io.stdout.join("\n"));
}

Deno.test("parseSizeList: lists and power-of-two ranges", () => {
  assertEquals(parseSizeList("256..2048", "--n"), [256, 512, 1024, 2048]);
  assertEquals(parseSizeList("1024", "--n"), [1024]);
  assertEquals(parseSizeList("100, 64..128,64", "--n"), [100, 64, 128]);
  assertEquals(parseSizeList("512..512", "--n"), [512]);
  for (const bad of ["", "abc", "0", "1.5", "-4", "256..1000", "100..200", "512..256", "1,,2"]) {
    assertThrows(() => parseSizeList(bad, "--n"), UsageError, "--n");
  }
});

Deno.test("parseModelArgs: defaults", () => {
  const o = options([]);
  assertEquals(o.kernels, ["standard", "flash", "block-sparse"]);
  assertEquals(o.ns, [256, 512, 1024, 2048, 4096, 8192, 16384]);
  assertEquals([o.d, o.batch, o.heads, o.dtype, o.causal], [64, 1, 16, "f32", false]);
  assertEquals([o.density, o.sramBytes, o.blockSizes, o.json], [0.25, 49152, null, false]);
});

Deno.test("parseModelArgs: every flag", () => {
  const o = options([
    "--kernels=flash,standard",
    "--n",
    "512..2048",
    "--d",
    "128",
    "--batch",
    "2",
    "--heads",
    "8",
    "--dtype",
    "f16",
    "--causal",
    "--density",
    "0.5",
    "--sram",
    "102400",
    "--block-sizes",
    "64,128",
    "--br",
    "32",
    "--bc",
    "16",
  ]);
  assertEquals(o.kernels, ["flash", "standard"]);
  assertEquals(o.ns, [512, 1024, 2048]);
  assertEquals([o.d, o.batch, o.heads, o.dtype, o.causal], [128, 2, 8, "f16", true]);
  assertEquals([o.density, o.sramBytes, o.blockSizes, o.br, o.bc], [
    0.5,
    102400,
    [64, 128],
    32,
    16,
  ]);
  assertEquals(parseModelArgs(["--help"]), "help");
});

Deno.test("bad input: each throws a UsageError that names the flag", async () => {
  const cases: [string[], string][] = [
    [["--kernels", "foo"], "unknown kernel"],
    [["--kernels="], "unknown kernel"],
    [["--kernels", ""], "--kernels needs a value"],
    [["--kernels", "flash,,standard"], "unknown kernel"],
    [["--dtype", "f64"], "--dtype"],
    [["--d", "48"], "--d"],
    [["--d", "abc"], "--d"],
    [["--d", "64.0"], "--d"],
    [["--n", "0"], "--n"],
    [["--n=-5"], "--n"],
    [["--n", "1.5"], "--n"],
    [["--n", "abc"], "--n"],
    [["--n"], "--n"],
    [["--n", "256..1000"], "--n"],
    [["--density", "0"], "--density"],
    [["--density", "1.5"], "--density"],
    [["--density", "abc"], "--density"],
    [["--density", ""], "--density"],
    [["--density="], "--density"],
    [["--n="], "--n"],
    [["--density", "-0.5"], "--density takes a positive value"],
    [["--n", "-5"], "--n takes a positive value"],
    [["--sram", "0"], "--sram"],
    [["--sram", "3"], "--sram"],
    [["--sram", "48KB"], "--sram"],
    [["--batch", "0"], "--batch"],
    [["--heads", "x"], "--heads"],
    [["--br", "0"], "--br"],
    [["--block-sizes", "0"], "--block-sizes"],
    [["--bogus"], "unknown flag --bogus"],
    [["--bogus=1"], "unknown flag --bogus"],
    [["stray"], "positional"],
  ];
  for (const [args, includes] of cases) {
    assertThrows(() => parseModelArgs(args), UsageError, includes, args.join(" "));
    const io = captureOutput();
    const e = await assertRejects(() => modelCommand.run(args, io), UsageError);
    assertEquals((e as UsageError).exitCode, 2);
    assert(!(e as Error).message.includes("\n"), "one-line message");
    assertEquals(io.stdout, []);
  }
});

Deno.test("table: header states M's unit; one table per N; modeled absent shows —", async () => {
  const io = captureOutput();
  assertEquals(await modelCommand.run(["--n", "1024,2048"], io), 0);
  const text = io.stdout.join("\n");
  assert(text.includes("M = 49152 bytes = 12288 f32 elements"), text);
  assert(text.includes("Bc = ⌈M/4d⌉ = 48"), text);
  assert(text.includes("N = 1024  (Tc = ⌈N/Bc⌉ = 22; query-outer Tr = ⌈N/br⌉ = 16)"), text);
  assert(text.includes("N = 2048"), text);
  const flashRow = io.stdout.find((l) => l.startsWith("flash")) ?? "";
  // theoretical 291 MB, query-outer 143 MB, modeled —, lower bound 16.8 MB
  assert(flashRow.includes("291 MB") && flashRow.includes("143 MB"), flashRow);
  assert(flashRow.includes("—") && flashRow.includes("16.8 MB"), flashRow);
  assert(text.includes("standard/flash: theoretical 0.980×, modeled —"), text);
});

Deno.test("table: f16 halves M's element count's width", async () => {
  const io = captureOutput();
  await modelCommand.run(["--n", "256", "--dtype", "f16"], io);
  assert(io.stdout.join("\n").includes("M = 49152 bytes = 24576 f16 elements"));
});

Deno.test("table: --block-sizes adds the block-size table", async () => {
  const io = captureOutput();
  await modelCommand.run(["--n", "1024", "--block-sizes", "64..512", "--kernels", "flash"], io);
  const text = io.stdout.join("\n");
  assert(text.includes("HBM traffic vs block size at N = 1024"), text);
  // Bc = 128: (2Nd + 8 · (3Nd + 4N)) · 4 bytes · 16 heads = 1736704 · 64 = 111 MB
  assert(io.stdout.some((l) => /^128\s+8\s+111 MB/.test(l)), text);
  assert(!text.includes("standard/flash"), "no ratio without standard");
});

Deno.test("--json: parses, same numbers as the table", async () => {
  const r = await runJson(["--n", "1024", "--block-sizes", "64,128"]);
  assertEquals(r.sram, { bytes: 49152, elements: 12288, dtype: "f32", bc: 48, br: 48 });
  assertEquals(r.sizes.length, 1);
  const size = r.sizes[0]!;
  assertEquals(size.n, 1024);
  assertEquals(size.kernels.map((k) => k.kernel), ["standard", "flash", "block-sparse"]);
  const [std, fl, bs] = size.kernels;
  // standard: (4N² + 4Nd) · 4 · 16
  assertEquals(std!.theoretical.bytes, 4456448 * 64);
  // flash: 4546560 elements · 4 · 16
  assertEquals(fl!.theoretical.bytes, 290979840);
  assertEquals(fl!.theoretical.tc, 22);
  // query-outer, br = 64: (2Nd + 16 · 2Nd) · 4 · 16 + 1024 · 4 · 16
  assertEquals(fl!.queryOuterBytes, (131072 + 16 * 131072) * 64 + 65536);
  assertEquals(fl!.modeledBytes, null);
  assertEquals(bs!.density, 0.25);
  assertEquals(bs!.theoretical.bytes, (131072 + 0.25 * 22 * 200704) * 64);
  assertEquals(std!.lowerBoundBytes, 4 * 1024 * 64 * 4 * 16);
  assertEquals(std!.flops, 4 * 16 * 1024 * 1024 * 64);
  assertEquals(bs!.flops, std!.flops / 4);
  assertEquals(std!.footprintBytes, 4 * 1024 * 64 * 4 * 16 + 2 * 1024 * 1024 * 4 * 16);
  // block-sparse mask: Tr = Tc = 16, nnz = 64: rowptr 17 · 4, colidx 64 · 4
  assertEquals(bs!.footprintBytes, fl!.footprintBytes + 17 * 4 + 64 * 4);
  assertEquals(size.standardOverFlash.theoretical, (4456448 * 64) / 290979840);
  assertEquals(size.standardOverFlash.modeled, null);
  assertEquals(r.blockSizes?.[0]?.rows.map((row) => row.blocks), [16, 8]);
});

Deno.test("--json: causal fraction and halved FLOPs", async () => {
  const r = await runJson(["--n", "1024", "--causal", "--kernels", "flash"]);
  const fl = r.sizes[0]!.kernels[0]!;
  assertEquals(r.config.causal, true);
  assert(fl.theoretical.causalFraction > 0.5 && fl.theoretical.causalFraction < 0.53);
  assertEquals(fl.flops, 2 * 16 * 1024 * 1024 * 64);
});

Deno.test("block-size table: flash traffic falls as the block size grows", async () => {
  const r = await runJson(["--n", "4096", "--block-sizes", "16..512"]);
  const rows = r.blockSizes![0]!.rows;
  for (let i = 1; i < rows.length; i++) {
    assert(rows[i]!.flashTheoreticalBytes < rows[i - 1]!.flashTheoreticalBytes);
    assert(rows[i]!.queryOuterBytes < rows[i - 1]!.queryOuterBytes);
  }
});

Deno.test("injected modeled bytes appear in the table, the ratio and JSON", async () => {
  const calls: string[] = [];
  const cmd = createModelCommand({
    modeled: (kernel, shape, density) => {
      calls.push(`${kernel}/${shape.n}/${density}`);
      if (kernel === "block-sparse") return null;
      return kernel === "standard" ? 4e8 : 1e8;
    },
  });
  const r = await runJson(["--n", "1024", "--density", "0.5"], cmd);
  assertEquals(calls, ["standard/1024/1", "flash/1024/1", "block-sparse/1024/0.5"]);
  const [std, fl, bs] = r.sizes[0]!.kernels;
  assertEquals([std!.modeledBytes, fl!.modeledBytes, bs!.modeledBytes], [4e8, 1e8, null]);
  assertEquals(fl!.intensity.modeled, fl!.flops / 1e8);
  assertEquals(r.sizes[0]!.standardOverFlash.modeled, 4);

  const io = captureOutput();
  await cmd.run(["--n", "1024"], io);
  const text = io.stdout.join("\n");
  assert(text.includes("modeled 4.00×"), text);
  assert(io.stdout.find((l) => l.startsWith("flash"))?.includes("100 MB"), text);
});

Deno.test("--help prints the flags and exits 0", async () => {
  const io = captureOutput();
  assertEquals(await modelCommand.run(["--help"], io), 0);
  const text = io.stdout.join("\n");
  for (const flag of ["--kernels", "--n", "--d", "--sram", "--block-sizes", "--json"]) {
    assert(text.includes(flag), flag);
  }
  assertEquals(modelCommand.name, "model");
  assertEquals(modelCommand.help, text);
});
