// FlashAttention backward, pass 1 of 3: D = rowsum(dO ∘ O) (FlashAttention-2's preprocessing).
//
// For one head, with O, dO in R^{N x D}:   D_i = sum_c dO_ic * O_ic,   D in R^N (f32).
// D_i equals sum_j P_ij dP_ij (the row term of dS = P ∘ (dP - D)), but costs 2Nd reads instead
// of an N x N reduction. The two later passes read it, with the forward's log-sum-exp.
//
// One thread a row: it reads the row's D4 vec4 of O and of dO and writes one f32.
//
// The prelude defines T, T4 (storage scalar and vec4; arithmetic is f32), D4 (= D / 4),
// ROWS (rows, so threads, per workgroup), the slot constants and the counting helpers, then
// declares the bindings from the host's list (generated in that order: params at 0, then 1, 2, …):
//   params: uniform { n, bh, causal, scale }
//   o: array<T4>, B*H*N*D4        dout: array<T4>, B*H*N*D4 (dO)
//   delta: array<f32>, B*H*N (written)
//   counting only: counters (generated, one 64-bit count per slot and direction)
//
// Grid: (ceil(N / ROWS), B*H) workgroups of ROWS threads.

@compute @workgroup_size(ROWS)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = params.n;
  if t == 0u {
    count_read(SLOT_UNIFORM, 16u);
  }
  let row = wid.x * ROWS + t;
  let bh = wid.y;
  if row < n {
    let base = (bh * n + row) * D4;
    var acc = vec4<f32>();
    for (var c = 0u; c < D4; c++) {
      acc += vec4<f32>(dout[base + c]) * vec4<f32>(o[base + c]);
    }
    count_read(SLOT_O, D4 * 4u * T_BYTES);
    count_read(SLOT_DOUT, D4 * 4u * T_BYTES);
    delta[bh * n + row] = acc.x + acc.y + acc.z + acc.w;
    count_write(SLOT_DELTA, 4u);
  }
  count_flush();
}
