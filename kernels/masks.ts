/**
 * Block masks for block-sparse attention: which (query block, key block) pairs are kept.
 *
 * A mask is defined on the kernel's own tile grid (query blocks of `br` rows, key blocks of `bc`
 * rows), as in the paper's block-sparse FlashAttention, where the mask's block size is the tile
 * size. The kernel reads it in CSR form: for query block i, `colidx[rowptr[i] .. rowptr[i+1])`
 * lists the kept key blocks in increasing order.
 *
 * @module
 */

import { mulberry32 } from "../core/rng.ts";
import type { MaskKind } from "../core/shapes.ts";

/** A block mask over a `rowBlocks × colBlocks` grid. */
export class BlockMask {
  readonly rowBlocks: number;
  readonly colBlocks: number;
  readonly br: number;
  readonly bc: number;
  readonly kind: MaskKind;
  /** Row-major keep bits, one byte a block. */
  readonly bits: Uint8Array;

  constructor(kind: MaskKind, n: number, br: number, bc: number, bits: Uint8Array) {
    this.kind = kind;
    this.br = br;
    this.bc = bc;
    this.rowBlocks = Math.ceil(n / br);
    this.colBlocks = Math.ceil(n / bc);
    if (bits.length !== this.rowBlocks * this.colBlocks) throw new Error("mask size mismatch");
    this.bits = bits;
  }

  /** Whether query row `i` may attend key row `j` (token indices). */
  keeps(i: number, j: number): boolean {
    return this.bits[Math.floor(i / this.br) * this.colBlocks + Math.floor(j / this.bc)] === 1;
  }

  /** Kept blocks. */
  get nnz(): number {
    let c = 0;
    for (const b of this.bits) c += b;
    return c;
  }

  /** Fraction of blocks kept: the paper's s. */
  get density(): number {
    return this.nnz / this.bits.length;
  }

  /** The CSR form the kernel reads. */
  csr(): { rowptr: Uint32Array; colidx: Uint32Array } {
    const rowptr = new Uint32Array(this.rowBlocks + 1);
    const colidx = new Uint32Array(Math.max(1, this.nnz));
    let at = 0;
    for (let i = 0; i < this.rowBlocks; i++) {
      rowptr[i] = at;
      for (let j = 0; j < this.colBlocks; j++) {
        if (this.bits[i * this.colBlocks + j]) colidx[at++] = j;
      }
    }
    rowptr[this.rowBlocks] = at;
    return { rowptr, colidx };
  }
}

/** Options of {@linkcode makeMask}. */
export interface MaskOptions {
  kind: MaskKind;
  n: number;
  br: number;
  bc: number;
  /** Target fraction of blocks kept, in (0, 1]. */
  density: number;
  seed: number;
}

/**
 * Builds a block mask.
 *
 * - `random`: exactly max(1, round(s · blocks)) blocks, chosen uniformly with the seed.
 * - `butterfly`: the diagonal plus the blocks whose indices differ by one bit (i ⊕ j = 2^k),
 *   strides 2^0, 2^1, … added until the density reaches s (the flat butterfly pattern the
 *   paper's block-sparse experiments use); it may overshoot s. On an R × R grid the whole
 *   pattern holds only about (1 + log2 R) / R of the blocks: asking for more gives the whole
 *   pattern, short of s (the bench then warns; `verify` shows the density reached).
 * - `local`: a sliding window, the blocks whose centres lie within w tokens of each other, w
 *   grown one key block at a time until the density reaches s; it may overshoot s.
 *
 * The density actually reached is `mask.density`; the tool records it, not the target.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { makeMask } from "./masks.ts";
 * const m = makeMask({ kind: "random", n: 256, br: 32, bc: 32, density: 0.25, seed: 1 });
 * assert(m.nnz === 16);
 * ```
 */
export function makeMask(o: MaskOptions): BlockMask {
  const rows = Math.ceil(o.n / o.br);
  const cols = Math.ceil(o.n / o.bc);
  const total = rows * cols;
  const bits = new Uint8Array(total);
  const mask = new BlockMask(o.kind, o.n, o.br, o.bc, bits);
  if (o.kind === "random") {
    const want = Math.max(1, Math.round(o.density * total));
    const order = Array.from({ length: total }, (_, i) => i);
    const rand = mulberry32(o.seed ^ 0x5bd1e995);
    for (let i = 0; i < want; i++) {
      const j = i + Math.floor(rand() * (total - i));
      [order[i], order[j]] = [order[j]!, order[i]!];
      bits[order[i]!] = 1;
    }
    return mask;
  }
  const fill = (keep: (i: number, j: number) => boolean) => {
    let kept = 0;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        if (!bits[i * cols + j] && keep(i, j)) {
          bits[i * cols + j] = 1;
          kept++;
        }
      }
    }
    return kept;
  };
  if (o.kind === "butterfly") {
    let kept = fill((i, j) => i === j);
    for (let stride = 1; kept / total < o.density && stride < Math.max(rows, cols); stride *= 2) {
      kept += fill((i, j) => (i ^ j) === stride);
    }
    return mask;
  }
  // local
  const centre = (b: number, size: number) => b * size + size / 2;
  for (let w = 0; mask.density < o.density; w += o.bc) {
    fill((i, j) => Math.abs(centre(i, o.br) - centre(j, o.bc)) <= w);
    if (w > 2 * o.n) break;
  }
  return mask;
}
