/**
 * Helpers of the decode kernels' tests: a decode problem in the decode's own terms
 * ({@linkcode DecodeProblem}: lengths, heads and KV heads, block size, split) turned into the
 * registry's problem, prepared by the generic runner, checked by the generic check (fresh inputs
 * with NaN in every cache slot no live token fills, O poisoned, one run, the float64 reference),
 * and a case label to replay it. For tests only.
 *
 * @module
 */

import type { AttentionKernels, AttentionProblem, PreparedAttention } from "../attention.ts";
import { prepareAttention } from "../attention.ts";
import type { AttentionShape, Tiles } from "../../core/shapes.ts";
import { assertClose, checkPrepared, type CheckResult } from "../testing.ts";
import type { DecodeKernelName, DecodeOptions, DecodeSetup } from "./program.ts";
import type { BlockTables, DecodeShape } from "./workload.ts";

/** A decode problem in the decode's terms. */
export interface DecodeProblem {
  kernel: DecodeKernelName;
  shape: DecodeShape;
  blockSize?: number;
  tables?: BlockTables;
  tableSeed?: number;
  cap?: number;
  splitTokens?: number;
  count?: boolean;
  scale?: number;
  /** The split pass's knobs (see `DecodeTiles`); the adapter's default decode tiles when absent. */
  tiles?: Tiles;
}

/**
 * The registry's problem for a decode problem: `batch` = sequences, `n` = the longest context,
 * the rest in the options.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { attentionProblem } from "./testing.ts";
 * const p = attentionProblem({ kernel: "decode",
 *   shape: { lens: [3, 9], heads: 4, kvHeads: 2, d: 64, dtype: "f32" } });
 * assert(p.shape.batch === 2 && p.shape.n === 9);
 * ```
 */
export function attentionProblem(p: DecodeProblem): AttentionProblem {
  const { lens, heads, kvHeads, d, dtype } = p.shape;
  const shape: AttentionShape = {
    batch: lens.length,
    heads,
    n: Math.max(...lens),
    d,
    dtype,
    causal: false,
  };
  const options: DecodeOptions = { lens, kvHeads };
  for (const key of ["blockSize", "tables", "tableSeed", "cap", "splitTokens"] as const) {
    if (p[key] !== undefined) Object.assign(options, { [key]: p[key] });
  }
  return { kernel: p.kernel, shape, options, count: p.count, scale: p.scale, tiles: p.tiles };
}

/** The decode setup of a prepared decode kernel (its plan carries it). */
export function setupOf(p: PreparedAttention): DecodeSetup {
  const setup = (p.plan as unknown as { decode?: DecodeSetup }).decode;
  if (!setup) throw new Error(`${p.kernel.name} is not a decode kernel`);
  return setup;
}

/**
 * Prepares a decode problem on the generic runner.
 *
 * @example
 * ```ts ignore
 * import { prepareDecode } from "./testing.ts";
 * const p = await prepareDecode(kernels, { kernel: "paged-decode", shape });
 * ```
 */
export function prepareDecode(
  kernels: AttentionKernels,
  problem: DecodeProblem,
): Promise<PreparedAttention> {
  return prepareAttention(kernels, attentionProblem(problem));
}

/**
 * A decode case in one line.
 *
 * @example
 * ```ts ignore
 * import { describeDecode } from "./testing.ts";
 * console.log(describeDecode(prepared, 1));
 * ```
 */
export function describeDecode(p: PreparedAttention, seed: number): string {
  const s = setupOf(p);
  const lens = s.shape.lens.length > 8
    ? `${s.shape.lens.slice(0, 8).join(",")},… (${s.shape.lens.length})`
    : s.shape.lens.join(",");
  return `${s.kernel} lens=[${lens}] heads=${s.shape.heads}/${s.shape.kvHeads} d=${s.shape.d} ` +
    `${s.shape.dtype} split=${s.splitTokens}${
      s.tables ? ` block=${s.tables.blockSize}` : ""
    } tiles ${p.tiles.br}x${p.tiles.bc}x${p.tiles.rm}x${p.tiles.tx} seed ${seed}`;
}

/**
 * The generic check (inputs drawn with `seed`, O poisoned, one run, every output against the
 * float64 reference), labelled with the decode case.
 *
 * @example
 * ```ts ignore
 * import { checkDecode } from "./testing.ts";
 * const { error } = await checkDecode(prepared, 7);
 * ```
 */
export async function checkDecode(p: PreparedAttention, seed: number): Promise<CheckResult> {
  const r = await checkPrepared(p, seed);
  return { ...r, label: describeDecode(p, seed) };
}

/**
 * Throws unless the run is finite and within its dtype's tolerance.
 *
 * @example
 * ```ts ignore
 * import { assertDecodeClose, checkDecode } from "./testing.ts";
 * assertDecodeClose(await checkDecode(prepared, 7));
 * ```
 */
export function assertDecodeClose(r: CheckResult): void {
  assertClose(r);
}
