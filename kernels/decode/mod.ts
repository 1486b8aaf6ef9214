/**
 * Decode attention with a contiguous or a paged KV cache (PagedAttention's block pool and block
 * tables), split across workgroups and combined (flash-decoding); see README.md in this folder.
 *
 * {@linkcode decodePlan} describes a run as data (buffers with roles and bindings, passes with
 * source, cache key, bindings and grid, and the uniforms); {@linkcode prepareDecode} runs it;
 * {@linkcode modeledDecodeTraffic} predicts its bytes per binding; {@linkcode referenceDecode} is
 * the float64 oracle.
 *
 * @example
 * ```ts ignore
 * import { openGpu } from "../gpu.ts";
 * import { PipelineCache } from "../program.ts";
 * import { prepareDecode, randomDecodeInputs } from "./mod.ts";
 * const gpu = await openGpu();
 * const shape = { lens: [17, 300], heads: 8, kvHeads: 2, d: 128, dtype: "f32" } as const;
 * const p = await prepareDecode(gpu, new PipelineCache(gpu.device), { kernel: "paged-decode", shape });
 * p.upload(randomDecodeInputs(shape, 1));
 * await p.run();
 * const o = await p.readOutput();
 * ```
 *
 * @module
 */

export {
  DECODE_KERNELS,
  DECODE_SLOTS,
  DECODE_WG,
  type DecodeBuffer,
  type DecodeBytes,
  type DecodeKernelName,
  decodeKey,
  type DecodeKnobs,
  type DecodePass,
  type DecodePlan,
  decodePlan,
  type DecodeProblem,
  decodeSource,
  defaultSplitTokens,
  MAX_GROUP,
  PARAM_FIELDS,
  paramsBytes,
} from "./program.ts";
export { compulsoryDecodeBytes, decodeTotalBytes, modeledDecodeTraffic } from "./modeled.ts";
export { type DecodeInputs, randomDecodeInputs, referenceDecode } from "./reference.ts";
export { type PreparedDecode, prepareDecode } from "./run.ts";
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
