// The occupancy pad (kernel option padWorkgroupBytes, issue 10): pad 0 builds the unpadded
// program byte for byte under the unpadded key; a padded program differs only by the pad (its
// declaration and a branch on params.causal > 1u), has its own key, matches the float64
// reference at odd sizes with poisoned outputs and moves exactly the modeled bytes; a pad past
// the device's workgroup memory limit is refused with one line.
import { assert, assertEquals, assertNotEquals, assertRejects, assertThrows } from "@std/assert";
import { UsageError } from "../../core/errors.ts";
import type { AttentionShape, Tiles } from "../../core/shapes.ts";
import { prepareAttention } from "../attention.ts";
import { countRun } from "../check.ts";
import { assertClose, getKernels, runChecked } from "../testing.ts";
import {
  flash,
  flashKey,
  type FlashKnobs,
  flashPlan,
  flashSource,
  flashWorkgroupBytes,
  padWorkgroupBytesOf,
} from "./mod.ts";

const V7: Tiles = { br: 8, bc: 8, rm: 2, tx: 4, variant: "v7" };
const V5: Tiles = { br: 8, bc: 8, rm: 2, tx: 4 };
// Register tiles (flash_rt.wgsl) and the packed f16 body (flash_h16.wgsl) take the pad too.
const RT: Tiles = { br: 16, bc: 16, rm: 8, tx: 4 };
const LAYOUTS: FlashKnobs[] = [
  { d: 64, sparse: false, tiles: V7 },
  { d: 64, sparse: true, tiles: V7 },
  { d: 32, sparse: false, tiles: V5 },
  { d: 64, sparse: false, tiles: RT },
  { d: 64, sparse: false, tiles: { br: 64, bc: 32, rm: 4, tx: 16 }, f16Math: "packed" },
];

/** The padded source with the pad taken out again: the branch and the declaration. */
function unpad(source: string): string {
  return source
    .replace(/ {2}if params\.causal > 1u \{\n[^}]*\n {2}\}\n/, "")
    .replace(/\n\/\/ Occupancy pad[^\n]*\nvar<workgroup> occupancy_pad[^\n]*\n$/, "");
}

Deno.test("padWorkgroupBytes: pad 0 is the unpadded program, a pad only adds itself", () => {
  for (const k of LAYOUTS) {
    const plain = flashSource(k);
    assertEquals(flashSource({ ...k, padWorkgroupBytes: 0 }), plain);
    assertEquals(flashKey({ ...k, padWorkgroupBytes: 0 }), flashKey(k));
    const padded = flashSource({ ...k, padWorkgroupBytes: 8192 });
    assert(padded.includes("var<workgroup> occupancy_pad: array<vec4<f32>, 512>;"));
    assertEquals(padded.split("params.causal > 1u").length, 2);
    assertEquals(unpad(padded), plain);
    assertNotEquals(flashKey({ ...k, padWorkgroupBytes: 8192 }), flashKey(k));
    assertNotEquals(
      flashKey({ ...k, padWorkgroupBytes: 8192 }),
      flashKey({ ...k, padWorkgroupBytes: 4096 }),
    );
  }
});

Deno.test("padWorkgroupBytes: through the plan, pad 0 keeps source and key, bad pads are refused", () => {
  const shape: AttentionShape = { batch: 1, heads: 2, n: 37, d: 64, dtype: "f32", causal: false };
  const pass = (options?: Record<string, unknown>, maxWorkgroupBytes?: number) =>
    flash.plan({ shape, tiles: V7, options, maxWorkgroupBytes }).passes()[0]!;
  const plain = pass();
  const zero = pass({ padWorkgroupBytes: 0 });
  assertEquals([zero.key, zero.source], [plain.key, plain.source]);
  assert(pass({ padWorkgroupBytes: 1024 }).key.endsWith("/pad1024"));
  assertEquals(padWorkgroupBytesOf(undefined), 0);
  for (const bad of [-16, 8, 24.5, "16", Infinity]) {
    assertThrows(
      () => pass({ padWorkgroupBytes: bad }),
      UsageError,
      `padWorkgroupBytes ${String(bad)}: expected a whole number of bytes >= 0, a multiple of 16`,
    );
  }
  // Up to the limit fits exactly; 16 more is one clear line that says what would fit.
  const used = flashWorkgroupBytes(64, "f32", V7);
  const room = 32768 - used;
  assertEquals(room % 16, 0);
  assert(pass({ padWorkgroupBytes: room }, 32768).source.includes("occupancy_pad"));
  const e = assertThrows(
    () => pass({ padWorkgroupBytes: room + 16 }, 32768),
    UsageError,
    `padWorkgroupBytes ${room + 16}: ${used} + ${room + 16} bytes of workgroup memory exceed ` +
      `the device's 32768; at most ${room} fit with these tiles`,
  );
  assert(!e.message.includes("\n"));
  // The modeled bytes do not depend on the pad.
  const modeled = (pad: number) =>
    flashPlan(flash, shape, V7, undefined, null, { padWorkgroupBytes: pad }).modeledTraffic();
  assertEquals(modeled(8192), modeled(0));
});

const kernels = await getKernels();

Deno.test({
  name: "padWorkgroupBytes: a pad past the device's limit is refused before compiling",
  ignore: kernels === null,
  async fn() {
    const limit = Number(kernels!.gpu.device.limits.maxComputeWorkgroupStorageSize);
    const shape: AttentionShape = { batch: 1, heads: 1, n: 9, d: 64, dtype: "f32", causal: false };
    const pad = Math.ceil((limit - flashWorkgroupBytes(64, "f32", V7) + 1) / 16) * 16;
    await assertRejects(
      () =>
        prepareAttention(kernels!, {
          kernel: "flash",
          shape,
          tiles: V7,
          options: { padWorkgroupBytes: pad },
        }),
      UsageError,
      `exceed the device's ${limit}`,
    );
  },
});

Deno.test({
  name: "padWorkgroupBytes: padded flash matches the float64 reference, counted == modeled",
  ignore: kernels === null,
  async fn() {
    const cases = [
      ["flash", V7, 1, false],
      ["flash", V7, 37, true],
      ["flash", V7, 77, false],
      ["flash", V5, 37, false],
      ["block-sparse", V7, 77, true],
    ] as const;
    for (const [kernel, tiles, n, causal] of cases) {
      const shape: AttentionShape = { batch: 1, heads: 2, n, d: 64, dtype: "f32", causal };
      const problem = { kernel, shape, tiles, options: { padWorkgroupBytes: 4096 } };
      assertClose(await runChecked(kernels!, problem, 700 + n));
      const r = await countRun(kernels!, problem, 70 + n, { check: false });
      assertEquals(r.counted, r.modeled);
    }
  },
});
