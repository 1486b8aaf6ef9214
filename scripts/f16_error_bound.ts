// The error of flash f16 against the float64 reference, both arithmetics (f16Math f32 and
// packed), beside the a-priori bound of the packed program (flash_h16.wgsl's header) computed
// from the same inputs. Needs an adapter with shader-f16 (lavapipe: SESSION.md's command).
//
//   deno run -A scripts/f16_error_bound.ts [--n 77,1000,2500] [--d 64] [--tiles 64x32x4x16]
//     [--chunk 16]   (the packed program's f16Chunk)
//
// Bound on |O' - O| for a head (u = 2^-11, gamma_m = m u / (1 - m u)):
//   score error   E = scale * gamma_(CH4+2) * max_i |q_i| * max_j |k_j|   (Cauchy–Schwarz)
//   weights       each p_j is off by a factor within e^(±E) (1 ± u): eta = e^E (1 + u) - 1
//   P·V           the f16 chunk sums of 4·CK4 keys: gamma_(4·CK4) * max |v|
//   |O' - O| <= max |v| * (2 eta / (1 - eta) + gamma_(4·CK4) + u)   (+ u |O| for the f16 store)
// and the relative figure divides by max |O_ref| over the whole output, as maxRelError does.
import { parseArgs } from "@std/cli/parse-args";
import { AttentionKernels, prepareAttention } from "../kernels/attention.ts";
import { checkPrepared } from "../kernels/check.ts";
import { openGpu } from "../kernels/gpu.ts";
import { F16_CHUNK } from "../kernels/flash/mod.ts";
import type { AttentionShape } from "../core/shapes.ts";

const a = parseArgs(Deno.args, { string: ["n", "d", "tiles", "heads", "chunk"] });
const ns = (a.n ?? "77,1000,2500").split(",").map(Number);
const d = Number(a.d ?? 64);
const heads = Number(a.heads ?? 2);
const [br, bc, rm, tx] = (a.tiles ?? "64x32x4x16").split("x").map(Number);
const tiles = { br: br!, bc: bc!, rm: rm!, tx: tx! };
const u = 2 ** -11;
const gamma = (m: number) => m * u / (1 - m * u);
const chunk = Number(a.chunk ?? F16_CHUNK);
const ch4 = Math.min(chunk / 4, d / 4);
const ck4 = Math.min(chunk / 4, tiles.bc / 4);

const gpu = await openGpu({});
if (!gpu.f16) {
  console.error("f16_error_bound: this adapter has no shader-f16 (use lavapipe, SESSION.md)");
  Deno.exit(2);
}
const kernels = new AttentionKernels(gpu);
console.log("math    n     O error   LSE error  derived: score error E, O bound (packed)");
for (const n of ns) {
  const shape: AttentionShape = { batch: 1, heads, n, d, dtype: "f16", causal: false };
  for (const f16Math of ["f32", "packed"]) {
    const p = await prepareAttention(kernels, {
      kernel: "flash",
      shape,
      tiles,
      options: { f16Math, f16Chunk: chunk },
    });
    const r = await checkPrepared(p, 4242 + n);
    p.destroy();
    let bound = "";
    if (f16Math === "packed") {
      const { q, k, v } = r.inputs as Record<string, Float32Array>;
      const rowNorm = (x: Float32Array, h: number, i: number) => {
        let s = 0;
        for (let c = 0; c < d; c++) s += x[(h * n + i) * d + c]! ** 2;
        return Math.sqrt(s);
      };
      let worst = 0;
      let worstE = 0;
      for (let h = 0; h < heads; h++) {
        let qn = 0, kn = 0, vmax = 0;
        for (let i = 0; i < n; i++) {
          qn = Math.max(qn, rowNorm(q!, h, i));
          kn = Math.max(kn, rowNorm(k!, h, i));
        }
        for (let e = h * n * d; e < (h + 1) * n * d; e++) vmax = Math.max(vmax, Math.abs(v![e]!));
        const e = gamma(ch4 + 2) * qn * kn / Math.sqrt(d);
        worstE = Math.max(worstE, e);
        const eta = Math.exp(e) * (1 + u) - 1;
        worst = Math.max(worst, vmax * (2 * eta / (1 - eta) + gamma(4 * ck4) + u));
      }
      const refMax = r.ref.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      bound = `${worstE.toExponential(2)}, ${(worst / refMax + u).toExponential(2)}`;
    }
    console.log(
      `${f16Math.padEnd(7)} ${String(n).padStart(5)}  ${r.errors.o!.toExponential(2)}  ${
        r.errors.lse!.toExponential(2)
      }   ${bound}`,
    );
  }
}
gpu.device.destroy();
