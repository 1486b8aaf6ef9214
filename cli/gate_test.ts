/**
 * The gate cannot be fooled by a broken kernel or a GPU fault. In process, on the real adapter
 * (Mesa's llvmpipe will do; ignored without one):
 * - mutant kernels that leave one row of O unwritten (NaN) fails `bench --verify`
 *   (exit 1, the runs `failed` with the reason, no `null` where a number belongs) and then
 *   `check` against a clean baseline (exit 1);
 * - a kernel whose WGSL does not compile fails its run, and the sweep goes on;
 * - an uncaptured GPU (validation) error during a run fails that run;
 * - a device lost mid-sweep fails the run in progress and every later run with the reason,
 *   and keeps the runs that finished — in `measureSweep` and end to end in `bench`, which
 *   still writes results.json and exits 1;
 * - an out-of-memory error from the buffer allocation's error scope skips the run as "does
 *   not fit".
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { main } from "./main.ts";
import { captureOutput } from "./output.ts";
import { type MeasureOptions, measureRun, measureSweep, type RunSpec } from "./bench_runner.ts";
import { parseResults } from "../analysis/results_io.ts";
import { checkResults } from "../analysis/validate.ts";
import { kernelCatalog } from "../kernels/catalog.ts";
import { AttentionKernels } from "../kernels/attention.ts";
import { openGpu } from "../kernels/gpu.ts";
import { PipelineCache } from "../kernels/program.ts";
import { getKernels, mutantKernels } from "../kernels/testing.ts";
import type { AttentionShape } from "../core/shapes.ts";
import { type KernelName, KERNELS } from "../kernels/registry.ts";

const kernels = await getKernels();
const noGpu = kernels === null;

/** Every kernel's store of O (flash's and standard's pv pass), guarded by the row bound: the
 * mutant skips row 0, which keeps its NaN poison. */
const STORE_GUARD = "if row < n {";
const SKIP_ROW_0 = "if row < n && row != 0u {";

const OPTS: MeasureOptions = {
  warmup: 1,
  warmupMs: 0,
  reps: 2,
  minTimeMs: 0,
  countIo: false,
  verify: true,
  sramBytes: 32768,
};

function spec(name: KernelName, n: number, seed = 1): RunSpec {
  const shape: AttentionShape = { batch: 1, heads: 1, n, d: 32, dtype: "f32", causal: false };
  const kernel = KERNELS[name];
  return {
    kernel,
    shape,
    tiles: kernels!.defaultTiles(kernel, shape),
    mask: { kind: "local", density: 0.5, seed: 1 },
    sweep: "n",
    seed,
  };
}

async function inTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "attnbench_gate_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `fn` with every pipeline compiled from a source with `from` replaced by `to`. */
async function withMutant<T>(from: string, to: string, fn: () => Promise<T>): Promise<T> {
  const original = PipelineCache.prototype.get;
  let mutated = 0;
  PipelineCache.prototype.get = function (key: string, source: string, entryPoint?: string) {
    if (!source.includes(from)) return original.call(this, key, source, entryPoint);
    mutated++;
    return original.call(this, `${key}/mutant`, source.replaceAll(from, to), entryPoint);
  };
  try {
    const result = await fn();
    assert(mutated > 0, `the mutation "${from}" found no source`);
    return result;
  } finally {
    PipelineCache.prototype.get = original;
  }
}

const BENCH = [
  ...["bench", "--kernels", "standard,flash,block-sparse", "--n", "17,40", "--d", "32"],
  ...["--heads", "1", "--batch", "1", "--reps", "2", "--warmup", "1", "--verify"],
  ...["--no-ceilings", "--no-report", "--mask", "local", "--density", "0.5"],
];

Deno.test({
  name: "a kernel that writes NaN fails bench --verify (exit 1) and then check (exit 1)",
  ignore: noGpu,
  async fn() {
    await inTemp(async (dir) => {
      const clean = captureOutput();
      assertEquals(await main([...BENCH, "--out", `${dir}/clean`], clean), 0, clean.stderr.join());

      const io = captureOutput();
      const code = await withMutant(
        STORE_GUARD,
        SKIP_ROW_0,
        () => main([...BENCH, "--out", `${dir}/mutant`], io),
      );
      assertEquals(code, 1, io.stderr.join("\n"));
      const text = await Deno.readTextFile(`${dir}/mutant/results.json`);
      // Strict reading: a null where the schema wants a number would throw here.
      const results = parseResults(text, "mutant results.json", kernelCatalog());
      assertEquals(results.runs.length, 6);
      for (const run of results.runs) {
        const what = `${run.kernel} n=${run.n}`;
        assertEquals(run.status, "failed", what);
        assertStringIncludes(run.reason ?? "", "NaN or infinite", what);
        assertEquals(run.maxRelError, null, what);
      }

      const gate = captureOutput();
      const verdict = await main([
        ...["check", "--baseline", `${dir}/clean/results.json`],
        ...["--current", `${dir}/mutant/results.json`, "--no-timing"],
      ], gate);
      assertEquals(verdict, 1, gate.stdout.join("\n"));
      assertMatch(gate.stdout.join("\n"), /REGRESSED: 6 fail/);
    });
  },
});

Deno.test({
  name: "a mutant whose output is finite but wrong fails bench --verify with the error recorded",
  ignore: noGpu,
  async fn() {
    const mutant = mutantKernels(kernels!, "T4(acc[i][c] * inv)", "T4(acc[i][c] * inv * 1.01)");
    const record = await measureRun(mutant, spec("flash", 33), OPTS);
    assertEquals(record.status, "failed");
    assertStringIncludes(record.reason ?? "", "wrong output: max relative error");
    assert(record.maxRelError !== null && record.maxRelError > 1e-4, String(record.maxRelError));
    assert(mutant.cache.mutated > 0);
  },
});

Deno.test({
  name: "a kernel that does not compile fails its run; the sweep goes on",
  ignore: noGpu,
  async fn() {
    const lse = "lse[bh * n + row] = select(";
    const broken = mutantKernels(kernels!, lse, `let bad: u32 = 1.5; ${lse}`);
    const runs = await measureSweep(broken, [spec("flash", 9), spec("standard", 9)], OPTS);
    assertEquals(runs.map((r) => r.status), ["failed", "ok"]);
    assertMatch(runs[0]!.reason ?? "", /WGSL compile error|error/i);
    assert(!runs[0]!.reason!.includes("\n"));
    for (const r of runs) checkResults({ ...FILE, runs: [r] }, kernelCatalog());
  },
});

Deno.test({
  name: "an uncaptured GPU error during a run fails that run",
  ignore: noGpu,
  async fn() {
    const gpu = await openGpu();
    try {
      const k = new AttentionKernels(gpu);
      const runs = await measureSweep(k, [spec("flash", 9), spec("flash", 10)], OPTS, {
        measure: async (kk, s, o) => {
          const r = await measureRun(kk, s, o);
          // A validation error outside any error scope: an uncaptured error.
          if (s.shape.n === 9) gpu.device.createBuffer({ size: 4, usage: 0 });
          return r;
        },
      });
      assertEquals(runs.map((r) => r.status), ["failed", "ok"]);
      assertStringIncludes(runs[0]!.reason ?? "", "GPU fault during the run");
    } finally {
      gpu.device.destroy();
    }
  },
});

Deno.test({
  name: "a device lost mid-sweep fails the rest with the reason and keeps the finished runs",
  ignore: noGpu,
  async fn() {
    const gpu = await openGpu();
    const k = new AttentionKernels(gpu);
    const specs = [
      spec("flash", 9),
      spec("standard", 9),
      spec("block-sparse", 9),
      spec("flash", 3),
    ];
    let measured = 0;
    const runs = await measureSweep(k, specs, OPTS, {
      measure: async (kk, s, o) => {
        measured++;
        const r = await measureRun(kk, s, o);
        if (measured === 2) gpu.device.destroy(); // lost while run 2 is in progress
        return r;
      },
    });
    assertEquals(measured, 2, "no run starts on a lost device");
    assertEquals(runs.map((r) => r.status), ["ok", "failed", "failed", "failed"]);
    assertStringIncludes(runs[1]!.reason ?? "", "device lost");
    for (const r of runs.slice(2)) assertStringIncludes(r.reason ?? "", "not run: the device lost");
    assertEquals(runs[0]!.maxRelError !== null && runs[0]!.maxRelError <= 1e-4, true);
    checkResults({ ...FILE, runs }, kernelCatalog());
  },
});

Deno.test({
  name: "an out-of-memory error from the allocation's error scope skips the run as does-not-fit",
  ignore: noGpu,
  async fn() {
    const gpu = await openGpu();
    try {
      // A device whose out-of-memory scope around prepareAttention's buffer allocation (the
      // second scope popped after the first createBuffer) reports an out-of-memory error.
      let popsSinceAlloc = -1;
      const device = new Proxy(gpu.device, {
        get(target, prop) {
          if (prop === "createBuffer") {
            return (d: GPUBufferDescriptor) => {
              if (popsSinceAlloc < 0) popsSinceAlloc = 0;
              return target.createBuffer(d);
            };
          }
          if (prop === "popErrorScope") {
            return async () => {
              const real = await target.popErrorScope();
              if (popsSinceAlloc >= 0 && ++popsSinceAlloc === 2) {
                return new GPUOutOfMemoryError("mock: out of memory");
              }
              return real;
            };
          }
          const v = Reflect.get(target, prop, target);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
      const k = new AttentionKernels({ ...gpu, device });
      const spec9 = spec("flash", 9);
      const r = await measureRun(k, spec9, OPTS);
      assertEquals(r.status, "skipped", r.reason ?? "");
      assertStringIncludes(r.reason ?? "", "mock: out of memory");
    } finally {
      gpu.device.destroy();
    }
  },
});

/** The file around runs, for schema checks of records alone. */
const FILE = {
  schema: "attnbench/results@1",
  createdAt: "2026-01-01T00:00:00Z",
  tool: { name: "attnbench", version: "0" },
  denoVersion: "2",
  gitCommit: null,
  device: {
    vendor: "",
    architecture: "",
    description: "",
    device: "",
    isFallbackAdapter: true,
    limits: {},
    features: [],
  },
  ceilings: null,
  config: {},
};

Deno.test({
  name: "bench: a device lost mid-sweep still writes the finished runs and exits 1",
  ignore: noGpu,
  async fn() {
    await inTemp(async (dir) => {
      // The device is destroyed (lost) when the second shader module is created: the first
      // run (flash, one module) finishes, the second (standard) is lost while it compiles.
      const original = GPUDevice.prototype.createShaderModule;
      let modules = 0;
      GPUDevice.prototype.createShaderModule = function (d: GPUShaderModuleDescriptor) {
        if (++modules === 2) this.destroy();
        return original.call(this, d);
      };
      const io = captureOutput();
      let code: number;
      try {
        code = await main([
          ...["bench", "--kernels", "flash,standard,block-sparse", "--n", "9", "--d", "32"],
          ...["--heads", "1", "--batch", "1", "--reps", "2", "--warmup", "1", "--verify"],
          ...["--no-ceilings", "--no-report", "--out", dir],
        ], io);
      } finally {
        GPUDevice.prototype.createShaderModule = original;
      }
      assertEquals(code, 1, io.stderr.join("\n"));
      const results = parseResults(
        await Deno.readTextFile(`${dir}/results.json`),
        "results",
        kernelCatalog(),
      );
      assertEquals(results.runs.map((r) => `${r.kernel}:${r.status}`), [
        "flash:ok",
        "standard:failed",
        "block-sparse:failed",
      ]);
      assertStringIncludes(results.runs[1]!.reason ?? "", "device lost");
      assertStringIncludes(results.runs[2]!.reason ?? "", "not run: the device lost");
    });
  },
});

Deno.test({
  name: "verify: NaN output and a kernel that does not compile each fail their row (exit 1)",
  ignore: noGpu,
  async fn() {
    const args = ["verify", "--n", "9", "--d", "32", "--kernels", "flash", "--json"];
    for (
      const [to, reason] of [
        [SKIP_ROW_0, "output has NaN or infinite values"],
        [`${STORE_GUARD} let bad: u32 = 1.5;`, "WGSL compile error"],
      ] as const
    ) {
      const io = captureOutput();
      const code = await withMutant(STORE_GUARD, to, () => main(args, io));
      assertEquals(code, 1, io.stderr.join("\n"));
      const rows = JSON.parse(io.stdout.join("\n")).rows as {
        pass: boolean;
        maxRelError: number | null;
        reason: string;
      }[];
      assertEquals(rows.length, 1);
      assertEquals(rows[0]!.pass, false);
      assertEquals(rows[0]!.maxRelError, null);
      assertStringIncludes(rows[0]!.reason, reason);
    }
  },
});
