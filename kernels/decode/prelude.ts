/**
 * The counting prelude the decode kernels were written against (the one every kernel shared
 * before the kernel registry): fixed counter slots, 64 counter words at binding 8, and the
 * storage-type aliases. The registry's kernels now get a generated header from
 * `kernels/program.ts` (`shaderHeader`: bindings and `Params` numbered from one list); decode
 * keeps this prelude, with its hand-numbered bindings, until it becomes a registry entry itself.
 *
 * @module
 */

import type { Dtype } from "../../core/shapes.ts";
import { dtypeBytes } from "../../core/shapes.ts";

/**
 * Counter slots of the counting variant: each global-memory binding has one slot, with reads and
 * writes counted apart. `counters` holds 64 u32: reads lo at [s], reads hi at [16 + s], writes
 * lo at [32 + s], writes hi at [48 + s] (a 64-bit byte count per slot and direction).
 */
export const SLOTS = {
  q: 0,
  k: 1,
  v: 2,
  o: 3,
  lse: 4,
  mask: 5,
  uniform: 6,
  s: 7,
  p: 8,
} as const;

/** Name of a counter slot. */
export type SlotName = keyof typeof SLOTS;

/** Number of u32 words of the counters buffer. */
export const COUNTER_WORDS = 64;

/** The binding the counting variant's counters take in every kernel. */
export const COUNTER_BINDING = 8;

/** Knobs every program shares. */
export interface ProgramBase {
  dtype: Dtype;
  /** Build the counting variant (never timed). */
  count: boolean;
}

/**
 * WGSL lines that define the storage type, the slot constants and the counting helpers.
 *
 * @example
 * ```ts
 * import { commonPrelude } from "./prelude.ts";
 * console.assert(commonPrelude({ dtype: "f32", count: false }).includes("alias T = f32;"));
 * ```
 */
export function commonPrelude(base: ProgramBase): string {
  const t = base.dtype === "f16" ? "f16" : "f32";
  const lines = [
    base.dtype === "f16" ? "enable f16;" : "",
    `alias T = ${t};`,
    `alias T4 = vec4<${t}>;`,
    `const T_BYTES: u32 = ${dtypeBytes(base.dtype)}u;`,
    ...Object.entries(SLOTS).map(([name, slot]) =>
      `const SLOT_${name.toUpperCase()}: u32 = ${slot}u;`
    ),
  ];
  if (base.count) {
    lines.push(
      `@group(0) @binding(${COUNTER_BINDING}) var<storage, read_write> counters: array<atomic<u32>, ${COUNTER_WORDS}>;`,
      "var<private> read_bytes: array<u32, 16>;",
      "var<private> write_bytes: array<u32, 16>;",
      "fn count_read(slot: u32, bytes: u32) { read_bytes[slot] += bytes; }",
      "fn count_write(slot: u32, bytes: u32) { write_bytes[slot] += bytes; }",
      "fn add64(lo: u32, x: u32) {",
      "  let old = atomicAdd(&counters[lo], x);",
      "  if old > 0xffffffffu - x { atomicAdd(&counters[lo + 16u], 1u); }",
      "}",
      "fn count_flush() {",
      "  for (var s = 0u; s < 16u; s++) {",
      "    if read_bytes[s] != 0u { add64(s, read_bytes[s]); }",
      "    if write_bytes[s] != 0u { add64(32u + s, write_bytes[s]); }",
      "  }",
      "}",
    );
  } else {
    lines.push(
      "fn count_read(slot: u32, bytes: u32) {}",
      "fn count_write(slot: u32, bytes: u32) {}",
      "fn count_flush() {}",
    );
  }
  return lines.filter((l) => l !== "").join("\n");
}
