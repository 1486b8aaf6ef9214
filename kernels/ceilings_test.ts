import { assert, assertEquals, assertGreater } from "@std/assert";
import type { DeviceRecord } from "../core/schema.ts";
import { type Gpu, openGpu } from "./gpu.ts";
import { measureCeilings, measureCopy, planCeilings } from "./ceilings.ts";

// The GPU tests need a WebGPU adapter (Mesa's llvmpipe will do); without one they are ignored.
const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
const gpu: Gpu | null = adapter ? await openGpu() : null;
const ignore = gpu === null;

const MIB = 2 ** 20;

function device(fallback: boolean, limits: Record<string, number>): DeviceRecord {
  return {
    vendor: "",
    architecture: "",
    description: "",
    device: "",
    isFallbackAdapter: fallback,
    limits,
    features: [],
  };
}

Deno.test("planCeilings sizes the copy for the device and clips it to the limits", () => {
  const big = { maxStorageBufferBindingSize: 4096 * MIB, maxBufferSize: 4096 * MIB };
  assertEquals(planCeilings(device(false, big)).copyBytes, 256 * MIB);
  assertEquals(planCeilings(device(false, big), true).copyBytes, 64 * MIB);
  assertEquals(planCeilings(device(true, big)).copyBytes, 16 * MIB);
  assertEquals(planCeilings(device(true, big), true).copyBytes, 4 * MIB);
  const small = { maxStorageBufferBindingSize: 100 * MIB + 5, maxBufferSize: 4096 * MIB };
  const clipped = planCeilings(device(false, small)).copyBytes;
  assert(clipped <= 100 * MIB && clipped > 99 * MIB && clipped % 4096 === 0, `${clipped}`);
  const plan = planCeilings(device(false, { ...big, maxComputeWorkgroupsPerDimension: 1000 }));
  assert(plan.copyWorkgroups <= 1000 && plan.fmaWorkgroups <= 1000);
  // Without limits the WebGPU defaults apply.
  assertEquals(planCeilings(device(false, {})).copyBytes, 128 * MIB);
});

Deno.test({
  name: "the copy kernel copies fresh non-zero data",
  ignore,
  async fn() {
    const m = await measureCopy(gpu!, { quick: true });
    assertEquals(m.probe.src.length, 16);
    assertEquals(m.probe.dst.length, 16);
    for (const x of m.probe.src) assert(x >= 1 && x < 2, `source element ${x}`);
    assertEquals(m.probe.dst, m.probe.src);
    assertEquals(new Set(m.probe.src).size > 8, true, "the fill is not varied");
    assert(Number.isFinite(m.gbs) && m.gbs > 0, `${m.gbs} GB/s`);
  },
});

Deno.test({
  name: "two fills are different: the data is fresh each run",
  ignore,
  async fn() {
    const a = await measureCopy(gpu!, { quick: true });
    const b = await measureCopy(gpu!, { quick: true });
    assert(a.probe.src.some((x, i) => x !== b.probe.src[i]));
  },
});

Deno.test({
  name: "measureCeilings returns positive finite ceilings, on either clock",
  ignore,
  async fn(t) {
    const clocks = gpu!.timestamps ? [true, false] : [false];
    for (const timestamps of clocks) {
      await t.step(timestamps ? "timestamp-query" : "wall", async () => {
        const c = await measureCeilings({ ...gpu!, timestamps }, { quick: true });
        for (const v of [c.copyGBs, c.fmaTflops, c.launchOverheadUs]) {
          assert(v !== null && Number.isFinite(v), `${v}`);
          assertGreater(v, 0);
        }
        assertEquals(c.clock, timestamps ? "timestamp-query" : "wall");
      });
    }
  },
});
