import { assert, assertEquals, assertNotEquals, assertRejects, assertThrows } from "@std/assert";
import { formatBytes } from "../../analysis/io_model.ts";
import { BlockMask, makeMask } from "../../kernels/masks.ts";
import { totalBytes } from "../../kernels/kernel.ts";
import { type KernelName, modeledTraffic } from "../../kernels/registry.ts";
import { TILE_CANDIDATES } from "../../kernels/tiles.ts";
import type { AttentionShape, Tiles } from "../../core/shapes.ts";
import { UsageError } from "../../core/errors.ts";
import { parseSizeList } from "../flags.ts";
import { captureOutput } from "../output.ts";
import {
  createModelCommand,
  modelCommand,
  type ModelOptions,
  type ModelReport,
  parseModelArgs,
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
  assertEquals(o.kernels.map((k) => k.name), ["standard", "flash", "block-sparse"]);
  assertEquals(o.ns, [256, 512, 1024, 2048, 4096, 8192, 16384]);
  assertEquals([o.d, o.batch, o.heads, o.dtype, o.causal], [64, 1, 16, "f32", false]);
  assertEquals([o.density, o.sramBytes, o.blockSizes, o.json], [0.25, 49152, null, false]);
  assertEquals([o.mask, o.seed, o.br, o.bc], ["random", 1, null, null]);
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
    "--mask",
    "local",
    "--seed",
    "9",
  ]);
  assertEquals(o.kernels.map((k) => k.name), ["flash", "standard"]);
  assertEquals(o.ns, [512, 1024, 2048]);
  assertEquals([o.d, o.batch, o.heads, o.dtype, o.causal], [128, 2, 8, "f16", true]);
  assertEquals([o.density, o.sramBytes, o.blockSizes, o.br, o.bc], [
    0.5,
    102400,
    [64, 128],
    32,
    16,
  ]);
  assertEquals([o.mask, o.seed], ["local", 9]);
  assertEquals(parseModelArgs(["--help"]), "help");
  assertEquals(parseModelArgs(["-h"]), "help");
});

Deno.test("bad input: each throws a UsageError that names the flag", async () => {
  const cases: [string[], string][] = [
    [["--kernels", "foo"], "--kernels must be one of standard, flash, block-sparse"],
    [["--kernels="], "--kernels must be one of"],
    [["--kernels", ""], "--kernels needs a value"],
    [["--kernels", "flash,,standard"], "--kernels must be one of"],
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
    [["--bc", "1.5"], "--bc"],
    [["--bc", "-16"], "--bc takes a positive value"],
    [["--mask", "diagonal"], "--mask must be one of random, butterfly, local"],
    [["--seed", "x"], "--seed"],
    [["--seed", "-1"], "--seed takes a positive value"],
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
  assertEquals(await createModelCommand().run(["--n", "1024,2048"], io), 0);
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
  // tiles as the GPU would choose them for M = 49152 bytes
  assert(flashRow.includes("64×32"), flashRow);
  assert(io.stdout.find((l) => l.startsWith("standard"))?.includes("64×64"), text);
  assert(text.includes("block-sparse mask: s = 0.250 reached, 128 of 512 blocks kept"), text);
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
  // Without modeled bytes every other number is the same, and modeled is null.
  const bare = await runJson(["--n", "1024", "--block-sizes", "64,128"], createModelCommand());
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
  assertEquals(fl!.tiles, { br: 64, bc: 32, rm: 4, tx: 8 });
  assertEquals(bs!.tiles, { br: 64, bc: 32, rm: 4, tx: 8 });
  assertEquals(std!.tiles, { br: 64, bc: 64, rm: 4, tx: 8 });
  assertEquals(
    r.config.tiles.map((t) => [t.kernel, t.tiles?.br, t.tiles?.bc, t.source, t.note]),
    [
      ["standard", 64, 64, "sram", null],
      ["flash", 64, 32, "sram", null],
      ["block-sparse", 64, 32, "sram", null],
    ],
  );
  assert(fl!.modeledBytes !== null && std!.modeledBytes !== null && bs!.modeledBytes !== null);
  assertEquals(bs!.density, 0.25);
  assertEquals(bs!.mask, {
    kind: "random",
    seed: 1,
    targetDensity: 0.25,
    density: 0.25,
    nnz: 128,
    blocks: 512,
  });
  assertEquals([std!.mask, fl!.mask], [null, null]);
  // Algorithm 5 on its 48 × 48 grid visits the blocks holding an entry of the 64 × 32 mask:
  // 2Nd + passRows · (3d + 4) elements a head, whole bytes, s measured on that grid.
  const passRows = bs!.theoretical.passRows!;
  assertEquals(bs!.theoretical.bytes, (131072 + passRows * 196) * 64);
  assert(Number.isInteger(bs!.theoretical.bytes));
  assert(bs!.theoretical.density >= 0.25 && bs!.theoretical.density <= 1);
  assertEquals(fl!.theoretical.passRows, 22 * 1024);
  assertEquals(std!.lowerBoundBytes, 4 * 1024 * 64 * 4 * 16);
  assertEquals(std!.flops, 4 * 16 * 1024 * 1024 * 64);
  assertEquals(bs!.flops, std!.flops / 4);
  // Q, K, V, O; S and P; P·V's partial sums: 16 heads × 1024 / 64 row blocks = 256 workgroups,
  // so 4 key splits (standard/mod.ts, pvSplits), each N·d f32 a head.
  assertEquals(
    std!.footprintBytes,
    4 * 1024 * 64 * 4 * 16 + 2 * 1024 * 1024 * 4 * 16 + 4 * 1024 * 64 * 4 * 16,
  );
  // block-sparse mask on its 64×32 tiles: Tr = 16, Tc = 32, nnz = 128: rowptr 17 · 4, colidx 128 · 4
  assertEquals(bs!.footprintBytes, fl!.footprintBytes! + 17 * 4 + 128 * 4);
  assertEquals(size.standardOverFlash.theoretical, (4456448 * 64) / 290979840);
  assertEquals(size.standardOverFlash.modeled, std!.modeledBytes! / fl!.modeledBytes!);
  assertEquals(r.blockSizes?.[0]?.rows.map((row) => row.blocks), [16, 8]);

  const bareSize = bare.sizes[0]!;
  assertEquals(bareSize.kernels.map((k) => k.modeledBytes), [null, null, null]);
  assertEquals(bareSize.kernels.map((k) => k.intensity.modeled), [null, null, null]);
  assertEquals(bareSize.standardOverFlash.modeled, null);
  const withoutModeled = (k: ModelReport["sizes"][number]["kernels"][number]) => ({
    ...k,
    modeledBytes: null,
    intensity: { ...k.intensity, modeled: null },
  });
  assertEquals(bareSize.kernels, size.kernels.map(withoutModeled));
  assertEquals([bare.config, bare.sram, bare.blockSizes], [r.config, r.sram, r.blockSizes]);
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
    modeled: ({ name: kernel }, shape, tiles, mask) => {
      assertEquals(mask === null, kernel !== "block-sparse");
      if (mask) assertEquals([mask.br, mask.bc, mask.kind], [tiles.br, tiles.bc, "random"]);
      calls.push(`${kernel}/${shape.n}/${tiles.br}×${tiles.bc}/${mask?.density ?? 1}`);
      if (kernel === "block-sparse") return null;
      return kernel === "standard" ? 4e8 : 1e8;
    },
  });
  const r = await runJson(["--n", "1024", "--density", "0.5"], cmd);
  assertEquals(calls, [
    "standard/1024/64×64/1",
    "flash/1024/64×32/1",
    "block-sparse/1024/64×32/0.5",
  ]);
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
  for (
    const flag of [
      "--kernels",
      "--n",
      "--d",
      "--batch",
      "--heads",
      "--dtype",
      "--causal",
      "--density",
      "--mask",
      "--seed",
      "--sram",
      "--br",
      "--bc",
      "--block-sizes",
      "--json",
    ]
  ) {
    assert(text.includes(flag), flag);
  }
  assertEquals(modelCommand.name, "model");
  assertEquals(modelCommand.help, text);
});

function shapeOf(r: ModelReport, n: number): AttentionShape {
  const c = r.config;
  return { batch: c.batch, heads: c.heads, n, d: c.d, dtype: c.dtype, causal: c.causal };
}

Deno.test("modeled column: totalBytes(modeledTraffic(...)) with the kernel's tiles and mask", async () => {
  // Partial tiles (N = 1000), causal, f16, a non-default seed and mask.
  const args = ["--n", "1000", "--d", "32", "--batch", "2", "--heads", "3", "--dtype", "f16"];
  args.push("--causal", "--mask", "butterfly", "--density", "0.3", "--seed", "7");
  const r = await runJson(args);
  const shape = shapeOf(r, 1000);
  const kernels = r.sizes[0]!.kernels;
  assertEquals(kernels.length, 3);
  for (const k of kernels) {
    const tiles = k.tiles;
    if (tiles === null) throw new Error(`${k.kernel} has no tiles`);
    const mask = k.kernel === "block-sparse"
      ? makeMask({
        kind: "butterfly",
        n: 1000,
        br: tiles.br,
        bc: tiles.bc,
        density: 0.3,
        seed: 7,
      })
      : null;
    assertEquals(
      k.modeledBytes,
      totalBytes(modeledTraffic(k.kernel, shape, tiles, mask)),
      k.kernel,
    );
    if (mask) {
      // butterfly overshoots: the numbers use the density reached, not the target
      assertEquals(k.mask?.density, mask.density);
      assertEquals(k.density, mask.density);
      assertEquals(k.mask?.nnz, mask.nnz);
      assertNotEquals(mask.density, 0.3);
    }
  }

  const io = captureOutput();
  assertEquals(await modelCommand.run(args, io), 0);
  const header = io.stdout.find((l) => l.startsWith("kernel")) ?? "";
  const cells = (line: string) => line.trim().split(/\s{2,}/);
  const column = cells(header).indexOf("modeled");
  assert(column > 0, header);
  for (const k of kernels) {
    const row = io.stdout.find((l) => l.startsWith(k.kernel + " ")) ?? "";
    assertEquals(cells(row)[column], formatBytes(k.modeledBytes!), row);
    assertEquals(cells(row)[cells(header).indexOf("tiles")], `${k.tiles!.br}×${k.tiles!.bc}`);
  }
});

Deno.test("modeled: standard moves more bytes than flash at N = 4096, d = 64", async () => {
  const r = await runJson(["--n", "4096", "--d", "64", "--kernels", "standard,flash"]);
  const [std, fl] = r.sizes[0]!.kernels;
  assert(std!.modeledBytes! > fl!.modeledBytes!, `${std!.modeledBytes} ${fl!.modeledBytes}`);
  assert(r.sizes[0]!.standardOverFlash.modeled! > 1);
});

Deno.test("--br/--bc: modeled flash bytes follow the given tiles", async () => {
  const base = await runJson(["--n", "2048", "--kernels", "flash"]);
  const r = await runJson(["--n", "2048", "--kernels", "flash", "--br", "16", "--bc", "16"]);
  const before = base.sizes[0]!.kernels[0]!;
  const after = r.sizes[0]!.kernels[0]!;
  const tiles = { br: 16, bc: 16, rm: 1, tx: 1 };
  assertEquals(after.tiles, tiles);
  assertEquals(r.config.tiles[0]?.source, "flags");
  assertEquals(
    after.modeledBytes,
    totalBytes(modeledTraffic("flash", shapeOf(r, 2048), tiles, null)),
  );
  assertNotEquals(after.modeledBytes, before.modeledBytes);
  // smaller query tiles re-read K and V more often
  assert(after.modeledBytes! > before.modeledBytes!);
  // same loop order: the query-outer count plus one 16-byte uniform read per workgroup
  // (Tr = 2048 / 16 = 128 per head, 16 heads)
  assertEquals(after.modeledBytes, after.queryOuterBytes! + 16 * 128 * 16);

  // One alone keeps the other from the GPU's choice (64×32 at M = 49152).
  const brOnly = await runJson(["--n", "2048", "--kernels", "flash", "--br", "16"]);
  assertEquals(brOnly.sizes[0]!.kernels[0]!.tiles, { br: 16, bc: 32, rm: 1, tx: 1 });
  const bcOnly = await runJson(["--n", "2048", "--kernels", "flash", "--bc", "16"]);
  assertEquals(bcOnly.sizes[0]!.kernels[0]!.tiles, { br: 64, bc: 16, rm: 1, tx: 1 });
});

Deno.test("--br/--bc: block-sparse builds its mask and footprint on the given tiles", async () => {
  const r = await runJson([
    "--n",
    "1024",
    "--kernels",
    "flash,block-sparse",
    "--br",
    "32",
    "--bc",
    "128",
  ]);
  const [fl, bs] = r.sizes[0]!.kernels;
  // 32 × 8 blocks, a quarter kept
  assertEquals([bs!.mask?.blocks, bs!.mask?.nnz], [256, 64]);
  assertEquals(bs!.footprintBytes, fl!.footprintBytes! + 33 * 4 + 64 * 4);
});

Deno.test("--br/--bc larger than M: modeled anyway, with a note", async () => {
  const io = captureOutput();
  assertEquals(
    await modelCommand.run(["--n", "256", "--kernels", "flash", "--br", "256", "--bc", "256"], io),
    0,
  );
  const text = io.stdout.join("\n");
  assert(text.includes("note: flash: 256×256 needs"), text);
  assert(text.includes("more than M = 49152; modeled anyway"), text);
  const row = io.stdout.find((l) => l.startsWith("flash")) ?? "";
  assert(row.includes("256×256") && !row.includes("—"), row);
});

Deno.test("modeled bytes depend on br and bc only, not on rm or tx", () => {
  const kernels: KernelName[] = ["standard", "flash", "block-sparse"];
  for (const causal of [false, true]) {
    const shape: AttentionShape = { batch: 1, heads: 2, n: 200, d: 64, dtype: "f32", causal };
    for (const t of TILE_CANDIDATES) {
      const mask = makeMask({ kind: "random", n: 200, br: t.br, bc: t.bc, density: 0.4, seed: 3 });
      for (const kernel of kernels) {
        const m = kernel === "block-sparse" ? mask : null;
        const bytes = (tiles: Tiles) => totalBytes(modeledTraffic(kernel, shape, tiles, m));
        assertEquals(bytes({ ...t, rm: 1, tx: 1 }), bytes(t), `${kernel} ${JSON.stringify(t)}`);
      }
    }
  }
});

Deno.test("no tile candidate fits M: modeled shows — with a note, no crash", async () => {
  const args = ["--n", "1024", "--sram", "4096", "--d", "128"];
  const io = captureOutput();
  assertEquals(await modelCommand.run(args, io), 0);
  const text = io.stdout.join("\n");
  for (const kernel of ["standard", "flash", "block-sparse"]) {
    assert(text.includes(`note: ${kernel}: no tile candidate fits M = 4096 bytes`), text);
    const row = io.stdout.find((l) => l.startsWith(kernel + " ")) ?? "";
    assert(/^\S+\s+—\s+\S+ [GMk]?B\s+—\s+—/.test(row), row);
  }
  assert(text.includes("modeled —"), text);

  const r = await runJson(args);
  for (const k of r.sizes[0]!.kernels) {
    assertEquals([k.tiles, k.modeledBytes, k.queryOuterBytes, k.mask], [null, null, null, null]);
    assert(k.theoretical.bytes > 0);
  }
  assertEquals(r.sizes[0]!.kernels.map((k) => k.footprintBytes === null), [false, false, true]);
  assert(r.config.tiles.every((t) => t.tiles === null && t.note?.includes("raise --sram")));
});

Deno.test("--mask and --seed: the block-sparse mask is the one makeMask builds", async () => {
  const r = await runJson([
    "--n",
    "512",
    "--kernels",
    "block-sparse",
    "--mask",
    "local",
    "--seed",
    "5",
  ]);
  const bs = r.sizes[0]!.kernels[0]!;
  const mask = makeMask({ kind: "local", n: 512, br: 64, bc: 32, density: 0.25, seed: 5 });
  assert(mask instanceof BlockMask);
  assertEquals(bs.mask, {
    kind: "local",
    seed: 5,
    targetDensity: 0.25,
    density: mask.density,
    nnz: mask.nnz,
    blocks: mask.bits.length,
  });
  assertEquals([r.config.mask, r.config.seed], ["local", 5]);
  const io = captureOutput();
  await modelCommand.run(["--n", "512", "--mask", "local", "--seed", "5"], io);
  assert(io.stdout[0]?.includes("block-sparse local mask (seed 5) of target density s = 0.25"));
});

Deno.test("block-sparse at low density: modeled and theoretical stay above the lower bound", async () => {
  // The case of issue 15: one kept 64 × 32 block of 32; K and V blocks the mask never uses are
  // not read, so the floor counts only the rows the mask uses (here 64 queries, 32 keys).
  const args = ["--n", "256", "--kernels", "block-sparse", "--density", "0.01", "--heads", "1"];
  const r = await runJson(args);
  const bs = r.sizes[0]!.kernels[0]!;
  assertEquals(bs.mask?.nnz, 1);
  assertEquals(bs.lowerBoundBytes, 2 * 64 * (64 + 32) * 4);
  assert(bs.modeledBytes! >= bs.lowerBoundBytes, `${bs.modeledBytes} < ${bs.lowerBoundBytes}`);
  assert(bs.theoretical.bytes >= bs.lowerBoundBytes);
  assert(Number.isInteger(bs.theoretical.bytes));
  // A 64-row block spans 2 of the 48-row blocks, a 32-key block 1 or 2 of the 48-key blocks:
  // Algorithm 5 visits 2 or 4 of its 6 × 6 blocks.
  assert([2, 4].includes(Math.round(bs.theoretical.density * 36)), `${bs.theoretical.density}`);
});

Deno.test("--causal: theoretical, query-outer and the block-size table all skip masked blocks", async () => {
  const r = await runJson(["--n", "1024", "--causal", "--kernels", "flash", "--block-sizes", "64"]);
  const fl = r.sizes[0]!.kernels[0]!;
  // query-outer with br = 64: query block i reads keys 0 .. 64(i+1) − 1: Σ = 64 · (1 + … + 16)
  const keyRows = 64 * (16 * 17) / 2;
  assertEquals(fl.queryOuterBytes, (2 * 1024 * 64 + 2 * 64 * keyRows) * 4 * 16 + 1024 * 4 * 16);
  // our kernel with 64 × 32 tiles skips the same keys: modeled is query-outer + uniform reads
  assertEquals(fl.modeledBytes, fl.queryOuterBytes! + 16 * 16 * 16);
  const row = r.blockSizes![0]!.rows[0]!;
  assertEquals(row.queryOuterBytes, fl.queryOuterBytes);
  // Bc = Br = 64: Σⱼ (N − 64j) = 64 · (16 + … + 1) rows of the Tc term
  assertEquals(row.flashTheoreticalBytes, (131072 + 64 * 136 * 196) * 64);
  const io = captureOutput();
  await modelCommand.run(["--n", "1024", "--causal", "--kernels", "flash"], io);
  assert(io.stdout.some((l) => l.startsWith("causal: every column skips")), io.stdout.join("\n"));
});

Deno.test("--pass bwd and fwd+bwd: the backward's bytes and FLOPs; a bad pass is refused", async () => {
  const args = ["--n", "1024", "--d", "64", "--batch", "64", "--heads", "16", "--dtype", "f16"];
  const bwd = await runJson([...args, "--pass", "bwd", "--kernels", "standard,flash"]);
  const [std, fl] = bwd.sizes[0]!.kernels;
  assertEquals([std!.kernel, fl!.kernel], ["standard-bwd", "flash-bwd"]);
  // Algorithm 3: (7N² + 8Nd) elements a head, f16, 1024 heads.
  assertEquals(std!.theoretical.bytes, (7 * 1024 ** 2 + 8 * 1024 * 64) * 2 * 1024);
  // Figure 2 (left)'s shape, default tiles: kernels/backward/README.md's table (26.18, 18.67 GB;
  // flash-bwd takes its own 32 × 32 candidate first since issue 13's v2).
  assertEquals(Math.round(std!.modeledBytes! / 1e7), 2618);
  assertEquals(Math.round(fl!.modeledBytes! / 1e7), 1867);
  assertEquals(fl!.flops, 2.5 * 4 * 1024 * 1024 ** 2 * 64);
  const both = await runJson([...args, "--pass", "fwd+bwd", "--kernels", "flash"]);
  assertEquals(both.sizes[0]!.kernels[0]!.kernel, "flash-fwd+bwd");
  assertEquals(both.sizes[0]!.kernels[0]!.flops, 3.5 * 4 * 1024 * 1024 ** 2 * 64);
  // The default kernel list follows the pass.
  const all = await runJson(["--n", "64", "--pass", "bwd"]);
  assertEquals(all.sizes[0]!.kernels.map((k) => k.kernel), [
    "standard-bwd",
    "flash-bwd",
    "block-sparse-bwd",
  ]);
  // A UsageError: cli/main.ts prints it on one line and exits 2.
  for (const bad of [["--pass", "backward"], ["--pass", "bwd", "--kernels", "nope"]]) {
    await assertRejects(() => modelCommand.run(bad, captureOutput()), UsageError, bad.at(-1));
  }
});
