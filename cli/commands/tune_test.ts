// `tune`'s knobs (issue 10): which knob combinations a tile is tried in, the tuned file that
// stores the winner's (validated, older files still read), `bench` running them and recording
// them in each run. The GPU cases run on whatever adapter is there: llvmpipe compares flash's
// layouts; lavapipe (shader-f16, subgroups of 8) also the f16 arithmetic and the portable path,
// and with ATTNBENCH_EXPECT_SUBGROUPS=1 an adapter without subgroups fails instead of skipping.
// The timer is a mock that runs each candidate once for real and then reports the time that
// makes the wanted candidate win, so which one wins is known; each candidate's correctness is
// checked for real against the float64 reference.

import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { knobCandidates, runTune, type TuneCandidate } from "./tune.ts";
import { benchCommand, withTunedKnobs } from "./bench.ts";
import { captureOutput } from "../output.ts";
import { readTunedFile, saveTuned, type TunedEntry, tunedKnobsFor } from "../tuned.ts";
import { validateTuned } from "../../analysis/validate.ts";
import { kernelCatalog } from "../../kernels/catalog.ts";
import { KERNELS } from "../../kernels/registry.ts";
import { FALLBACK_TILE_CANDIDATES } from "../../kernels/tiles.ts";
import { openGpu } from "../../kernels/gpu.ts";
import { timeDispatches } from "../../kernels/timing.ts";
import { type DeviceRecord, runKey } from "../../core/schema.ts";
import type { AttentionShape, Dtype } from "../../core/shapes.ts";
import type { RunSpec } from "../bench_runner.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MASK = { kind: "random", density: 0.5, seed: 1 } as const;
const shapeOf = (dtype: Dtype, d = 32): AttentionShape => ({
  batch: 1,
  heads: 1,
  n: 77,
  d,
  dtype,
  causal: false,
});
const knobs = (c: TuneCandidate) =>
  [c.tiles.variant ?? "v5", c.f16Math ?? "-", c.subgroups ? "sg" : "portable"].join(" ");

Deno.test("knob candidates: each tile in every combination that builds another program", () => {
  const tiles = [...FALLBACK_TILE_CANDIDATES];
  // flash f32: v5, v7 and the prefetch layouts v8e and v8 per tile; no subgroups to switch.
  const layouts = ["v5 - sg", "v7 - sg", "v8e - sg", "v8 - sg"];
  assertEquals(
    knobCandidates("flash", shapeOf("f32"), tiles, 0, MASK).map(knobs),
    [...layouts, ...layouts],
  );
  // flash f16: the packed program has one layout, so a layout beside packed adds nothing.
  // Subgroups change nothing in the v5/v7/v8 layouts.
  const f16 = knobCandidates("flash", shapeOf("f16"), tiles.slice(0, 1), 8, MASK);
  assertEquals(f16.map(knobs), [
    "v5 f32 sg",
    "v5 packed sg",
    "v7 f32 sg",
    "v8e f32 sg",
    "v8 f32 sg",
  ]);
  // flash's register-tile layout (rm ≥ 8) has a subgroup path: both are tried.
  const rt = [{ br: 16, bc: 8, rm: 8, tx: 2 }];
  assertEquals(
    knobCandidates("flash", shapeOf("f32"), rt, 8, MASK).map(knobs),
    ["v5 - sg", "v5 - portable", "v7 - sg", "v8e - sg", "v8 - sg"],
  );
  // standard ignores the layout; its softmax has a subgroup path where a row is whole
  // subgroups (32 threads a row at n = 77).
  assertEquals(knobCandidates("standard", shapeOf("f32"), tiles, 8, MASK).map(knobs), [
    "v5 - sg",
    "v5 - portable",
    "v5 - sg",
    "v5 - portable",
  ]);
  assertEquals(knobCandidates("standard", shapeOf("f32"), tiles, 0, MASK).length, 2);
  // block-sparse is the flash program: the same knobs.
  assertEquals(
    knobCandidates("block-sparse", shapeOf("f16"), tiles.slice(0, 1), 0, MASK).length,
    5,
  );
});

function device(description: string): DeviceRecord {
  return {
    vendor: "nvidia",
    architecture: "",
    description,
    device: "9013",
    isFallbackAdapter: false,
    limits: {},
    features: [],
  };
}

const ENTRY: TunedEntry = {
  tiles: { br: 64, bc: 32, rm: 4, tx: 16, variant: "v7" },
  medianMs: 1.25,
  n: 4096,
  batch: 4,
  heads: 16,
  tunedAt: "2026-11-30T00:00:00.000Z",
};

Deno.test("a tuned file with knobs round-trips through validation; older files still read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "attnbench_tune_" });
  try {
    const path = `${dir}/tuned.json`;
    const gpu = device("H200");
    await saveTuned(path, gpu, {
      "flash/f32/d64": { ...ENTRY, subgroups: false },
      "flash/f16/d64": { ...ENTRY, tiles: { br: 64, bc: 32, rm: 2, tx: 8 }, f16Math: "packed" },
      "standard/f32/d64": { ...ENTRY, tiles: { br: 128, bc: 32, rm: 2, tx: 4 }, subgroups: true },
    });
    const file = await readTunedFile(path, true);
    assertEquals(tunedKnobsFor(file, gpu), {
      "flash/f32/d64": { tiles: ENTRY.tiles, subgroups: false },
      "flash/f16/d64": { tiles: { br: 64, bc: 32, rm: 2, tx: 8 }, f16Math: "packed" },
      "standard/f32/d64": { tiles: { br: 128, bc: 32, rm: 2, tx: 4 }, subgroups: true },
    });
    assertEquals(tunedKnobsFor(file, device("H100")), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // A file written before the knobs (the committed file until stop 11, kept in testdata/)
  // reads, with tiles and no knobs.
  const old = await readTunedFile(`${ROOT}testdata/tune/tuned_before_knobs.json`, true);
  const h200 = Object.values(old!.adapters)[0]!.device;
  for (const k of Object.values(tunedKnobsFor(old, h200)!)) assertEquals(Object.keys(k), ["tiles"]);
  // Bad knobs are refused with the field's path.
  const bad = (entry: Record<string, unknown>, key = "flash/f32/d64") => () =>
    validateTuned(
      {
        schema: "attnbench/tuned@1",
        adapters: { x: { device: device("H200"), entries: { [key]: { ...ENTRY, ...entry } } } },
      },
      "t.json",
      kernelCatalog(),
    );
  assertThrows(bad({ tiles: { ...ENTRY.tiles, variant: "v9" } }), Error, "tiles.variant");
  assertThrows(bad({ f16Math: "packed" }), Error, "absent at dtype f32");
  assertThrows(bad({ f16Math: "half" }, "flash/f16/d64"), Error, "f16Math");
  assertThrows(bad({ subgroups: "no" }), Error, "subgroups");
});

Deno.test("bench's runs take the tuned knobs: f16 math unless --f16-math, portable only with subgroups", () => {
  const shape = { ...shapeOf("f16"), d: 64 };
  const spec = (kernel: keyof typeof KERNELS): RunSpec => ({
    kernel: KERNELS[kernel]!,
    shape,
    tiles: { br: 8, bc: 8, rm: 2, tx: 4 },
    mask: MASK,
    sweep: "n",
    seed: 1,
    f16Math: "f32",
    options: { f16Math: "f32" },
  });
  const specs = [spec("flash"), spec("block-sparse"), spec("standard")];
  const tuned = { tiles: specs[0]!.tiles, f16Math: "packed" as const, subgroups: false };
  const got = withTunedKnobs(specs, () => tuned, { f16MathGiven: false, subgroups: true });
  assertEquals(got.map((s) => [s.f16Math, s.options?.f16Math, s.subgroups]), [
    ["packed", "packed", false],
    ["packed", "packed", false],
    ["f32", "f32", false], // standard takes no f16 math
  ]);
  const given = withTunedKnobs(specs, () => tuned, { f16MathGiven: true, subgroups: false });
  assertEquals(given.map((s) => [s.f16Math, s.subgroups]), [
    ["f32", undefined],
    ["f32", undefined],
    ["f32", undefined],
  ]);
  assertEquals(
    withTunedKnobs(specs, () => undefined, { f16MathGiven: false, subgroups: true }),
    specs,
  );
});

const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
const gpu = adapter ? await openGpu() : null;
gpu?.device.destroy();
const expectSg = Deno.env.get("ATTNBENCH_EXPECT_SUBGROUPS") === "1";

/**
 * A timer that runs the candidate once for real, then reports 1 ms for the `win`-th timed
 * candidate (0-based, in the order tune times them) and 5 ms for every other.
 */
function mockTimer(win: number): typeof timeDispatches {
  let timed = 0;
  return async (g, encode, opts) => {
    const real = await timeDispatches(g, encode, { warmup: 0, reps: 1 });
    // tune's warm-up call asks for 1 rep; its timed call for --reps (2 here).
    const ms = opts.reps === 1 ? 5 : timed++ === win ? 1 : 5;
    return { ...real, samplesMs: Array(opts.reps).fill(ms) };
  };
}

/** One knob a GPU case makes win, what the adapter needs for it, and what bench must record. */
interface KnobCase {
  name: string;
  kernel: "flash" | "standard";
  dtype: Dtype;
  /** Picks the winner among the candidates tune tries. */
  wins: (c: TuneCandidate) => boolean;
  runnable: boolean;
}

const CASES: KnobCase[] = [
  {
    name: "flash v7 layout",
    kernel: "flash",
    dtype: "f32",
    wins: (c) => c.tiles.variant === "v7",
    runnable: true,
  },
  {
    name: "flash v8e layout (K/V prefetch)",
    kernel: "flash",
    dtype: "f32",
    wins: (c) => c.tiles.variant === "v8e",
    runnable: true,
  },
  {
    name: "flash f16 packed arithmetic",
    kernel: "flash",
    dtype: "f16",
    wins: (c) => c.f16Math === "packed",
    runnable: gpu?.f16 === true,
  },
  {
    name: "standard's portable path on a device with subgroups",
    kernel: "standard",
    dtype: "f32",
    wins: (c) => !c.subgroups,
    runnable: (gpu?.subgroupSize ?? 0) > 0,
  },
];

for (const c of CASES) {
  Deno.test({
    name: `tune picks among the knob combinations and bench runs the winner's: ${c.name}`,
    ignore: gpu === null || (!c.runnable && !(expectSg && c.kernel === "standard")),
    async fn() {
      if (c.kernel === "standard" && expectSg) {
        assert(gpu!.subgroupSize > 0, "ATTNBENCH_EXPECT_SUBGROUPS=1 but no subgroups");
      }
      const dir = await Deno.makeTempDir({ prefix: "attnbench_tune_" });
      try {
        const out = `${dir}/tuned.json`;
        const shapeFlags = ["--kernels", c.kernel, "--dtype", c.dtype, "--d", "32", "--n", "40"];
        const tiny = [...shapeFlags, "--heads", "1", "--batch", "1"];
        // The candidates tune tries here (fallback tiles; knobs from the shape it times).
        const shape = { ...shapeOf(c.dtype), n: 40 };
        const candidates = knobCandidates(
          c.kernel,
          shape,
          [...FALLBACK_TILE_CANDIDATES],
          gpu!.subgroupSize,
          { kind: "random", density: 0.25, seed: 0 },
        );
        assert(candidates.length > 1, "more than one candidate");
        const win = candidates.findIndex(c.wins);
        assert(win >= 0, `a candidate for ${c.name}`);
        const io = captureOutput();
        const code = await runTune([...tiny, "--reps", "2", "--out", out], io, {
          timeDispatches: mockTimer(win),
        });
        assertEquals(code, 0, io.stderr.join("\n"));
        const text = io.stdout.join("\n");
        assertStringIncludes(
          text,
          `${candidates.length} of ${candidates.length} candidates correct`,
        );
        const file = await readTunedFile(out, true);
        const key = `${c.kernel}/${c.dtype}/d32`;
        const entry = Object.values(file!.adapters)[0]!.entries[key]!;
        const w = candidates[win]!;
        assertEquals(entry.tiles, w.tiles);
        assertEquals(entry.f16Math, w.f16Math);
        assertEquals(entry.subgroups, gpu!.subgroupSize > 0 ? w.subgroups : undefined);
        assertEquals(entry.medianMs, 1);

        // bench with that file runs (and verifies) the winner's knobs and records them.
        const bio = captureOutput();
        const benchCode = await benchCommand.run([
          ...tiny,
          "--tuned",
          out,
          "--out",
          `${dir}/bench`,
          "--verify",
          "--reps",
          "2",
          "--warmup",
          "1",
          "--no-ceilings",
          "--no-report",
          "--quiet",
        ], bio);
        assertEquals(benchCode, 0, bio.stderr.join("\n"));
        const results = JSON.parse(await Deno.readTextFile(`${dir}/bench/results.json`));
        assertEquals(results.runs.length, 1);
        const run = results.runs[0];
        assertEquals(run.status, "ok", run.reason);
        assertEquals(run.tile, w.tiles);
        if (w.tiles.variant) assert(runKey(run).endsWith(`/${w.tiles.variant}`), runKey(run));
        if (w.f16Math) assertEquals(run.f16Math, w.f16Math);
        if (w.f16Math === "packed") assert(runKey(run).endsWith("/packed"), runKey(run));
        assertEquals(run.subgroups, w.subgroups ? undefined : false);
        if (!w.subgroups) assert(runKey(run).endsWith("/portable"), runKey(run));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
