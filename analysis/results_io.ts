/**
 * Reading and writing results files: validation on the way in, atomic writes on the way out.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import { RESULTS_SCHEMA, type ResultsFile } from "../core/schema.ts";

/**
 * Parses and validates a results file's text. Throws {@linkcode UsageError} (exit 2) when the
 * text is not JSON, is of another schema, or lacks the fields every consumer relies on.
 *
 * @example
 * ```ts
 * import { parseResults } from "./results_io.ts";
 * try { parseResults("{}", "x.json"); } catch (e) { console.assert(e instanceof Error); }
 * ```
 */
export function parseResults(text: string, name: string): ResultsFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${name} is not valid JSON (${(e as Error).message}); is it truncated?`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new UsageError(`${name} is not an attnbench results file (expected a JSON object)`);
  }
  const o = data as Record<string, unknown>;
  if (o.schema !== RESULTS_SCHEMA) {
    throw new UsageError(
      `${name} has schema ${JSON.stringify(o.schema ?? null)}, expected "${RESULTS_SCHEMA}"`,
    );
  }
  if (!Array.isArray(o.runs)) throw new UsageError(`${name} has no "runs" array`);
  if (typeof o.device !== "object" || o.device === null) {
    throw new UsageError(`${name} has no "device" object`);
  }
  o.runs.forEach((r: unknown, i: number) => {
    const run = r as Record<string, unknown>;
    const need: [string, "string" | "number" | "boolean"][] = [
      ["kernel", "string"],
      ["dtype", "string"],
      ["n", "number"],
      ["d", "number"],
      ["batch", "number"],
      ["heads", "number"],
      ["causal", "boolean"],
      ["density", "number"],
      ["status", "string"],
    ];
    for (const [k, t] of need) {
      const actual = typeof run?.[k];
      if (actual !== t) {
        throw new UsageError(`${name}: runs[${i}].${k} is missing or not a ${t}`);
      }
    }
    if (typeof run.tile !== "object" || run.tile === null) {
      throw new UsageError(`${name}: runs[${i}].tile is missing`);
    }
  });
  return data as ResultsFile;
}

/**
 * Reads and validates a results file from disk.
 *
 * @example
 * ```ts ignore
 * import { readResults } from "./results_io.ts";
 * const results = await readResults("out/results.json");
 * ```
 */
export async function readResults(path: string): Promise<ResultsFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseResults(text, path);
}

/**
 * Writes `text` to `path` atomically: a temporary file beside it, then a rename, so a reader
 * never sees half a file and an interrupted run never clobbers the old one.
 *
 * @example
 * ```ts ignore
 * import { writeFileAtomic } from "./results_io.ts";
 * await writeFileAtomic("out/results.json", "{}\n");
 * ```
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash >= 0 ? path.slice(0, slash) : ".";
  const tmp = `${dir}/.${path.slice(slash + 1)}.${Deno.pid}.${Date.now()}.tmp`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new UsageError(`cannot write ${path}: ${(e as Error).message}`);
  }
}
