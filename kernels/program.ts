/**
 * Program objects: the generated WGSL header of a pass (storage type, counter slots and helpers,
 * the `Params` struct and every binding, numbered from the pass's binding list), the loop
 * unroller and tile constants the kernels' sources share, and a pipeline cache keyed by a key
 * that holds every knob that changes the source.
 *
 * Shapes (N, B·H, causal, scale) are uniforms, so one compiled pipeline serves every size.
 *
 * @module
 */

import { type Dtype, dtypeBytes, type Tiles } from "../core/shapes.ts";

/** Knobs the generated header of every program depends on. */
export interface HeaderOptions {
  dtype: Dtype;
  /** Build the counting variant (never timed). */
  count: boolean;
  /** Counter slots, in order: `SLOT_<NAME>` is the index of each. */
  slots: readonly string[];
  /** The pass's bound buffers, numbered 1, 2, … in this order (0 is `params`). */
  bindings: readonly { name: string; element: string; access: "read" | "read_write" }[];
  /** Fields of the `Params` uniform struct at binding 0, in order. */
  uniforms: readonly { name: string; type: string }[];
}

/**
 * Number of u32 words of the counters buffer for `slots` counter slots: reads lo at [s], reads
 * hi at [S + s], writes lo at [2S + s], writes hi at [3S + s] (a 64-bit byte count per slot and
 * direction), S = the slot count.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { counterWords } from "./program.ts";
 * assert(counterWords(7) === 28);
 * ```
 */
export function counterWords(slots: number): number {
  return 4 * Math.max(1, slots);
}

/**
 * The generated WGSL header of a program: storage type, slot constants, the counting helpers,
 * `struct Params` and every binding, numbered from the pass's list (params at 0, the buffers
 * at 1, 2, …, the counters after them). Kernel sources never number bindings by hand.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { shaderHeader } from "./program.ts";
 * const h = shaderHeader({
 *   dtype: "f32", count: false, slots: ["q"], uniforms: [{ name: "n", type: "u32" }],
 *   bindings: [{ name: "q", element: "T4", access: "read" }],
 * });
 * assert(h.includes("@group(0) @binding(1) var<storage, read> q: array<T4>;"));
 * assert(h.includes("alias T = f32;") && h.includes("const SLOT_Q: u32 = 0u;"));
 * ```
 */
export function shaderHeader(o: HeaderOptions): string {
  const t = o.dtype === "f16" ? "f16" : "f32";
  const slots = Math.max(1, o.slots.length);
  const words = counterWords(o.slots.length);
  const lines = [
    o.dtype === "f16" ? "enable f16;" : "",
    `alias T = ${t};`,
    `alias T4 = vec4<${t}>;`,
    `const T_BYTES: u32 = ${dtypeBytes(o.dtype)}u;`,
    ...o.slots.map((name, i) => `const SLOT_${name.toUpperCase()}: u32 = ${i}u;`),
    "struct Params {",
    ...o.uniforms.map((u) => `  ${u.name}: ${u.type},`),
    "}",
    "@group(0) @binding(0) var<uniform> params: Params;",
    ...o.bindings.map((b, i) =>
      `@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${b.name}: array<${b.element}>;`
    ),
  ];
  if (o.count) {
    lines.push(
      `@group(0) @binding(${o.bindings.length + 1}) var<storage, read_write> counters: ` +
        `array<atomic<u32>, ${words}>;`,
      `const SLOTS: u32 = ${slots}u;`,
      `var<private> read_bytes: array<u32, ${slots}>;`,
      `var<private> write_bytes: array<u32, ${slots}>;`,
      "fn count_read(slot: u32, bytes: u32) { read_bytes[slot] += bytes; }",
      "fn count_write(slot: u32, bytes: u32) { write_bytes[slot] += bytes; }",
      "fn add64(lo: u32, x: u32) {",
      "  let old = atomicAdd(&counters[lo], x);",
      "  if old > 0xffffffffu - x { atomicAdd(&counters[lo + SLOTS], 1u); }",
      "}",
      "fn count_flush() {",
      "  for (var s = 0u; s < SLOTS; s++) {",
      "    if read_bytes[s] != 0u { add64(s, read_bytes[s]); }",
      "    if write_bytes[s] != 0u { add64(2u * SLOTS + s, write_bytes[s]); }",
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

/** A compiled program: its source and its pipeline. */
export interface CompiledProgram {
  key: string;
  source: string;
  pipeline: GPUComputePipeline;
  /** Wall time of the first creation of this pipeline (WGSL → driver code), in ms. */
  compileMs: number;
}

/**
 * Compiles and caches compute pipelines by key. One cache per device.
 *
 * @example
 * ```ts ignore
 * import { PipelineCache } from "./program.ts";
 * const cache = new PipelineCache(device);
 * const prog = await cache.get("noop", "@compute @workgroup_size(1) fn main() {}");
 * ```
 */
export class PipelineCache {
  #device: GPUDevice;
  #programs = new Map<string, Promise<CompiledProgram>>();

  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /**
   * The pipeline for `key`, compiling `source` (entry point `entryPoint`, default `main`) the
   * first time. Shader errors throw.
   */
  get(key: string, source: string, entryPoint = "main"): Promise<CompiledProgram> {
    let p = this.#programs.get(key);
    if (!p) {
      p = this.#compile(key, source, entryPoint);
      this.#programs.set(key, p);
      p.catch(() => this.#programs.delete(key));
    }
    return p.then((c) => (c.source === source ? c : Promise.reject(
      new Error(`pipeline cache key ${key} reused for a different source`),
    )));
  }

  async #compile(key: string, source: string, entryPoint: string): Promise<CompiledProgram> {
    const device = this.#device;
    device.pushErrorScope("validation");
    const t0 = performance.now();
    const module = device.createShaderModule({ code: source, label: key });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length > 0) {
      await device.popErrorScope();
      throw new Error(
        `WGSL compile error in ${key}: ` +
          errors.map((e) => `${e.lineNum}:${e.linePos} ${e.message}`).join("; "),
      );
    }
    let pipeline: GPUComputePipeline | null = null;
    let failure: unknown = null;
    try {
      pipeline = await device.createComputePipelineAsync({
        label: key,
        layout: "auto",
        compute: { module, entryPoint },
      });
    } catch (e) {
      failure = e;
    }
    const err = await device.popErrorScope();
    if (err) throw new Error(`pipeline ${key}: ${err.message}`);
    if (failure || !pipeline) throw new Error(`pipeline ${key}: ${String(failure)}`);
    return { key, source, pipeline, compileMs: performance.now() - t0 };
  }
}

const caches = new WeakMap<GPUDevice, PipelineCache>();

/**
 * The device's shared pipeline cache: the kernels and the ceiling micro-kernels compile through
 * it, so each pipeline is compiled once per device.
 *
 * @example
 * ```ts ignore
 * import { pipelineCacheFor } from "./program.ts";
 * console.assert(pipelineCacheFor(device) === pipelineCacheFor(device));
 * ```
 */
export function pipelineCacheFor(device: GPUDevice): PipelineCache {
  let cache = caches.get(device);
  if (!cache) {
    cache = new PipelineCache(device);
    caches.set(device, cache);
  }
  return cache;
}

/** Loop bounds that {@linkcode unrollLoops} unrolls: the per-thread register tile sizes. */
export const UNROLLED_BOUNDS = [
  "RM4",
  "RN4",
  "RM",
  "RN",
  "RD4",
  "PFR",
  "CACHE",
  "VEC",
  "D4",
  "BC4",
  "TX",
  "CPL",
  "UT",
  "LOADS_A",
  "LOADS_B",
  "PF",
] as const;

/**
 * Fully unrolls every `for (var x = 0u; x < B; x++) { … }` whose bound B is one of
 * {@linkcode UNROLLED_BOUNDS}, replacing it with one block per iteration that binds
 * `let x = ku;`. The per-thread tiles (`acc`, `s`, `m`, `l`, …) are arrays indexed by these loop
 * counters; once every index is a constant the driver keeps them in registers. Without this,
 * NVIDIA's Vulkan driver compiled naga's loops over them into local-memory traffic and the flash
 * kernel ran at 0.9 TFLOP/s on an H200 (BENCHMARKS.md, v1).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { unrollLoops } from "./program.ts";
 * const out = unrollLoops("for (var i = 0u; i < RM; i++) { a[i] = 0.0; }", { RM: 2 });
 * assert(out === "{ let i = 0u; a[i] = 0.0; }{ let i = 1u; a[i] = 0.0; }");
 * ```
 */
export function unrollLoops(source: string, bounds: Record<string, number>): string {
  const head = new RegExp(
    `for \\(var (\\w+) = 0u; \\1 < (${UNROLLED_BOUNDS.join("|")}); \\1\\+\\+\\) \\{`,
  );
  let out = "";
  let rest = source;
  for (let m = head.exec(rest); m; m = head.exec(rest)) {
    const open = m.index + m[0].length - 1;
    let depth = 0;
    let close = -1;
    for (let i = open; i < rest.length; i++) {
      if (rest[i] === "{") depth++;
      else if (rest[i] === "}" && --depth === 0) {
        close = i;
        break;
      }
    }
    if (close < 0) throw new Error(`unbalanced braces after "${m[0]}"`);
    const count = bounds[m[2]!];
    if (count === undefined) throw new Error(`unroll bound ${m[2]} has no value`);
    const body = unrollLoops(rest.slice(open + 1, close), bounds);
    out += rest.slice(0, m.index);
    for (let k = 0; k < count; k++) out += `{ let ${m[1]} = ${k}u;${body}}`;
    rest = rest.slice(close + 1);
  }
  return out + rest;
}

/**
 * The constants and unroll bounds every tiled program shares (flash, and standard's scores and
 * P·V passes): head dim, tile sizes, per-thread tile sizes and padded workgroup row lengths.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { tileConstants } from "./program.ts";
 * const { lines, bounds } = tileConstants(64, { br: 32, bc: 32, rm: 4, tx: 8 });
 * assert(lines.includes("const RN: u32 = 4u;") && bounds.RD4 === 2);
 * ```
 */
export function tileConstants(
  d: number,
  t: Tiles,
): { lines: string[]; bounds: Record<string, number> } {
  const lines = [
    `const D: u32 = ${d}u;`,
    `const D4: u32 = ${d / 4}u;`,
    `const BR: u32 = ${t.br}u;`,
    `const BC: u32 = ${t.bc}u;`,
    `const RM: u32 = ${t.rm}u;`,
    `const TX: u32 = ${t.tx}u;`,
    `const TY: u32 = ${t.br / t.rm}u;`,
    `const RN: u32 = ${t.bc / t.tx}u;`,
    `const RD4: u32 = ${d / 4 / t.tx}u;`,
    `const WG: u32 = ${t.tx * (t.br / t.rm)}u;`,
    `const D4P: u32 = ${d / 4 + 1}u;`,
    `const BC4: u32 = ${t.bc / 4}u;`,
    `const BC4P: u32 = ${t.bc / 4 + 1}u;`,
  ];
  const bounds = {
    RM: t.rm,
    RN: t.bc / t.tx,
    RD4: d / 4 / t.tx,
    VEC: 4,
    D4: d / 4,
    BC4: t.bc / 4,
    TX: t.tx,
  };
  return { lines, bounds };
}

/**
 * Threads per workgroup of the tiled programs: TX along the columns, BR / RM along the rows.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { tileThreads } from "./program.ts";
 * assert(tileThreads({ br: 32, bc: 32, rm: 4, tx: 8 }) === 64);
 * ```
 */
export function tileThreads(tiles: Tiles): number {
  return tiles.tx * (tiles.br / tiles.rm);
}

/**
 * The vec4s of a BC-row tile of head dim `d` that each thread loads when the workgroup stages it
 * with a strided loop (element t + e·WG): ⌈BC·D4 / WG⌉, e.g. 2 at d = 64 with 64×32 rm 4 tx 16
 * (512 vec4s over 256 threads). Flash's v8 layouts (PF) and the backward's prefetch hold that
 * many vec4s a thread in registers for each prefetched tile.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { tileVec4sPerThread } from "./program.ts";
 * assert(tileVec4sPerThread(64, { br: 64, bc: 32, rm: 4, tx: 16 }) === 2);
 * assert(tileVec4sPerThread(128, { br: 32, bc: 32, rm: 2, tx: 16 }) === 4);
 * ```
 */
export function tileVec4sPerThread(d: number, tiles: Tiles): number {
  return Math.ceil((tiles.bc * d / 4) / tileThreads(tiles));
}

/**
 * Why these tiles cannot build the tiled programs ({@linkcode tileConstants}) at head dim `d`,
 * or null when they can.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { tileStructureProblem } from "./program.ts";
 * assert(tileStructureProblem(64, { br: 32, bc: 32, rm: 4, tx: 8 }) === null);
 * assert(tileStructureProblem(64, { br: 30, bc: 32, rm: 4, tx: 8 }) !== null);
 * ```
 */
export function tileStructureProblem(d: number, t: Tiles): string | null {
  if (t.br % t.rm !== 0) return `br ${t.br} is not a multiple of rm ${t.rm}`;
  if (t.bc % t.tx !== 0) return `bc ${t.bc} is not a multiple of tx ${t.tx}`;
  if (d % (4 * t.tx) !== 0) return `head dim ${d} is not a multiple of 4·tx = ${4 * t.tx}`;
  if (t.bc % 4 !== 0) return `bc ${t.bc} is not a multiple of 4`;
  return null;
}
