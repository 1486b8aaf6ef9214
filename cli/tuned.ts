/**
 * The tuned-tiles file that `attnbench tune` writes and `bench` reads: winners per kernel, dtype
 * and head dim, keyed by the adapter's identity, so one file can hold several GPUs and a tile
 * tuned on one is never used on another.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
import { readInputFile, writeFileAtomic } from "../analysis/results_io.ts";
import { parseJson, validateTuned } from "../analysis/validate.ts";
import { kernelCatalog } from "../kernels/catalog.ts";
import type { DeviceRecord } from "../core/schema.ts";
import type { Dtype, Tiles } from "../core/shapes.ts";
import type { F16Math } from "../kernels/flash/mod.ts";

/** Schema of the tuned-tiles file. */
export const TUNED_SCHEMA = "attnbench/tuned@1";
/** Where `tune` writes and `bench` looks when no path is given. */
export const DEFAULT_TUNED_PATH = "attnbench-tuned.json";

/**
 * The knobs a winner runs with: its tiles (flash's layout `variant` among them) and, where
 * `tune` compared them, the f16 arithmetic and whether the device's subgroups were used.
 */
export interface TunedKnobs {
  tiles: Tiles;
  /** f16 flash and block-sparse: the arithmetic that won (absent: not compared, `"f32"`). */
  f16Math?: F16Math;
  /**
   * false: the portable path won on an adapter with subgroups; true: the subgroup path won or
   * was the same program. Absent: not compared (the device's subgroups are used).
   */
  subgroups?: boolean;
}

/** One winner and how it was chosen. */
export interface TunedEntry extends TunedKnobs {
  medianMs: number;
  n: number;
  batch: number;
  heads: number;
  tunedAt: string;
}

/** The file. */
export interface TunedFile {
  schema: typeof TUNED_SCHEMA;
  adapters: Record<string, { device: DeviceRecord; entries: Record<string, TunedEntry> }>;
}

/**
 * The identity an entry is keyed by: vendor, architecture, description and device id.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { adapterIdentity } from "./tuned.ts";
 * const id = adapterIdentity({ vendor: "nvidia", architecture: "hopper", description: "H100",
 *   device: "0x2330", isFallbackAdapter: false, limits: {}, features: [] });
 * assert(id === "nvidia|hopper|H100|0x2330");
 * ```
 */
export function adapterIdentity(d: DeviceRecord): string {
  return [d.vendor, d.architecture, d.description, d.device].join("|");
}

/**
 * The key of a kernel configuration in the file.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { tunedKey } from "./tuned.ts";
 * assert(tunedKey("flash", "f32", 64) === "flash/f32/d64");
 * ```
 */
export function tunedKey(kernel: string, dtype: Dtype, d: number): string {
  return `${kernel}/${dtype}/d${d}`;
}

/**
 * Reads and validates a tuned-tiles file; null when it is absent and `mustExist` is false.
 *
 * @example
 * ```ts ignore
 * import { readTunedFile } from "./tuned.ts";
 * const file = await readTunedFile("attnbench-tuned.json", false);
 * ```
 */
export async function readTunedFile(path: string, mustExist: boolean): Promise<TunedFile | null> {
  let text: string;
  try {
    text = await readInputFile(path);
  } catch (e) {
    if (!mustExist && e instanceof Deno.errors.NotFound) return null;
    throw new UsageError(`cannot read tuned tiles ${path}: ${(e as Error).message}`);
  }
  return validateTuned(parseJson(text, path), path, kernelCatalog()) as TunedFile;
}

/**
 * Tiles tuned for this adapter, by {@linkcode tunedKey}; null when there are none. `path`
 * undefined means the default file, which may be absent; a given path must exist.
 *
 * @example
 * ```ts ignore
 * import { loadTuned } from "./tuned.ts";
 * const tiles = await loadTuned(undefined, gpu.info);
 * ```
 */
export async function loadTuned(
  path: string | undefined,
  device: DeviceRecord,
): Promise<Record<string, Tiles> | null> {
  return tunedFor(await readTuned(path), device);
}

/**
 * Reads and validates the tuned-tiles file (before any GPU work, so a bad file fails fast);
 * null when `path` is undefined and the default file is absent.
 *
 * @example
 * ```ts ignore
 * import { readTuned, tunedFor } from "./tuned.ts";
 * const file = await readTuned(undefined);
 * const tiles = tunedFor(file, gpu.info);
 * ```
 */
export function readTuned(path: string | undefined): Promise<TunedFile | null> {
  return readTunedFile(path ?? DEFAULT_TUNED_PATH, path !== undefined);
}

/**
 * The tiles a tuned file holds for `device`, by {@linkcode tunedKey}; null when none.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { tunedFor } from "./tuned.ts";
 * assert(tunedFor(null, {} as never) === null);
 * ```
 */
export function tunedFor(
  file: TunedFile | null,
  device: DeviceRecord,
): Record<string, Tiles> | null {
  const knobs = tunedKnobsFor(file, device);
  return knobs && Object.fromEntries(Object.entries(knobs).map(([k, e]) => [k, e.tiles]));
}

/**
 * The knobs (tiles, f16 arithmetic, subgroups) a tuned file holds for `device`, by
 * {@linkcode tunedKey}; null when none. A knob the entry lacks is left out.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { tunedKnobsFor } from "./tuned.ts";
 * assert(tunedKnobsFor(null, {} as never) === null);
 * ```
 */
export function tunedKnobsFor(
  file: TunedFile | null,
  device: DeviceRecord,
): Record<string, TunedKnobs> | null {
  const entries = file?.adapters[adapterIdentity(device)]?.entries;
  if (!entries) return null;
  return Object.fromEntries(
    Object.entries(entries).map(([k, e]) => [k, {
      tiles: e.tiles,
      ...(e.f16Math === undefined ? {} : { f16Math: e.f16Math }),
      ...(e.subgroups === undefined ? {} : { subgroups: e.subgroups }),
    }]),
  );
}

/**
 * Adds winners for `device` to the file at `path` (created when absent), atomically.
 *
 * @example
 * ```ts ignore
 * import { saveTuned } from "./tuned.ts";
 * await saveTuned("attnbench-tuned.json", gpu.info, { "flash/f32/d64": entry });
 * ```
 */
export async function saveTuned(
  path: string,
  device: DeviceRecord,
  entries: Record<string, TunedEntry>,
): Promise<void> {
  const file = (await readTunedFile(path, false)) ??
    { schema: TUNED_SCHEMA, adapters: {} } as TunedFile;
  const id = adapterIdentity(device);
  const slot = file.adapters[id] ?? { device, entries: {} };
  slot.device = device;
  Object.assign(slot.entries, entries);
  file.adapters[id] = slot;
  await writeFileAtomic(path, JSON.stringify(file, null, 2) + "\n");
}
