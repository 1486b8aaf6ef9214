import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "@std/assert";
import { attainableTflops, buildCharts, type ChartSpec, speedupPairs } from "./_charts.ts";
import {
  DEFAULT_SWEEP_PATH,
  H200_DIR,
  H200_PATH,
  loadFixture,
  SAMPLE_H100_PATH,
  SAMPLE_PATH,
  sparseFixture,
} from "./_fixtures.ts";
import { pct, spread } from "./_chart_common.ts";
import { headlines } from "./_headline.ts";
import { fmtNum, isTimed } from "./_format.ts";
import { percentile } from "../analysis/stats.ts";

function chart(charts: ChartSpec[], id: string): ChartSpec {
  const c = charts.find((x) => x.id === id);
  if (!c) throw new Error(`no chart ${id}`);
  return c;
}

function series(c: ChartSpec, label: string) {
  const s = c.series.find((x) => x.label === label);
  if (!s) throw new Error(`${c.id}: no series "${label}" in ${c.series.map((x) => x.label)}`);
  return s;
}

Deno.test("every point of every chart is finite, and log axes get positive values", async () => {
  const results = [await loadFixture(SAMPLE_PATH), await loadFixture(SAMPLE_H100_PATH)];
  const h200 = [await loadFixture(H200_PATH), await loadFixture(DEFAULT_SWEEP_PATH)];
  for (const c of [...buildCharts(results, ["a", "b"]), ...buildCharts(h200, ["c", "d"])]) {
    for (const s of c.series) {
      assert(s.points.length > 0, `${c.id}/${s.label} has no points but a legend entry`);
      for (const p of s.points) {
        assert(Number.isFinite(p.x) && Number.isFinite(p.y), `${c.id}/${s.label}`);
        if (c.x.scale !== "linear") assert(p.x > 0, `${c.id}/${s.label} x`);
        const axis = s.axis === "y2" ? c.y2 : c.y;
        if (axis?.scale !== "linear") assert(p.y > 0, `${c.id}/${s.label} y`);
        assert(p.tip.length > 0);
      }
    }
  }
});

Deno.test("runtime: one line per kernel, N ascending, median times", async () => {
  const f = await loadFixture(SAMPLE_PATH);
  const c = chart(buildCharts([f], ["x"]), "runtime");
  assertEquals(c.series.map((s) => s.label), [
    "standard",
    "flash",
    "block-sparse (random 25%)",
  ]);
  const std = series(c, "standard");
  assertEquals(std.points.map((p) => p.x), [128, 256, 512, 1024, 2048]); // 4096 was skipped
  const run = f.runs.find((r) => r.kernel === "standard" && r.n === 1024 && r.sweep === "n");
  assertEquals(std.points[3]?.y, run?.timeMs?.median);
  // The failed d=128 run is nowhere in the charts.
  assert(!c.series.some((s) => s.label.includes("d=128")));
});

Deno.test("speedup pairs flash and block-sparse with standard at the same shape", async () => {
  const f = await loadFixture(SAMPLE_PATH);
  const pairs = speedupPairs([f]);
  const flash1024 = pairs.find((p) => p.run.kernel === "flash" && p.run.n === 1024);
  const std = f.runs.find((r) => r.kernel === "standard" && r.n === 1024);
  const fl = f.runs.find((r) =>
    r.kernel === "flash" && r.n === 1024 && r.sweep === "n" &&
    r.d === 64
  );
  assertAlmostEquals(
    flash1024?.speedup ?? 0,
    (std?.timeMs?.median ?? 0) / (fl?.timeMs?.median ?? 1),
    1e-12,
  );
  // No pair where standard did not run (n=4096 skipped), none for the sweeps.
  assert(!pairs.some((p) => p.run.n === 4096));
  assert(pairs.every((p) => p.run.sweep === "n" && p.base.kernel === "standard"));
  const c = chart(buildCharts([f], ["x"]), "speedup");
  assertEquals(series(c, "standard (1×)").points.map((p) => p.y), [1, 1]);
});

Deno.test("roofline: roof from ceilings, tooltip gives the share of the roof", async () => {
  assertEquals(attainableTflops(10, 1000, 50), 10);
  assertEquals(attainableTflops(1000, 1000, 50), 50);
  const f = await loadFixture(SAMPLE_PATH);
  const c = chart(buildCharts([f], ["x"]), "roofline");
  const roof = series(c, "roof");
  const ridge = (0.21 * 1000) / 14.8;
  assertAlmostEquals(roof.points[1]?.x ?? 0, ridge, 1e-9);
  assertEquals(roof.points[1]?.y, 0.21);
  const flash = series(c, "flash");
  const run = f.runs.find((r) => r.kernel === "flash" && r.n === 2048 && r.sweep === "n");
  const p = flash.points.find((q) => q.tip.startsWith("N=2048"));
  assertAlmostEquals(p?.x ?? 0, (run?.flops ?? 0) / (run?.hbmBytes.modeled ?? 1), 1e-9);
  const share = (run?.tflops ?? 0) / attainableTflops(p?.x ?? 0, 14.8, 0.21);
  assertStringIncludes(p?.tip ?? "", `${Number((share * 100).toPrecision(2))}% of the attainable`);
});

Deno.test("footprint marks the runs that do not fit and draws the buffer limit", async () => {
  const c = chart(buildCharts([await loadFixture(SAMPLE_PATH)], ["x"]), "footprint");
  const miss = series(c, "does not fit (skipped)");
  assertEquals(miss.points.map((p) => p.x), [4096]);
  assertStringIncludes(miss.points[0]?.tip ?? "", "does not fit");
  assertEquals(series(c, "largest storage buffer 128 MiB").points[0]?.y, 134217728);
});

Deno.test("HBM bytes: modeled, theoretical, counted and the floor", async () => {
  const c = chart(buildCharts([await loadFixture(SAMPLE_PATH)], ["x"]), "bytes");
  for (const k of ["standard", "flash"]) {
    series(c, `${k} modeled`);
    series(c, `${k} theoretical`);
    series(c, `${k} counted`);
  }
  // The modeled standard bytes include the skipped N=4096 (models need no run).
  assertEquals(series(c, "standard modeled").points.at(-1)?.x, 4096);
  assert(series(c, "floor: Q, K, V, O once").points.length === 6);
});

Deno.test("block-size sweep: x is the swept Br, bytes on the right axis", async () => {
  const c = chart(buildCharts([await loadFixture(SAMPLE_PATH)], ["x"]), "block-size");
  assertEquals(c.x.title, "tile Br (query rows per workgroup)");
  const time = series(c, "flash time");
  assertEquals(time.points.map((p) => p.x), [16, 32, 64, 128]);
  assertEquals(series(c, "flash modeled bytes").axis, "y2");
});

Deno.test("density sweep: x is density, dense flash is the reference line", async () => {
  const c = chart(buildCharts([await loadFixture(SAMPLE_PATH)], ["x"]), "density");
  const bs = series(c, "block-sparse (random)");
  assertEquals(bs.points.length, 6);
  assert(bs.points.every((p, i, a) => i === 0 || p.x > (a[i - 1]?.x ?? 0)));
  const ref = series(c, "flash, dense (N=2048)");
  assertEquals(ref.points.map((p) => p.x), [0, 1]);
});

Deno.test("throughput overlays the peers; missing data leaves notes", async () => {
  const full = buildCharts([await loadFixture(SAMPLE_PATH)], ["x"]);
  const peer = series(chart(full, "tflops"), "pytorch-sdpa (peer)");
  assert(peer.light, "peers are drawn lighter than ours");
  assertEquals(peer.points.map((p) => p.x), [512, 1024, 2048]); // 4096 errored
  const sparse = buildCharts([await sparseFixture()], ["x"]);
  assertEquals(chart(sparse, "block-size").series, []);
  assertEquals(chart(sparse, "density").series, []);
  assert(chart(sparse, "roofline").series.length > 0);
  assert(chart(sparse, "roofline").series.every((s) => !s.label.startsWith("roof")));
  for (const c of buildCharts([], [])) {
    assertEquals(c.series, []);
    assert(c.notes.length > 0, `${c.id} needs a note`);
  }
});

Deno.test("overlays: one line per file with its own dash and marker", async () => {
  const results = [await loadFixture(SAMPLE_PATH), await loadFixture(SAMPLE_H100_PATH)];
  const c = chart(buildCharts(results, ["cpu", "h100"]), "runtime");
  const a = series(c, "flash · cpu");
  const b = series(c, "flash · h100");
  assertEquals(a.color, b.color);
  assert(a.marker !== b.marker && JSON.stringify(a.dash) !== JSON.stringify(b.dash));
  assertEquals(b.points.at(-1)?.x, 16384);
});

/** Small legends: one entry per kernel configuration and per line style. */
const LEGEND_MAX = 8;

Deno.test("default sweep and H200: one connected runtime line per kernel, small legends", async () => {
  for (const path of [DEFAULT_SWEEP_PATH, H200_PATH]) {
    const f = await loadFixture(path);
    const charts = buildCharts([f], ["x"]);
    const runtime = chart(charts, "runtime");
    const kernels = [
      ...new Set(f.runs.filter((r) => r.sweep === "n" && isTimed(r)).map((r) => r.kernel)),
    ];
    assertEquals(runtime.series.length, kernels.length, path);
    for (const s of runtime.series) {
      assert(s.line && s.points.length >= 2, `${path}: ${s.label} has ${s.points.length} points`);
    }
    // The default sweep changes batch with N; the line still spans every N that ran.
    const flash = runtime.series.find((s) => s.group === "flash");
    const flashNs = f.runs.filter((r) => r.kernel === "flash" && r.sweep === "n" && isTimed(r))
      .map((r) => r.n);
    assertEquals(flash?.points.map((p) => p.x), [...new Set(flashNs)].sort((a, b) => a - b));
    for (const c of charts) {
      assert(c.legend.length <= LEGEND_MAX, `${path}: ${c.id} legend has ${c.legend.length}`);
      const covered = new Set(c.legend.flatMap((l) => l.series));
      assertEquals(covered.size, c.series.length, `${c.id}: every series under a legend entry`);
    }
  }
});

Deno.test("runtime whiskers are p10–p90 of the samples and contain the median", async () => {
  const f = await loadFixture(H200_PATH);
  const runtime = chart(buildCharts([f], ["x"]), "runtime");
  for (const s of runtime.series) {
    for (const p of s.points) {
      assert(p.lo !== undefined && p.hi !== undefined && p.lo <= p.y && p.y <= p.hi, s.label);
    }
  }
  const run = f.runs.find((r) => r.kernel === "flash" && r.n === 4096 && isTimed(r));
  const samples = run?.timeMs?.samples ?? [];
  assert(samples.length >= 10);
  const p = runtime.series.find((s) => s.group === "flash")?.points.find((q) => q.x === 4096);
  assertEquals(p?.lo, percentile(samples, 0.1));
  assertEquals(p?.hi, percentile(samples, 0.9));
  assertEquals(spread({ min: 1, max: 9, samples: [1, 5, 9] }), { lo: 1, hi: 9, what: "min–max" });
});

Deno.test("IO story: time against modeled bytes and FLOPs, beside the ceilings' lines", async () => {
  const f = await loadFixture(H200_PATH);
  const charts = buildCharts([f], ["x"]);
  const bytes = chart(charts, "io-bytes");
  const run = f.runs.find((r) => r.kernel === "standard" && r.n === 512 && isTimed(r));
  const p = series(bytes, "standard").points.find((q) => q.x === run?.hbmBytes.modeled);
  assertEquals(p?.y, run?.timeMs?.median);
  const line = series(bytes, "at the measured copy bandwidth");
  const copy = f.ceilings?.copyGBs ?? 0;
  for (const q of line.points) assertAlmostEquals(q.y, q.x / (copy * 1e6), 1e-12);
  const flops = chart(charts, "io-flops");
  const fma = series(flops, "at the measured FMA peak");
  for (const q of fma.points) {
    assertAlmostEquals(q.y, q.x / ((f.ceilings?.fmaTflops ?? 0) * 1e9), 1e-12);
  }
  assertEquals(series(flops, "flash").points.length, 7);
});

Deno.test("headline: speedup and byte ratio over standard at the largest common N", async () => {
  const f = await loadFixture(H200_PATH);
  const lines = headlines(f);
  const std = f.runs.find((r) => r.kernel === "standard" && r.n === 1024 && isTimed(r))!;
  const fl = f.runs.find((r) => r.kernel === "flash" && r.n === 1024 && isTimed(r))!;
  const speed = fmtNum(std.timeMs!.median / fl.timeMs!.median, 2);
  const fewer = fmtNum(std.hbmBytes.modeled / fl.hbmBytes.modeled, 2);
  assertStringIncludes(lines[0] ?? "", `flash is ${speed}× faster than standard at N = 1024`);
  assertStringIncludes(lines[0] ?? "", `moves ${fewer}× fewer bytes`);
  assert(lines.some((l) => l.startsWith("Best throughput: ") && l.includes("of the measured FMA")));
  assert(lines.some((l) => l.startsWith("standard does not fit the device at N = 2048")));
});

Deno.test("headline of the sweeps: block sizes against the IO model, sparse against dense", async () => {
  const bs = headlines(
    await loadFixture(`${H200_DIR}results-blocksize.json`),
  );
  assertEquals(bs.length, 1);
  assertMatch(
    bs[0] ?? "",
    /^Block sizes, flash at N = 4096: fastest tile \d+×\d+ \(.+\) of the 3 timed; /,
  );
  const f = await loadFixture(`${H200_DIR}results-density.json`);
  const dense = f.runs.find((r) => r.kernel === "flash" && r.n === 4096 && isTimed(r))!;
  const sparse = f.runs.filter((r) => r.mask !== null && r.n === 4096 && isTimed(r))
    .sort((a, b) => a.density - b.density)[0]!;
  const ratio = fmtNum(dense.timeMs!.median / sparse.timeMs!.median);
  assertStringIncludes(
    headlines(f)[0] ?? "",
    `Density, N = 4096: block-sparse at ${
      pct(sparse.density)
    } of the blocks runs ${ratio}× faster than dense flash`,
  );
});

Deno.test("runs of several passes get a view each; forward-only results keep their charts", async () => {
  const f = await loadFixture(SAMPLE_PATH);
  const plain = buildCharts([f], ["a"]);
  // A copy of every run as a backward run of the same kernel (names as the registry gives them).
  const bwd = f.runs.map((r) => ({ ...r, kernel: `${r.kernel}-bwd`, pass: "bwd" as const }));
  const both = buildCharts([{ ...f, runs: [...f.runs, ...bwd] }], ["a"]);
  assertEquals(both.length, 2 * plain.length);
  assertEquals(both.slice(0, plain.length).map((c) => c.id), plain.map((c) => `${c.id}-fwd`));
  assert(both.slice(0, plain.length).every((c) => c.title.startsWith("Forward: ")));
  const back = both.slice(plain.length);
  assert(back.every((c) => c.title.startsWith("Backward: ") && c.id.endsWith("-bwd")));
  // The backward view draws only backward runs, the forward view only forward ones.
  const runtime = (cs: ChartSpec[], id: string) => cs.find((c) => c.id === id)!;
  // (Series are labelled with the kernels' display labels: "flash bwd".)
  assert(runtime(back, "runtime-bwd").series.every((s) => s.label.includes(" bwd")));
  assert(runtime(both, "runtime-fwd").series.every((s) => !s.label.includes("bwd")));
  assertEquals(
    runtime(both, "runtime-fwd").series.map((s) => s.label),
    runtime(plain, "runtime").series.map((s) => s.label),
  );
});

Deno.test("a backward or forward+backward view names its pass on the axes and in the captions", async () => {
  const f = await loadFixture(SAMPLE_PATH);
  const plain = buildCharts([f], ["a"]);
  const as = (pass: "bwd" | "fwd+bwd") => f.runs.map((r) => ({ ...r, pass }));
  const words = (c: ChartSpec) => [c.caption, c.x.title, c.y.title, c.y2?.title ?? ""].join(" ");
  // The forward charts do say it (else this test could not fail).
  assert(plain.some((c) => words(c).includes("forward pass")));
  const mixed = buildCharts([{ ...f, runs: [...f.runs, ...as("bwd"), ...as("fwd+bwd")] }], ["a"]);
  const back = mixed.filter((c) => c.id.endsWith("-bwd"));
  const step = mixed.filter((c) => c.id.endsWith("-fwdbwd"));
  assert(back.every((c) => !words(c).includes("forward pass")));
  assert(back.some((c) => c.y.title === "median time per backward pass"));
  assert(step.some((c) => c.y.title === "median time per forward + backward step"));
  // Results of one pass only (a plain `bench --pass bwd`) have no views but the same naming.
  const onlyBack = buildCharts([{ ...f, runs: as("bwd") }], ["a"]);
  assertEquals(onlyBack.map((c) => c.id), plain.map((c) => c.id));
  assert(onlyBack.every((c) => !words(c).includes("forward pass")));
});
