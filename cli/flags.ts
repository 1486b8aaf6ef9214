/**
 * Flag parsing shared by every command: the shape flags (`--kernels`, `--n`, `--d`, `--batch`,
 * `--heads`, `--dtype`, `--causal`, `--density`, `--mask`, `--seed`) and the validation of
 * their values. Every bad value is a {@linkcode UsageError} with one line that says what to do.
 *
 * @module
 */

import { parseArgs } from "@std/cli/parse-args";
import { UsageError } from "../core/errors.ts";
import {
  type AttentionShape,
  type Dtype,
  DTYPES,
  HEAD_DIMS,
  MASK_KINDS,
  type MaskKind,
} from "../core/shapes.ts";
import type { Kernel } from "../kernels/kernel.ts";
import {
  allKernels,
  BUILTIN_KERNEL_NAMES,
  kernelForPass,
  KERNELS,
  type Pass,
  PASSES,
  passMode,
  problemOf,
} from "../kernels/registry.ts";

/** The shape flags every command takes. */
export const SHAPE_STRING_FLAGS = [
  "kernels",
  "n",
  "d",
  "batch",
  "heads",
  "dtype",
  "density",
  "mask",
  "seed",
  "pass",
] as const;

/** What the shape flags decide. */
export interface ShapeOptions {
  /** The kernels to run, from the registry (built-in and loaded with `--kernel-module`). */
  kernels: Kernel[];
  ns: number[];
  d: number;
  batch: number;
  heads: number;
  dtype: Dtype;
  causal: boolean;
  density: number;
  mask: MaskKind;
  seed: number;
  /** What each run computes: forward, backward, or forward then backward (`--pass`). */
  pass: Pass;
}

/** Help text lines of the shape flags, for each command's `--help`. */
export const SHAPE_HELP = `Shape flags:
  --kernels LIST      comma list of ${
  BUILTIN_KERNEL_NAMES.filter((k) => KERNELS[k].mode === "fwd").join(", ")
} and kernels loaded with
                      --kernel-module (default: all of the pass but the decode
                      kernels); with --pass bwd or fwd+bwd
                      a forward kernel's name runs its backward (flash → flash-bwd) or both
                      (flash-fwd+bwd)
  --pass P            fwd, bwd or fwd+bwd: forward, backward, or forward then backward back to
                      back (default: fwd)
  --n LIST            sequence lengths: comma list and/or power-of-two ranges like 256..16384
  --d D               head dimension: 32, 64 or 128 (default: 64)
  --batch B           batch size
  --heads H           heads
  --dtype T           f32 or f16 (f16 needs the adapter's shader-f16) (default: f32)
  --causal            causal masking (query i attends keys j <= i)
  --density S         block-sparse: fraction of blocks the mask keeps, in (0, 1] (default: 0.25)
  --mask KIND         block-sparse mask: random, butterfly or local (default: random)
  --seed N            seed of the random inputs and the random mask (default: 1)`;

/** Raw flags as `parseArgs` returns them for {@linkcode parseCommandFlags}. */
export type RawFlags = Record<string, string | boolean | string[] | undefined> & {
  _: string[];
};

/**
 * A flag's value when it was given as a string, else undefined.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { stringFlag } from "./flags.ts";
 * assert(stringFlag({ _: [], out: "x" }, "out") === "x");
 * assert(stringFlag({ _: [], quiet: true }, "quiet") === undefined);
 * ```
 */
export function stringFlag(raw: RawFlags, name: string): string | undefined {
  const v = raw[name];
  return typeof v === "string" ? v : undefined;
}

/**
 * Parses `args` with the shape flags plus a command's own. Unknown flags, and positional
 * arguments when `positional` is false, are a {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseCommandFlags } from "./flags.ts";
 * const f = parseCommandFlags("verify", ["--n", "64", "--json"], { boolean: ["json"] });
 * assert(f.n === "64" && f.json === true);
 * ```
 */
export function parseCommandFlags(
  command: string,
  args: string[],
  spec: { string?: string[]; boolean?: string[]; collect?: string[]; positional?: boolean },
): RawFlags {
  const strings = [...SHAPE_STRING_FLAGS, ...(spec.string ?? [])];
  refuseRepeated(command, args, strings.filter((f) => !(spec.collect ?? []).includes(f)));
  args.forEach((arg, i) => {
    const prev = args[i - 1];
    if (arg === "" && prev?.startsWith("--")) {
      throw new UsageError(`${prev} needs a value; see attnbench ${command} --help`);
    }
    // A value flag followed by another flag or by nothing has no value.
    const next = args[i + 1];
    const name = /^--([^=]+)$/.exec(arg);
    if (name && strings.includes(name[1]!) && (next === undefined || next.startsWith("--"))) {
      throw new UsageError(`--${name[1]} needs a value; see attnbench ${command} --help`);
    }
    if (/^-\d/.test(arg) && prev !== undefined && strings.includes(prev.slice(2))) {
      throw new UsageError(`${prev} takes a positive value, got "${arg}"`);
    }
  });
  return parseArgs(args, {
    string: strings,
    boolean: ["causal", "help", ...(spec.boolean ?? [])],
    collect: spec.collect ?? [],
    alias: { h: "help" },
    unknown: (arg: string) => {
      if (arg.startsWith("-")) {
        throw new UsageError(`unknown flag ${arg.split("=")[0]}; see attnbench ${command} --help`);
      }
      if (!spec.positional) {
        throw new UsageError(
          `${command} takes no positional arguments, got "${arg}"; see attnbench ${command} --help`,
        );
      }
      return true;
    },
  }) as RawFlags;
}

/**
 * Throws {@linkcode UsageError} when a single-value flag (`--name V` or `--name=V`) is given
 * twice: which one was meant is a guess, so none is taken. `aliases` maps short names (`o`) to
 * the long one (`out`).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { refuseRepeated } from "./flags.ts";
 * refuseRepeated("bench", ["--n", "64", "--d", "32"], ["n", "d"]);
 * try { refuseRepeated("bench", ["--n", "64", "--n=128"], ["n"]); } catch (e) {
 *   assert((e as Error).message.startsWith("--n is given twice"));
 * }
 * ```
 */
export function refuseRepeated(
  command: string,
  args: readonly string[],
  single: readonly string[],
  aliases: Record<string, string> = {},
): void {
  const seen = new Set<string>();
  for (const [i, arg] of args.entries()) {
    if (arg === "--") break;
    const m = /^--?([^=]+)/.exec(arg);
    if (!m || /^-[\d.]/.test(arg)) continue;
    // A value of the previous flag ("--title --n") is not a flag of its own.
    const prev = args[i - 1];
    const prevName = prev === undefined ? undefined : /^--?([^=]+)$/.exec(prev)?.[1];
    if (prevName !== undefined && single.includes(aliases[prevName] ?? prevName)) continue;
    const name = aliases[m[1]!] ?? m[1]!;
    if (!single.includes(name)) continue;
    if (seen.has(name)) {
      throw new UsageError(
        `--${name} is given twice; give it once (see attnbench ${command} --help)`,
      );
    }
    seen.add(name);
  }
}

/** Largest sequence length any command takes: one head's Q at d=32 in f16 is then 4 GiB. */
export const MAX_N = 2 ** 26;
/** Largest `--batch` and `--heads`. */
export const MAX_BATCH_HEADS = 2 ** 20;
/** Largest block mask (row blocks × column blocks) the tool builds in memory. */
export const MAX_MASK_BLOCKS = 2 ** 24;

/**
 * Why a sparse `kernel` at `n` with `br × bc` tiles cannot be built (its block mask is an
 * in-memory grid of ⌈N/br⌉·⌈N/bc⌉ blocks), or null.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { maskGridProblem } from "./flags.ts";
 * assert(maskGridProblem("block-sparse", 1024, 64, 64) === null);
 * assert(maskGridProblem("block-sparse", 2 ** 20, 16, 16) !== null);
 * ```
 */
export function maskGridProblem(
  kernel: string,
  n: number,
  br: number,
  bc: number,
): string | null {
  const blocks = Math.ceil(n / br) * Math.ceil(n / bc);
  if (blocks <= MAX_MASK_BLOCKS) return null;
  return `${kernel} n=${n} with ${br}×${bc} tiles needs a block mask of ${blocks} blocks, ` +
    `more than the ${MAX_MASK_BLOCKS} this tool builds; use a smaller --n`;
}

/**
 * Parses a list of positive integers: comma-separated items, each a number or a power-of-two
 * range `lo..hi` (both powers of two) that expands to `lo, 2·lo, …, hi`. Duplicates are dropped.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseSizeList } from "./flags.ts";
 * assert(parseSizeList("256..2048", "--n").join() === "256,512,1024,2048");
 * assert(parseSizeList("100,64..128", "--n").join() === "100,64,128");
 * ```
 */
export function parseSizeList(text: string, flag: string, max = MAX_N): number[] {
  const what =
    `${flag} takes positive integers or power-of-two ranges like 256..16384, got "${text}"`;
  const sizes: number[] = [];
  const items = text.split(",").map((s) => s.trim());
  if (items.some((s) => s === "")) throw new UsageError(what);
  for (const item of items) {
    const range = /^(\d+)\.\.(\d+)$/.exec(item);
    if (range) {
      const lo = parsePositiveInt(range[1] ?? "", flag, max);
      const hi = parsePositiveInt(range[2] ?? "", flag, max);
      if (!isPowerOfTwo(lo) || !isPowerOfTwo(hi) || lo > hi) {
        throw new UsageError(
          `${flag} range "${item}" must go from a power of two up to a power of two, ` +
            `e.g. 256..16384`,
        );
      }
      for (let v = lo; v <= hi; v *= 2) sizes.push(v);
    } else {
      sizes.push(parsePositiveInt(item, flag, max));
    }
  }
  return [...new Set(sizes)];
}

function isPowerOfTwo(v: number): boolean {
  return Number.isSafeInteger(v) && v > 0 && 2 ** Math.round(Math.log2(v)) === v;
}

/**
 * A positive integer flag value, or a {@linkcode UsageError} naming the flag.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parsePositiveInt } from "./flags.ts";
 * assert(parsePositiveInt("12", "--batch") === 12);
 * ```
 */
export function parsePositiveInt(
  text: string,
  flag: string,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(v) || v <= 0) {
    throw new UsageError(`${flag} must be a positive integer, got "${text}"`);
  }
  if (v > max) throw new UsageError(`${flag} must be at most ${max}, got ${text}`);
  return v;
}

/**
 * A number in (0, 1], e.g. a density.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseFraction } from "./flags.ts";
 * assert(parseFraction("0.25", "--density") === 0.25);
 * ```
 */
export function parseFraction(text: string, flag: string): number {
  const v = Number(text);
  if (text.trim() === "" || !(v > 0 && v <= 1)) {
    throw new UsageError(`${flag} must be a number in (0, 1], e.g. 0.25, got "${text}"`);
  }
  return v;
}

function oneOf<T extends string>(text: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(text)) {
    throw new UsageError(`${flag} must be one of ${allowed.join(", ")}, got "${text}"`);
  }
  return text as T;
}

/**
 * The shape options from raw flags, with a command's defaults for what was not given.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseCommandFlags, shapeOptions } from "./flags.ts";
 * const raw = parseCommandFlags("verify", ["--n", "1,37", "--d", "32"], {});
 * const o = shapeOptions(raw, { ns: [256], batch: 1, heads: 1 });
 * assert(o.ns.join() === "1,37" && o.d === 32 && o.kernels.length === 3);
 * ```
 */
export function shapeOptions(
  raw: RawFlags,
  defaults: {
    ns: number[];
    batch: number;
    heads: number;
    d?: number;
    density?: number;
    /** Which kernels run when `--kernels` is not given: those of this problem (attention). */
    problem?: "attention" | "decode";
  },
): ShapeOptions {
  const str = (name: string) => stringFlag(raw, name);
  const passText = str("pass");
  const pass: Pass = passText === undefined ? "fwd" : oneOf(passText, PASSES, "--pass");
  const known = allKernels();
  // By default the kernels of the pass and of the problem (the decode kernels when named).
  let kernels: Kernel[] = known.filter((k) =>
    k.mode === passMode(pass) && problemOf(k) === (defaults.problem ?? "attention")
  );
  const kernelText = str("kernels");
  if (kernelText !== undefined) {
    const ofPass = known.filter((k) => k.mode === passMode(pass)).map((k) => k.name);
    kernels = [];
    for (const name of kernelText.split(",").map((s) => s.trim())) {
      if (!known.some((k) => k.name === name)) {
        // The message lists the kernels of this pass (other passes' names are accepted too).
        throw new UsageError(`--kernels must be one of ${ofPass.join(", ")}, got "${name}"`);
      }
      const k = kernelForPass(name, pass);
      if (!kernels.includes(k)) kernels.push(k);
    }
  }
  const dText = str("d");
  let d = defaults.d ?? 64;
  if (dText !== undefined) {
    d = Number(dText);
    if (!/^\d+$/.test(dText) || !HEAD_DIMS.includes(d)) {
      throw new UsageError(`--d must be one of ${HEAD_DIMS.join(", ")}, got "${dText}"`);
    }
  }
  const int = (name: string, fallback: number) => {
    const t = str(name);
    return t === undefined ? fallback : parsePositiveInt(t, `--${name}`, MAX_BATCH_HEADS);
  };
  const nText = str("n");
  const density = str("density");
  const seedText = str("seed");
  let seed = 1;
  if (seedText !== undefined) {
    seed = Number(seedText);
    if (!/^\d+$/.test(seedText) || !Number.isSafeInteger(seed)) {
      throw new UsageError(`--seed must be a non-negative integer, got "${seedText}"`);
    }
  }
  return {
    kernels,
    ns: nText === undefined ? [...defaults.ns] : parseSizeList(nText, "--n"),
    d,
    batch: int("batch", defaults.batch),
    heads: int("heads", defaults.heads),
    dtype: str("dtype") === undefined ? "f32" : oneOf(str("dtype")!, DTYPES, "--dtype"),
    causal: raw.causal === true,
    density: density === undefined ? defaults.density ?? 0.25 : parseFraction(density, "--density"),
    mask: str("mask") === undefined ? "random" : oneOf(str("mask")!, MASK_KINDS, "--mask"),
    seed,
    pass,
  };
}

/**
 * The attention shape the options describe at sequence length `n`. A `batch` of 0 (the
 * commands' "not given") becomes `tokens / n`, at least 1: batch·N held constant, as the
 * flash-attention benchmarks do.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseCommandFlags, shapeAt, shapeOptions } from "./flags.ts";
 * const o = shapeOptions(parseCommandFlags("bench", ["--d", "32"], {}), { ns: [], batch: 0, heads: 2 });
 * assert(shapeAt(o, 1024, 16384).batch === 16 && shapeAt(o, 1024, 16384).d === 32);
 * ```
 */
export function shapeAt(o: ShapeOptions, n: number, tokens = 0): AttentionShape {
  return {
    batch: o.batch > 0 ? o.batch : Math.max(1, Math.floor(tokens / n)),
    heads: o.heads,
    n,
    d: o.d,
    dtype: o.dtype,
    causal: o.causal,
  };
}
