// Subgroups, both paths: the device probe (gpu.ts), and flash's register-tile layout with and
// without subgroup shuffles, each checked against the float64 reference (outputs poisoned, odd
// sizes) with counted == modeled bytes.
//
// CI runs this file twice: on llvmpipe through GL, which grants no subgroups (the portable path),
// and on Mesa's lavapipe through Vulkan with ATTNBENCH_EXPECT_SUBGROUPS=1: then a device without
// subgroups fails the first test instead of skipping the subgroup path.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import type { AttentionShape } from "../core/shapes.ts";
import { AttentionKernels } from "./attention.ts";
import { countRun } from "./check.ts";
import { flashKey, flashLayout } from "./flash/mod.ts";
import { openGpu } from "./gpu.ts";
import { assertClose, runChecked } from "./testing.ts";

const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
const expect = Deno.env.get("ATTNBENCH_EXPECT_SUBGROUPS") === "1";
const withSg = adapter ? new AttentionKernels(await openGpu()) : null;
const portable = adapter ? new AttentionKernels(await openGpu({ subgroups: false })) : null;
// The register-tile layout (rm ≥ 8) with two threads a row group (fits any subgroup of 4 lanes
// or more).
const TILES = { br: 16, bc: 8, rm: 8, tx: 2 };

Deno.test({
  name: "subgroups: granted where CI expects them, recorded with their size",
  ignore: withSg === null,
  fn() {
    const { info, subgroupSize } = withSg!.gpu;
    if (expect) {
      assert(subgroupSize > 0, `ATTNBENCH_EXPECT_SUBGROUPS=1 but ${info.description} has none`);
    }
    assertEquals(info.subgroups, subgroupSize > 0);
    assertEquals(info.subgroupSize, subgroupSize);
    assertEquals(info.features.includes("subgroups"), subgroupSize > 0);
    assertEquals(portable!.gpu.subgroupSize, 0);
    assertEquals(portable!.gpu.info.subgroups, false);
  },
});

for (const [label, kernels] of [["subgroups", withSg], ["portable", portable]] as const) {
  Deno.test({
    name: `flash register tiles, ${label} path: right and counted as modeled`,
    ignore: kernels === null || (label === "subgroups" && withSg?.gpu.subgroupSize === 0),
    async fn() {
      const cases = [["flash", 37, 32], ["flash", 19, 128], ["block-sparse", 70, 64]] as const;
      for (const [kernel, n, d] of cases) {
        for (const causal of [false, true]) {
          const shape: AttentionShape = { batch: 1, heads: 2, n, d, dtype: "f32", causal };
          assertEquals(flashLayout(d, TILES), "rt");
          const problem = { kernel, shape, tiles: TILES };
          const key = flashKey({
            d,
            tiles: TILES,
            sparse: kernel !== "flash",
            subgroupSize: kernels!.gpu.subgroupSize,
          });
          if (label === "subgroups") assertStringIncludes(key, "/rt-sg");
          else assert(!key.includes("-sg"), key);
          assertClose(await runChecked(kernels!, problem, 100 + n + d));
          const r = await countRun(kernels!, problem, 7 + n, { check: false });
          assertEquals(r.counted, r.modeled);
        }
      }
    },
  });
}
