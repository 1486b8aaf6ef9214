// Decode attention, combine pass (flash-decoding): merges the partial softmax states that
// decode_split.wgsl left for each (sequence, query head).
//
// Sequence s of length L has n = ceil(L / chunk) splits; split i left m_i (its maximum score,
// base 2), l_i = sum_j 2^(s_j - m_i) and acc_i = sum_j 2^(s_j - m_i) v_j. With M = max_i m_i:
//   o[s, h] = (sum_i 2^(m_i - M) acc_i) / (sum_i 2^(m_i - M) l_i)
// computed online (a running M, rescaling what was summed so far), so the splits are read once.
// One workgroup per (query head, sequence); thread c owns column vec4 c of the output. The
// (m_i, l_i) pairs are staged CWG at a time in workgroup memory, read once by the workgroup.
//
// The prelude defines T, T4, T_BYTES, D4, CWG (threads per workgroup, = D4), Params,
// PARAMS_BYTES and the counting helpers, as for the split pass, and decode_common.wgsl its
// params, lens and sequence_length.
//
// Bindings (the same numbers as the split pass for the buffers they share):
//   @binding(0) params: uniform Params (fields as in decode_split.wgsl)
//   @binding(4) lens: array<u32>, [seqs]
//   @binding(6) part_ml: array<vec2<f32>>, [seqs, heads, max_splits]
//   @binding(7) part_o: array<vec4<f32>>, [seqs, heads, max_splits, D]
//   @binding(9) o: array<T4>, [seqs, heads, D] (written)
//   counting only: @binding(8) counters
//
// Grid: (heads, seqs) workgroups of CWG threads.

@group(0) @binding(6) var<storage, read> part_ml: array<vec2<f32>>;
@group(0) @binding(7) var<storage, read> part_o: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> o: array<T4>;

const NEG: f32 = -3.0e38;

var<workgroup> ml_list: array<vec2<f32>, CWG>;

@compute @workgroup_size(CWG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let h = wid.x;
  let seq = wid.y;
  let len = sequence_length(seq, t);
  let splits = (len + params.chunk - 1u) / params.chunk;
  let row = seq * params.heads + h;

  var m = NEG;
  var l = 0.0;
  var acc = vec4<f32>();
  for (var i0 = 0u; i0 < splits; i0 += CWG) {
    workgroupBarrier();
    if i0 + t < splits {
      ml_list[t] = part_ml[row * params.max_splits + i0 + t];
      count_read(SLOT_PARTIAL_ML, 8u);
    }
    workgroupBarrier();
    let n = min(CWG, splits - i0);
    for (var i = 0u; i < n; i++) {
      let ml = ml_list[i];
      let mx = max(m, ml.x);
      let a = exp2(m - mx);
      let b = exp2(ml.x - mx);
      acc = acc * a + part_o[(row * params.max_splits + i0 + i) * D4 + t] * b;
      count_read(SLOT_PARTIAL_O, 16u);
      l = l * a + ml.y * b;
      m = mx;
    }
  }
  o[row * D4 + t] = T4(acc / l);
  count_write(SLOT_O, 4u * T_BYTES);
  count_flush();
}
