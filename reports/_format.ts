/**
 * Number, size, date and label formatting shared by the HTML report and the exporters.
 * Private to `reports/`: import from `reports/mod.ts` instead.
 *
 * @module
 */

import type { ResultsFile, RunRecord } from "../core/schema.ts";

/**
 * A number with `sig` significant digits, without trailing zeros or exponent for the usual
 * range (1e-3 ≤ |x| < 1e6).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { fmtNum } from "./_format.ts";
 * assert(fmtNum(1234.5) === "1235" && fmtNum(0.012345) === "0.0123");
 * ```
 */
export function fmtNum(x: number, sig = 3): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e6 || a < 1e-3) return x.toExponential(sig - 1).replace(/\.?0+e/, "e");
  if (a >= 10 ** sig) return Math.round(x).toString();
  return String(Number(x.toPrecision(sig)));
}

/**
 * Milliseconds with a unit that keeps 3 significant digits readable: µs, ms or s.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { fmtMs } from "./_format.ts";
 * assert(fmtMs(0.0123) === "12.3 µs" && fmtMs(1234) === "1.23 s");
 * ```
 */
export function fmtMs(ms: number): string {
  const a = Math.abs(ms);
  if (a > 0 && a < 1) return `${fmtNum(ms * 1e3)} µs`;
  if (a >= 1000) return `${fmtNum(ms / 1e3)} s`;
  return `${fmtNum(ms)} ms`;
}

const SI = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
const IEC = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

function scaled(bytes: number, base: number, units: string[]): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return `${fmtNum(v)} ${units[i]}`;
}

/**
 * Bytes of traffic in decimal units (kB, MB, GB), matching GB/s bandwidths.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { fmtBytes } from "./_format.ts";
 * assert(fmtBytes(69206016) === "69.2 MB");
 * ```
 */
export function fmtBytes(bytes: number): string {
  return scaled(bytes, 1000, SI);
}

/**
 * Bytes of memory capacity in binary units (KiB, MiB, GiB), matching device limits.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { fmtMem } from "./_format.ts";
 * assert(fmtMem(134217728) === "128 MiB");
 * ```
 */
export function fmtMem(bytes: number): string {
  return scaled(bytes, 1024, IEC);
}

/**
 * An ISO timestamp as `YYYY-MM-DD HH:MM UTC`; text that is not a date is returned unchanged.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { fmtDate } from "./_format.ts";
 * assert(fmtDate("2025-11-24T09:41:07.512Z") === "2025-11-24 09:41 UTC");
 * ```
 */
export function fmtDate(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return new Date(t).toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

/**
 * The device's name as a person would say it: description, else vendor and architecture.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { deviceName } from "./_format.ts";
 * import type { DeviceRecord } from "../core/schema.ts";
 * const dev = { description: "", vendor: "mesa", architecture: "" } as DeviceRecord;
 * assert(deviceName(dev) === "mesa");
 * ```
 */
export function deviceName(device: ResultsFile["device"]): string {
  const d = (device.description ?? "").trim();
  if (d !== "") return d;
  const va = [device.vendor, device.architecture].filter((s) => s && s.trim() !== "").join(" ");
  return va !== "" ? va : "unknown device";
}

/**
 * One short label per results file for legends and tables: the caller's label if given, else
 * the device name, with the recording date added when several files share a device (before /
 * after), and `#i` if that is still ambiguous.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { fileLabels } from "./_format.ts";
 * assert(fileLabels([]).length === 0);
 * ```
 */
export function fileLabels(results: ResultsFile[], given: string[] = []): string[] {
  const names = results.map((r) => deviceName(r.device));
  const dup = (list: string[], s: string) => list.filter((x) => x === s).length > 1;
  const base = results.map((r, i) => {
    const g = given[i]?.trim();
    if (g) return g;
    const name = names[i] ?? "";
    return dup(names, name) ? `${name} · ${fmtDate(r.createdAt)}` : name;
  });
  return base.map((b, i) => (dup(base, b) ? `${b} #${i + 1}` : b));
}

/**
 * Tile sizes as `Br×Bc rm tx`, the order the kernels name them.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { fmtTile } from "./_format.ts";
 * assert(fmtTile({ br: 64, bc: 32, rm: 4, tx: 8 }) === "64×32 rm4 tx8");
 * ```
 */
export function fmtTile(t: RunRecord["tile"]): string {
  return `${t.br}×${t.bc} rm${t.rm} tx${t.tx}`;
}

/**
 * Whether a skipped run was skipped because it does not fit the device's memory limits.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { isDoesNotFit } from "./_format.ts";
 * import type { RunRecord } from "../core/schema.ts";
 * const r = { status: "skipped", reason: "does not fit: …" } as RunRecord;
 * assert(isDoesNotFit(r));
 * ```
 */
export function isDoesNotFit(r: RunRecord): boolean {
  return r.status === "skipped" && /does not fit/i.test(r.reason ?? "");
}

/**
 * Whether a run has a usable timing (status ok and a positive median).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { isTimed } from "./_format.ts";
 * import type { RunRecord } from "../core/schema.ts";
 * assert(!isTimed({ status: "failed", timeMs: null } as RunRecord));
 * ```
 */
export function isTimed(
  r: RunRecord,
): r is RunRecord & { timeMs: NonNullable<RunRecord["timeMs"]> } {
  return r.status === "ok" && r.timeMs !== null && typeof r.timeMs === "object" &&
    Number.isFinite(r.timeMs.median) && r.timeMs.median > 0;
}

/** PCI / Vulkan vendor ids of the GPU makers an adapter may report as a number. */
const VENDOR_IDS: Record<number, string> = {
  0x1002: "AMD",
  0x1010: "Imagination",
  0x106b: "Apple",
  0x10de: "NVIDIA",
  0x13b5: "Arm",
  0x14e4: "Broadcom",
  0x5143: "Qualcomm",
  0x8086: "Intel",
  0x10005: "Mesa",
};

/**
 * An adapter's vendor as a person reads it: a name as given, a numeric id (what some drivers
 * report) as `Name (0x…)` when known, else as hex.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { fmtVendor } from "./_format.ts";
 * assert(fmtVendor("65541") === "Mesa (0x10005)" && fmtVendor("nvidia") === "nvidia");
 * assert(fmtVendor("4660") === "0x1234");
 * ```
 */
export function fmtVendor(vendor: string): string {
  const v = vendor.trim();
  if (!/^(\d+|0x[0-9a-f]+)$/i.test(v)) return v;
  const id = Number(v);
  const hex = `0x${id.toString(16)}`;
  const name = VENDOR_IDS[id];
  return name ? `${name} (${hex})` : hex;
}
