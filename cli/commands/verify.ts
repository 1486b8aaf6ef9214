/**
 * `attnbench verify`: every kernel against the float64 reference on fresh random inputs.
 *
 * @module
 */

import type { Command } from "../command.ts";
import { parseCommandFlags, SHAPE_HELP, shapeAt, shapeOptions } from "../flags.ts";
import { KERNEL_MODULE_HELP, kernelModulePaths, loadKernelModules } from "../kernel_modules.ts";
import { formatTable } from "../../analysis/table.ts";
import { AttentionKernels, prepareAttention } from "../../kernels/attention.ts";
import { checkAgainstReference, countRun } from "../../kernels/check.ts";
import { openGpu, requireDtype } from "../../kernels/gpu.ts";
import { tolerance } from "../../core/tolerances.ts";

const HELP = `attnbench verify — check every kernel against a float64 CPU reference

Usage: attnbench verify [shape flags] [--count-io] [--kernel-module PATH]... [--json]

Each kernel runs on fresh random inputs (N(0,1), seeded by --seed) with its outputs poisoned
with NaN first; for every output (O, and flash's log-sum-exp) the max relative error
max|out - ref| / max|ref| must stay within the dtype's tolerance (f32 1e-4, f16 1e-2).
Block-sparse is compared with the reference whose masked blocks are -inf before the softmax.
Exit code 1 when any kernel fails.

${SHAPE_HELP}
  (verify defaults: --n 1,17,128,257,1024 --batch 1 --heads 2)

  --count-io          also run the counting variant and require counted == modeled bytes
  --no-subgroups      never ask for subgroups: the portable kernels (workgroup-memory reductions)
${KERNEL_MODULE_HELP}
  --json              print the results as JSON`;

interface VerifyRow {
  kernel: string;
  dtype: string;
  n: number;
  d: number;
  batch: number;
  heads: number;
  causal: boolean;
  density: number;
  tiles: string;
  maxRelError: number;
  tolerance: number;
  countedBytes: number | null;
  modeledBytes: number | null;
  pass: boolean;
}

/** The `verify` command. */
export const verifyCommand: Command = {
  name: "verify",
  summary: "check every kernel against the float64 reference (exit 1 on any failure)",
  help: HELP,
  async run(args, io) {
    const flags = parseCommandFlags("verify", args, {
      string: ["kernel-module"],
      boolean: ["json", "count-io", "no-subgroups"],
      collect: ["kernel-module"],
    });
    if (flags.help) {
      io.out(HELP);
      return 0;
    }
    await loadKernelModules(kernelModulePaths(flags));
    const o = shapeOptions(flags, { ns: [1, 17, 128, 257, 1024], batch: 1, heads: 2 });
    const gpu = await openGpu({ subgroups: flags["no-subgroups"] !== true });
    requireDtype(gpu, o.dtype);
    const kernels = new AttentionKernels(gpu);
    const rows: VerifyRow[] = [];
    let seed = o.seed;
    for (const kernel of o.kernels) {
      for (const n of o.ns) {
        const shape = shapeAt(o, n);
        io.progress(`verify ${kernel.name} n=${n}`);
        const problem = {
          kernel,
          shape,
          mask: { kind: o.mask, density: o.density, seed: o.seed },
        };
        const prepared = await prepareAttention(kernels, problem);
        const err = await checkAgainstReference(prepared, seed++);
        prepared.destroy();
        let counted: number | null = null;
        let modeled: number | null = null;
        let countedError = 0;
        if (flags["count-io"]) {
          const r = await countRun(kernels, problem, seed++, { check: true });
          counted = r.countedBytes;
          modeled = r.modeledBytes;
          // The counting variant must compute the same outputs.
          countedError = r.check?.error ?? Infinity;
        }
        const tol = tolerance(o.dtype);
        const t = prepared.tiles;
        rows.push({
          kernel: kernel.name,
          dtype: o.dtype,
          n,
          d: o.d,
          batch: o.batch,
          heads: o.heads,
          causal: o.causal,
          density: prepared.mask?.density ?? 1,
          tiles: `${t.br}x${t.bc} rm${t.rm} tx${t.tx}`,
          maxRelError: err,
          tolerance: tol,
          countedBytes: counted,
          modeledBytes: modeled,
          pass: err <= tol && countedError <= tol && counted === modeled,
        });
      }
    }
    io.progress("");
    const failed = rows.filter((r) => !r.pass).length;
    if (flags.json) {
      io.out(JSON.stringify({ device: gpu.info, rows }, null, 2));
    } else {
      const fallback = gpu.info.isFallbackAdapter ? " (fallback adapter)" : "";
      const sg = gpu.subgroupSize > 0 ? `, subgroups of ${gpu.subgroupSize}` : ", no subgroups";
      io.out(`adapter: ${gpu.info.description}${fallback}${sg}`);
      const header = [
        "kernel",
        "dtype",
        "n",
        "d",
        "b×h",
        "causal",
        "density",
        "tiles",
        "max rel err",
        "tol",
        ...(flags["count-io"] ? ["counted B", "modeled B"] : []),
        "result",
      ];
      const body = rows.map((r) => [
        r.kernel,
        r.dtype,
        String(r.n),
        String(r.d),
        `${r.batch}×${r.heads}`,
        r.causal ? "yes" : "no",
        r.density.toFixed(3),
        r.tiles,
        r.maxRelError.toExponential(2),
        r.tolerance.toExponential(0),
        ...(flags["count-io"] ? [String(r.countedBytes), String(r.modeledBytes)] : []),
        r.pass ? "ok" : "FAIL",
      ]);
      for (const line of formatTable(header, body)) io.out(line);
      io.out(`${rows.length - failed} passed, ${failed} failed`);
    }
    gpu.device.destroy();
    return failed > 0 ? 1 : 0;
  },
};
