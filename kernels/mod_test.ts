import { assert, assertLess } from "@std/assert";
import { attention, maxRelError, openGpu, randomInputs, referenceAttention } from "./mod.ts";

let gpu = null;
try {
  gpu = await openGpu();
} catch {
  gpu = null;
}

Deno.test({
  name: "mod.ts: attention() returns O for every kernel, equal to the reference",
  ignore: gpu === null,
  async fn() {
    const shape = { batch: 2, heads: 1, n: 45, d: 32, dtype: "f32", causal: true } as const;
    const { q, k, v } = randomInputs(shape, 11);
    const ref = referenceAttention(shape, q, k, v);
    for (const kernel of ["standard", "flash"] as const) {
      const o = await attention(q, k, v, { ...shape, kernel, gpu: gpu! });
      assert(o.length === q.length);
      assertLess(maxRelError(o, ref), 1e-4, kernel);
    }
    gpu!.device.destroy();
  },
});
