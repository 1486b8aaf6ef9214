/**
 * Pieces that forward-attention kernels share when writing their plans: the Q, K, V, O buffers,
 * seeded random inputs, the shape's uniforms and a softmax scale default.
 *
 * @module
 */

import { type AttentionShape, dtypeBytes } from "../core/shapes.ts";
import type { BufferSpec, Uniform } from "./kernel.ts";
import { mulberry32, randomNormal } from "../core/rng.ts";

/** Q, K and V for a shape, drawn from N(0, 1) with a seed, rounded to the storage dtype. */
export interface AttentionInputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

/**
 * Bytes of one `[B, H, N, d]` tensor in the storage dtype.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { tensorBytes } from "./common.ts";
 * assert(tensorBytes({ batch: 2, heads: 1, n: 3, d: 4, dtype: "f16", causal: false }) === 48);
 * ```
 */
export function tensorBytes(shape: AttentionShape): number {
  return shape.batch * shape.heads * shape.n * shape.d * dtypeBytes(shape.dtype);
}

/**
 * Q, K and V (inputs) and O (the output), each `[B, H, N, d]` vec4s of the storage dtype.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { qkvoBuffers } from "./common.ts";
 * const b = qkvoBuffers({ batch: 1, heads: 1, n: 8, d: 32, dtype: "f32", causal: false });
 * assert(b.map((x) => x.label).join() === "Q,K,V,O");
 * ```
 */
export function qkvoBuffers(shape: AttentionShape): BufferSpec[] {
  const bytes = tensorBytes(shape);
  return [
    { name: "q", label: "Q", role: "input", bytes, element: "T4" },
    { name: "k", label: "K", role: "input", bytes, element: "T4" },
    { name: "v", label: "V", role: "input", bytes, element: "T4" },
    { name: "o", label: "O", role: "output", bytes, element: "T4" },
  ];
}

/**
 * Fresh random inputs. Values are rounded to f16 when the dtype is f16, so the reference sees
 * exactly what the kernel sees and the error measures the kernel, not the input rounding.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { randomInputs } from "./common.ts";
 * const shape = { batch: 1, heads: 2, n: 5, d: 32, dtype: "f32", causal: false } as const;
 * assert(randomInputs(shape, 1).q.length === 2 * 5 * 32);
 * ```
 */
export function randomInputs(shape: AttentionShape, seed: number): AttentionInputs {
  const len = shape.batch * shape.heads * shape.n * shape.d;
  const rand = mulberry32(seed);
  const draw = () => {
    const x = randomNormal(rand, len);
    return shape.dtype === "f16" ? new Float32Array(new Float16Array(x)) : x;
  };
  return { q: draw(), k: draw(), v: draw() };
}

/**
 * The uniforms the attention passes share: `n`, `bh` (batch · heads), `causal`, and a scale
 * under the name each pass reads it by.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { shapeUniforms } from "./common.ts";
 * const shape = { batch: 2, heads: 3, n: 5, d: 32, dtype: "f32", causal: true } as const;
 * assert(shapeUniforms(shape, "scale", 0.5)[1]!.value === 6);
 * ```
 */
export function shapeUniforms(shape: AttentionShape, scaleName: string, scale: number): Uniform[] {
  return [
    { name: "n", type: "u32", value: shape.n },
    { name: "bh", type: "u32", value: shape.batch * shape.heads },
    { name: "causal", type: "u32", value: shape.causal ? 1 : 0 },
    { name: scaleName, type: "f32", value: scale },
  ];
}

/**
 * Inputs by name, checked: every one of `names` must be present.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { need } from "./common.ts";
 * const x = new Float32Array(1);
 * assert(need({ q: x }, "q") === x);
 * ```
 */
export function need(
  inputs: Readonly<Record<string, Float32Array>>,
  name: string,
): Float32Array {
  const x = inputs[name];
  if (!x) throw new Error(`input ${name} is missing`);
  return x;
}
