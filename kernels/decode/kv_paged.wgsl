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
//   table: array<u32>, [seqs, stride] (bound by the generated header)
//
// At the start of each segment of tokens [t0, t0 + nt), the threads read the nb table entries
// that cover it (nb <= SEG / 8 + 1 since block >= 8) into workgroup memory; kv_row looks its
// block up there. So each segment reads each of its blocks' entries once.

const SEG_BLOCKS: u32 = SEG / 8u + 1u;
var<workgroup> tile_blocks: array<u32, SEG_BLOCKS>;
var<private> first_block: u32;

fn tile_begin(seq: u32, t0: u32, nt: u32, t: u32) {
  first_block = t0 / params.block;
  let nb = (t0 + nt - 1u) / params.block - first_block + 1u;
  for (var b = t; b < nb; b += WG) {
    tile_blocks[b] = table[seq * params.stride + first_block + b];
    count_read(SLOT_TABLE, 4u);
  }
  workgroupBarrier();
}

fn kv_row(seq: u32, kvh: u32, p: u32) -> u32 {
  let b = tile_blocks[p / params.block - first_block];
  return ((b * params.kv_heads + kvh) * params.block + p % params.block) * D4;
}
