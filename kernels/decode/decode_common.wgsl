// What both decode passes share: the uniforms, the context lengths, and reading a workgroup's
// sequence length once.
//
//   @binding(0) params: uniform Params (fields: see decode_split.wgsl)
//   @binding(4) lens: array<u32>, [seqs], context length of each sequence (>= 1)
//
// sequence_length(seq, t): thread 0 reads lens[seq] (and counts the uniforms' bytes, which each
// workgroup reads once), every thread gets it through workgroupUniformLoad: a value read from
// storage is not uniform to WGSL's analysis, and it bounds loops that hold barriers.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read> lens: array<u32>;

var<workgroup> seq_len: u32;

fn sequence_length(seq: u32, t: u32) -> u32 {
  if t == 0u {
    count_read(SLOT_UNIFORM, PARAMS_BYTES);
    seq_len = lens[seq];
    count_read(SLOT_LENS, 4u);
  }
  return workgroupUniformLoad(&seq_len);
}
