/**
 * Strict reading accepts every results, tuned and peers file the repository commits, and
 * `check` fails (exit 1) a run whose gated number the baseline had and the current run lost.
 *
 * @module
 */

import { assertEquals, assertMatch } from "@std/assert";
import { validatePeerLine, validateResults, validateTuned } from "./validate.ts";
import { compareResults } from "./compare.ts";
import type { ResultsFile } from "./schema.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("every committed results, tuned and peers file passes strict reading", async () => {
  const results = ["ci/baseline.json"];
  for await (const e of Deno.readDir(`${ROOT}docs/h200`)) {
    if (/^results.*\.json$/.test(e.name)) results.push(`docs/h200/${e.name}`);
  }
  assertEquals(results.length > 5, true);
  for (const f of results) validateResults(JSON.parse(await Deno.readTextFile(ROOT + f)), f);
  validateTuned(JSON.parse(await Deno.readTextFile(`${ROOT}attnbench-tuned.json`)), "tuned");
  const peers = (await Deno.readTextFile(`${ROOT}docs/h200/peers.jsonl`)).split("\n");
  peers.filter((l) => l.trim() !== "").forEach((l, i) =>
    validatePeerLine(JSON.parse(l), "peers", i + 1)
  );
});

Deno.test("an unknown extra field is ignored: results@1 grows by optional fields", async () => {
  const base = JSON.parse(await Deno.readTextFile(`${ROOT}ci/baseline.json`));
  base.runs[0].sramBytes = 49152;
  base.extra = { anything: true };
  validateResults(base, "grown.json");
});

Deno.test("check fails a run that lost its maxRelError or counted bytes (null now)", async () => {
  const baseline = JSON.parse(await Deno.readTextFile(`${ROOT}ci/baseline.json`)) as ResultsFile;
  for (const field of ["maxRelError", "counted"] as const) {
    const current = structuredClone(baseline);
    for (const r of current.runs) {
      if (field === "maxRelError") r.maxRelError = null;
      else r.hbmBytes.counted = null;
    }
    validateResults(current, "current.json"); // null is allowed: not verified, not counted
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
