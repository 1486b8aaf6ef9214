// The packed-half flash program (flash_h16.wgsl, f16Math "packed"): the float64 reference at odd
// sizes, causal, block-sparse and tiles whose key block is not a whole number of P·V chunks;
// counted == modeled; the f32-arithmetic program stays what f16Math "f32" (the default) builds.
// GPU tests need shader-f16: Mesa's lavapipe through Vulkan has it (SESSION.md's command), llvmpipe
// through GL does not (they show as ignored there).
import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import type { AttentionShape, Tiles } from "../../core/shapes.ts";
import { UsageError } from "../../core/errors.ts";
import { prepareAttention } from "../attention.ts";
import {
  assertClose,
  checkPrepared,
  describeCase,
  getKernels,
  seedFor,
  trafficDifferences,
} from "../testing.ts";
import { F16_CHUNK, f16ChunkOf, f16MathOf, flashKey, flashPlan, flashSource } from "./mod.ts";
import { flash } from "./mod.ts";

const kernels = await getKernels();
const noF16 = kernels === null || !kernels.gpu.f16;

const T64: Tiles = { br: 64, bc: 32, rm: 4, tx: 16 };
// bc 20: five key quads, one chunk of four and one of one (the `j4 + 1 == BC4` flush).
const T20: Tiles = { br: 16, bc: 20, rm: 4, tx: 4 };

Deno.test("f16Math: packed builds flash_h16 for f16 storage only, f32 stays the default", () => {
  const tiles = T64;
  const base = { d: 64, tiles, sparse: false };
  assertEquals(f16MathOf(undefined), "f32");
  assertEquals(f16MathOf({ f16Math: "packed" }), "packed");
  assertThrows(() => f16MathOf({ f16Math: "half" }), UsageError, "f16Math half");
  const packed = flashSource({ ...base, f16Math: "packed" });
  assert(packed.includes("h[i][j] = fma(qc, kc[j], h[i][j])"));
  assert(packed.includes(`const CH4: u32 = ${F16_CHUNK / 4}u;`));
  assertEquals(flashSource({ ...base, f16Math: "f32" }), flashSource(base));
  assertNotEquals(flashKey({ ...base, f16Math: "packed" }), flashKey(base));
  const long = { ...base, f16Math: "packed" as const, f16Chunk: 64 };
  assert(flashSource(long).includes("const CH4: u32 = 16u;"));
  assertNotEquals(flashKey(long), flashKey({ ...base, f16Math: "packed" }));
  assertEquals(f16ChunkOf(undefined), F16_CHUNK);
  assertThrows(() => f16ChunkOf({ f16Chunk: 6 }), UsageError, "f16Chunk 6");
  const shape = (dtype: "f16" | "f32"): AttentionShape => ({
    batch: 1,
    heads: 1,
    n: 100,
    d: 64,
    dtype,
    causal: false,
  });
  const key = (dtype: "f16" | "f32") =>
    flashPlan(flash, shape(dtype), tiles, undefined, null, { f16Math: "packed" }).passes()[0]!.key;
  assert(key("f16").includes("h16"));
  assert(!key("f32").includes("h16"), "f32 storage has nothing to pack");
});

const CASES: [d: number, n: number, causal: boolean, tiles: Tiles | undefined, chunk?: number][] = [
  [64, 1, false, T64],
  [64, 77, true, T64],
  [64, 1000, false, T64],
  [32, 97, false, T20],
  [32, 130, true, T20],
  [128, 300, false, { br: 32, bc: 32, rm: 2, tx: 16 }],
  [64, 9, false, undefined],
  // Chunks longer than the head dim and the key block: one fold a score, one a block.
  [64, 300, true, T64, 128],
  [32, 130, false, T20, 8],
];

Deno.test({
  name:
    "flash f16 packed math matches the float64 reference (odd n, causal, partial chunks; needs shader-f16)",
  ignore: noF16,
  async fn() {
    const failures: string[] = [];
    for (const [d, n, causal, tiles, chunk] of CASES) {
      const shape: AttentionShape = { batch: 2, heads: 2, n, d, dtype: "f16", causal };
      const p = await prepareAttention(kernels!, {
        kernel: "flash",
        shape,
        tiles,
        options: { f16Math: "packed", ...(chunk ? { f16Chunk: chunk } : {}) },
      });
      try {
        const key = p.plan.passes()[0]!.key;
        assert(key.includes("h16"), key);
        assertClose(await checkPrepared(p, seedFor(`h16 ${d} ${n} ${causal}`)));
      } catch (e) {
        failures.push((e as Error).message);
      } finally {
        p.destroy();
      }
    }
    assertEquals(failures, []);
  },
});

Deno.test({
  name:
    "flash f16 packed math, and block-sparse: counted bytes equal modeled bytes (needs shader-f16)",
  ignore: noF16,
  async fn() {
    const failures: string[] = [];
    for (const kernel of ["flash", "block-sparse"]) {
      for (const causal of [false, true]) {
        const shape: AttentionShape = { batch: 1, heads: 3, n: 150, d: 32, dtype: "f16", causal };
        const p = await prepareAttention(kernels!, {
          kernel,
          shape,
          tiles: T20,
          mask: { kind: "random", density: 0.4, seed: 3 },
          options: { f16Math: "packed" },
          count: true,
        });
        try {
          const seed = seedFor(`h16 count ${kernel} ${causal}`);
          p.resetCounters();
          const r = await checkPrepared(p, seed);
          const where = describeCase(p, seed);
          failures.push(
            ...trafficDifferences(await p.readCounters(), p.plan.modeledTraffic()).map((d) =>
              `${where}: ${d}`
            ),
          );
          assertClose(r);
        } catch (e) {
          failures.push((e as Error).message);
        } finally {
          p.destroy();
        }
      }
    }
    assertEquals(failures, []);
  },
});
