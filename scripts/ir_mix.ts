// Static instruction mix of the flash kernels' hot loop, from the SPIR-V that Deno's wgpu (naga)
// makes of our WGSL (docs/analysis/flash_inner_loop.md uses its output).
//
//   deno run -A scripts/ir_mix.ts [--lavapipe /tmp/attnbench-lavapipe] [--keep DIR] [--json]
//     [--only NAME,…]
//
// What it does:
// 1. Builds the full WGSL of each configuration below (the registry's plan and passProgram, the
//    source the tool compiles, header included) at a tiny shape: only compilation matters.
// 2. Compiles each one through Deno's WebGPU on Mesa's lavapipe (Vulkan), with a wrapper ICD
//    (scripts/spirv_dump_icd.c, built here with gcc) between the Vulkan loader and lavapipe
//    that writes every vkCreateShaderModule's SPIR-V to a file. Lavapipe's NIR would be better
//    (after its unrolling and CSE) but Debian's Mesa 22.3 is a release build: NIR_DEBUG,
//    LP_DEBUG and GALLIVM_DEBUG are compiled out. So the SPIR-V is run through `spirv-opt -O`
//    (Debian's spirv-tools: inlining, scalar replacement of the per-thread arrays, CSE, dead
//    code), which stands in for the driver's own first optimisations.
// 3. Finds the key-block loop (the loop holding the barriers), splits one iteration into
//    phases at its barriers and counts, per thread and per iteration: floating-point
//    instructions and lanes by kind, workgroup-memory loads and stores by width and array,
//    global loads, barriers, integer and other instructions. Nested loops (tile staging) are
//    counted per trip and times their trip count (bound / threads, from the loop's compare).
// 4. For every workgroup-memory load or store whose index depends only on the thread index,
//    evaluates the address for the 32 lanes of warp 0 and counts 128-byte wavefronts: the most
//    distinct 4-byte words any of the 32 banks must serve (NVIDIA's shared-memory model: 32
//    banks of 4 bytes, one wavefront a clock per SM; the same rule BENCHMARKS.md's hand count
//    uses).
// 5. The most 32-bit values live at once per phase (a floor for the registers a thread needs),
//    then an estimate of the SASS-level warp instructions (see `derive`) and upper bounds on the
//    FMA rate from each SM resource alone (see `bounds`).
// Needs gcc, spirv-tools (spirv-dis, spirv-opt) and lavapipe unpacked as .ci/run does it.
// Prints a markdown table per configuration (or JSON with --json); --keep DIR keeps the WGSL,
// SPIR-V (.spv, .spvasm, .opt.spvasm) and the dump ICD there. --child and --dumps are the
// script's own: it re-runs itself with them under the dump ICD to compile.
import { parseArgs } from "@std/cli/parse-args";
import { passProgram } from "../kernels/attention.ts";
import { planFor } from "../kernels/registry.ts";
import type { AttentionShape, Tiles, TileVariant } from "../core/shapes.ts";

/** One kernel configuration to compile: the H200's tiles. */
interface Config {
  name: string;
  kernel: string;
  pass: string;
  d: number;
  tiles: Tiles;
}

const CONFIGS: Config[] = [
  { name: "fwd-v7", kernel: "flash", pass: "flash", d: 64, tiles: t(64, 32, 4, 16, "v7") },
  { name: "fwd-v5", kernel: "flash", pass: "flash", d: 64, tiles: t(64, 32, 4, 16) },
  { name: "bwd-dkdv", kernel: "flash-bwd", pass: "dkdv", d: 64, tiles: t(32, 32, 2, 16) },
  { name: "bwd-dq", kernel: "flash-bwd", pass: "dq", d: 64, tiles: t(32, 32, 2, 16) },
  // v7 with the next key block's K and V (v8), K only (v8k) or V only (v8v) prefetched into
  // registers, or the next K and the current block's V at its start (v8e;
  // docs/analysis/v8_prefetch.md).
  { name: "fwd-v8", kernel: "flash", pass: "flash", d: 64, tiles: t(64, 32, 4, 16, "v8") },
  { name: "fwd-v8k", kernel: "flash", pass: "flash", d: 64, tiles: t(64, 32, 4, 16, "v8k") },
  { name: "fwd-v8v", kernel: "flash", pass: "flash", d: 64, tiles: t(64, 32, 4, 16, "v8v") },
  { name: "fwd-v8e", kernel: "flash", pass: "flash", d: 64, tiles: t(64, 32, 4, 16, "v8e") },
  { name: "fwd128-v7", kernel: "flash", pass: "flash", d: 128, tiles: t(32, 32, 2, 16, "v7") },
  { name: "fwd128-v8", kernel: "flash", pass: "flash", d: 128, tiles: t(32, 32, 2, 16, "v8") },
  { name: "fwd128-v8e", kernel: "flash", pass: "flash", d: 128, tiles: t(32, 32, 2, 16, "v8e") },
];

function t(br: number, bc: number, rm: number, tx: number, variant?: TileVariant): Tiles {
  return { br, bc, rm, tx, ...(variant ? { variant } : {}) };
}

/** The WGSL the tool compiles for a configuration's pass. */
function wgslOf(c: Config): string {
  const shape: AttentionShape = { batch: 1, heads: 1, n: 100, d: c.d, dtype: "f32", causal: false };
  const plan = planFor(c.kernel, { shape, tiles: c.tiles });
  const pass = plan.passes().find((p) => p.name === c.pass);
  if (!pass) {
    throw new Error(`${c.kernel} has no pass ${c.pass}: ${plan.passes().map((p) => p.name)}`);
  }
  return passProgram(plan, pass, false).source;
}

async function sh(cmd: string, args: string[], env?: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

// ---- child: compile the sources in DIR/jobs.json on the Vulkan adapter, note the new modules.

async function child(dir: string, dumps: string): Promise<void> {
  const jobs: string[] = JSON.parse(await Deno.readTextFile(`${dir}/jobs.json`));
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error("no adapter");
  const device = await adapter.requestDevice();
  const files = () => new Set([...Deno.readDirSync(dumps)].map((e) => e.name));
  const map: Record<string, string[]> = {};
  for (const job of jobs) {
    const before = files();
    const code = await Deno.readTextFile(`${dir}/${job}.wgsl`);
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code, label: job });
    await device.createComputePipelineAsync({
      layout: "auto",
      compute: { module, entryPoint: "main" },
    });
    const err = await device.popErrorScope();
    if (err) throw new Error(`${job}: ${err.message}`);
    map[job] = [...files()].filter((f) => !before.has(f));
  }
  await Deno.writeTextFile(`${dir}/map.json`, JSON.stringify(map));
  device.destroy();
}

// ---- SPIR-V text parsing.

interface Inst {
  id: string | null;
  op: string;
  args: string[];
}

function parse(text: string): Inst[] {
  const out: Inst[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/;.*$/, "").trim();
    if (!line) continue;
    const m = line.match(/^(%\S+)\s*=\s*(Op\w+)\s*(.*)$/) ?? line.match(/^()(Op\w+)\s*(.*)$/);
    if (!m) continue;
    const args = m[3]!.match(/"[^"]*"|\S+/g) ?? [];
    out.push({ id: m[1] || null, op: m[2]!, args });
  }
  return out;
}

interface TypeInfo {
  kind: "float" | "int" | "bool" | "vector" | "array" | "pointer" | "struct" | "other";
  comps: number; // vector components (1 for scalars)
  bytes: number; // size for address arithmetic (workgroup arrays are tightly packed)
  elem?: string; // vector/array element, pointer pointee
  len?: number; // array length
  storage?: string; // pointer storage class
  members?: string[];
}

/** A module's types, constants, value types and the entry point's instructions, inlined. */
class Module {
  types = new Map<string, TypeInfo>();
  consts = new Map<string, number>();
  valueType = new Map<string, string>();
  vars = new Map<string, { type: string; storage: string; builtin?: string }>();
  body: Inst[] = [];
  names = new Map<string, string>();

  constructor(insts: Inst[]) {
    const builtins = new Map<string, string>();
    for (const i of insts) {
      if (i.op === "OpDecorate" && i.args[1] === "BuiltIn") builtins.set(i.args[0]!, i.args[2]!);
    }
    let inFn = false;
    let fnCount = 0;
    for (const i of insts) {
      const id = i.id ?? "";
      switch (i.op) {
        case "OpTypeFloat":
          this.types.set(id, { kind: "float", comps: 1, bytes: Number(i.args[0]) / 8 });
          break;
        case "OpTypeInt":
          this.types.set(id, { kind: "int", comps: 1, bytes: Number(i.args[0]) / 8 });
          break;
        case "OpTypeBool":
          this.types.set(id, { kind: "bool", comps: 1, bytes: 4 });
          break;
        case "OpTypeVector": {
          const e = this.types.get(i.args[0]!)!;
          const n = Number(i.args[1]);
          this.types.set(id, { kind: "vector", comps: n, bytes: e.bytes * n, elem: i.args[0] });
          break;
        }
        case "OpTypeArray": {
          const e = this.types.get(i.args[0]!)!;
          const n = this.consts.get(i.args[1]!)!;
          this.types.set(id, {
            kind: "array",
            comps: 1,
            bytes: e.bytes * n,
            elem: i.args[0],
            len: n,
          });
          break;
        }
        case "OpTypeRuntimeArray":
          this.types.set(id, { kind: "array", comps: 1, bytes: 0, elem: i.args[0], len: 0 });
          break;
        case "OpTypeStruct":
          this.types.set(id, { kind: "struct", comps: 1, bytes: 0, members: i.args });
          break;
        case "OpTypePointer":
          this.types.set(id, {
            kind: "pointer",
            comps: 1,
            bytes: 8,
            storage: i.args[0],
            elem: i.args[1],
          });
          break;
        case "OpConstant":
          this.consts.set(id, Number(i.args[1]));
          this.valueType.set(id, i.args[0]!);
          break;
        case "OpVariable":
          if (!inFn) {
            this.vars.set(id, { type: i.args[0]!, storage: i.args[1]!, builtin: builtins.get(id) });
          }
          this.valueType.set(id, i.args[0]!);
          break;
        case "OpFunction":
          inFn = true;
          fnCount++;
          break;
        case "OpFunctionEnd":
          inFn = false;
          break;
        default:
          if (id && i.args[0]) this.valueType.set(id, i.args[0]);
      }
      if (inFn && fnCount === 1 && i.op !== "OpFunction") this.body.push(i);
      if (i.op === "OpFunctionCall") throw new Error("the entry point still calls functions");
    }
    if (fnCount !== 1) throw new Error(`expected one function after spirv-opt -O, got ${fnCount}`);
  }

  pointee(ptrValue: string): { storage: string; type: string } | null {
    const pt = this.types.get(this.valueType.get(ptrValue) ?? "");
    return pt?.kind === "pointer" ? { storage: pt.storage!, type: pt.elem! } : null;
  }

  comps(value: string): number {
    return this.types.get(this.valueType.get(value) ?? "")?.comps ?? 1;
  }
}

// ---- The hot loop and its phases.

interface Counts {
  [k: string]: number;
}

function add(c: Counts, k: string, v = 1) {
  c[k] = (c[k] ?? 0) + v;
}

const FP_OPS = new Set([
  "OpFAdd",
  "OpFSub",
  "OpFMul",
  "OpFDiv",
  "OpFNegate",
  "OpDot",
  "OpVectorTimesScalar",
]);
const INT_OPS = new Set([
  "OpIAdd",
  "OpISub",
  "OpIMul",
  "OpUDiv",
  "OpSDiv",
  "OpUMod",
  "OpSMod",
  "OpShiftLeftLogical",
  "OpShiftRightLogical",
  "OpShiftRightArithmetic",
  "OpBitwiseAnd",
  "OpBitwiseOr",
  "OpBitwiseXor",
]);
const CMP_OPS =
  /^Op(F(Ord|Unord)|U|S|I)(LessThan|GreaterThan|LessThanEqual|GreaterThanEqual|Equal|NotEqual)$|^OpLogical|^OpSelect$|^OpAny$|^OpAll$/;
const FREE_OPS = new Set([
  "OpAccessChain",
  "OpInBoundsAccessChain",
  "OpCompositeExtract",
  "OpCompositeConstruct",
  "OpCompositeInsert",
  "OpVectorShuffle",
  "OpCopyObject",
  "OpBitcast",
  "OpLabel",
  "OpBranch",
  "OpBranchConditional",
  "OpSelectionMerge",
  "OpLoopMerge",
  "OpPhi",
  "OpReturn",
  "OpUnreachable",
]);

interface Access {
  array: string;
  /** Executions per iteration of the key-block loop: 1, or a staging loop's trip count. */
  weight: number;
  bytes: number; // per lane
  store: boolean;
  wavefronts: number | null; // per warp instruction; null: index not known per lane
}

/** Per-lane integer values of the SSA ids that depend only on the thread index. */
class LaneEval {
  vals = new Map<string, number[] | null>();
  constructor(private m: Module, private warp: number) {}

  get(id: string): number[] | null {
    if (this.vals.has(id)) return this.vals.get(id)!;
    const c = this.m.consts.get(id);
    if (c !== undefined) return new Array(32).fill(c);
    return null;
  }

  visit(i: Inst) {
    if (!i.id) return;
    const a = i.args;
    const lanes = (f: (x: number[]) => number) => {
      const ins = a.slice(1).map((x) => this.get(x));
      if (ins.some((x) => x === null)) return null;
      return Array.from({ length: 32 }, (_, l) => f(ins.map((x) => x![l]!)) >>> 0);
    };
    let r: number[] | null = null;
    switch (i.op) {
      case "OpLoad": {
        const v = this.m.vars.get(a[1]!);
        if (v?.builtin === "LocalInvocationIndex") {
          r = Array.from({ length: 32 }, (_, l) => this.warp * 32 + l);
        } else if (v?.builtin === "LocalInvocationId") {
          r = null; // vector; handled through CompositeExtract below
          this.vals.set(i.id, null);
          this.vecLid.add(i.id);
          return;
        }
        break;
      }
      case "OpCompositeExtract":
        if (this.vecLid.has(a[1]!) && a[2] === "0") {
          r = Array.from({ length: 32 }, (_, l) => this.warp * 32 + l);
        }
        break;
      case "OpIAdd":
        r = lanes(([x, y]) => x! + y!);
        break;
      case "OpISub":
        r = lanes(([x, y]) => x! - y!);
        break;
      case "OpIMul":
        r = lanes(([x, y]) => Math.imul(x!, y!));
        break;
      case "OpUDiv":
        r = lanes(([x, y]) => Math.floor(x! / y!));
        break;
      case "OpUMod":
        r = lanes(([x, y]) => x! % y!);
        break;
      case "OpShiftLeftLogical":
        r = lanes(([x, y]) => x! << y!);
        break;
      case "OpShiftRightLogical":
        r = lanes(([x, y]) => x! >>> y!);
        break;
      case "OpBitwiseAnd":
        r = lanes(([x, y]) => x! & y!);
        break;
      case "OpBitwiseOr":
        r = lanes(([x, y]) => x! | y!);
        break;
      case "OpPhi": {
        // The first incoming value known per lane: a loop's value on entry (its first trip).
        for (let k = 1; k < a.length; k += 2) {
          const v = this.get(a[k]!);
          if (v) {
            r = v;
            break;
          }
        }
        break;
      }
      case "OpCopyObject":
      case "OpBitcast":
        r = lanes(([x]) => x!);
        break;
      case "OpExtInst": {
        const fn = a[2];
        const ins = a.slice(3).map((x) => this.get(x));
        if (ins.every((x) => x !== null) && (fn === "UMin" || fn === "UMax")) {
          const f = fn === "UMin" ? Math.min : Math.max;
          r = Array.from({ length: 32 }, (_, l) => f(...ins.map((x) => x![l]!)));
        }
        break;
      }
    }
    this.vals.set(i.id, r);
  }
  vecLid = new Set<string>();

  /** Byte offsets per lane of an access chain into a workgroup variable, or null. */
  offsets(chain: Inst): { root: string; offs: number[] } | null {
    const base = chain.args[1]!;
    const v = this.m.vars.get(base);
    if (!v || v.storage !== "Workgroup") return null;
    let type = this.m.types.get(v.type)!.elem!;
    const offs = new Array(32).fill(0);
    for (const idx of chain.args.slice(2)) {
      const ti = this.m.types.get(type)!;
      const lanes = this.get(idx);
      if (!lanes) return null;
      const elem = ti.kind === "struct" ? ti.members![lanes[0]!]! : ti.elem!;
      const size = this.m.types.get(elem)!.bytes;
      for (let l = 0; l < 32; l++) offs[l] += lanes[l]! * size;
      type = elem;
    }
    return { root: base, offs };
  }
}

/** 128-byte wavefronts of one warp access: the most distinct words any of 32 banks serves. */
function wavefronts(offs: number[], bytes: number): number {
  const banks = new Map<number, Set<number>>();
  for (const o of offs) {
    for (let w = 0; w < Math.max(1, bytes / 4); w++) {
      const word = o / 4 + w;
      const b = word % 32;
      if (!banks.has(b)) banks.set(b, new Set());
      banks.get(b)!.add(word);
    }
  }
  return Math.max(...[...banks.values()].map((s) => s.size));
}

interface Phase {
  counts: Counts;
  accesses: Access[];
}

interface Analysis {
  name: string;
  wgRoots: Record<string, string>; // workgroup variable id -> type description
  phases: Phase[];
  nested: { phase: number; trips: number; counts: Counts }[];
  /** Most 32-bit values live at once in the loop body, per phase (a register-count floor). */
  live: number[];
}

/**
 * 32-bit values live at each instruction of the key-block loop, from def-use intervals over its
 * instructions in order: a value defined before the loop or at its header (a phi) and used
 * inside is live throughout, one defined inside from its definition to its last use (a use in a
 * nested loop holds it to that loop's end). Pointers, booleans and constants take none (address
 * arithmetic and predicates are left out). A floor for the registers the driver needs, before
 * any rematerialisation or reuse it might find.
 */
function liveness(
  m: Module,
  body: Inst[],
  hot: { start: number; end: number },
  inner: { start: number; end: number }[],
  phaseOf: number[],
): number[] {
  const words = (id: string) => {
    const ti = m.types.get(m.valueType.get(id) ?? "");
    if (!ti || ti.kind === "pointer" || ti.kind === "bool") return 0;
    if (ti.kind === "vector" && m.types.get(ti.elem!)?.kind === "bool") return 0;
    return ti.kind === "vector" ? ti.comps : ti.kind === "float" || ti.kind === "int" ? 1 : 0;
  };
  const def = new Map<string, number>();
  body.forEach((i, k) => {
    if (i.id) def.set(i.id, k);
  });
  const lastUse = new Map<string, number>();
  for (let k = hot.start; k < hot.end; k++) {
    const i = body[k]!;
    const loop = inner.find((l) => k >= l.start && k < l.end);
    for (const a of i.args) {
      if (!def.has(a)) continue;
      lastUse.set(a, Math.max(lastUse.get(a) ?? 0, loop ? loop.end : k));
    }
  }
  const delta = new Array(hot.end - hot.start + 1).fill(0);
  let always = 0;
  for (const [id, last] of lastUse) {
    const w = words(id);
    if (!w) continue;
    const d = def.get(id)!;
    const phi = body[d]!.op === "OpPhi" && d < hot.start + 8;
    if (d < hot.start || phi) always += w;
    else {
      delta[d - hot.start] += w;
      delta[last - hot.start + 1] -= w;
    }
  }
  const most = new Array(Math.max(...phaseOf) + 1).fill(0);
  let cur = always;
  for (let k = hot.start; k < hot.end; k++) {
    cur += delta[k - hot.start];
    const p = phaseOf[k - hot.start]!;
    most[p] = Math.max(most[p], cur);
  }
  return most;
}

function typeText(m: Module, id: string): string {
  const ti = m.types.get(id)!;
  if (ti.kind === "array") return `${typeText(m, ti.elem!)}[${ti.len}]`;
  if (ti.kind === "vector") return `vec${ti.comps}`;
  return ti.kind === "float" ? "f32" : ti.kind === "int" ? "u32" : ti.kind;
}

function analyse(name: string, m: Module, wg: number): Analysis {
  const body = m.body;
  // Blocks in order; loops from OpLoopMerge to their merge label (structured order).
  const labelAt = new Map<string, number>();
  body.forEach((i, k) => {
    if (i.op === "OpLabel") labelAt.set(i.id!, k);
  });
  const loops: { start: number; end: number }[] = [];
  body.forEach((i, k) => {
    if (i.op !== "OpLoopMerge") return;
    let s = k;
    while (body[s]!.op !== "OpLabel") s--;
    loops.push({ start: s, end: labelAt.get(i.args[0]!)! });
  });
  const barriersIn = (l: { start: number; end: number }) =>
    body.slice(l.start, l.end).filter((i) => i.op === "OpControlBarrier").length;
  const hot =
    loops.filter((l) => barriersIn(l) > 0).sort((x, y) =>
      barriersIn(y) - barriersIn(x) || (x.end - x.start) - (y.end - y.start)
    )[0];
  if (!hot) throw new Error(`${name}: no loop with a barrier`);
  const inner = loops.filter((l) => l.start > hot.start && l.end <= hot.end);
  const innerOf = (k: number) => inner.find((l) => k >= l.start && k < l.end) ?? null;

  const ev = new LaneEval(m, 0);
  for (const i of body.slice(0, hot.end)) ev.visit(i);
  const chains = new Map<string, Inst>();
  for (const i of body) {
    if (i.id && (i.op === "OpAccessChain" || i.op === "OpInBoundsAccessChain")) chains.set(i.id, i);
  }

  const wgRoots: Record<string, string> = {};
  for (const [id, v] of m.vars) {
    if (v.storage === "Workgroup") wgRoots[id] = typeText(m, m.types.get(v.type)!.elem!);
  }

  // Trip count of a nested staging loop: `idx < BOUND` with idx stepping by the workgroup size.
  const trips = new Map(inner.map((l) => {
    const cmp = body.slice(l.start, l.end).find((i) =>
      /LessThan$/.test(i.op) && i.args.slice(1).some((x) => m.consts.has(x))
    );
    const bound = cmp ? m.consts.get(cmp.args.slice(1).find((x) => m.consts.has(x))!)! : NaN;
    return [l, bound / wg];
  }));
  const phases: Phase[] = [{ counts: {}, accesses: [] }];
  const nestedCounts = new Map<object, Counts>();
  const nestedPhase = new Map<object, number>();
  for (let k = hot.start; k < hot.end; k++) {
    const i = body[k]!;
    if (i.op === "OpControlBarrier") {
      add(phases[phases.length - 1]!.counts, "barrier");
      phases.push({ counts: {}, accesses: [] });
      continue;
    }
    const loop = innerOf(k);
    const phase = phases[phases.length - 1]!;
    let c = phase.counts;
    if (loop) {
      if (!nestedCounts.has(loop)) {
        nestedCounts.set(loop, {});
        nestedPhase.set(loop, phases.length - 1);
      }
      c = nestedCounts.get(loop)!;
    }
    classify(m, i, c, loop ? trips.get(loop)! : 1, (acc) => phase.accesses.push(acc), chains, ev);
  }
  const nested = inner.filter((l) => nestedCounts.has(l)).map((l) => ({
    phase: nestedPhase.get(l)!,
    trips: trips.get(l)!,
    counts: nestedCounts.get(l)!,
  }));
  const phaseOf: number[] = [];
  let ph = 0;
  for (let k = hot.start; k < hot.end; k++) {
    phaseOf.push(ph);
    if (body[k]!.op === "OpControlBarrier") ph++;
  }
  return { name, wgRoots, phases, nested, live: liveness(m, body, hot, inner, phaseOf) };
}

function classify(
  m: Module,
  i: Inst,
  c: Counts,
  weight: number,
  onAccess: (a: Access) => void,
  chains: Map<string, Inst>,
  ev: LaneEval,
) {
  if (i.op === "OpLoad" || i.op === "OpStore") {
    const ptr = i.op === "OpLoad" ? i.args[1]! : i.args[0]!;
    const p = m.pointee(ptr);
    const store = i.op === "OpStore";
    const ti = p ? m.types.get(p.type)! : null;
    const bytes = ti ? ti.bytes : 0;
    const where = p?.storage ?? "?";
    const kind = where === "Workgroup"
      ? "shared"
      : where === "StorageBuffer"
      ? "global"
      : where === "Uniform"
      ? "uniform"
      : where.toLowerCase();
    add(c, `${kind} ${store ? "store" : "load"} ${bytes * 8}b`);
    if (kind === "shared") {
      const chain = chains.get(ptr);
      const o = chain ? ev.offsets(chain) : null;
      onAccess({
        array: chain?.args[1] ?? ptr,
        weight,
        bytes,
        store,
        wavefronts: o ? wavefronts(o.offs, bytes) : null,
      });
    }
    return;
  }
  ev.visit(i);
  if (FP_OPS.has(i.op)) {
    const comps = i.op === "OpDot" ? m.comps(i.args[2]!) : m.comps(i.id!);
    const name = i.op === "OpDot"
      ? `dot${comps}`
      : `${i.op.slice(2)}${comps > 1 ? ` vec${comps}` : ""}`;
    add(c, `fp ${name}`);
    return;
  }
  if (i.op === "OpExtInst") {
    const fn = i.args[2]!;
    const comps = m.comps(i.id!);
    add(c, `${/^[US]/.test(fn) ? "int" : "fp"} ${fn}${comps > 1 ? ` vec${comps}` : ""}`);
    return;
  }
  if (INT_OPS.has(i.op)) {
    add(c, `int ${i.op.slice(2)}`);
    return;
  }
  if (CMP_OPS.test(i.op)) {
    add(c, `cmp/select ${i.op.slice(2)}${m.comps(i.id!) > 1 ? " vec" : ""}`);
    return;
  }
  if (i.op === "OpConvertUToF" || i.op === "OpConvertFToU" || i.op === "OpConvertSToF") {
    add(c, `cvt ${i.op.slice(2)}`);
    return;
  }
  if (FREE_OPS.has(i.op)) {
    add(c, `(free) ${i.op.slice(2)}`);
    return;
  }
  add(c, `other ${i.op.slice(2)}`);
}

// ---- Derived figures.

/** Lanes of a count key ("fp FAdd vec4" → 4). */
function lanesOf(k: string): number {
  return Number(k.match(/vec(\d)/)?.[1] ?? 1);
}

/**
 * Warp instructions per thread and key block, estimated at the SASS level from the counts:
 * FP32 arithmetic one instruction a lane (a vec4 add is 4 FADD), each multiply fused with the
 * add that consumes it (SPIR-V allows contraction). `dot4` then `+=`: `fold` counts 4 FFMA (the
 * add folded into the chain, which reassociates), else FMUL + 3 FFMA + FADD (5). Shared and
 * global loads and stores one each whatever their width (LDS.128 is one instruction), integer
 * and compare/select ops one a lane, exp2 one MUFU, a conditional branch one, barriers one.
 */
function derive(c: Counts, fold: boolean) {
  let dotLanes = 0;
  let dots = 0;
  let mul = 0;
  let addl = 0;
  let fpOther = 0;
  let mufu = 0;
  let shared = 0;
  let global = 0;
  let int = 0;
  let cmp = 0;
  let misc = 0;
  for (const [k, v] of Object.entries(c)) {
    const n = lanesOf(k);
    if (k.startsWith("fp dot")) {
      dots += v;
      dotLanes += v * Number(k.slice(6));
    } else if (/^fp (FMul|VectorTimesScalar)/.test(k)) mul += v * n;
    else if (/^fp (FAdd|FSub)/.test(k)) addl += v * n;
    else if (/^fp Exp2/.test(k)) mufu += v * n;
    else if (k.startsWith("fp ")) fpOther += v * n;
    else if (k.startsWith("shared")) shared += v;
    else if (k.startsWith("global") || k.startsWith("uniform")) global += v;
    else if (k.startsWith("int ")) int += v * n;
    else if (k.startsWith("cmp/select")) cmp += v * n;
    else if (
      k === "(free) BranchConditional" || k === "barrier" || k.startsWith("cvt") ||
      k.startsWith("other")
    ) {
      misc += v;
    }
  }
  // Adds that take a dot's result: folded into its FFMA chain, or left as FADDs.
  const addsLeft = Math.max(0, addl - dots);
  const fused = Math.min(mul, addsLeft);
  const fpFold = dotLanes + (mul - fused) + addsLeft + fpOther;
  const fp = fold ? fpFold : fpFold + Math.min(dots, addl);
  return {
    fp,
    mufu,
    shared,
    global,
    int,
    cmp,
    misc,
    issued: fp + mufu + shared + global + int + cmp + misc,
  };
}

/** Useful FMAs a thread does per key block: products · RM · BC · D / TX. */
function usefulFma(cfg: Config): number {
  const products = { flash: 2, dkdv: 4, dq: 3 }[cfg.pass] ?? NaN;
  return products * cfg.tiles.rm * cfg.tiles.bc * cfg.d / cfg.tiles.tx;
}

/**
 * Upper bounds on the FMA rate, as fractions of the SM's FFMA peak (4 warp-FFMA a clock), from
 * one resource at a time, everything else overlapping perfectly: the four schedulers' issue
 * slots (1 warp instruction a clock each), the FP32 pipe (4 warp instructions a clock, FADD and
 * FMUL included), shared memory (1 wavefront a clock), the MUFU (16 lanes a clock: a warp
 * instruction every 2 clocks) and the INT32 units (64 lanes a clock: 2 warp instructions a
 * clock). Sources in docs/analysis/flash_inner_loop.md.
 */
function bounds(useful: number, d: ReturnType<typeof derive>, wavefronts: number) {
  const fmaClocks = useful / 4;
  const clocks = {
    issue: d.issued / 4,
    fp32: d.fp / 4,
    shared: wavefronts,
    mufu: d.mufu * 2,
    int: (d.int + d.cmp) / 2,
  };
  const frac = Object.fromEntries(
    Object.entries(clocks).map(([k, v]) => [k, Math.min(1, fmaClocks / v)]),
  ) as Record<keyof typeof clocks, number>;
  return { fmaClocks, clocks, frac, bound: Math.min(...Object.values(frac)) };
}

function report(a: Analysis, cfg: Config, raw: number, opt: number): string {
  const lines: string[] = [];
  const tl = cfg.tiles;
  lines.push(
    `### ${a.name}: ${cfg.kernel} ${cfg.pass}, d ${cfg.d}, ${tl.br}x${tl.bc} rm ${tl.rm} tx ${tl.tx}${
      tl.variant ?? ""
    }`,
    "",
    `SPIR-V: ${raw} instructions from naga, ${opt} after spirv-opt -O. Workgroup arrays: ${
      Object.entries(a.wgRoots).map(([id, ty]) => `${id} ${ty}`).join(", ")
    }. Phases are the parts of one key-block iteration between its barriers.`,
    "",
  );
  const keys = new Set<string>();
  const all = a.phases.map((p) => ({ ...p.counts }));
  for (const n of a.nested) {
    for (const [k, v] of Object.entries(n.counts)) add(all[n.phase]!, `${k}`, v * n.trips);
  }
  for (const c of all) for (const k of Object.keys(c)) keys.add(k);
  const order = [...keys].filter((k) => !k.startsWith("(free)") || k === "(free) BranchConditional")
    .sort();
  const total: Counts = {};
  for (const c of all) for (const [k, v] of Object.entries(c)) add(total, k, v);
  lines.push(
    `| per thread, one key block | ${
      a.phases.map((_, k) => `phase ${k + 1}`).join(" | ")
    } | total |`,
    `| --- | ${a.phases.map(() => "---").join(" | ")} | --- |`,
  );
  const fmt = (x: number | undefined) =>
    x === undefined ? "" : Number.isInteger(x) ? `${x}` : x.toFixed(2);
  for (const k of order) {
    lines.push(`| ${k} | ${all.map((c) => fmt(c[k])).join(" | ")} | ${fmt(total[k])} |`);
  }
  const waves = a.phases.map((p) =>
    p.accesses.reduce((s, x) => s + x.weight * (x.wavefronts ?? NaN), 0)
  );
  const wavesTotal = waves.reduce((x, y) => x + y, 0);
  const dFold = all.map((c) => derive(c, true));
  const dNo = all.map((c) => derive(c, false));
  const row = (label: string, xs: number[], tot: number) =>
    lines.push(`| **${label}** | ${xs.map(fmt).join(" | ")} | **${fmt(tot)}** |`);
  const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
  row("est. FP32 warp instr. (dot folded)", dFold.map((x) => x.fp), sum(dFold.map((x) => x.fp)));
  row("est. FP32 warp instr. (dot + FADD)", dNo.map((x) => x.fp), sum(dNo.map((x) => x.fp)));
  row(
    "est. issued warp instr. (dot + FADD)",
    dNo.map((x) => x.issued),
    sum(dNo.map((x) => x.issued)),
  );
  row("shared wavefronts per warp", waves, wavesTotal);
  row("most 32-bit values live (register floor)", a.live, Math.max(...a.live));
  lines.push("");
  const byArray = new Map<string, Access[]>();
  a.phases.forEach((p, k) => {
    for (const x of p.accesses) {
      const key = `phase ${k + 1} ${x.store ? "store" : "load"} ${a.wgRoots[x.array] ?? x.array} ${
        x.bytes * 8
      }b`;
      byArray.set(key, [...(byArray.get(key) ?? []), x]);
    }
  });
  lines.push(
    "| shared access | per thread and block | wavefronts per warp access |",
    "| --- | --- | --- |",
  );
  for (const [k, v] of byArray) {
    const ws = [...new Set(v.map((x) => x.wavefronts))].join(", ");
    lines.push(`| ${k} | ${fmt(sum(v.map((x) => x.weight)))} | ${ws} |`);
  }
  lines.push("");
  for (const n of a.nested) {
    lines.push(
      `Staging loop in phase ${n.phase + 1}: ${
        fmt(n.trips)
      } trips a thread (counted in the tables).`,
    );
  }
  const useful = usefulFma(cfg);
  // Summed phase by phase: a multiply fuses only with an add of its own phase.
  const tf = (fold: boolean) => {
    const per = all.map((c) => derive(c, fold));
    const d = { ...per[0]! };
    for (const x of per.slice(1)) {
      for (const k of Object.keys(d) as (keyof typeof d)[]) d[k] += x[k];
    }
    const b = bounds(useful, d, wavesTotal);
    return { d, b };
  };
  const lo = tf(false);
  const hi = tf(true);
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  lines.push(
    "",
    `Useful FMAs a thread per block: ${useful} (${
      fmt(useful / 4)
    } clocks of the SM's FFMA peak per warp, ` +
      `4 warp-FFMA a clock). Estimated warp instructions issued: ${fmt(lo.d.issued)} ` +
      `(${fmt(hi.d.issued)} with dot chains folded): FFMA share ${pct(useful / lo.d.issued)}–${
        pct(useful / hi.d.issued)
      }.`,
    "",
    "| resource | clocks a warp-block | bound (fraction of FFMA peak) |",
    "| --- | --- | --- |",
  );
  for (const k of Object.keys(lo.b.clocks) as (keyof typeof lo.b.clocks)[]) {
    lines.push(
      `| ${k} | ${fmt(lo.b.clocks[k])}${
        hi.b.clocks[k] !== lo.b.clocks[k] ? ` (${fmt(hi.b.clocks[k])})` : ""
      } | ${pct(lo.b.frac[k])}${hi.b.frac[k] !== lo.b.frac[k] ? ` (${pct(hi.b.frac[k])})` : ""} |`,
    );
  }
  lines.push(`| **tightest** | | **${pct(lo.b.bound)}** (${pct(hi.b.bound)} folded) |`);
  return lines.join("\n");
}

// ---- main.

if (import.meta.main) {
  const a = parseArgs(Deno.args, {
    string: ["lavapipe", "keep", "only", "child", "dumps"],
    boolean: ["json"],
  });
  if (a.child) {
    await child(a.child, a.dumps!);
    Deno.exit(0);
  }
  const lvp = a.lavapipe ?? "/tmp/attnbench-lavapipe";
  const lib = `${lvp}/root/usr/lib/x86_64-linux-gnu`;
  const missing = [
    ...(await Promise.all(["gcc", "spirv-opt", "spirv-dis"].map(async (c) => {
      try {
        await new Deno.Command(c, { args: ["--version"], stdout: "null", stderr: "null" })
          .output();
        return null;
      } catch {
        return c;
      }
    }))).filter((c) => c !== null),
    ...(await Deno.stat(`${lib}/libvulkan_lvp.so`).then(
      () => [],
      () => [`${lib}/libvulkan_lvp.so`],
    )),
  ];
  if (missing.length > 0) {
    console.error(
      `ir_mix: missing ${
        missing.join(", ")
      } (apt-get install gcc spirv-tools; lavapipe as .ci/run unpacks it, or --lavapipe DIR)`,
    );
    Deno.exit(2);
  }
  const dir = a.keep ?? await Deno.makeTempDir({ prefix: "ir_mix" });
  await Deno.mkdir(`${dir}/dumps`, { recursive: true });
  const only = a.only ? a.only.split(",") : null;
  const configs = CONFIGS.filter((c) => !only || only.includes(c.name));
  for (const c of configs) await Deno.writeTextFile(`${dir}/${c.name}.wgsl`, wgslOf(c));
  await Deno.writeTextFile(`${dir}/jobs.json`, JSON.stringify(configs.map((c) => c.name)));
  const here = new URL(".", import.meta.url).pathname;
  await sh("gcc", [
    "-O1",
    "-shared",
    "-fPIC",
    "-o",
    `${dir}/icd.so`,
    `${here}spirv_dump_icd.c`,
    "-ldl",
  ]);
  await Deno.writeTextFile(
    `${dir}/icd.json`,
    JSON.stringify({
      file_format_version: "1.0.0",
      ICD: { library_path: `${dir}/icd.so`, api_version: "1.1.230" },
    }),
  );
  await sh(Deno.execPath(), [
    "run",
    "-A",
    new URL(import.meta.url).pathname,
    "--child",
    dir,
    "--dumps",
    `${dir}/dumps`,
  ], {
    VK_DRIVER_FILES: `${dir}/icd.json`,
    VK_ICD_FILENAMES: `${dir}/icd.json`,
    LD_LIBRARY_PATH: lib,
    DENO_WEBGPU_BACKEND: "vulkan",
    SPIRV_DUMP_REAL_ICD: `${lib}/libvulkan_lvp.so`,
    SPIRV_DUMP_DIR: `${dir}/dumps`,
    XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp",
  });
  const map: Record<string, string[]> = JSON.parse(await Deno.readTextFile(`${dir}/map.json`));
  const out: string[] = [];
  const json: unknown[] = [];
  for (const c of configs) {
    const files = map[c.name] ?? [];
    if (files.length !== 1) throw new Error(`${c.name}: expected one module, got ${files}`);
    const spv = `${dir}/dumps/${files[0]}`;
    await sh("spirv-opt", ["-O", spv, "-o", `${dir}/${c.name}.opt.spv`]);
    const rawText = await sh("spirv-dis", [spv]);
    const optText = await sh("spirv-dis", [`${dir}/${c.name}.opt.spv`]);
    await Deno.writeTextFile(`${dir}/${c.name}.spvasm`, rawText);
    await Deno.writeTextFile(`${dir}/${c.name}.opt.spvasm`, optText);
    const insts = parse(optText);
    const an = analyse(c.name, new Module(insts), c.tiles.br / c.tiles.rm * c.tiles.tx);
    json.push({ config: c, ...an });
    out.push(report(an, c, parse(rawText).length, insts.length));
  }
  console.log(a.json ? JSON.stringify(json, null, 2) : out.join("\n\n"));
  console.error(`files in ${dir}`);
}
