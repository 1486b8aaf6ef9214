// KV layout of the `decode` kernel: a contiguous cache per sequence.
//
// k and v are [seqs, kv_heads, stride, D] row-major: each (sequence, KV head) owns `stride` rows
// (the longest context of the batch, or more: a reservation), of which the first lens[s] hold
// tokens. Token p of sequence s, KV head kvh is row (s * kv_heads + kvh) * stride + p.

fn tile_begin(seq: u32, t0: u32, nt: u32, t: u32) {}

fn kv_row(seq: u32, kvh: u32, p: u32) -> u32 {
  return ((seq * params.kv_heads + kvh) * params.stride + p) * D4;
}
