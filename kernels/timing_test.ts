import { assert, assertEquals, assertGreater, assertRejects } from "@std/assert";
import { UsageError } from "../core/errors.ts";
import { median } from "../analysis/stats.ts";
import { type Gpu, openGpu } from "./gpu.ts";
import {
  measurePipelineCompileMs,
  measureRoundTripMs,
  timeDispatches,
  type TimingResult,
} from "./timing.ts";

// These tests need a WebGPU adapter (Mesa's llvmpipe will do); without one they are ignored.
const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
const gpu: Gpu | null = adapter ? await openGpu() : null;
const ignore = gpu === null;

/** A kernel whose work is `iters` fma steps a thread: the time scales with `iters`. */
const LOOP_WGSL = `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> iters: vec4<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  var a = f32(g.x) * 0.001;
  for (var i = 0u; i < iters.x; i++) { a = fma(a, 0.999, 0.001); }
  out[g.x] = a;
}`;
const GROUPS = 64;

/** Makes the loop kernel with `iters` steps; returns its encoder of one rep. */
function loopKernel(g: Gpu, iters: number): (pass: GPUComputePassEncoder) => void {
  const { device } = g;
  const module = device.createShaderModule({ code: LOOP_WGSL });
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module, entryPoint: "main" },
  });
  const out = device.createBuffer({ size: GROUPS * 64 * 4, usage: GPUBufferUsage.STORAGE });
  const uniform = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(uniform, 0, new Uint32Array([iters, 0, 0, 0]));
  const group = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: out } },
      { binding: 1, resource: { buffer: uniform } },
    ],
  });
  return (pass) => {
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(GROUPS);
  };
}

function assertSane(r: TimingResult, reps: number): void {
  assert(r.samplesMs.length >= reps, `${r.samplesMs.length} samples, wanted ${reps}`);
  for (const s of r.samplesMs) assert(s > 0 && Number.isFinite(s), `sample ${s}`);
  assertGreater(r.firstRunMs, 0);
  assertGreater(r.resolutionMs, 0);
  assertGreater(r.roundTripMs, 0);
  assert(r.discarded >= 0);
}

Deno.test("timeDispatches rejects bad options before touching the GPU", async () => {
  const none = {} as Gpu;
  const encode = () => {};
  await assertRejects(() => timeDispatches(none, encode, { warmup: 0, reps: 0 }), UsageError);
  await assertRejects(() => timeDispatches(none, encode, { warmup: -1, reps: 3 }), UsageError);
  await assertRejects(() => timeDispatches(none, encode, { warmup: 1, reps: 2.5 }), UsageError);
  await assertRejects(
    () => timeDispatches(none, encode, { warmup: 1, reps: 5, maxReps: 4 }),
    UsageError,
  );
  await assertRejects(
    () => timeDispatches(none, encode, { warmup: 1, reps: 5, minTimeMs: NaN }),
    UsageError,
  );
});

Deno.test({
  name: "timeDispatches returns reps positive samples on the device's clock",
  ignore,
  async fn() {
    const g = gpu!;
    const r = await timeDispatches(g, loopKernel(g, 200), { warmup: 2, reps: 12 });
    assertSane(r, 12);
    assertEquals(r.samplesMs.length, 12);
    assertEquals(r.clock, g.timestamps ? "timestamp-query" : "wall");
  },
});

Deno.test({
  name: "timeDispatches uses the wall clock when the device has no timestamps",
  ignore,
  async fn() {
    const g: Gpu = { ...gpu!, timestamps: false };
    const r = await timeDispatches(g, loopKernel(g, 200), { warmup: 1, reps: 5 });
    assertSane(r, 5);
    assertEquals(r.samplesMs.length, 5);
    assertEquals(r.clock, "wall");
  },
});

Deno.test({
  name: "8x the work takes more than 2x as long, on both clocks",
  ignore,
  async fn(t) {
    const clocks = gpu!.timestamps ? [true, false] : [false];
    for (const timestamps of clocks) {
      await t.step(timestamps ? "timestamp-query" : "wall", async () => {
        const g: Gpu = { ...gpu!, timestamps };
        const opts = { warmup: 2, reps: 9 };
        const one = median((await timeDispatches(g, loopKernel(g, 1000), opts)).samplesMs);
        const eight = median((await timeDispatches(g, loopKernel(g, 8000), opts)).samplesMs);
        assertGreater(eight / one, 2, `1x: ${one} ms, 8x: ${eight} ms`);
      });
    }
  },
});

Deno.test({
  name: "timeDispatches numbers reps from 0, without gaps, first run and warm-up included",
  ignore,
  async fn() {
    const g = gpu!;
    const seen: number[] = [];
    const inner = loopKernel(g, 10);
    const r = await timeDispatches(g, (pass, rep) => {
      seen.push(rep);
      inner(pass);
    }, { warmup: 4, reps: 6 });
    assertEquals(seen, seen.map((_, i) => i));
    if (r.clock === "timestamp-query") assertEquals(seen.length, 4 + r.samplesMs.length);
  },
});

Deno.test({
  name: "timeDispatches keeps going until minTimeMs, and stops at maxReps",
  ignore,
  async fn() {
    const g = gpu!;
    const encode = loopKernel(g, 200);
    // 200 ms, not less: a wall-clock batch lasts at least one round trip (about 11 ms in Deno,
    // several times that on a loaded machine), so two batches alone could reach a smaller goal.
    const long = await timeDispatches(g, encode, { warmup: 1, reps: 2, minTimeMs: 200 });
    const sum = long.samplesMs.reduce((a, b) => a + b, 0);
    assert(sum >= 200 || long.clock === "wall", `timed ${sum} ms`);
    assertGreater(long.samplesMs.length, 2);
    const capped = await timeDispatches(g, encode, {
      warmup: 1,
      reps: 2,
      minTimeMs: 1e6,
      maxReps: 6,
    });
    assert(capped.samplesMs.length <= 6, `${capped.samplesMs.length} samples`);
  },
});

Deno.test({
  name: "settleMs keeps a slow start (clocks coming up) out of the timed samples",
  ignore,
  async fn() {
    const g = gpu!;
    // Reps before SLOW_REPS do 8x the work: the way a GPU whose clocks are still down looks.
    const SLOW_REPS = 24;
    const slow = loopKernel(g, 8000);
    const fast = loopKernel(g, 1000);
    const encode = (pass: GPUComputePassEncoder, rep: number) =>
      rep < SLOW_REPS ? slow(pass) : fast(pass);
    const opts = { warmup: 2, reps: 8 };
    const plain = await timeDispatches(g, encode, opts);
    if (plain.clock !== "timestamp-query") return; // settling needs the timestamp clock
    assertEquals(plain.settle, undefined);
    const fastMs = median((await timeDispatches(g, fast, opts)).samplesMs);
    // Without settling the timed reps are the slow ones: the test can tell the two apart.
    assertGreater(median(plain.samplesMs), 3 * fastMs);
    // The slow reps last about 24 * 8 = 192 fast reps; two slow batches agree with each other
    // (a plateau), so only the floor of GPU time carries the settling past them.
    const settled = await timeDispatches(g, encode, { ...opts, settleMs: 250 * fastMs });
    const s = settled.settle!;
    assert(s.settled, `not settled: ${s.batchMediansMs.join(", ")}`);
    assertGreater(s.batchMediansMs.length, 1);
    const m = median(settled.samplesMs);
    assert(m < 2 * fastMs, `timed median ${m} ms after settling, fast ${fastMs} ms`);
    // A floor of GPU time is kept even when the batches agree at once.
    const floor = await timeDispatches(g, fast, { warmup: 1, reps: 2, settleMs: 100 });
    assert(floor.settle!.busyMs >= 100, `settled after ${floor.settle!.busyMs} ms`);
  },
});

Deno.test({
  name: "timeDispatches turns a GPU validation error into an Error naming the stage",
  ignore,
  async fn() {
    const g = gpu!;
    // A dispatch with no pipeline set is invalid.
    const e = await assertRejects(
      () => timeDispatches(g, (pass) => pass.dispatchWorkgroups(1), { warmup: 1, reps: 2 }),
      Error,
    );
    assert(e.message.includes("validation") && e.message.includes("first run"), e.message);
  },
});

Deno.test({
  name: "measurePipelineCompileMs compiles, and explains a failure",
  ignore,
  async fn() {
    const { device } = gpu!;
    const module = device.createShaderModule({ code: LOOP_WGSL });
    const { pipeline, ms } = await measurePipelineCompileMs(device, {
      layout: "auto",
      compute: { module, entryPoint: "main" },
    });
    assert(pipeline.getBindGroupLayout(0));
    assert(ms >= 0 && Number.isFinite(ms));
    await assertRejects(
      () =>
        measurePipelineCompileMs(device, {
          label: "missing",
          layout: "auto",
          compute: { module, entryPoint: "no_such_entry" },
        }),
      Error,
      "missing",
    );
  },
});

Deno.test({
  name: "measureRoundTripMs is positive and measured once per device",
  ignore,
  async fn() {
    const { device } = gpu!;
    const a = await measureRoundTripMs(device);
    assertGreater(a, 0);
    assertEquals(await measureRoundTripMs(device), a);
  },
});
