/**
 * The block-sparse kernel (Algorithm 5 of the FlashAttention paper): the flash program walking
 * only the key blocks a block mask keeps. The mask is built on the kernel's tiles (one bit per
 * `br × bc` block) from `--mask`, `--density` and `--seed`, or given already built; it is
 * uploaded once as CSR (`rowptr`, `colidx`), and the reference masks the same blocks.
 *
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import { flashPlan, flashProgramOf, flashWorkgroupBytes } from "../flash/mod.ts";
import type { AttentionShape, Tiles } from "../../core/shapes.ts";
import type { Kernel, MaskRequest } from "../kernel.ts";
import { BlockMask, makeMask } from "../masks.ts";
import { tileStructureProblem, tileThreads } from "../program.ts";

/** The block-sparse kernel's registry entry. */
export const blockSparse: Kernel = {
  name: "block-sparse",
  summary: "block-sparse FlashAttention: the flash program over the key blocks a mask keeps",
  mode: "fwd",
  display: { label: "block-sparse", hue: 158, saturation: 64 },
  sparse: true,
  densitySweep: "each",
  baseline: "standard",
  tunedLike: "flash",
  threads: tileThreads,
  workgroupBytes: flashWorkgroupBytes,
  tileProblem: tileStructureProblem,
  plan: (request) =>
    flashPlan(
      blockSparse,
      request.shape,
      request.tiles,
      request.scale,
      blockMaskFor(request.shape, request.tiles, request.mask),
      flashProgramOf(request),
    ),
};

/**
 * The block mask of a problem on these tiles: the one given, or one built from a request (default
 * random, density 0.25, seed 1). A mask on other blocks, or of another size, is a UsageError.
 * The block-sparse backward uses the same rule.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { blockMaskFor } from "./mod.ts";
 * const shape = { batch: 1, heads: 1, n: 16, d: 32, dtype: "f32", causal: false } as const;
 * assert(blockMaskFor(shape, { br: 8, bc: 8, rm: 1, tx: 4 }).rowBlocks === 2);
 * ```
 */
export function blockMaskFor(
  shape: AttentionShape,
  tiles: Tiles,
  given?: MaskRequest | BlockMask,
): BlockMask {
  const mask = given instanceof BlockMask ? given : makeMask({
    kind: given?.kind ?? "random",
    density: given?.density ?? 0.25,
    seed: given?.seed ?? 1,
    n: shape.n,
    br: tiles.br,
    bc: tiles.bc,
  });
  if (mask.br !== tiles.br || mask.bc !== tiles.bc) {
    throw new UsageError("the block mask's blocks must be the kernel's tiles");
  }
  const rows = Math.ceil(shape.n / tiles.br);
  const cols = Math.ceil(shape.n / tiles.bc);
  if (mask.rowBlocks !== rows || mask.colBlocks !== cols) {
    throw new UsageError(
      `the block mask covers ${mask.rowBlocks}×${mask.colBlocks} blocks, n=${shape.n} needs ` +
        `${rows}×${cols}`,
    );
  }
  return mask;
}
