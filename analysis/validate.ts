/**
 * Strict reading of every file the tool takes: results files (`report`, `check`), tuned-tiles
 * files (`bench --tuned`, `tune`) and peer timings (`bench --peers`). Each is checked against
 * its schema — types, ranges, known kernels, consistent shapes — before anything uses it, and
 * a violation is one {@linkcode UsageError} (exit 2) naming the file and the field path:
 * `ci/baseline.json: runs[3].hbmBytes.modeled: expected a finite number ≥ 0, got "12"`.
 *
 * The schemas evolve additively: a field this version does not know is ignored (a newer
 * results@1 writer may add optional fields, e.g. a run's on-chip memory size); a field it does
 * know must have the documented type. A breaking change bumps the schema version instead.
 *
 * The same checks guard the writing side: {@linkcode runProblem} says what is wrong with a run
 * record before it is written, so a NaN or an infinity can never become `null` in JSON.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import {
  type Dtype,
  DTYPES,
  HEAD_DIMS,
  MASK_KINDS,
  TILE_VARIANTS,
  type Tiles,
} from "../core/shapes.ts";
import { DQ_KERNELS, RESULTS_SCHEMA, type ResultsFile } from "../core/schema.ts";

/**
 * What validation needs to know of the kernels: which names are known (the registry's kernels
 * and those loaded with `--kernel-module`), which follow a block mask, and the tile rules. This
 * layer names no kernel: the caller passes the registry's view (`kernels/catalog.ts`
 * `kernelCatalog()`).
 */
export interface KernelCatalog {
  /** Names of the kernels known now. */
  names(): readonly string[];
  /** Whether the kernel of this (known) name follows a block mask (density and mask vary). */
  sparse(name: string): boolean;
  /** What the kernel of this (known) name computes (`--pass`); absent: not checked. */
  pass?(name: string): "fwd" | "bwd" | "fwd+bwd";
  /** Why these tiles cannot build the kernel at `d` (device limits aside), or null. */
  tileProblem(name: string, d: number, dtype: Dtype, tiles: Tiles): string | null;
}

/** A violation found by a checker: the field path and what was expected there. */
export class SchemaError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = "SchemaError";
    this.path = path;
  }
}

type Obj = Record<string, unknown>;

function show(v: unknown): string {
  if (v === undefined) return "nothing (missing)";
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function fail(path: string, expected: string, v: unknown): never {
  throw new SchemaError(path, `expected ${expected}, got ${show(v)}`);
}

function join(path: string, key: string | number): string {
  return typeof key === "number" ? `${path}[${key}]` : path === "" ? key : `${path}.${key}`;
}

function obj(v: unknown, path: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(path, "an object", v);
  return v as Obj;
}

function arr(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) fail(path, "an array", v);
  return v;
}

function str(v: unknown, path: string): string {
  if (typeof v !== "string") fail(path, "a string", v);
  return v;
}

function bool(v: unknown, path: string): boolean {
  if (typeof v !== "boolean") fail(path, "true or false", v);
  return v;
}

function oneOf(v: unknown, allowed: readonly string[], path: string): string {
  if (typeof v !== "string" || !allowed.includes(v)) fail(path, `one of ${allowed.join(", ")}`, v);
  return v;
}

/** A kernel name the catalog knows; the message says how to make a user kernel known. */
function knownKernel(v: unknown, path: string, kernels: KernelCatalog): string {
  const names = kernels.names();
  if (typeof v !== "string" || !names.includes(v)) {
    fail(
      path,
      `one of ${names.map((n) => JSON.stringify(n)).join(", ")} (a kernel of your own: give ` +
        `its module with --kernel-module)`,
      v,
    );
  }
  return v;
}

/** A finite number ≥ 0 (bytes, times, rates). */
function nonNeg(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    fail(path, "a finite number ≥ 0", v);
  }
  return v;
}

function positiveInt(v: unknown, path: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1 || v > max) {
    fail(path, `an integer in 1..${max}`, v);
  }
  return v;
}

function nullable<T>(check: (v: unknown, path: string) => T) {
  return (v: unknown, path: string): T | null => (v === null ? null : check(v, path));
}

function field<T>(o: Obj, key: string, path: string, check: (v: unknown, p: string) => T): T {
  return check(o[key], join(path, key));
}

/** Largest tile edge or sequence length a file may name (bounds hostile numbers). */
const MAX_TILE = 4096;

function tiles(v: unknown, path: string): void {
  const t = obj(v, path);
  for (const k of ["br", "bc", "rm", "tx"]) {
    field(t, k, path, (x, p) => positiveInt(x, p, MAX_TILE));
  }
  if ((t.rm as number) > (t.br as number)) fail(join(path, "rm"), `at most br (${t.br})`, t.rm);
  // flash's layout variant (kernels/flash/mod.ts, a tuned knob); absent: the sizes pick.
  if (t.variant !== undefined) field(t, "variant", path, (x, p) => oneOf(x, TILE_VARIANTS, p));
}

function device(v: unknown, path: string): void {
  const d = obj(v, path);
  for (const k of ["vendor", "architecture", "description", "device"]) field(d, k, path, str);
  field(d, "isFallbackAdapter", path, bool);
  const limits = field(d, "limits", path, obj);
  for (const [k, x] of Object.entries(limits)) nonNeg(x, join(join(path, "limits"), k));
  arr(d.features, join(path, "features")).forEach((f, i) =>
    str(f, join(join(path, "features"), i))
  );
}

function ceilings(v: unknown, path: string): void {
  const c = obj(v, path);
  for (const k of ["copyGBs", "fmaTflops", "launchOverheadUs"]) field(c, k, path, nullable(nonNeg));
  field(c, "clock", path, (x, p) => oneOf(x, ["timestamp-query", "wall"], p));
}

function timeStats(v: unknown, path: string): void {
  const t = obj(v, path);
  for (const k of ["median", "mean", "stdev", "min", "max", "p99", "cv"]) field(t, k, path, nonNeg);
  const samples = field(t, "samples", path, arr);
  if (samples.length === 0) fail(join(path, "samples"), "at least one sample", samples);
  samples.forEach((x, i) => nonNeg(x, join(join(path, "samples"), i)));
  field(t, "outliers", path, arr).forEach((x, i) => {
    const p = join(join(path, "outliers"), i);
    if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x >= samples.length) {
      fail(p, `an index into samples (0..${samples.length - 1})`, x);
    }
  });
}

/**
 * Checks one run record against the schema; throws {@linkcode SchemaError} at the first
 * violation. Exported for the writing side ({@linkcode runProblem}) and for tests.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { checkRun } from "./validate.ts";
 * const kernels = { names: () => ["flash"], sparse: () => false, tileProblem: () => null };
 * try { checkRun({ kernel: "nope" }, "runs[0]", kernels); } catch (e) {
 *   assert((e as Error).message.startsWith("runs[0].kernel: expected one of"));
 * }
 * ```
 */
export function checkRun(v: unknown, path: string, kernels: KernelCatalog): void {
  const r = obj(v, path);
  const kernel = field(r, "kernel", path, (x, p) => knownKernel(x, p, kernels));
  const sparse = kernels.sparse(kernel);
  const pass = r.pass === undefined
    ? "fwd"
    : field(r, "pass", path, (x, p) => oneOf(x, ["fwd", "bwd", "fwd+bwd"], p));
  const own = kernels.pass?.(kernel);
  if (own && own !== pass) fail(join(path, "pass"), `"${own}" for the kernel ${kernel}`, r.pass);
  const dtype = field(r, "dtype", path, (x, p) => oneOf(x, DTYPES, p));
  if (r.f16Math !== undefined) {
    // `--f16-math`: the f16 flash programs' arithmetic; f32 storage has none to choose.
    field(r, "f16Math", path, (x, p) => oneOf(x, ["f32", "packed"], p));
    if (dtype !== "f16") fail(join(path, "f16Math"), "absent at dtype f32", r.f16Math);
  }
  if (r.dq !== undefined) {
    // `--dq`: flash's backward dQ when not its own pass ("pass" is written as absent).
    field(r, "dq", path, (x, p) => oneOf(x, ["atomic", "atomic-stagger"], p));
    if (!DQ_KERNELS.includes(kernel)) {
      fail(join(path, "dq"), `absent for the kernel ${kernel}`, r.dq);
    }
  }
  field(r, "batch", path, positiveInt);
  field(r, "heads", path, positiveInt);
  field(r, "n", path, positiveInt);
  field(r, "d", path, (x, p) => {
    if (typeof x !== "number" || !HEAD_DIMS.includes(x)) {
      fail(p, `one of ${HEAD_DIMS.join(", ")}`, x);
    }
  });
  field(r, "causal", path, bool);
  field(r, "density", path, (x, p) => {
    if (typeof x !== "number" || !(x > 0 && x <= 1)) fail(p, "a number in (0, 1]", x);
    if (!sparse && x !== 1) fail(p, `1 for the dense kernel ${kernel}`, x);
  });
  field(r, "mask", path, (x, p) => {
    if (sparse) oneOf(x, MASK_KINDS, p);
    else if (x !== null) fail(p, `null for the dense kernel ${kernel}`, x);
  });
  field(r, "tile", path, tiles);
  // A tuned knob: the portable path on a device with subgroups; only false is written.
  if (r.subgroups !== undefined) {
    field(r, "subgroups", path, (x, p) => x === false || fail(p, "false (or absent)", x));
  }
  field(r, "sweep", path, (x, p) => oneOf(x, ["n", "block-size", "density", "decode"], p));
  const status = field(r, "status", path, (x, p) => oneOf(x, ["ok", "skipped", "failed"], p));
  field(r, "reason", path, (x, p) => {
    if (status === "ok") {
      if (x !== null) fail(p, "null for an ok run", x);
    } else if (typeof x !== "string" || x === "") fail(p, `the reason the run ${status}`, x);
  });
  field(r, "clock", path, nullable((x, p) => oneOf(x, ["timestamp-query", "wall"], p)));
  field(r, "compileMs", path, nullable(nonNeg));
  field(r, "timeMs", path, (x, p) => {
    if (status === "ok") timeStats(x, p);
    else nullable(timeStats)(x, p);
  });
  field(r, "flops", path, nonNeg);
  for (const k of ["tflops", "tflopsDenseEquivalent", "achievedGBs"]) {
    field(r, k, path, nullable(nonNeg));
  }
  const hbm = field(r, "hbmBytes", path, obj);
  const hp = join(path, "hbmBytes");
  for (const k of ["theoretical", "modeled", "lowerBound"]) field(hbm, k, hp, nonNeg);
  field(hbm, "counted", hp, nullable(nonNeg));
  field(r, "footprintBytes", path, nonNeg);
  field(r, "maxRelError", path, nullable(nonNeg));
  field(r, "warnings", path, arr).forEach((w, i) => str(w, join(join(path, "warnings"), i)));
  if (r.decode !== undefined) {
    // A decode run's workload: one length a sequence (batch of them), the longest is n.
    const dp = join(path, "decode");
    const d = field(r, "decode", path, obj);
    const contexts = field(d, "contexts", dp, arr).map((x, i) =>
      positiveInt(x, join(join(dp, "contexts"), i))
    );
    if (contexts.length !== r.batch) fail(join(dp, "contexts"), `${r.batch} lengths`, contexts);
    if (Math.max(...contexts) !== r.n) fail(join(dp, "contexts"), `a longest of n=${r.n}`, r.n);
    field(d, "kvHeads", dp, positiveInt);
    field(d, "blockSize", dp, nullable(positiveInt));
    field(d, "lengths", dp, str);
  }
  if (r.passes !== undefined) {
    field(r, "passes", path, arr).forEach((x, i) => {
      const pp = join(join(path, "passes"), i);
      const pass = obj(x, pp);
      field(pass, "name", pp, str);
      for (const k of ["medianMs", "bytes", "achievedGBs"]) field(pass, k, pp, nonNeg);
    });
  }
}

function peerRecord(v: unknown, path: string): void {
  const p = obj(v, path);
  field(p, "backend", path, str);
  field(p, "n", path, positiveInt);
  field(p, "d", path, positiveInt);
  field(p, "batchHeads", path, positiveInt);
  field(p, "dtype", path, str);
  field(p, "causal", path, bool);
  field(p, "ms", path, nullable(nonNeg));
  field(p, "tflops", path, nullable(nonNeg));
  field(p, "gpu", path, str);
  if (p.error !== undefined) field(p, "error", path, str);
  if (p.decode !== undefined) field(p, "decode", path, bool);
  if (p.gbs !== undefined) field(p, "gbs", path, nonNeg);
  if (p.pass !== undefined) {
    field(p, "pass", path, (x, q) => oneOf(x, ["fwd", "bwd", "fwd+bwd"], q));
  }
}

/**
 * Checks a parsed results file against `attnbench/results@1`; throws {@linkcode SchemaError}.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { checkResults } from "./validate.ts";
 * const kernels = { names: () => ["flash"], sparse: () => false, tileProblem: () => null };
 * try { checkResults({ schema: "attnbench/results@1" }, kernels); } catch (e) {
 *   assert((e as Error).message.startsWith("createdAt: expected a string"));
 * }
 * ```
 */
export function checkResults(v: unknown, kernels: KernelCatalog): asserts v is ResultsFile {
  const f = obj(v, "(top level)");
  if (f.schema !== RESULTS_SCHEMA) fail("schema", JSON.stringify(RESULTS_SCHEMA), f.schema);
  field(f, "createdAt", "", str);
  const tool = field(f, "tool", "", obj);
  field(tool, "name", "tool", (x, p) => oneOf(x, ["attnbench"], p));
  field(tool, "version", "tool", str);
  field(f, "denoVersion", "", str);
  field(f, "gitCommit", "", nullable(str));
  field(f, "device", "", device);
  field(f, "ceilings", "", nullable(ceilings));
  field(f, "config", "", obj);
  field(f, "runs", "", arr).forEach((r, i) => checkRun(r, join("runs", i), kernels));
  if (f.peers !== undefined) {
    field(f, "peers", "", arr).forEach((p, i) => peerRecord(p, join("peers", i)));
  }
}

/**
 * What is wrong with a run record about to be written (a NaN, an infinity, a wrong type), or
 * null when it is well-formed.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { runProblem } from "./validate.ts";
 * const kernels = { names: () => ["flash"], sparse: () => false, tileProblem: () => null };
 * assert(runProblem({ kernel: "flash" }, kernels) !== null);
 * ```
 */
export function runProblem(run: unknown, kernels: KernelCatalog): string | null {
  try {
    checkRun(run, "run", kernels);
    return null;
  } catch (e) {
    if (e instanceof SchemaError) return e.message;
    throw e;
  }
}

/** Turns a {@linkcode SchemaError} from `check` into a one-line {@linkcode UsageError}. */
function strictly<T>(name: string, what: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof SchemaError) throw new UsageError(`${name}: invalid ${what}: ${e.message}`);
    throw e;
  }
}

/**
 * Parses JSON text, or a {@linkcode UsageError} naming the file.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseJson } from "./validate.ts";
 * assert((parseJson("[1]", "x.json") as number[])[0] === 1);
 * ```
 */
export function parseJson(text: string, name: string): unknown {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${name} is not valid JSON (${(e as Error).message}); is it truncated?`);
  }
  if (depthOver(data, MAX_DEPTH)) {
    throw new UsageError(`${name} nests arrays or objects deeper than ${MAX_DEPTH} levels`);
  }
  return data;
}

/** Deepest nesting an input file may have (ours nest 4 deep; renderers recurse). */
const MAX_DEPTH = 64;

/** Whether `value` nests deeper than `max`, found without recursion. */
function depthOver(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth >= max) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * Validates a parsed results file, throwing one line naming `name` and the field path.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { validateResults } from "./validate.ts";
 * const kernels = { names: () => ["flash"], sparse: () => false, tileProblem: () => null };
 * try { validateResults({ schema: "attnbench/results@1" }, "x.json", kernels); } catch (e) {
 *   assert((e as Error).message.startsWith("x.json: invalid results file: createdAt"));
 * }
 * ```
 */
export function validateResults(
  data: unknown,
  name: string,
  kernels: KernelCatalog,
): ResultsFile {
  const schema = (data as Obj | null)?.schema;
  if (
    typeof data === "object" && data !== null && !Array.isArray(data) && schema !== RESULTS_SCHEMA
  ) {
    throw new UsageError(
      `${name} has schema ${show(schema ?? null)}, expected "${RESULTS_SCHEMA}"`,
    );
  }
  return strictly(name, "results file", () => {
    checkResults(data, kernels);
    return data;
  });
}

/** The tuned-tiles file's schema identifier (kept in step with `cli/tuned.ts`). */
const TUNED_SCHEMA = "attnbench/tuned@1";

/**
 * Validates a parsed tuned-tiles file (`attnbench/tuned@1`): every adapter's device record and
 * every entry's key (`kernel/dtype/dD`), tiles (positive integers, rm ≤ br, an optional flash
 * `variant`), timing and shape, and the optional knobs `f16Math` (f16 keys) and `subgroups`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { validateTuned } from "./validate.ts";
 * const ok = { schema: "attnbench/tuned@1", adapters: {} };
 * const kernels = { names: () => ["flash"], sparse: () => false, tileProblem: () => null };
 * assert(validateTuned(ok, "t.json", kernels) === ok);
 * ```
 */
export function validateTuned(data: unknown, name: string, kernels: KernelCatalog): unknown {
  return strictly(name, "tuned-tiles file", () => {
    const f = obj(data, "(top level)");
    if (f.schema !== TUNED_SCHEMA) fail("schema", JSON.stringify(TUNED_SCHEMA), f.schema);
    const adapters = field(f, "adapters", "", obj);
    for (const [id, slotValue] of Object.entries(adapters)) {
      const sp = `adapters[${JSON.stringify(id)}]`;
      const slot = obj(slotValue, sp);
      field(slot, "device", sp, device);
      const entries = field(slot, "entries", sp, obj);
      for (const [key, e] of Object.entries(entries)) {
        const ep = `${sp}.entries[${JSON.stringify(key)}]`;
        const m = /^([a-z0-9][a-z0-9._-]*)\/(f32|f16)\/d(\d+)$/.exec(key);
        if (!m || !HEAD_DIMS.includes(Number(m[3]))) {
          fail(ep, `a key kernel/dtype/dD with d one of ${HEAD_DIMS.join(", ")}`, key);
        }
        const entry = obj(e, ep);
        field(entry, "tiles", ep, tiles);
        // The device-independent rules (multiples) of a kernel known now; the device's own
        // limits are checked when the tiles are used. An entry of a kernel not loaded in this
        // run (a user kernel tuned with --kernel-module) is never used, so only its form counts.
        if (kernels.names().includes(m[1]!)) {
          const why = kernels.tileProblem(m[1]!, Number(m[3]), m[2] as Dtype, entry.tiles as Tiles);
          if (why) throw new SchemaError(join(ep, "tiles"), `${why}`);
        }
        field(entry, "medianMs", ep, nonNeg);
        for (const k of ["n", "batch", "heads"]) field(entry, k, ep, positiveInt);
        field(entry, "tunedAt", ep, str);
        // The knobs beside the tiles (files before them have neither): f16 arithmetic, f16
        // keys only, and whether the winner used the device's subgroups.
        if (entry.f16Math !== undefined) {
          field(entry, "f16Math", ep, (x, p) => oneOf(x, ["f32", "packed"], p));
          if (m[2] !== "f16") fail(join(ep, "f16Math"), "absent at dtype f32", entry.f16Math);
        }
        if (entry.subgroups !== undefined) field(entry, "subgroups", ep, bool);
      }
    }
    return data;
  });
}

/** A peer line's `pass` (peer_sdpa.py spells forward+backward `fwdbwd`); absent for forward. */
function peerPass(row: Record<string, unknown>): { pass?: "bwd" | "fwd+bwd" } {
  if (row.pass === undefined) return {};
  const pass = field(row, "pass", "", (x, p) => oneOf(x, ["fwd", "bwd", "fwdbwd"], p));
  return pass === "fwd" ? {} : { pass: pass === "fwdbwd" ? "fwd+bwd" : "bwd" };
}

/**
 * Validates one parsed line of a peers file (the JSON lines `peer_sdpa.py` prints): `backend`,
 * `n`, `d`, `batch_heads`, `dtype`, `causal`, `ms` and `tflops` (numbers or null; may be left
 * out when `error` says why), optional `gpu` and `error` strings.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { validatePeerLine } from "./validate.ts";
 * const row = { backend: "sdpa", n: 1024, d: 64, batch_heads: 16, dtype: "float32",
 *   causal: false, ms: 0.5, tflops: 2.1, gpu: "H200" };
 * assert(validatePeerLine(row, "p.jsonl", 1).batchHeads === 16);
 * ```
 */
export function validatePeerLine(data: unknown, name: string, line: number) {
  return strictly(`${name}: line ${line}`, "peer timing", () => {
    const row = obj(data, "(line)");
    const record = {
      backend: field(row, "backend", "", str),
      n: field(row, "n", "", positiveInt),
      d: field(row, "d", "", positiveInt),
      batchHeads: field(row, "batch_heads", "", positiveInt),
      dtype: field(row, "dtype", "", str),
      causal: field(row, "causal", "", bool),
      // A failed peer (with `error`) may leave its timing out.
      ms: row.ms === undefined && row.error !== undefined
        ? null
        : field(row, "ms", "", nullable(nonNeg)),
      tflops: row.tflops === undefined && row.error !== undefined
        ? null
        : field(row, "tflops", "", nullable(nonNeg)),
      gpu: row.gpu === undefined ? "" : field(row, "gpu", "", str),
      ...(row.error === undefined ? {} : { error: field(row, "error", "", str) }),
      // peer_sdpa.py --decode: one query token a row, and the GB/s of reading K and V once.
      ...(row.decode === undefined ? {} : { decode: field(row, "decode", "", bool) }),
      ...(row.gbs === undefined ? {} : { gbs: field(row, "gbs", "", nonNeg) }),
      ...peerPass(row),
    };
    return record;
  });
}
