import { assert, assertEquals, assertRejects } from "@std/assert";
import type { AttentionShape, Dtype, Tiles } from "../../core/shapes.ts";
import { UsageError } from "../../core/errors.ts";
import { prepareAttention } from "../attention.ts";
import { checkPrepared } from "../check.ts";
import { FLOAT32_ATOMIC } from "../gpu.ts";
import type { Kernel } from "../kernel.ts";
import { planFor } from "../registry.ts";
import { getKernels } from "../testing.ts";
import { flashBwd } from "./mod.ts";
import { modeledBackward, modeledBackwardPasses } from "./modeled.ts";
import { countEachPass, runBackward } from "./testing.ts";

// flash-bwd with dq = "atomic": the dK/dV pass adds tau dS K to an f32 dQ accumulator with
// atomicAdd (zeroed first; in f16 converted to dq after), no dQ pass. Needs the device feature
// wgpu-shader-float32-atomic: lavapipe (Vulkan) and the H200 grant it, llvmpipe (GL) does not, so
// the GPU tests are ignored there (CI's lavapipe step runs them and fails on an ignored one).

const kernels = await getKernels();
const atomics = kernels !== null && kernels.gpu.device.features.has(FLOAT32_ATOMIC);
const NO_ATOMIC = ` (ignored: no ${FLOAT32_ATOMIC} on this adapter)`;
const ATOMIC = { dq: "atomic" };
const MODES = ["atomic", "atomic-stagger"] as const;
// One tile shape per head dim, br ≠ bc both ways (the dK/dV pass swaps them).
const TILES: Record<number, Tiles> = {
  32: { br: 8, bc: 8, rm: 2, tx: 4 },
  64: { br: 16, bc: 8, rm: 2, tx: 4 },
  128: { br: 8, bc: 16, rm: 2, tx: 4 },
};

function shape(n: number, d: number, causal: boolean, dtype: Dtype): AttentionShape {
  return { batch: 2, heads: 2, n, d, dtype, causal };
}

async function againstReference(dtype: Dtype, ns: number[]): Promise<string[]> {
  const failures: string[] = [];
  for (const dq of MODES) {
    failures.push(...await oneMode(dtype, ns, dq));
  }
  return failures;
}

async function oneMode(dtype: Dtype, ns: number[], dq: string): Promise<string[]> {
  const failures: string[] = [];
  for (const d of [32, 64, 128]) {
    for (const n of ns) {
      for (const causal of [false, true]) {
        const r = await runBackward(kernels!, {
          kernel: "flash",
          shape: shape(n, d, causal, dtype),
          tiles: TILES[d]!,
          options: { dq },
        });
        failures.push(...r.failures.map((f) => `dq ${dq}: ${f}`));
      }
    }
  }
  return failures;
}

Deno.test({
  name: `atomic dQ f32 against the float64 reference, n 1/37/77/130, d 32/64/128, staggered or not${
    atomics ? "" : NO_ATOMIC
  }`,
  ignore: !atomics,
  async fn() {
    assertEquals(await againstReference("f32", [1, 37, 77, 130]), []);
  },
});

Deno.test({
  name: `atomic dQ f16 against the float64 reference, n 1/37/77/130, d 32/64/128, staggered or not${
    atomics && kernels!.gpu.f16 ? "" : `${NO_ATOMIC.slice(0, -1)}, or no shader-f16)`
  }`,
  ignore: !atomics || !kernels!.gpu.f16,
  async fn() {
    assertEquals(await againstReference("f16", [1, 37, 77, 130]), []);
  },
});

Deno.test({
  name: `atomic dQ: counted = modeled per pass and in all, f32 and f16, causal${
    atomics ? "" : NO_ATOMIC
  }`,
  ignore: !atomics,
  async fn() {
    const dtypes: Dtype[] = kernels!.gpu.f16 ? ["f32", "f16"] : ["f32"];
    for (const dtype of dtypes) {
      const cases = [[37, 32, true, "atomic"], [77, 64, false, "atomic"], [
        130,
        128,
        true,
        "atomic-stagger",
      ]] as const;
      for (const [n, d, causal, dq] of cases) {
        const s = shape(n, d, causal, dtype);
        const problem = { kernel: "flash-bwd", shape: s, tiles: TILES[d]!, options: { dq } };
        const passes = await countEachPass(kernels!, problem);
        const names = passes.map((p) => p.name).join();
        assertEquals(names, dtype === "f32" ? "dqzero,delta,dkdv" : "dqzero,delta,dkdv,dqcast");
        for (const p of passes) assertEquals(p.counted, p.modeled, `${dtype} n${n} ${p.name}`);
        const r = await runBackward(kernels!, {
          kernel: "flash",
          shape: s,
          tiles: TILES[d]!,
          options: { dq },
          count: true,
        });
        assertEquals(r.failures, []);
        assertEquals(r.counted, r.modeled, `${dtype} n${n} d${d}`);
        // The accumulator's RMWs are counted: Tc read-modify-writes of every row (dense).
        const acc = dtype === "f32" ? "dq" : "dqacc";
        assert(r.counted![acc]!.read > 0 && r.counted![acc]!.read === r.modeled[acc]!.read);
      }
    }
  },
});

Deno.test({
  name: `atomic dQ: a plan that skips the zeroing is caught (poisoned dQ)${
    atomics ? "" : NO_ATOMIC
  }`,
  ignore: !atomics,
  async fn() {
    const mutant: Kernel = {
      ...flashBwd,
      plan(request) {
        const p = flashBwd.plan(request);
        return { ...p, passes: () => p.passes().filter((x) => x.name !== "dqzero") };
      },
    };
    const p = await prepareAttention(kernels!, {
      kernel: mutant,
      shape: shape(37, 32, false, "f32"),
      tiles: TILES[32]!,
      options: ATOMIC,
    });
    try {
      const r = await checkPrepared(p, 11);
      assert(!(r.errors.dq! <= 1e-4), `dq error ${r.errors.dq}`);
      assert(r.errors.dk! <= 1e-4 && r.errors.dv! <= 1e-4);
    } finally {
      p.destroy();
    }
  },
});

Deno.test({
  name: `atomic dQ on a device without float32 atomics: refused in one line${
    atomics ? " (ignored: this adapter grants the feature)" : ""
  }`,
  ignore: kernels === null || atomics,
  async fn() {
    const e = await assertRejects(
      () =>
        prepareAttention(kernels!, {
          kernel: "flash-bwd",
          shape: shape(9, 32, false, "f32"),
          tiles: TILES[32]!,
          options: ATOMIC,
        }),
      UsageError,
    );
    assert(e.message.includes(FLOAT32_ATOMIC) && !e.message.includes("\n"), e.message);
  },
});

Deno.test("atomic dQ plan: passes, bindings, keys, and an unknown dq refused", () => {
  const tiles = TILES[64]!;
  for (const dtype of ["f32", "f16"] as const) {
    const s = shape(77, 64, false, dtype);
    const plan = planFor("flash-bwd", { shape: s, tiles, options: ATOMIC });
    const passes = plan.passes();
    const acc = dtype === "f32" ? "dq" : "dqacc";
    assertEquals(
      passes.map((p) => p.name),
      dtype === "f32" ? ["dqzero", "delta", "dkdv"] : ["dqzero", "delta", "dkdv", "dqcast"],
    );
    const dkdv = passes.find((p) => p.name === "dkdv")!;
    const bound = dkdv.bindings.find((b) => b.as === "dqa")!;
    assertEquals([bound.buffer, bound.element], [acc, "atomic<f32>"]);
    assert(dkdv.source.includes("atomicAdd(&dqa[") && dkdv.key.endsWith(`/dq-atomic-${acc}`));
    const pass = planFor("flash-bwd", { shape: s, tiles }).passes();
    assertEquals(pass.map((p) => p.name), ["delta", "dkdv", "dq"]);
    const plain = pass.find((p) => p.name === "dkdv")!;
    assert(plain.key !== dkdv.key && !plain.source.includes("atomicAdd"));
    assertEquals(plan.buffers.some((b) => b.name === "dqacc"), dtype === "f16");
    // Staggered: the same passes and bytes, its own walk and key.
    const st = planFor("flash-bwd", { shape: s, tiles, options: { dq: "atomic-stagger" } });
    const stDkdv = st.passes().find((p) => p.name === "dkdv")!;
    assert(stDkdv.source.includes("(i + kb) % q_block_count") && !dkdv.source.includes("(i + kb)"));
    assert(stDkdv.key.endsWith(`/dq-atomic-stagger-${acc}`));
    assertEquals(st.modeledTraffic(), plan.modeledTraffic());
  }
  assertRejectsSync(() =>
    planFor("flash-bwd", { shape: shape(9, 32, false, "f32"), tiles, options: { dq: "atom" } })
  );
});

function assertRejectsSync(f: () => unknown) {
  let threw: unknown = null;
  try {
    f();
  } catch (e) {
    threw = e;
  }
  assert(threw instanceof UsageError, String(threw));
}

Deno.test("atomic dQ modeled bytes by hand, and the IO trade against the dQ pass", () => {
  // n = 100, d = 64, f32, 32 × 32, B·H = 1: Tc = Tr = 4, dense.
  const s: AttentionShape = { batch: 1, heads: 1, n: 100, d: 64, dtype: "f32", causal: false };
  const t: Tiles = { br: 32, bc: 32, rm: 4, tx: 8 };
  const nd = 100 * 64;
  const [zero, delta, dkdv] = modeledBackwardPasses("flash", s, t, null, "atomic");
  assertEquals(zero!.dq, { read: 0, write: nd * 4 });
  assertEquals(zero!.uniform!.read, 16 * Math.ceil(nd / 4 / 256));
  assertEquals(delta!.o!.read, nd * 4);
  assertEquals(dkdv!.dq, { read: 4 * nd * 4, write: 4 * nd * 4 });
  // Against the dQ pass: the pass re-reads K and V once per query block (2·Tr·N·d·b) and writes dQ
  // once; the atomics read and write dQ once per key block (2·Tc·N·d·4) and zero it once.
  const atomic = modeledBackward("flash", s, t, null, "atomic");
  const pass = modeledBackward("flash", s, t, null, "pass");
  assertEquals(pass.k!.read - atomic.k!.read, 4 * nd * 4);
  assertEquals(pass.v!.read - atomic.v!.read, 4 * nd * 4);
  assertEquals(pass.q!.read - atomic.q!.read, nd * 4);
  assertEquals(atomic.dq!.read + atomic.dq!.write - pass.dq!.write, 2 * 4 * nd * 4);
  // f16: the accumulator is its own f32 scratch, converted to dq (N·d·4 read, N·d·2 written).
  const h = modeledBackwardPasses("flash", { ...s, dtype: "f16" }, t, null, "atomic");
  assertEquals(h.length, 4);
  assertEquals(h[2]!.dqacc, { read: 4 * nd * 4, write: 4 * nd * 4 });
  assertEquals([h[3]!.dqacc!.read, h[3]!.dq!.write], [nd * 4, nd * 2]);
  // Causal: only the visited blocks add (query block qb gets qb + 1 key blocks at br = bc).
  const c = modeledBackwardPasses("flash", { ...s, causal: true }, t, null, "atomic")[2]!;
  assertEquals(c.dq!.read, (32 * 1 + 32 * 2 + 32 * 3 + 4 * 4) * 64 * 4);
});

Deno.test("atomic dQ plan of flash-fwd+bwd: the composite hands its options to its backward half", () => {
  const s = shape(77, 64, false, "f32");
  const tiles = TILES[64]!;
  const names = (options?: Record<string, unknown>) =>
    planFor("flash-fwd+bwd", { shape: s, tiles, options }).passes().map((p) => p.name);
  assertEquals(names(), ["flash", "delta", "dkdv", "dq"]);
  for (const dq of MODES) {
    const plan = planFor("flash-fwd+bwd", { shape: s, tiles, options: { dq } });
    assertEquals(plan.passes().map((p) => p.name), ["flash", "dqzero", "delta", "dkdv"]);
    assert(plan.passes().find((p) => p.name === "dkdv")!.key.endsWith(`/dq-${dq}-dq`));
    // The backward half's traffic is the atomic one: the composite's adds the forward's to it.
    const alone = planFor("flash-bwd", { shape: s, tiles, options: { dq } }).modeledTraffic();
    assertEquals(plan.modeledTraffic().dq, alone.dq);
  }
  assertRejectsSync(() => planFor("flash-fwd+bwd", { shape: s, tiles, options: { dq: "atom" } }));
});
