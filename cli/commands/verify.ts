/**
 * `attnbench verify`: every kernel against the float64 reference on fresh random inputs.
 *
 * @module
 */

import type { Command } from "../command.ts";
import { UsageError } from "../../core/errors.ts";
import {
  parseCommandFlags,
  SHAPE_HELP,
  shapeAt,
  type ShapeOptions,
  shapeOptions,
} from "../flags.ts";
import { KERNEL_MODULE_HELP, kernelModulePaths, loadKernelModules } from "../kernel_modules.ts";
import {
  DECODE_HELP,
  DECODE_STRING_FLAGS,
  type DecodeFlags,
  decodeFlags,
  decodeProblems,
} from "../decode_flags.ts";
import type { RunDecode, RunRecord } from "../../core/schema.ts";
import type { AttentionShape } from "../../core/shapes.ts";
import { problemOf } from "../../kernels/registry.ts";
import { formatTable } from "../../analysis/table.ts";
import { tileText } from "../bench_summary.ts";
import {
  AttentionKernels,
  prepareAttention,
  type PreparedAttention,
} from "../../kernels/attention.ts";
import { checkAgainstReference, countRun } from "../../kernels/check.ts";
import type { Kernel } from "../../kernels/kernel.ts";
import { openGpu, requireDtype } from "../../kernels/gpu.ts";
import { tolerance } from "../../core/tolerances.ts";
import { F16_MATH_HELP, f16MathFlag } from "../f16_math_flag.ts";
import { DQ_HELP, dqFlag, requireDqFeature } from "../dq_flag.ts";
import { DQ_KERNELS } from "../../core/schema.ts";
import { F16_MATH_KERNELS, type F16Math } from "../../kernels/flash/mod.ts";

const HELP = `attnbench verify — check every kernel against a float64 CPU reference

Usage: attnbench verify [shape flags] [--count-io] [--kernel-module PATH]... [--json]

Each kernel runs on fresh random inputs (N(0,1), seeded by --seed) with its outputs poisoned
with NaN first; for every output (O, and flash's log-sum-exp) the max relative error
max|out - ref| / max|ref| must stay within the dtype's tolerance (f32 1e-4, f16 1e-2).
Block-sparse is compared with the reference whose masked blocks are -inf before the softmax.
Exit code 1 when any kernel fails.

${SHAPE_HELP}
  (verify defaults: --n 1,17,128,257,1024 --batch 1 --heads 2)

${DECODE_HELP}

  --count-io          also run the counting variant and require counted == modeled bytes
  --no-subgroups      never ask for subgroups: the portable kernels (workgroup-memory reductions)
${F16_MATH_HELP}
${DQ_HELP}
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
  /** null when the output held NaN or an infinity (the row then fails with that reason). */
  maxRelError: number | null;
  tolerance: number;
  /** Why the row failed; null when it passed. */
  reason: string | null;
  countedBytes: number | null;
  modeledBytes: number | null;
  pass: boolean;
  /** Decode kernels: the workload (lengths, KV heads, block size). */
  decode?: RunDecode;
  /** f16 rows: the arithmetic (`--f16-math`); the kernels other than flash's ignore it. */
  f16Math?: F16Math;
  /** flash's backward rows: a non-default dQ (`--dq`); the other kernels ignore it. */
  dq?: RunRecord["dq"];
}

/** One problem verify runs a kernel on. */
interface VerifyCase {
  shape: AttentionShape;
  options?: Readonly<Record<string, unknown>>;
  decode?: RunDecode;
}

/**
 * The problems of a kernel: an attention kernel one per `--n`; a decode kernel those the decode
 * flags describe (fixed lengths: `--batch` sequences of each `--n`).
 */
function casesOf(
  kernel: Kernel,
  o: ShapeOptions,
  decode: DecodeFlags,
  f16Math: F16Math | null = null,
  dq: RunRecord["dq"] | null = null,
): VerifyCase[] {
  if (problemOf(kernel) === "attention") {
    const withDq = dq && DQ_KERNELS.includes(kernel.name) ? { dq } : {};
    const options = f16Math || withDq.dq
      ? { ...(f16Math ? { f16Math } : {}), ...withDq }
      : undefined;
    return o.ns.map((n) => ({ shape: shapeAt(o, n), options }));
  }
  return decodeProblems(decode, o, [o.batch]).map((p) => ({
    shape: p.shape,
    options: p.optionsFor(kernel),
    decode: p.recordFor(kernel),
  }));
}

/** Largest B·H·N²·d the float64 CPU reference is asked to do (about a minute of CPU). */
const VERIFY_MAX_WORK = 2 ** 34;

/** The configuration columns of a row. */
function rowShape(kernel: string, n: number, o: ShapeOptions) {
  return {
    kernel,
    dtype: o.dtype,
    n,
    d: o.d,
    batch: o.batch,
    heads: o.heads,
    causal: o.causal,
  };
}

/** The row of a kernel that failed before its output could be checked. */
function faultRow(kernel: Kernel, n: number, o: ShapeOptions, e: unknown): VerifyRow {
  return {
    ...rowShape(kernel.name, n, o),
    density: kernel.sparse ? o.density : 1,
    tiles: "-",
    maxRelError: null,
    tolerance: tolerance(o.dtype),
    reason: (e instanceof Error ? e.message : String(e)).split("\n")[0] || "failed",
    countedBytes: null,
    modeledBytes: null,
    pass: false,
  };
}

/** A decode case's workload for its row, or nothing. */
function decodeOf(c: VerifyCase): { decode?: RunDecode } {
  return c.decode ? { decode: c.decode } : {};
}

/** The `verify` command. */
export const verifyCommand: Command = {
  name: "verify",
  summary: "check every kernel against the float64 reference (exit 1 on any failure)",
  help: HELP,
  async run(args, io) {
    const flags = parseCommandFlags("verify", args, {
      string: ["kernel-module", "f16-math", "dq", ...DECODE_STRING_FLAGS],
      boolean: ["json", "count-io", "no-subgroups"],
      collect: ["kernel-module"],
    });
    if (flags.help) {
      io.out(HELP);
      return 0;
    }
    await loadKernelModules(kernelModulePaths(flags));
    const o = shapeOptions(flags, { ns: [1, 17, 128, 257, 1024], batch: 1, heads: 2 });
    const decode = await decodeFlags(flags, o);
    const f16Math = f16MathFlag(flags, o.dtype);
    const dq = dqFlag(flags, o.pass);
    for (const n of o.kernels.some((k) => problemOf(k) === "attention") ? o.ns : []) {
      const work = o.batch * o.heads * n * n * o.d;
      if (work > VERIFY_MAX_WORK) {
        throw new UsageError(
          `--n ${n}: the float64 CPU reference would take B·H·N²·d = ${work.toExponential(2)} ` +
            `multiply-adds, more than 2^34; use a smaller --n, --batch or --heads`,
        );
      }
    }
    // A decode problem costs the reference Σ lengths · H · d multiply-adds.
    const decodeKernel = o.kernels.find((k) => problemOf(k) === "decode");
    for (const c of decodeKernel ? casesOf(decodeKernel, o, decode) : []) {
      const work = c.decode!.contexts.reduce((a, b) => a + b, 0) * o.heads * o.d;
      if (work > VERIFY_MAX_WORK) {
        throw new UsageError(
          `context ${c.shape.n} × ${c.shape.batch} sequences: the float64 CPU reference would ` +
            `take Σ lengths·H·d = ${work.toExponential(2)} multiply-adds, more than 2^34`,
        );
      }
    }
    const gpu = await openGpu({ subgroups: flags["no-subgroups"] !== true });
    requireDtype(gpu, o.dtype);
    try {
      requireDqFeature(gpu, dq, o.kernels.map((k) => k.name));
    } catch (e) {
      gpu.device.destroy();
      throw e;
    }
    const kernels = new AttentionKernels(gpu);
    const rows: VerifyRow[] = [];
    const mathOf = (k: Kernel) => ({
      ...(f16Math && F16_MATH_KERNELS.includes(k.name) ? { f16Math } : {}),
      ...(dq && DQ_KERNELS.includes(k.name) ? { dq } : {}),
    });
    let seed = o.seed;
    for (const kernel of o.kernels) {
      for (const c of casesOf(kernel, o, decode, f16Math, dq)) {
        const { shape } = c;
        const n = shape.n;
        io.progress(`verify ${kernel.name} n=${n}`);
        const problem = {
          kernel,
          shape,
          mask: { kind: o.mask, density: o.density, seed: o.seed },
          options: c.options,
        };
        let prepared: PreparedAttention;
        let err: number;
        try {
          prepared = await prepareAttention(kernels, problem);
          err = await checkAgainstReference(prepared, seed++);
          prepared.destroy();
        } catch (e) {
          if (e instanceof UsageError) throw e;
          // A kernel that does not compile or a GPU fault fails this row, not the command.
          rows.push({
            ...faultRow(kernel, n, o, e),
            batch: shape.batch,
            ...decodeOf(c),
            ...mathOf(kernel),
          });
          continue;
        }
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
        const reason = !Number.isFinite(err)
          ? "output has NaN or infinite values"
          : err > tol
          ? `max relative error ${err.toExponential(2)} > tolerance ${tol}`
          : !(countedError <= tol)
          ? `the counting run's output is wrong (max relative error ${countedError})`
          : counted !== modeled
          ? `counted bytes ${counted} differ from modeled ${modeled}`
          : null;
        rows.push({
          ...rowShape(kernel.name, n, o),
          batch: shape.batch,
          ...decodeOf(c),
          ...mathOf(kernel),
          density: prepared.mask?.density ?? 1,
          // A decode kernel's tiles (its split pass's knobs), then its cache layout.
          tiles: tileText(t, c.decode, true),
          maxRelError: Number.isFinite(err) ? err : null,
          tolerance: tol,
          reason,
          countedBytes: counted,
          modeledBytes: modeled,
          pass: reason === null,
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
        r.dq ? `${r.kernel} dq ${r.dq}` : r.kernel,
        r.f16Math === "packed" ? `${r.dtype} packed` : r.dtype,
        String(r.n),
        String(r.d),
        `${r.batch}×${r.heads}`,
        r.causal ? "yes" : "no",
        r.density.toFixed(3),
        r.tiles,
        r.maxRelError === null ? "NaN/inf" : r.maxRelError.toExponential(2),
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
