import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import type { ResultsFile, RunRecord } from "../core/schema.ts";
import { loadFixture, SAMPLE_PATH } from "./_fixtures.ts";
import { decodeBandwidthChart, decodePagingChart, decodeWasteChart } from "./_chart_decode.ts";
import { isTimed } from "./_format.ts";

/** A results file of decode runs: both kernels at two context lengths, batch 2, timed. */
async function decodeResults(): Promise<ResultsFile> {
  const f = await loadFixture(SAMPLE_PATH);
  const timed = f.runs.find(isTimed)!;
  const run = (kernel: string, n: number, ms: number): RunRecord => ({
    ...timed,
    kernel,
    n,
    batch: 2,
    heads: 4,
    mask: null,
    density: 1,
    sweep: "decode",
    timeMs: { ...timed.timeMs!, median: ms },
    achievedGBs: (2 * 2 * 4 * n * 64 * 4) / (ms * 1e6),
    decode: {
      contexts: [n, n - 5],
      kvHeads: 4,
      blockSize: kernel === "paged-decode" ? 16 : null,
      lengths: "list",
    },
  });
  return {
    ...f,
    ceilings: { copyGBs: 100, fmaTflops: 1, launchOverheadUs: 5, clock: "timestamp-query" },
    runs: [
      run("decode", 1024, 0.1),
      run("paged-decode", 1024, 0.105),
      run("decode", 4096, 0.4),
      run("paged-decode", 4096, 0.48),
    ],
    peers: [{
      backend: "EFFICIENT_ATTENTION",
      n: 4096,
      d: f.runs[0]!.d,
      batchHeads: 8,
      dtype: f.runs[0]!.dtype === "f16" ? "float16" : "float32",
      causal: false,
      ms: 0.3,
      tflops: 0.1,
      gpu: "test",
      decode: true,
      gbs: 90,
    }],
  };
}

Deno.test("decode bandwidth: a line per kernel and batch, the copy ceiling, decode peers", async () => {
  const c = decodeBandwidthChart([await decodeResults()], ["x"]);
  const labels = c.series.map((s) => s.label);
  assert(labels.some((l) => l.startsWith("decode (B=2 H=4/4")), `${labels}`);
  assert(labels.some((l) => l.startsWith("paged-decode (B=2 H=4/4 block 16")), `${labels}`);
  assertEquals(c.series.find((s) => s.label === "copy ceiling")!.points[0]!.y, 100);
  assertEquals(c.series.find((s) => s.label === "70% of copy")!.points[0]!.y, 70);
  const peer = c.series.find((s) => s.label.startsWith("EFFICIENT_ATTENTION decode"))!;
  assertEquals(peer.points.map((p) => [p.x, p.y]), [[4096, 90]]);
  // Nothing without decode runs.
  assertEquals(decodeBandwidthChart([{ ...(await decodeResults()), runs: [] }], ["x"]).series, []);
});

Deno.test("paged over contiguous: the time ratio on the same workload, and the target", async () => {
  const c = decodePagingChart([await decodeResults()], ["x"]);
  const paged = c.series.find((s) => s.label.startsWith("paged-decode"))!;
  assertEquals(paged.points.map((p) => p.x), [1024, 4096]);
  assertAlmostEquals(paged.points[0]!.y, 1.05, 1e-9);
  assertAlmostEquals(paged.points[1]!.y, 1.2, 1e-9);
  assertEquals(c.series.find((s) => s.label === "target ≤ 1.1")!.points[0]!.y, 1.1);
  // No contiguous baseline on the same lengths: no ratio.
  const r = await decodeResults();
  r.runs = r.runs.filter((x) => x.kernel === "paged-decode");
  assertEquals(decodePagingChart([r], ["x"]).series, []);
});

Deno.test("waste vs block size: grows with the block, below the contiguous reservation", async () => {
  const c = decodeWasteChart([await decodeResults()], ["x"]);
  const paged = c.series.filter((s) => s.kind.startsWith("paged"));
  assertEquals(paged.length, 2, "one line per distinct set of lengths");
  // Lengths 1024 and 1019: at block 8, 5 slots of 2 · 1024 = 2048 waste (0.24%); at 256, 5 too
  // (1019 → 1024); the contiguous reservation to 1024 wastes the same 5 slots.
  const first = paged[0]!.points;
  assertEquals(first.map((p) => p.x), [8, 16, 32, 64, 128, 256]);
  assertAlmostEquals(first[0]!.y, 100 * 5 / 2048, 1e-9);
  for (let i = 1; i < first.length; i++) assert(first[i]!.y >= first[i - 1]!.y);
});

Deno.test("waste vs block size: lengths that waste nothing at any block size say so", async () => {
  const r = await decodeResults();
  for (const run of r.runs) {
    if (run.decode) run.decode.contexts = run.decode.contexts.map(() => 1024);
  }
  const c = decodeWasteChart([r], ["x"]);
  assert(c.series.length > 0 && c.series.every((s) => s.points.every((p) => p.y === 0)));
  assert(c.notes.some((n) => n.includes("nothing is wasted")), c.notes.join());
  assertEquals(decodeWasteChart([await decodeResults()], ["x"]).notes, []);
});
