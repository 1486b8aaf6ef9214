import { assert, assertEquals, assertGreater } from "@std/assert";
import { type AttentionShape, dtypeBytes } from "../../core/shapes.ts";
import { footprintBytes } from "../../analysis/io_model.ts";
import { planFitsDevice } from "../attention.ts";
import { countRun } from "../check.ts";
import { emptyTraffic, type Kernel, passTrafficOf, totalBytes } from "../kernel.ts";
import { findKernel } from "../registry.ts";
import { assertClose, getKernels, mutantKernels, runChecked } from "../testing.ts";
import { tolerance } from "../../core/tolerances.ts";
import { standardBackwardChunks, standardBwd } from "./mod.ts";
import { countEachPass } from "./testing.ts";
import { modeledBackward } from "./modeled.ts";

// The standard backward's P, dP and dS split into chunks of whole heads (mod.ts,
// standardBackwardChunks), as the standard forward splits S and P: a binding limit far below the
// device's forces the split. Every chunking must give the reference gradients (outputs and
// scratch poisoned) and count exactly the modeled bytes, which are those of the unsplit kernel;
// the forward+backward composite's backward reads the forward's P chunks.

const kernels = await getKernels();

function limited(base: Kernel, maxBindingBytes: number): Kernel {
  return {
    ...base,
    name: `${base.name}-limit-${maxBindingBytes}`,
    plan: (r) => base.plan({ ...r, maxBindingBytes }),
  };
}

const SHAPE: AttentionShape = { batch: 2, heads: 2, n: 19, d: 32, dtype: "f32", causal: false };
const TILES = { br: 8, bc: 8, rm: 2, tx: 4 };
const HEAD = 19 * 19 * 4;

Deno.test("standardBackwardChunks: whole heads within the limit, else one chunk", () => {
  assertEquals(standardBackwardChunks(SHAPE, TILES), [{ first: 0, heads: 4, rows: 19 }]);
  assertEquals(standardBackwardChunks(SHAPE, TILES, 3 * HEAD), [
    { first: 0, heads: 3, rows: 19 },
    { first: 3 * 19, heads: 1, rows: 19 },
  ]);
  assertEquals(standardBackwardChunks(SHAPE, TILES, HEAD).length, 4);
  // Less than one head: rows of a head would be needed; the backward stays unsplit.
  assertEquals(standardBackwardChunks(SHAPE, TILES, HEAD - 4), [{ first: 0, heads: 4, rows: 19 }]);
});

Deno.test("split standard backward plans: buffers within the limit, the unsplit bytes", () => {
  // n = 200: one head's N×N (160 kB) is larger than all of Q (102 kB), so the limits below
  // bind only the N×N buffers.
  const big = 200 * 200 * 4;
  for (const causal of [false, true]) {
    const shape = { ...SHAPE, n: 200, causal };
    const whole = standardBwd.plan({ shape, tiles: TILES });
    for (const [limit, chunks] of [[3 * big, 2], [2 * big, 2], [big, 4]] as const) {
      const plan = standardBwd.plan({ shape, tiles: TILES, maxBindingBytes: limit });
      assertEquals(plan.passes().length, 5 * chunks);
      const square = plan.buffers.filter((b) => /^(p|dp|ds)\d+$/.test(b.name));
      assertEquals(square.length, 3 * chunks);
      assert(square.every((b) => b.bytes <= limit));
      // What `model --pass bwd` prints (no device, so unsplit) is what the split plan moves,
      // and the footprint is the same.
      assertEquals(plan.modeledTraffic(), whole.modeledTraffic());
      assertEquals(plan.modeledTraffic(), modeledBackward("standard", shape, TILES, null));
      assertEquals(footprintBytes(plan.buffers), footprintBytes(whole.buffers));
      // Pass by pass: a chunk's passes move the unsplit passes' bytes for its heads, and they
      // add up to the whole.
      const perPass = plan.passTraffic!();
      assertEquals(perPass.length, plan.passes().length);
      const sum: Record<string, { read: number; write: number }> = {};
      for (const t of perPass) {
        for (const [slot, x] of Object.entries(t)) {
          sum[slot] = {
            read: (sum[slot]?.read ?? 0) + x.read,
            write: (sum[slot]?.write ?? 0) + x.write,
          };
        }
      }
      assertEquals(sum, plan.modeledTraffic());
      // The workgroups of all chunks are the unsplit grid's.
      const groups = (p: typeof plan) =>
        p.passes().reduce((a, x) => a + x.grid.reduce<number>((g, y) => g * (y ?? 1), 1), 0);
      assertEquals(groups(plan), groups(whole));
      const limits = {
        maxStorageBufferBindingSize: limit,
        maxBufferSize: limit,
        maxComputeWorkgroupsPerDimension: 65535,
      };
      assertEquals(planFitsDevice(plan, limits), null);
      assert(planFitsDevice(whole, limits)?.includes("buffer P is"));
    }
    // Below one head: refused with P's size, not run in pieces that cannot be right.
    const small = big - 4;
    const refused = standardBwd.plan({ shape, tiles: TILES, maxBindingBytes: small });
    assertEquals(refused.passes().length, 5);
    const limits = {
      maxStorageBufferBindingSize: small,
      maxBufferSize: small,
      maxComputeWorkgroupsPerDimension: 65535,
    };
    assert(planFitsDevice(refused, limits)?.includes("buffer P is"));
  }
});

Deno.test("split standard forward+backward: every pass its own bytes, adding up to the whole", () => {
  const composite = findKernel("standard-fwd+bwd")!;
  for (const causal of [false, true]) {
    const shape = { ...SHAPE, causal };
    for (const [limit, chunks] of [[Infinity, 1], [3 * HEAD, 2], [HEAD, 4]] as const) {
      const plan = composite.plan({ shape, tiles: TILES, maxBindingBytes: limit });
      const passes = plan.passes();
      assertEquals(passes.length, 8 * chunks);
      const perPass = passTrafficOf(plan);
      assertEquals(perPass.length, passes.length);
      const sum = emptyTraffic(plan.slots);
      for (const [i, t] of perPass.entries()) {
        // Each pass has every slot of the composite (what its counters read back) and moves
        // bytes beyond its uniform reads.
        assertEquals(Object.keys(t).sort(), [...plan.slots].sort(), passes[i]!.name);
        assert(totalBytes(t) - t.uniform!.read > 0, `${passes[i]!.name}: no bytes`);
        for (const [slot, x] of Object.entries(t)) {
          sum[slot]!.read += x.read;
          sum[slot]!.write += x.write;
        }
      }
      assertEquals(sum, plan.modeledTraffic());
    }
  }
});

Deno.test({
  name: "standard backward and standard forward+backward split in head chunks: right, counted " +
    `as modeled (${kernels?.gpu.f16 ? "f32 and f16" : "f32; f16 needs shader-f16"})`,
  ignore: kernels === null,
  async fn() {
    const composite = findKernel("standard-fwd+bwd")!;
    // f16: a head's N×N is 722 bytes, not a whole number of 4-byte words (the uploads pad).
    const dtypes = kernels!.gpu.f16 ? ["f32", "f16"] as const : ["f32"] as const;
    for (const [dtype, causal] of dtypes.flatMap((t) => [[t, false], [t, true]] as const)) {
      const shape = { ...SHAPE, dtype, causal };
      const head = 19 * 19 * dtypeBytes(dtype);
      for (const limit of [3 * head, head]) {
        for (const base of [standardBwd, composite]) {
          const kernel = limited(base, limit);
          const problem = { kernel, shape, tiles: TILES };
          const plan = kernel.plan({ shape, tiles: TILES });
          assert(plan.passes().length > base.plan({ shape, tiles: TILES }).passes().length);
          assertClose(await runChecked(kernels!, problem, 17 + limit + (causal ? 1 : 0)));
          const r = await countRun(kernels!, problem, 5, { check: true });
          assertClose(r.check!);
          assertEquals(r.counted, r.modeled);
          assertEquals(r.modeled, base.plan({ shape, tiles: TILES }).modeledTraffic());
        }
      }
    }
    // Pass by pass on the device, split in four: each chunk's dispatch counts its modeled bytes.
    const passes = await countEachPass(kernels!, {
      kernel: limited(standardBwd, HEAD),
      shape: SHAPE,
      tiles: TILES,
    });
    assertEquals(passes.length, 20);
    for (const { name, counted, modeled } of passes) assertEquals(counted, modeled, name);
    // And forward+backward: the forward's chunks (scores#1 …) count their own bytes too.
    const both = await countEachPass(kernels!, {
      kernel: limited(composite, HEAD),
      shape: SHAPE,
      tiles: TILES,
    });
    assertEquals(both.length, 4 * 3 + 20);
    for (const { name, counted, modeled } of both) assertEquals(counted, modeled, name);
    // A product pass that indexes P or dS by the global head (as before the split) is right
    // unsplit and caught split.
    const mutant = mutantKernels(
      kernels!,
      "let a_base = wid.y * n * n;",
      "let a_base = bh * n * n;",
    );
    const right = await runChecked(mutant, { kernel: standardBwd, shape: SHAPE, tiles: TILES }, 3);
    assertClose(right);
    const kernel = limited(standardBwd, HEAD);
    const wrong = await runChecked(mutant, { kernel, shape: SHAPE, tiles: TILES }, 3);
    assert(mutant.cache.mutated > 0, "mutation target not found");
    assertGreater(wrong.error, tolerance("f32"));
  },
});
