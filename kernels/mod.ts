/**
 * attnbench's kernels as a library: attention on the local GPU through WebGPU, checked against
 * a float64 reference.
 *
 * {@linkcode attention} is the one-call entry: Q, K and V as `Float32Array`s laid out
 * `[batch, heads, n, d]` row-major, options, and O back in the same layout. For repeated runs,
 * {@linkcode prepareAttention} keeps the buffers and pipelines. The {@linkcode Kernel} interface
 * (`kernel.ts`) is the contract a kernel fulfils; {@linkcode KERNELS} lists the built-in ones,
 * and a module that exports `Kernel`s can be run like them (`--kernel-module`).
 *
 * @example
 * ```ts ignore
 * import { attention } from "./mod.ts";
 * const shape = { batch: 1, heads: 2, n: 128, d: 64 };
 * const q = new Float32Array(2 * 128 * 64).map(() => Math.random() - 0.5);
 * const o = await attention(q, q, q, { ...shape, kernel: "flash", causal: true });
 * ```
 *
 * @module
 */

import { AttentionKernels, prepareAttention } from "./attention.ts";
import { type Gpu, openGpu } from "./gpu.ts";
import type { Kernel } from "./kernel.ts";
import type { BlockMask } from "./masks.ts";
import type { Dtype, MaskKind, Tiles } from "../core/shapes.ts";

export { AttentionKernels, DoesNotFitError, prepareAttention } from "./attention.ts";
export type { AttentionProblem, PreparedAttention } from "./attention.ts";
export { checkAgainstReference, checkPrepared, randomInputs } from "./check.ts";
export { describeAdapter, type Gpu, openGpu } from "./gpu.ts";
export * from "./kernel.ts";
export { BlockMask, makeMask } from "./masks.ts";
export {
  allKernels,
  findKernel,
  type KernelName,
  KERNELS,
  modeledTraffic,
  planFor,
  registerKernel,
} from "./registry.ts";
export { maxRelError, referenceAttention, referenceWithLse } from "./reference.ts";
export { tolerance } from "../core/tolerances.ts";
export { UsageError } from "../core/errors.ts";
export * from "../core/shapes.ts";

/** Options of {@linkcode attention}. */
export interface AttentionOptions {
  batch: number;
  heads: number;
  /** Sequence length. */
  n: number;
  /** Head dimension: 32, 64 or 128. */
  d: number;
  /** Which kernel (a `Kernel` or a registered name); default flash. */
  kernel?: Kernel | string;
  /** Storage precision; f16 needs the adapter's shader-f16. Default f32. */
  dtype?: Dtype;
  causal?: boolean;
  /** Softmax scale; default 1/√d. */
  scale?: number;
  /** Block-sparse: a mask built with `makeMask` on the kernel's tiles, or how to build one. */
  mask?: BlockMask | { kind: MaskKind; density: number; seed: number };
  tiles?: Tiles;
  /** A GPU from `openGpu()` to reuse; otherwise one is opened and closed for this call. */
  gpu?: Gpu;
}

/**
 * O = softmax(scale · Q Kᵀ [+ mask]) V on the GPU. Inputs and output are `[batch, heads, n, d]`
 * row-major `Float32Array`s (f16 storage converts on the way in and out). Throws a `UsageError`
 * for bad input or a problem larger than the device's limits.
 *
 * @example
 * ```ts ignore
 * import { attention } from "./mod.ts";
 * const x = new Float32Array(64 * 32).fill(0.5);
 * const o = await attention(x, x, x, { batch: 1, heads: 1, n: 64, d: 32 });
 * ```
 */
export async function attention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  opts: AttentionOptions,
): Promise<Float32Array> {
  const gpu = opts.gpu ?? await openGpu();
  try {
    const prepared = await prepareAttention(new AttentionKernels(gpu), {
      kernel: opts.kernel ?? "flash",
      shape: {
        batch: opts.batch,
        heads: opts.heads,
        n: opts.n,
        d: opts.d,
        dtype: opts.dtype ?? "f32",
        causal: opts.causal ?? false,
      },
      tiles: opts.tiles,
      mask: opts.mask,
      scale: opts.scale,
    });
    try {
      prepared.upload({ q, k, v });
      await prepared.run();
      return await prepared.readOutput();
    } finally {
      prepared.destroy();
    }
  } finally {
    if (!opts.gpu) gpu.device.destroy();
  }
}
