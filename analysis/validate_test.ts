/**
 * Strict reading accepts every results, tuned and peers file the repository commits, and
 * `check` fails (exit 1) a run whose gated number the baseline had and the current run lost.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { UsageError } from "../core/errors.ts";
import { validatePeerLine, validateResults, validateTuned } from "./validate.ts";
import { compareResults } from "./compare.ts";
import { type ResultsFile, runKey } from "../core/schema.ts";
import { kernelCatalog } from "../kernels/catalog.ts";

const KERNELS = kernelCatalog();

const ROOT = new URL("../", import.meta.url).pathname;

/** Each run, alone in `base`, fails validation with its message. */
function assertBadRuns(base: ResultsFile, bad: readonly (readonly [unknown, string])[]): void {
  for (const [r, message] of bad) {
    assertThrows(
      () => validateResults({ ...base, runs: [r as never] }, "bad.json", KERNELS),
      Error,
      message,
    );
  }
}

Deno.test("every committed results, tuned and peers file passes strict reading", async () => {
  const results = ["ci/baseline.json"];
  for await (const e of Deno.readDir(`${ROOT}docs/h200`)) {
    if (/^results.*\.json$/.test(e.name)) results.push(`docs/h200/${e.name}`);
  }
  assertEquals(results.length > 5, true);
  for (const f of results) {
    validateResults(JSON.parse(await Deno.readTextFile(ROOT + f)), f, KERNELS);
  }
  validateTuned(
    JSON.parse(await Deno.readTextFile(`${ROOT}attnbench-tuned.json`)),
    "tuned",
    KERNELS,
  );
  const peers = (await Deno.readTextFile(`${ROOT}docs/h200/peers.jsonl`)).split("\n");
  peers.filter((l) => l.trim() !== "").forEach((l, i) =>
    validatePeerLine(JSON.parse(l), "peers", i + 1)
  );
});

Deno.test("an unknown extra field is ignored: results@1 grows by optional fields", async () => {
  const base = JSON.parse(await Deno.readTextFile(`${ROOT}ci/baseline.json`));
  base.runs[0].sramBytes = 49152;
  base.extra = { anything: true };
  validateResults(base, "grown.json", KERNELS);
});

Deno.test("check fails a run that lost its maxRelError or counted bytes (null now)", async () => {
  const baseline = JSON.parse(await Deno.readTextFile(`${ROOT}ci/baseline.json`)) as ResultsFile;
  for (const field of ["maxRelError", "counted"] as const) {
    const current = structuredClone(baseline);
    for (const r of current.runs) {
      if (field === "maxRelError") r.maxRelError = null;
      else r.hbmBytes.counted = null;
    }
    validateResults(current, "current.json", KERNELS); // null is allowed: not verified, not counted
    const report = compareResults(baseline, current, {
      thresholdPct: 5,
      allowDeviceMismatch: false,
      noTiming: true,
    });
    assertEquals(report.regressed, true, field);
    assertEquals(report.counts.fail, baseline.runs.length, field);
    assertMatch(report.rows[0]!.verdict, /missing$/);
  }
});

Deno.test("known kernels come from the catalog: a user kernel's runs need it known", async () => {
  const base = JSON.parse(await Deno.readTextFile(`${ROOT}ci/baseline.json`));
  const dense = base.runs.find((r: { mask: unknown }) => r.mask === null);
  const file = { ...base, runs: [{ ...dense, kernel: "row" }] };
  // Not known (no --kernel-module): refused, and the message names the flag.
  assertThrows(
    () => validateResults(file, "row.json", KERNELS),
    UsageError,
    'row.json: invalid results file: runs[0].kernel: expected one of "standard", "flash", ' +
      '"block-sparse", "decode", "paged-decode", "standard-bwd", "flash-bwd", "block-sparse-bwd", ' +
      '"standard-fwd+bwd", "flash-fwd+bwd", "block-sparse-fwd+bwd" (a kernel of your own: give its ' +
      "module with " +
      '--kernel-module), got "row"',
  );
  // Known (as --kernel-module makes it): accepted; its dense/sparse rule is the catalog's.
  const withRow = { ...KERNELS, names: () => [...KERNELS.names(), "row"] };
  validateResults(file, "row.json", withRow);
  const sparseRun = { ...file, runs: [{ ...dense, kernel: "row", density: 0.5 }] };
  assertThrows(() => validateResults(sparseRun, "row.json", withRow), UsageError, "dense kernel");
  const sparseRow = { ...withRow, sparse: (k: string) => k === "row" || KERNELS.sparse(k) };
  assertThrows(() => validateResults(sparseRun, "row.json", sparseRow), UsageError, "runs[0].mask");
  validateResults(
    { ...file, runs: [{ ...dense, kernel: "row", density: 0.5, mask: "local" }] },
    "x",
    sparseRow,
  );
});

Deno.test("tuned entries: a loaded kernel's tile rules apply, an unloaded one's form only", () => {
  const device = JSON.parse(
    JSON.stringify({
      vendor: "v",
      architecture: "",
      description: "",
      device: "",
      isFallbackAdapter: false,
      limits: {},
      features: [],
    }),
  );
  const entry = (tiles: unknown) => ({
    tiles,
    medianMs: 1,
    n: 256,
    batch: 1,
    heads: 1,
    tunedAt: "t",
  });
  const file = (key: string, tiles: unknown) => ({
    schema: "attnbench/tuned@1",
    adapters: { a: { device, entries: { [key]: entry(tiles) } } },
  });
  // br 24 is not a multiple of rm 16: flash's own rule refuses it.
  const odd = { br: 24, bc: 32, rm: 16, tx: 8 };
  assertThrows(() => validateTuned(file("flash/f32/d64", odd), "t.json", KERNELS), UsageError);
  // A user kernel not loaded now: its tiles are only checked for form (never used here).
  validateTuned(file("row/f32/d64", odd), "t.json", KERNELS);
  assertThrows(
    () => validateTuned(file("row/f32/d64", { br: "24", bc: 32, rm: 1, tx: 8 }), "t.json", KERNELS),
    UsageError,
  );
  assertThrows(() => validateTuned(file("Row Kernel/f32/d64", odd), "t.json", KERNELS), UsageError);
});

Deno.test("pass: absent is forward; a backward run says bwd; the kernel and its pass agree", async () => {
  const base = JSON.parse(await Deno.readTextFile(`${ROOT}ci/baseline.json`)) as ResultsFile;
  const run = base.runs.find((r) => r.kernel === "flash")!;
  // A forward run's key has no pass (baseline keys of forward runs do not change).
  assert(!runKey(run).includes("fwd"));
  assertEquals(runKey({ ...run, pass: "fwd" }), runKey(run));
  const bwd = { ...run, kernel: "flash-bwd", pass: "bwd" as const };
  assert(runKey(bwd).endsWith("/bwd"));
  const fb = { ...run, kernel: "flash-fwd+bwd", pass: "fwd+bwd" as const };
  assert(runKey(fb).endsWith("/fwd+bwd") && runKey(fb) !== runKey(bwd));
  validateResults({ ...base, runs: [bwd, fb, { ...run, pass: "fwd" }] }, "passes.json", KERNELS);
  const bad = [
    [
      { ...bwd, pass: "backward" },
      'runs[0].pass: expected one of fwd, bwd, fwd+bwd, got "backward"',
    ],
    [{ ...bwd, pass: "fwd+bwd" }, 'runs[0].pass: expected "bwd" for the kernel flash-bwd'],
    [{ ...run, kernel: "flash-bwd" }, 'runs[0].pass: expected "bwd" for the kernel flash-bwd'],
    [{ ...run, pass: "bwd" }, 'runs[0].pass: expected "fwd" for the kernel flash'],
  ] as const;
  assertBadRuns(base, bad);
});

Deno.test("f16Math: packed is part of a run's key, f32 is what absent means; only at f16", async () => {
  const base = JSON.parse(await Deno.readTextFile(`${ROOT}ci/baseline.json`)) as ResultsFile;
  const run = { ...base.runs.find((r) => r.kernel === "flash")!, dtype: "f16" as const };
  assertEquals(runKey({ ...run, f16Math: "f32" }), runKey(run));
  assert(runKey({ ...run, f16Math: "packed" }).endsWith("/packed"));
  validateResults(
    { ...base, runs: [{ ...run, f16Math: "packed" }, { ...run, f16Math: "f32" }] },
    "m.json",
    KERNELS,
  );
  const bad = [
    [{ ...run, f16Math: "half" }, 'runs[0].f16Math: expected one of f32, packed, got "half"'],
    [{ ...run, dtype: "f32", f16Math: "packed" }, "runs[0].f16Math: expected absent at dtype f32"],
  ] as const;
  assertBadRuns(base, bad);
});

Deno.test("dq: a non-pass dQ is validated and part of a run's key; only flash's backward has one", async () => {
  const base = JSON.parse(await Deno.readTextFile(`${ROOT}ci/baseline.json`)) as ResultsFile;
  const fwd = base.runs.find((r) => r.kernel === "flash")!;
  const bwd = { ...fwd, kernel: "flash-bwd", pass: "bwd" as const, flops: fwd.flops * 2.5 };
  const both = {
    ...fwd,
    kernel: "flash-fwd+bwd",
    pass: "fwd+bwd" as const,
    flops: fwd.flops * 3.5,
  };
  const keys = new Set<string>();
  for (const run of [bwd, both]) {
    for (const dq of [undefined, "atomic", "atomic-stagger"] as const) {
      const r = dq ? { ...run, dq } : run;
      validateResults({ ...base, runs: [r] }, "dq.json", KERNELS);
      keys.add(runKey(r));
      if (dq) assert(runKey(r).endsWith(`/dq-${dq}`), runKey(r));
    }
  }
  // Six configurations, six keys: check never pairs an atomic run with a pass one.
  assertEquals(keys.size, 6);
  const bad = [
    [{ ...bwd, dq: "pass" }, 'runs[0].dq: expected one of atomic, atomic-stagger, got "pass"'],
    [{ ...bwd, dq: "atomics" }, "runs[0].dq: expected one of atomic, atomic-stagger"],
    [{ ...fwd, dq: "atomic" }, "runs[0].dq: expected absent for the kernel flash"],
    [
      { ...bwd, kernel: "standard-bwd", dq: "atomic" },
      "runs[0].dq: expected absent for the kernel standard-bwd",
    ],
  ] as const;
  assertBadRuns(base, bad);
});

Deno.test("tuned knobs in a run: tile.variant v7 and subgroups false are validated and keyed", async () => {
  const base = JSON.parse(await Deno.readTextFile(`${ROOT}ci/baseline.json`)) as ResultsFile;
  const run = base.runs.find((r) => r.kernel === "flash")!;
  const v7 = { ...run, tile: { ...run.tile, variant: "v7" as const } };
  const portable = { ...run, subgroups: false as const };
  assert(runKey(v7).endsWith("/v7"), runKey(v7));
  assert(runKey(portable).endsWith("/portable"), runKey(portable));
  assertEquals(new Set([runKey(run), runKey(v7), runKey(portable)]).size, 3);
  validateResults({ ...base, runs: [v7, portable] }, "k.json", KERNELS);
  const bad = [
    [{ ...run, tile: { ...run.tile, variant: "v9" } }, "runs[0].tile.variant: expected one of v7"],
    [{ ...run, subgroups: true }, "runs[0].subgroups: expected false (or absent), got true"],
  ] as const;
  assertBadRuns(base, bad);
});

Deno.test("a peer line's pass: fwdbwd is read as fwd+bwd, fwd and absent as forward", () => {
  const row = {
    backend: "EFFICIENT_ATTENTION",
    n: 1024,
    d: 64,
    batch_heads: 1024,
    dtype: "float16",
    causal: false,
    ms: 9.1,
    tflops: 30,
    gpu: "H200",
  };
  assertEquals(validatePeerLine(row, "p", 1).pass, undefined);
  assertEquals(validatePeerLine({ ...row, pass: "fwd" }, "p", 1).pass, undefined);
  assertEquals(validatePeerLine({ ...row, pass: "bwd" }, "p", 1).pass, "bwd");
  assertEquals(validatePeerLine({ ...row, pass: "fwdbwd" }, "p", 1).pass, "fwd+bwd");
  assertThrows(() => validatePeerLine({ ...row, pass: "both" }, "p", 1), Error, "pass");
});
