// The registry and the plans every kernel gives, checked for every registered kernel (a new one
// gets these for free, as it gets the reference sweep of attention_test.ts and the byte counts
// of io_count_test.ts): buffers, bindings, slots and references agree with each other; the
// footprint, FLOPs and the paper's bytes are the kernels' own.

import { assert, assertEquals, assertThrows } from "@std/assert";
import { UsageError } from "../core/errors.ts";
import type { AttentionShape } from "../core/shapes.ts";
import {
  flashAttentionBytes,
  flashQueryOuterBytes,
  footprintBytes,
  lowerBoundBytes,
} from "../analysis/io_model.ts";
import { lowerBoundBackwardBytes } from "../analysis/io_model_backward.ts";
import { lowerBoundForwardBackwardBytes } from "./backward/fwd_bwd.ts";
import { mulberry32 } from "../core/rng.ts";
import type { Dtype, MaskKind } from "../core/shapes.ts";
import { planFitsDevice } from "./attention.ts";
import { attentionFlops, emptyTraffic, type Kernel, passTrafficOf, totalBytes } from "./kernel.ts";
import { BlockMask, makeMask } from "./masks.ts";
import {
  allKernels,
  BUILTIN_KERNEL_NAMES,
  displayStyle,
  findKernel,
  FORWARD_BACKWARD_KERNELS,
  kernelForPass,
  KERNELS,
  planFor,
  registerKernel,
  resolveKernel,
  unregisterKernel,
} from "./registry.ts";

function shape(over: Partial<AttentionShape>): AttentionShape {
  return { batch: 1, heads: 1, n: 8, d: 32, dtype: "f32", causal: false, ...over };
}
const TILES = { br: 4, bc: 4, rm: 1, tx: 4 };

Deno.test("a registry entry without a Kernel member does not compile", () => {
  const incomplete = { mine: { name: "mine", plan: () => null } };
  // @ts-expect-error: the entry lacks most of Kernel's members
  incomplete satisfies Record<string, Kernel>;
  assertEquals(BUILTIN_KERNEL_NAMES, [
    "standard",
    "flash",
    "block-sparse",
    "decode",
    "paged-decode",
    "standard-bwd",
    "flash-bwd",
    "block-sparse-bwd",
  ]);
  for (const [key, k] of Object.entries(KERNELS)) assertEquals(k.name, key);
});

Deno.test("names resolve to kernels; an unknown name is a UsageError listing the kernels", () => {
  assertEquals(resolveKernel("flash"), KERNELS.flash);
  assertEquals(findKernel("paged-decode"), KERNELS["paged-decode"]);
  assertEquals(findKernel("paged-decod"), undefined);
  assertThrows(
    () => resolveKernel("paged-decod"),
    UsageError,
    "standard, flash, block-sparse, decode, paged-decode",
  );
  assertEquals(displayStyle("flash").hue, 212);
  assertEquals(displayStyle("someone-elses").label, "someone-elses");
});

Deno.test("--pass resolves a forward kernel's name to its backward and forward + backward", () => {
  for (const name of ["standard", "flash", "block-sparse"]) {
    assertEquals(kernelForPass(name, "fwd").name, name);
    assertEquals(kernelForPass(name, "bwd").name, `${name}-bwd`);
    assertEquals(kernelForPass(name, "fwd+bwd").name, `${name}-fwd+bwd`);
    assertEquals(kernelForPass(`${name}-bwd`, "fwd+bwd").name, `${name}-fwd+bwd`);
    assertEquals(kernelForPass(`${name}-fwd+bwd`, "fwd").name, name);
    assertEquals(
      planFor(`${name}-fwd+bwd`, { shape: shape({}), tiles: TILES }).denseFlops("fwd_bwd"),
      3.5 * attentionFlops(shape({}), "fwd"),
    );
  }
  const mine: Kernel = { ...KERNELS.flash, name: "mine-fwd-only", baseline: null };
  try {
    registerKernel(mine);
    assertThrows(() => kernelForPass("mine-fwd-only", "bwd"), UsageError, "no --pass bwd variant");
  } finally {
    unregisterKernel("mine-fwd-only");
  }
});

Deno.test("registerKernel: a new name is added once; a taken name is refused", () => {
  const mine: Kernel = { ...KERNELS.flash, name: "flash-copy-for-test" };
  try {
    registerKernel(mine);
    registerKernel(mine);
    assertEquals(allKernels().filter((k) => k === mine).length, 1);
    assertEquals(findKernel("flash-copy-for-test"), mine);
    assertThrows(() => registerKernel({ ...mine }), UsageError, "already registered");
    assertThrows(() => registerKernel({ ...KERNELS.standard }), UsageError, "already registered");
  } finally {
    unregisterKernel("flash-copy-for-test");
  }
  assertEquals(findKernel("flash-copy-for-test"), undefined);
});

for (const kernel of [...Object.values(KERNELS), ...FORWARD_BACKWARD_KERNELS]) {
  Deno.test(`${kernel.name}: its plan is consistent (buffers, bindings, slots, references)`, () => {
    for (const causal of [false, true]) {
      const s = shape({ batch: 2, heads: 3, n: 13, causal });
      const plan = kernel.plan({ shape: s, tiles: TILES });
      assertEquals(plan.kernel, kernel);
      const names = plan.buffers.map((b) => b.name);
      assertEquals(new Set(names).size, names.length, "buffer names are unique");
      const outputs = plan.buffers.filter((b) => b.role === "output").map((b) => b.name);
      assert(outputs.length > 0, "at least one output");
      for (const pass of plan.passes()) {
        assert(pass.grid[0] > 0);
        for (const b of pass.bindings) {
          assert(names.includes(b.buffer), `${pass.name}: ${b.buffer}`);
        }
        for (const [slot] of pass.moves) assert(plan.slots.includes(slot), `${pass.name}: ${slot}`);
        assert(pass.uniforms.length > 0 && pass.key !== "" && pass.source.includes("fn main"));
      }
      // Every output is written by some pass, and the reference gives every output.
      const written = plan.passes().flatMap((p) =>
        p.bindings.filter((b) => b.access === "read_write").map((b) => b.buffer)
      );
      for (const o of outputs) assert(written.includes(o), `nothing writes ${o}`);
      const inputs = plan.randomInputs(5);
      const refs = plan.reference(inputs);
      assertEquals(Object.keys(refs).sort(), [...outputs].sort());
      for (const b of plan.buffers.filter((b) => b.name in refs)) {
        assertEquals(refs[b.name]!.length, b.bytes / 4, b.name); // f32: 4 bytes an element
      }
      // Modeled traffic has exactly the declared slots. Split by pass (a kernel's passTraffic,
      // else the slots its moves name) no byte is counted twice, and a backward's passes add up
      // to the whole.
      assertEquals(Object.keys(plan.modeledTraffic()).sort(), [...plan.slots].sort());
      const perPass = passTrafficOf(plan);
      assertEquals(perPass.length, plan.passes().length);
      const sum = emptyTraffic(plan.slots);
      for (const t of perPass) {
        for (const [slot, x] of Object.entries(t)) {
          sum[slot]!.read += x.read;
          sum[slot]!.write += x.write;
        }
      }
      for (const [slot, x] of Object.entries(plan.modeledTraffic())) {
        assert(sum[slot]!.read <= x.read && sum[slot]!.write <= x.write, `${slot} counted twice`);
      }
      if (kernel.mode === "bwd") assertEquals(sum, plan.modeledTraffic());
      assert(totalBytes(plan.modeledTraffic()) > 0);
      // A decode kernel's shape has one query a sequence: 4 · B · H · n · d (n keys each).
      const fwd = kernel.problem === "decode"
        ? 4 * s.batch * s.heads * s.n * s.d
        : attentionFlops(s, "fwd");
      assertEquals(plan.denseFlops("fwd"), fwd);
      assertEquals(plan.denseFlops("bwd"), 2.5 * fwd);
    }
  });
}

Deno.test("footprint: buffers of each kernel", () => {
  const s = shape({ d: 2 });
  const tiles = { br: 4, bc: 4, rm: 1, tx: 1 };
  const at = (kernel: string, over: Partial<AttentionShape> = {}, mask?: BlockMask) =>
    footprintBytes(planFor(kernel, { shape: { ...s, ...over }, tiles, mask }).buffers);
  // Q, K, V, O: 4 · 16 · 4 = 256; S, P: 2 · 64 · 4 = 512
  assertEquals(at("standard"), 768);
  // + LSE 8 · 4
  assertEquals(at("flash"), 288);
  // Tr = Tc = 2: rowptr 3 · 4, colidx 4 · 4 with every block kept, 2 · 4 with two
  const all = new BlockMask("random", 8, 4, 4, new Uint8Array([1, 1, 1, 1]));
  const two = new BlockMask("random", 8, 4, 4, new Uint8Array([1, 0, 0, 1]));
  assertEquals(at("block-sparse", {}, all), 316);
  assertEquals(at("block-sparse", {}, two), 308);
  // the mask is shared by all heads; the tensors are not
  assertEquals(at("block-sparse", { heads: 2 }, two), 596);
  assertEquals(
    planFor("block-sparse", { shape: s, tiles, mask: all }).buffers.map((b) => b.label),
    ["Q", "K", "V", "O", "LSE", "mask rowptr", "mask colidx"],
  );
});

Deno.test("footprint: standard grows as N², flash as N", () => {
  const tiles = { br: 64, bc: 64, rm: 4, tx: 8 };
  const at = (kernel: string, n: number) =>
    footprintBytes(planFor(kernel, { shape: shape({ n, d: 64 }), tiles }).buffers);
  const ratio = at("standard", 32768) / at("standard", 16384);
  assert(Math.abs(ratio - 4) < 0.05, `${ratio}`);
  assertEquals(at("flash", 32768) / at("flash", 16384), 2);
});

Deno.test("planFitsDevice names the buffer, or the grid, that does not fit", () => {
  const s = shape({ heads: 16, n: 16384, d: 64 });
  const tiles = { br: 64, bc: 64, rm: 4, tx: 8 };
  const limits = {
    maxStorageBufferBindingSize: 2 ** 31,
    maxBufferSize: 2 ** 32,
    maxComputeWorkgroupsPerDimension: 65535,
  };
  assertEquals(planFitsDevice(planFor("flash", { shape: s, tiles }), limits), null);
  assertEquals(
    planFitsDevice(planFor("standard", { shape: s, tiles }), limits),
    "does not fit: standard n=16384: buffer S is 17.2 GB, device binding limit is 2.15 GB",
  );
  const grid = { ...limits, maxComputeWorkgroupsPerDimension: 15 };
  assert(planFitsDevice(planFor("flash", { shape: s, tiles }), grid)?.includes("grid"));
});

Deno.test("flops: 4BHN²d, halved when causal, × density for block-sparse", () => {
  const tiles = { br: 4, bc: 4, rm: 1, tx: 1 };
  const flops = (kernel: string, over: Partial<AttentionShape>, mask?: BlockMask) =>
    planFor(kernel, { shape: shape({ d: 2, ...over }), tiles, mask }).flops("fwd");
  const half = new BlockMask("random", 8, 4, 4, new Uint8Array([1, 0, 0, 1]));
  assertEquals(flops("standard", {}), 512); // 4 · 64 · 2
  assertEquals(flops("flash", { causal: true }), 256);
  assertEquals(flops("block-sparse", {}, half), 256);
  assertEquals(flops("block-sparse", { causal: true }, half), 128);
  assertEquals(attentionFlops(shape({ d: 2, batch: 2, heads: 3 }), "fwd"), 3072);
});

Deno.test("theoretical bytes: each kernel's algorithm; flash ignores a mask's density", () => {
  const s = shape({ n: 4096, d: 64 });
  const tiles = { br: 64, bc: 32, rm: 4, tx: 8 };
  const o = { sramBytes: 49152 };
  const std = planFor("standard", { shape: s, tiles }).theoreticalBytes(o);
  assertEquals([std.algorithm, std.elementsPerHead], [
    "Algorithm 0",
    4 * 4096 ** 2 + 4 * 4096 * 64,
  ]);
  const flash = planFor("flash", {
    shape: s,
    tiles,
    mask: { kind: "random", density: 0.1, seed: 1 },
  });
  assertEquals(flash.theoreticalBytes(o).density, 1);
  const sparse = planFor("block-sparse", {
    shape: s,
    tiles,
    mask: { kind: "random", density: 0.25, seed: 1 },
  });
  const t = sparse.theoreticalBytes(o);
  // Algorithm 5 on its own Br × Bc grid with the kernel's mask (s measured on that grid).
  assertEquals(t, flashAttentionBytes(s, { ...o, mask: sparse.mask }));
  assertEquals(t.algorithm, "Algorithm 5");
  assert(t.bytes < flash.theoreticalBytes(o).bytes);
});

Deno.test("every kernel: whole bytes, and theoretical, modeled, query-outer ≥ lower bound", () => {
  // Random shapes, tiles, SRAM sizes and masks: the lower bound is a floor for every count of
  // every registered kernel (a sparse kernel's with the rows its mask uses).
  const rand = mulberry32(2026);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const kinds: MaskKind[] = ["random", "butterfly", "local"];
  let cases = 0;
  for (let trial = 0; trial < 300; trial++) {
    const sh: AttentionShape = {
      batch: 1 + Math.floor(rand() * 3),
      heads: 1 + Math.floor(rand() * 3),
      n: 1 + Math.floor(rand() * 600),
      d: pick([32, 64, 128]),
      dtype: pick<Dtype>(["f32", "f16"]),
      causal: rand() < 0.5,
    };
    const tiles = { br: pick([8, 16, 32, 64, 5, 12]), bc: pick([8, 16, 32, 64, 7]), rm: 1, tx: 1 };
    const sramBytes = pick([2048, 16384, 32768, 49152, 102400, 1000]);
    const mask = makeMask({
      kind: pick(kinds),
      n: sh.n,
      br: tiles.br,
      bc: tiles.bc,
      density: pick([1, 0.5, 0.25, 0.1, 0.01]),
      seed: trial,
    });
    for (const kernel of [...Object.values(KERNELS), ...FORWARD_BACKWARD_KERNELS]) {
      const plan = planFor(kernel, { shape: sh, tiles, mask });
      const floor = plan.lowerBoundBytes();
      const where = `${kernel.name} ${JSON.stringify(sh)} tiles ${tiles.br}×${tiles.bc} ` +
        `M ${sramBytes} ${mask.kind} s ${mask.density}`;
      assert(Number.isInteger(floor) && floor >= 0, where);
      const bound = kernel.mode === "bwd"
        ? lowerBoundBackwardBytes
        : kernel.mode === "fwd_bwd"
        ? lowerBoundForwardBackwardBytes
        : lowerBoundBytes;
      // A decode kernel's problem: one query a sequence; K and V of n tokens once, Q and O once.
      const e = sh.dtype === "f16" ? 2 : 4;
      const decodeFloor = 2 * sh.batch * sh.heads * (sh.n + 1) * sh.d * e;
      assertEquals(
        floor,
        kernel.problem === "decode" ? decodeFloor : bound(sh, plan.mask),
        where,
      );
      const theoretical = plan.theoreticalBytes({ sramBytes }).bytes;
      assert(Number.isInteger(theoretical), `theoretical ${theoretical} not whole: ${where}`);
      assert(theoretical >= floor, `theoretical ${theoretical} < floor ${floor}: ${where}`);
      const modeled = totalBytes(plan.modeledTraffic());
      assert(Number.isInteger(modeled), where);
      assert(modeled >= floor, `modeled ${modeled} < floor ${floor}: ${where}`);
      const queryOuter = plan.idealBytes()["query-outer"];
      if (queryOuter !== undefined) {
        assertEquals(queryOuter, flashQueryOuterBytes(sh, tiles.br), where);
        assert(queryOuter >= floor, `query-outer ${queryOuter} < floor ${floor}: ${where}`);
      }
      if (!kernel.sparse && kernel.problem !== "decode") {
        assertEquals(floor, bound({ ...sh, causal: false }, null), where);
      }
      cases++;
    }
  }
  assertEquals(cases, 300 * (Object.keys(KERNELS).length + FORWARD_BACKWARD_KERNELS.length));
});
