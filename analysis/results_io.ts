/**
 * Reading and writing results files: validation on the way in, atomic writes on the way out.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import type { ResultsFile } from "../core/schema.ts";
import { type KernelCatalog, parseJson, validateResults } from "./validate.ts";

/**
 * Parses and validates a results file's text. Throws {@linkcode UsageError} (exit 2) when the
 * text is not JSON or breaks the schema anywhere (see `validate.ts`), naming the field.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseResults } from "./results_io.ts";
 * const kernels = { names: () => ["flash"], sparse: () => false, tileProblem: () => null };
 * try { parseResults("{}", "x.json", kernels); } catch (e) { assert(e instanceof Error); }
 * ```
 */
export function parseResults(text: string, name: string, kernels: KernelCatalog): ResultsFile {
  return validateResults(parseJson(text, name), name, kernels);
}

/** Largest input file the tool reads (a results file of a long sweep is a few MB). */
export const MAX_INPUT_BYTES = 2 ** 30;

/**
 * Reads an input file's text, refusing what is not a regular file (a folder, `/dev/zero`, a
 * pipe that never ends) or is larger than {@linkcode MAX_INPUT_BYTES}. Throws the OS error
 * (or an Error saying why) for the caller to word.
 *
 * @example
 * ```ts ignore
 * import { readInputFile } from "./results_io.ts";
 * const text = await readInputFile("ci/baseline.json");
 * ```
 */
export async function readInputFile(path: string): Promise<string> {
  const info = await Deno.stat(path);
  if (!info.isFile) throw new Error("not a regular file");
  if (info.size > MAX_INPUT_BYTES) {
    throw new Error(`${info.size} bytes, more than the ${MAX_INPUT_BYTES} read`);
  }
  return await Deno.readTextFile(path);
}

/**
 * Reads and validates a results file from disk.
 *
 * @example
 * ```ts ignore
 * import { readResults } from "./results_io.ts";
 * const results = await readResults("out/results.json", kernelCatalog());
 * ```
 */
export async function readResults(path: string, kernels: KernelCatalog): Promise<ResultsFile> {
  let text: string;
  try {
    text = await readInputFile(path);
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseResults(text, path, kernels);
}

/**
 * Writes `text` to `path` atomically: a temporary file beside it, then a rename, so a reader
 * never sees half a file and an interrupted run never clobbers the old one. The one-file case
 * of {@linkcode writeFileSet}.
 *
 * @example
 * ```ts ignore
 * import { writeFileAtomic } from "./results_io.ts";
 * await writeFileAtomic("out/results.json", "{}\n");
 * ```
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  await writeFileSet([[path, text]]);
}

function parentOf(path: string): string {
  const slash = path.replace(/\/+$/, "").lastIndexOf("/");
  return slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
}

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Checks, before any work, that each of `paths` could be written: it is not a directory, and
 * its directory exists and is writable, or, with `createDirs`, can be created (the nearest
 * existing ancestor is a writable directory). Writes nothing that stays: the probe is a temporary file, removed at
 * once. Throws {@linkcode UsageError} naming `flag` and the path.
 *
 * @example
 * ```ts ignore
 * import { checkOutputPaths } from "./results_io.ts";
 * checkOutputPaths(["out/results.json", "out/report.html"], "--out");
 * ```
 */
export function checkOutputPaths(
  paths: readonly string[],
  flag: string,
  opts: { createDirs?: boolean } = {},
): void {
  const probed = new Set<string>();
  for (const path of paths) {
    const bad = (why: string) => new UsageError(`cannot write ${flag} ${path}: ${why}`);
    if (path === "" || path.endsWith("/")) throw bad("give a file name");
    const why = (e: unknown) =>
      e instanceof Deno.errors.NotADirectory
        ? "a folder on its path is a file, not a directory"
        : (e as Error).message;
    let info: Deno.FileInfo | null;
    try {
      info = statOrNull(path);
    } catch (e) {
      throw bad(why(e));
    }
    if (info && !info.isFile) throw bad("it exists and is not a regular file");
    let dir = parentOf(path);
    for (;;) {
      let d: Deno.FileInfo | null;
      try {
        d = statOrNull(dir);
      } catch (e) {
        throw bad(why(e));
      }
      if (d && !d.isDirectory) throw bad(`${dir} is not a directory`);
      if (d) break;
      if (!opts.createDirs) throw bad(`no directory ${dir}`);
      const up = parentOf(dir);
      if (up === dir) throw bad(`no directory ${dir}`);
      dir = up;
    }
    if (probed.has(dir)) continue;
    try {
      Deno.removeSync(Deno.makeTempFileSync({ dir, prefix: ".attnbench-probe-" }));
    } catch (e) {
      throw bad(`${dir} is not writable (${(e as Error).message})`);
    }
    probed.add(dir);
  }
}

/** Undo steps of the write in progress, run on failure or on SIGINT/SIGTERM. */
const pendingRollbacks = new Set<() => void>();

function onSignal(signal: Deno.Signal, code: number): () => void {
  return () => {
    for (const rollback of pendingRollbacks) rollback();
    pendingRollbacks.clear();
    Deno.stderr.writeSync(
      new TextEncoder().encode(`attnbench: interrupted (${signal}); nothing written\n`),
    );
    Deno.exit(code);
  };
}

const SIGNALS: [Deno.Signal, number][] = [["SIGINT", 130], ["SIGTERM", 143]];

/**
 * Holds SIGINT and SIGTERM while `fn` runs: a signal runs every pending rollback (see
 * {@linkcode writeFileSet}) and exits 130 / 143, so an interrupted command leaves nothing new
 * behind and changes nothing it had not finished. Used around whole commands by the CLI.
 *
 * @example
 * ```ts ignore
 * import { withSignalRollback } from "./results_io.ts";
 * await withSignalRollback(() => writeFileSet([["a.txt", "a"]]));
 * ```
 */
export async function withSignalRollback<T>(fn: () => Promise<T>): Promise<T> {
  if (Deno.build.os === "windows") return await fn();
  const handlers = SIGNALS.map(([sig, code]) => [sig, onSignal(sig, code)] as const);
  for (const [sig, h] of handlers) Deno.addSignalListener(sig, h);
  try {
    return await fn();
  } finally {
    for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
  }
}

/**
 * Writes a set of files all or nothing: every file goes to a temporary beside its target
 * first (missing directories are made only with `createDirs`); only when all are written are they renamed into place (an existing target is kept
 * aside until every rename succeeded). On any failure — or SIGINT/SIGTERM under
 * {@linkcode withSignalRollback} — the targets are restored, the temporaries removed, and
 * directories this call created are removed again: nothing earlier is changed and nothing new
 * is left behind. Throws {@linkcode UsageError} naming the path that failed.
 *
 * @example
 * ```ts ignore
 * import { writeFileSet } from "./results_io.ts";
 * await writeFileSet([["out/results.json", "{}\n"], ["out/report.html", "<!doctype html>"]]);
 * ```
 */
export async function writeFileSet(
  files: readonly (readonly [string, string])[],
  opts: { createDirs?: boolean } = {},
): Promise<void> {
  const stamp = `${Deno.pid}.${Date.now()}`;
  const createdDirs: string[] = [];
  const temps: string[] = [];
  const placed: { target: string; backup: string | null }[] = [];
  let done = false;
  const rollback = () => {
    if (done) return;
    done = true;
    for (const { target, backup } of placed.reverse()) {
      try {
        if (backup) Deno.renameSync(backup, target);
        else Deno.removeSync(target);
      } catch { /* best effort: keep undoing the rest */ }
    }
    for (const t of temps) {
      try {
        Deno.removeSync(t);
      } catch { /* already renamed or never written */ }
    }
    for (const d of createdDirs.reverse()) {
      try {
        Deno.removeSync(d);
      } catch { /* not empty: someone else wrote there */ }
    }
  };
  pendingRollbacks.add(rollback);
  let current = "";
  try {
    for (const [path] of files) {
      current = path;
      const info = statOrNull(path);
      if (info && !info.isFile) throw new Error("it exists and is not a regular file");
      const missing: string[] = [];
      for (let dir = parentOf(path); statOrNull(dir) === null; dir = parentOf(dir)) {
        missing.unshift(dir);
        if (parentOf(dir) === dir) break;
      }
      if (missing.length > 0 && !opts.createDirs) throw new Error(`no directory ${missing[0]}`);
      for (const dir of missing) {
        Deno.mkdirSync(dir);
        createdDirs.push(dir);
      }
    }
    for (const [i, [path, text]] of files.entries()) {
      current = path;
      const slash = path.lastIndexOf("/");
      const tmp = `${parentOf(path)}/.${path.slice(slash + 1)}.${stamp}.${i}.tmp`;
      temps.push(tmp);
      await Deno.writeTextFile(tmp, text);
    }
    for (const [i, [path]] of files.entries()) {
      current = path;
      const backup = statOrNull(path) ? `${temps[i]}.old` : null;
      if (backup) Deno.renameSync(path, backup);
      placed.push({ target: path, backup });
      Deno.renameSync(temps[i]!, path);
    }
    done = true;
    for (const { backup } of placed) {
      if (backup) Deno.removeSync(backup);
    }
  } catch (e) {
    rollback();
    throw new UsageError(`cannot write ${current}: ${(e as Error).message}`);
  } finally {
    pendingRollbacks.delete(rollback);
  }
}
