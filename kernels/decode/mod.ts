/**
 * Decode attention with a contiguous or a paged KV cache (PagedAttention's block pool and block
 * tables), split across workgroups and combined (flash-decoding); see README.md in this folder.
 *
 * Two registry entries: {@linkcode decode} (a contiguous cache per sequence) and
 * {@linkcode pagedDecode} (a block pool found through block tables). Their plans
 * ({@linkcode decodePlan}) are run by the generic runner like every kernel's; the problem's
 * context lengths, KV heads and cache layout come in `ProblemRequest.options`
 * ({@linkcode DecodeOptions}).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { pagedDecode } from "./mod.ts";
 * const shape = { batch: 2, heads: 8, n: 300, d: 128, dtype: "f16", causal: false } as const;
 * const plan = pagedDecode.plan({ shape, tiles: { br: 64, bc: 64, rm: 2, tx: 4 },
 *   options: { lens: [17, 300], kvHeads: 2, blockSize: 16 } });
 * assert(plan.passes().map((p) => p.name).join() === "split,combine");
 * ```
 *
 * @module
 */

import type { Kernel } from "../kernel.ts";
import { decodeKernel } from "./program.ts";

/** `decode`: one query token per (sequence, head) against a contiguous KV cache. */
export const decode: Kernel = decodeKernel(
  "decode",
  "decode step: one query token per (sequence, head), contiguous KV cache, split-KV + combine",
  { label: "decode", hue: 42, saturation: 80 },
  null,
);

/** `paged-decode`: the same against a paged KV cache (block pool and block tables). */
export const pagedDecode: Kernel = decodeKernel(
  "paged-decode",
  "decode step against a paged KV cache (PagedAttention block tables), split-KV + combine",
  { label: "paged-decode", hue: 268, saturation: 60 },
  "decode",
);

/**
 * Whether a kernel is the paged decode kernel (takes a block size and block tables).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decode, isPagedDecode, pagedDecode } from "./mod.ts";
 * assert(isPagedDecode(pagedDecode) && !isPagedDecode(decode));
 * ```
 */
export function isPagedDecode(kernel: Kernel): boolean {
  return kernel === pagedDecode;
}

export {
  DECODE_FALLBACK_TILES,
  DECODE_KERNELS,
  DECODE_SLOTS,
  DECODE_SMS,
  DECODE_THREADS_PER_SM,
  DECODE_TILE_CANDIDATES,
  DECODE_UNIFORMS,
  decodeFlops,
  type DecodeKernelName,
  decodeKey,
  type DecodeKnobs,
  type DecodeOptions,
  decodePlan,
  type DecodeSetup,
  decodeSetup,
  decodeShapeOf,
  decodeSource,
  decodeTileProblem,
  type DecodeTiles,
  decodeTilesOf,
  decodeUsesSubgroups,
  decodeWorkgroupBytes,
  defaultSplitTokens,
  MAX_GROUP,
  MAX_SEGMENT,
  MAX_UNROLL,
  PARAMS_BYTES,
} from "./program.ts";
export { compulsoryDecodeBytes, modeledDecodeTraffic } from "./modeled.ts";
export {
  type DecodeInputs,
  gatherCache,
  randomDecodeInputs,
  referenceDecode,
  TIMING_PATTERN,
  timingDecodeInputs,
} from "./reference.ts";
export {
  BLOCK_SIZES,
  BlockAllocator,
  BlockTableError,
  type BlockTables,
  buildBlockTables,
  contextLengths,
  type DecodeShape,
  type LengthSpec,
  NO_BLOCK,
  pageCache,
  parseLengthTrace,
  readLengthTrace,
  validateBlockTables,
} from "./workload.ts";
