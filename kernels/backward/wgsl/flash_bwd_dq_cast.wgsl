// FlashAttention backward, atomic dQ in f16 storage: convert the f32 accumulator dqacc, complete
// after the dK/dV pass, to dq in the storage dtype.
//
// The prelude defines T, T4, D4 (= D / 4), WG (threads a workgroup) and declares
// params { n, bh, causal, scale }, dqacc: array<vec4<f32>>, B*H*N*D4 (read) and
// dq: array<T4>, B*H*N*D4 (written).
//
// Grid: (ceil(N * D4 / WG), B*H) workgroups of WG threads, one vec4 a thread.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = params.n;
  if t == 0u {
    count_read(SLOT_UNIFORM, 16u);
  }
  let i = wid.x * WG + t;
  if i < n * D4 {
    let at = wid.y * n * D4 + i;
    dq[at] = T4(dqacc[at]);
    count_read(SLOT_DQACC, 16u);
    count_write(SLOT_DQ, 4u * T_BYTES);
  }
  count_flush();
}
