// KV layout of the `paged-decode` kernel: a pool of blocks found through block tables
// (PagedAttention, Kwon et al., 2023).
//
// k and v are pools [pool_blocks, kv_heads, block, D] row-major: a block holds `block` tokens
// (8..256) of every KV head, each head's rows contiguous. Sequence s's i-th block is
// table[s * stride + i], so token p lies in pool block b = table[s * stride + p / block] at row
// (b * kv_heads + kvh) * block + p % block. The last block of a sequence is partly filled; its
// rows past lens[s] are never read. The host validates every table before dispatch (each entry
// a sequence uses lies in the pool, and the table holds ceil(lens[s] / block) entries).
//
//   @binding(5) table: array<u32>, [seqs, stride]
//
// At the start of each tile of tokens [t0, t0 + nt), threads 0..nb-1 read the nb table entries
// that cover it (nb <= TILE / 8 + 1 since block >= 8) into workgroup memory; kv_row looks its
// block up there. So each tile reads each of its blocks' entries once.

@group(0) @binding(5) var<storage, read> table: array<u32>;

const TILE_BLOCKS: u32 = TILE / 8u + 1u;
var<workgroup> tile_blocks: array<u32, TILE_BLOCKS>;
var<private> first_block: u32;

fn tile_begin(seq: u32, t0: u32, nt: u32, t: u32) {
  first_block = t0 / params.block;
  let nb = (t0 + nt - 1u) / params.block - first_block + 1u;
  if t < nb {
    tile_blocks[t] = table[seq * params.stride + first_block + t];
    count_read(SLOT_TABLE, 4u);
  }
  workgroupBarrier();
}

fn kv_row(seq: u32, kvh: u32, p: u32) -> u32 {
  let b = tile_blocks[p / params.block - first_block];
  return ((b * params.kv_heads + kvh) * params.block + p % params.block) * D4;
}
