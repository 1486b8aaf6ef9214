import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import type { AttentionShape, Tiles } from "../../core/shapes.ts";
import { UsageError } from "../../core/errors.ts";
import { FLOAT32_ATOMIC } from "../gpu.ts";
import { getKernels, mutantKernels, trafficDifferences } from "../testing.ts";
import { blockSparseBwd, flashBwd, prefetchOf } from "./mod.ts";
import { type BackwardKnobs, flashBackwardKey, flashBackwardSource } from "./program.ts";
import { runBackward } from "./testing.ts";

// flash-bwd with prefetch: true (./prefetch.ts): each thread loads its share of the next inner
// block's tiles into registers one block ahead and stores them after the barrier. Against the
// float64 gradients on fresh inputs with poisoned outputs, at n not a multiple of the tiles,
// causal and not; counted bytes equal the modeled bytes (the prefetch reads nothing more).

const kernels = await getKernels();
const noGpu = kernels === null;
const atomics = !noGpu && kernels.gpu.device.features.has(FLOAT32_ATOMIC);
const PREFETCH = { prefetch: true };
// Per head dim, br ≠ bc both ways (the dK/dV pass swaps them); d = 32 also 16×4 (rm 2, tx 4):
// the dK/dV pass then has 8 threads for 16 query rows (2 rows of L and D a thread, PFR = 2) and
// 16 vec4 of Q and of dO a thread (PF = 16).
const CASES: [number, Tiles][] = [
  [32, { br: 8, bc: 8, rm: 2, tx: 4 }],
  [32, { br: 16, bc: 4, rm: 2, tx: 4 }],
  [64, { br: 16, bc: 8, rm: 2, tx: 4 }],
  [128, { br: 8, bc: 16, rm: 2, tx: 4 }],
];
// Every (n, causal) compiles its own pipelines (n is in the program), about 6 s each on a cold
// llvmpipe: the first case takes the edge lengths, the others one odd length each way.
const RUNS: [number, boolean][][] = [
  [[1, false], [2, true], [37, false], [37, true], [130, false], [130, true]],
  [[37, false], [77, true]],
  [[37, true], [77, false]],
  [[37, false], [130, true]],
];

function shape(n: number, d: number, causal: boolean): AttentionShape {
  return { batch: 2, heads: 2, n, d, dtype: "f32", causal };
}

Deno.test({
  name: "prefetch f32 against the float64 reference, n 1/2/37/77/130, d 32/64/128, causal or not",
  ignore: noGpu,
  async fn() {
    const failures: string[] = [];
    for (const [i, [d, tiles]] of CASES.entries()) {
      for (const [n, causal] of RUNS[i]!) {
        const r = await runBackward(kernels!, {
          kernel: "flash",
          shape: shape(n, d, causal),
          tiles,
          options: PREFETCH,
        });
        failures.push(...r.failures);
      }
    }
    assertEquals(failures, []);
  },
});

Deno.test({
  name: "prefetch: counted bytes equal modeled bytes (nothing read past a buffer or twice)",
  ignore: noGpu,
  async fn() {
    const failures: string[] = [];
    for (const [i, [d, tiles]] of CASES.entries()) {
      const runs = i === 0 ? [[37, false], [77, true], [1, true]] as const : [[37, false]] as const;
      for (const [n, causal] of runs) {
        const r = await runBackward(kernels!, {
          kernel: "flash",
          shape: shape(n, d, causal),
          tiles,
          options: PREFETCH,
          count: true,
        });
        failures.push(...r.failures, ...trafficDifferences(r.counted!, r.modeled));
      }
    }
    assertEquals(failures, []);
  },
});

Deno.test({
  name: "prefetch: a mutant that refreshes the tiles only every other block fails the reference",
  ignore: noGpu,
  async fn() {
    // Tiles stored late: odd blocks compute on the previous block's Q, dO, L, D (K, V).
    const mutant = mutantKernels(kernels!, "    if live {\n", "    if live && bi % 2u == 1u {\n");
    const r = await runBackward(mutant, {
      kernel: "flash",
      shape: shape(37, 32, false),
      tiles: CASES[0]![1],
      options: PREFETCH,
    });
    assertEquals(mutant.cache.mutated, 2, "both passes' stores found");
    assertEquals(r.failures.length, 3, r.failures.join("\n"));
  },
});

Deno.test({
  name: `prefetch with the atomic dQ against the float64 reference, n 1/37/77, d 32/64/128${
    atomics ? "" : ` (ignored: no ${FLOAT32_ATOMIC} on this adapter)`
  }`,
  ignore: !atomics,
  async fn() {
    const failures: string[] = [];
    // Each case in one atomic mode, the modes alternating (pipelines are compiled per n).
    for (const [i, [d, tiles]] of CASES.entries()) {
      const dq = i % 2 === 0 ? "atomic" : "atomic-stagger";
      const runs = i === 0
        ? [[1, true], [37, false], [77, true]] as const
        : [[37, true], [77, false]] as const;
      for (const [n, causal] of runs) {
        const r = await runBackward(kernels!, {
          kernel: "flash",
          shape: shape(n, d, causal),
          tiles,
          options: { ...PREFETCH, dq },
        });
        failures.push(...r.failures.map((f) => `dq ${dq}: ${f}`));
      }
    }
    assertEquals(failures, []);
  },
});

Deno.test("prefetch: off is the default source and key; on changes both main passes' keys", () => {
  const tiles = { br: 32, bc: 32, rm: 2, tx: 16 };
  for (const dq of ["pass", "atomic"] as const) {
    const k: BackwardKnobs = { d: 64, tiles, sparse: false, dq };
    for (const pass of ["delta", "dkdv", "dq"] as const) {
      const on = { ...k, prefetch: true };
      const off = { ...k, prefetch: false };
      assertEquals(flashBackwardSource(off, pass), flashBackwardSource(k, pass));
      assertEquals(flashBackwardKey(off, pass), flashBackwardKey(k, pass));
      if (pass === "delta") {
        assertEquals(flashBackwardKey(on, pass), flashBackwardKey(k, pass));
      } else {
        assertEquals(flashBackwardKey(on, pass), `${flashBackwardKey(k, pass)}/prefetch`);
        assertNotEquals(flashBackwardSource(on, pass), flashBackwardSource(k, pass));
      }
    }
  }
  // 32 × 32 tiles, 256 threads, d = 64: 2 vec4 of each staged tile a thread.
  assert(
    flashBackwardSource({ d: 64, tiles, sparse: false, prefetch: true }, "dq").includes(
      "const PF: u32 = 2u;",
    ),
  );
});

Deno.test("prefetch: a non-boolean value and block-sparse-bwd are refused in one line", () => {
  assertEquals(prefetchOf(undefined), false);
  assertThrows(() => prefetchOf({ prefetch: 1 }), UsageError, "prefetch: expected true or false");
  const request = { shape: shape(64, 32, false), tiles: { br: 8, bc: 8, rm: 2, tx: 4 } };
  assertThrows(
    () => blockSparseBwd.plan({ ...request, options: PREFETCH }),
    UsageError,
    "block-sparse-bwd",
  );
  assert(flashBwd.plan({ ...request, options: PREFETCH }).passes()[1]!.key.endsWith("/prefetch"));
});
