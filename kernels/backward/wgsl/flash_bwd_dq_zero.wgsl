// FlashAttention backward, atomic dQ: zero the f32 dQ accumulator before the dK/dV pass adds to it
// (dq itself in f32, the dqacc scratch in f16), seen here as vec4<f32>.
//
// The prelude defines D4 (= D / 4), WG (threads a workgroup), SLOT_DQZ (the accumulator's slot)
// and declares params { n, bh, causal, scale } and dqz: array<vec4<f32>>, B*H*N*D4 (written).
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
    dqz[wid.y * n * D4 + i] = vec4<f32>(0.0);
    count_write(SLOT_DQZ, 16u);
  }
  count_flush();
}
