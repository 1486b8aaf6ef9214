/**
 * An example user kernel, `row`: one thread per query row (see `row.wgsl`). Load it with
 * `--kernel-module examples/row_kernel/mod.ts`; `verify`, `bench` (with `--count-io`), `tune`,
 * `model`, the report and `check` then run it like the built-in kernels.
 *
 * Everything a kernel supplies is here: its pass (WGSL, cache key, bindings, uniforms, grid),
 * its buffers with their roles, its counter slots and the exact bytes it moves, its idealized
 * bytes, its FLOPs, its inputs and its float64 reference.
 *
 * @module
 */

import rowWgsl from "./row.wgsl" with { type: "text" };
import {
  attentionFlops,
  dtypeBytes,
  emptyTraffic,
  type Kernel,
  type KernelPlan,
  randomInputs,
  referenceAttention,
} from "../../kernels/mod.ts";

/** Threads per workgroup (the WGSL's `WG`). */
const WG = 64;

/** The counter slots: one per binding, and the uniform. */
const SLOTS = ["q", "k", "v", "o", "uniform"];

/** The `row` kernel. */
export const rowKernel: Kernel = {
  name: "row",
  summary: "example user kernel: one thread per query row, no tiling",
  mode: "fwd",
  display: { label: "row (example)", hue: 330, saturation: 60 },
  sparse: false,
  densitySweep: "none",
  baseline: null,
  tunedLike: null,
  // No tiles: every candidate builds it; the tiles a run records do not change it.
  threads: () => WG,
  workgroupBytes: () => 0,
  tileProblem: () => null,
  plan({ shape, tiles, scale: given }): KernelPlan {
    const { n, d } = shape;
    const scale = given ?? 1 / Math.sqrt(d);
    const heads = shape.batch * shape.heads;
    const e = dtypeBytes(shape.dtype);
    const bytes = heads * n * d * e;
    // Keys each row visits, summed over the rows of one head.
    const pairs = shape.causal ? (n * (n + 1)) / 2 : n * n;
    return {
      kernel: rowKernel,
      shape,
      tiles,
      scale,
      mask: null,
      density: 1,
      buffers: [
        { name: "q", label: "Q", role: "input", bytes, element: "T" },
        { name: "k", label: "K", role: "input", bytes, element: "T" },
        { name: "v", label: "V", role: "input", bytes, element: "T" },
        { name: "o", label: "O", role: "output", bytes, element: "T" },
      ],
      slots: SLOTS,
      passes: () => [{
        name: "row",
        key: `row/d${d}`,
        source: `const D: u32 = ${d}u;\n${rowWgsl}`,
        bindings: [
          { buffer: "q", access: "read" },
          { buffer: "k", access: "read" },
          { buffer: "v", access: "read" },
          { buffer: "o", access: "read_write" },
        ],
        uniforms: [
          { name: "n", type: "u32", value: n },
          { name: "bh", type: "u32", value: heads },
          { name: "causal", type: "u32", value: shape.causal ? 1 : 0 },
          { name: "scale", type: "f32", value: scale },
        ],
        grid: [Math.ceil(n / WG), heads],
        moves: [["q", "read"], ["k", "read"], ["v", "read"], ["o", "write"]],
      }],
      modeledTraffic() {
        const t = emptyTraffic(SLOTS);
        t.q!.read = bytes;
        t.k!.read = heads * pairs * d * e;
        t.v!.read = heads * pairs * d * e;
        t.o!.write = bytes;
        t.uniform!.read = heads * Math.ceil(n / WG) * 16;
        return t;
      },
      // The author's idealized count (this kernel is in no paper): Q and O once, K and V once
      // per query row.
      theoreticalBytes: () => ({
        algorithm: "one thread per row",
        bytes: 2 * bytes + 2 * heads * pairs * d * e,
        elementsPerHead: 2 * n * d + 2 * pairs * d,
        mElements: null,
        bc: null,
        br: null,
        tc: null,
        tr: null,
        causalFraction: 1,
        density: 1,
        passRows: null,
      }),
      lowerBoundBytes: () => 4 * bytes, // Q, K, V read once, O written once
      idealBytes: () => ({}),
      flops: (mode) => attentionFlops(shape, mode),
      denseFlops: (mode) => attentionFlops(shape, mode),
      randomInputs: (seed) => ({ ...randomInputs(shape, seed) }),
      reference: (x) => ({ o: referenceAttention(shape, x.q!, x.k!, x.v!, { scale }) }),
    };
  },
};
