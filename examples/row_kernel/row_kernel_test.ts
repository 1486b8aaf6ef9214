// End to end, as a user runs it: the example kernel loaded with --kernel-module goes through
// `verify --count-io`, `bench --count-io --verify` (twice) and `check`, from the command line;
// a copy of it with a wrong output is caught by `verify`. Needs a WebGPU adapter (Mesa's
// llvmpipe will do); ignored without one.

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { parseResults } from "../../analysis/results_io.ts";
import { kernelCatalog } from "../../kernels/catalog.ts";
import { type AttentionKernels, prepareAttention } from "../../kernels/attention.ts";
import { checkPrepared, countRun } from "../../kernels/check.ts";
import { getKernels } from "../../kernels/testing.ts";
import { tolerance } from "../../core/tolerances.ts";
import { rowKernel } from "./mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;
const MODULE = "examples/row_kernel/mod.ts";

const kernels: AttentionKernels | null = await getKernels();
const noGpu = kernels === null;

async function attnbench(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  const r = { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
  return { ...r, show: `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}` };
}

Deno.test({
  name: "row kernel: right against the reference, counted == modeled, at odd sizes",
  ignore: noGpu,
  async fn() {
    for (const causal of [false, true]) {
      for (const [n, d] of [[1, 32], [37, 64], [130, 32]] as const) {
        const shape = { batch: 2, heads: 1, n, d, dtype: "f32", causal } as const;
        const r = await countRun(kernels!, { kernel: rowKernel, shape }, n + d, { check: true });
        assert(r.check!.error <= tolerance("f32"), `${r.check!.label}: ${r.check!.error}`);
        assertEquals(r.counted, r.modeled, r.check!.label);
      }
    }
  },
});

Deno.test({
  name: "row kernel: verify, bench --count-io and check from the command line",
  ignore: noGpu,
  async fn() {
    const verify = await attnbench([
      "verify",
      "--kernel-module",
      MODULE,
      "--kernels",
      "row,flash",
      "--n",
      "1,37",
      "--d",
      "32",
      "--causal",
      "--count-io",
    ]);
    assertEquals(verify.code, 0, verify.show);
    assertStringIncludes(verify.stdout, "4 passed, 0 failed", verify.show);
    assert(/^row\s+f32\s+37\s/m.test(verify.stdout), verify.show);

    const dir = await Deno.makeTempDir({ prefix: "attnbench_row_" });
    try {
      const bench = (out: string) =>
        attnbench([
          "bench",
          "--kernel-module",
          MODULE,
          "--kernels",
          "row",
          "--n",
          "1,37",
          "--d",
          "32",
          "--heads",
          "2",
          "--batch",
          "1",
          "--reps",
          "3",
          "--count-io",
          "--verify",
          "--no-ceilings",
          "--quiet",
          "--out",
          `${dir}/${out}`,
        ]);
      for (const out of ["base", "current"]) {
        const r = await bench(out);
        assertEquals(r.code, 0, r.show);
      }
      // The results name a kernel of the module: reading them needs the kernel known.
      const text = await Deno.readTextFile(`${dir}/current/results.json`);
      const results = parseResults(text, "x", { ...kernelCatalog(), names: () => ["row"] });
      assertEquals(results.runs.map((r) => [r.kernel, r.n, r.status]), [
        ["row", 1, "ok"],
        ["row", 37, "ok"],
      ]);
      for (const r of results.runs) {
        assert(r.hbmBytes.counted !== null && r.hbmBytes.counted === r.hbmBytes.modeled);
        assert(r.maxRelError !== null && r.maxRelError <= tolerance("f32"));
      }
      const html = await Deno.readTextFile(`${dir}/current/report.html`);
      assertStringIncludes(html, "row");

      const files = [
        "--baseline",
        `${dir}/base/results.json`,
        "--current",
        `${dir}/current/results.json`,
        "--no-timing",
      ];
      // Without its module the user kernel is unknown: the results are refused (exit 2), with
      // one line that says which flag makes it known.
      const unknown = await attnbench(["check", ...files]);
      assertEquals(unknown.code, 2, unknown.show);
      assertStringIncludes(unknown.stderr, "runs[0].kernel", unknown.show);
      assertStringIncludes(unknown.stderr, "--kernel-module", unknown.show);
      assertEquals(unknown.stderr.trim().split("\n").length, 1, unknown.show);
      const check = await attnbench(["check", "--kernel-module", MODULE, ...files]);
      assertEquals(check.code, 0, check.show);
      assertStringIncludes(check.stdout, "no regression", check.show);
      const report = await attnbench([
        "report",
        "--kernel-module",
        MODULE,
        `${dir}/current/results.json`,
        "--out",
        `${dir}/row.html`,
      ]);
      assertEquals(report.code, 0, report.show);
      assertStringIncludes(await Deno.readTextFile(`${dir}/row.html`), "row (example)");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "row kernel: a copy with a wrong output fails verify (exit 1) and the check",
  ignore: noGpu,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "attnbench_row_bad_" });
    try {
      const bad = `${dir}/bad_kernel.ts`;
      const url = new URL("./mod.ts", import.meta.url).href;
      await Deno.writeTextFile(
        bad,
        `import { rowKernel } from ${JSON.stringify(url)};
export const bad = {
  ...rowKernel,
  name: "row-bad",
  plan(request) {
    const plan = rowKernel.plan(request);
    return {
      ...plan,
      kernel: bad,
      passes: () => plan.passes().map((p) => ({
        ...p,
        key: p.key + "/bad",
        source: p.source.replace("s *= params.scale;", "s *= 0.5 * params.scale;"),
      })),
    };
  },
};
`,
      );
      const r = await attnbench(["verify", "--kernel-module", bad, "--n", "37", "--d", "32"]);
      assertEquals(r.code, 1, r.show);
      assert(/^row-bad\s.*FAIL$/m.test(r.stdout), r.show);

      // The same through the library: the check names the output that is wrong.
      const { bad: kernel } = await import(bad);
      const shape = { batch: 1, heads: 1, n: 37, d: 32, dtype: "f32", causal: false } as const;
      const p = await prepareAttention(kernels!, { kernel, shape });
      try {
        const c = await checkPrepared(p, 3);
        assert(c.errors.o! > 100 * tolerance("f32"), `${c.errors.o}`);
      } finally {
        p.destroy();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
