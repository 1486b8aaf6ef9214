// FlashAttention backward, atomic dQ (flash-bwd option dq = "atomic"): the dK/dV pass also adds
// each block's share of dQ to an f32 accumulator with atomicAdd, and the dQ pass is not run
// (Algorithm 4's dQ_i += tau dS_ij K_j, with atomics instead of a read-modify-write by one owner).
//
// Appended to flash_bwd_dkdv.wgsl, whose block loop calls dq_add(q0, bh, t) after its dK and dV
// updates, while ds_tile (the unscaled dS^T of this block: BR key rows x BC query columns, 0 where
// masked or past N) and k_tile (K of the workgroup's BR key rows) are still staged. For each of the
// block's BC query rows below N and each vec4 column of dQ:
//   dQ_i[c] += scale * sum_j dS_ij k_j[c]        (one atomicAdd a component)
// Each atomicAdd reads and writes 4 bytes of the accumulator: counted as a read and a write of
// 4 bytes (SLOT_DQA, the accumulator's slot: dq itself in f32, the dqacc scratch in f16).
//
// Defines for the body: dqa: array<atomic<f32>>, B*H*N*D (zeroed by flash_bwd_dq_zero.wgsl first).

// A thread takes four consecutive query rows (one vec4 of ds_tile) and one vec4 column of dQ:
// per key, one vec4 of dS and one of K feed four vec4 FMAs.
fn dq_add(q0: u32, bh: u32, t: u32) {
  let n = params.n;
  for (var idx = t; idx < BC4 * D4; idx += WG) {
    let r4 = idx / D4;
    let c = idx % D4;
    var acc: array<vec4<f32>, 4>;
    // Zeroed here: naga declares a loop's variables once, at the top of the function.
    for (var e = 0u; e < 4u; e++) {
      acc[e] = vec4<f32>(0.0);
    }
    for (var j = 0u; j < BR; j++) {
      let ds = ds_tile[j][r4];
      let kj = vec4<f32>(k_tile[j][c]);
      acc[0] += ds.x * kj;
      acc[1] += ds.y * kj;
      acc[2] += ds.z * kj;
      acc[3] += ds.w * kj;
    }
    for (var e = 0u; e < 4u; e++) {
      let row = q0 + r4 * 4u + e;
      if row < n {
        let a = acc[e] * params.scale;
        let at = (bh * n + row) * D + c * 4u;
        atomicAdd(&dqa[at], a.x);
        atomicAdd(&dqa[at + 1u], a.y);
        atomicAdd(&dqa[at + 2u], a.z);
        atomicAdd(&dqa[at + 3u], a.w);
        count_read(SLOT_DQA, 16u);
        count_write(SLOT_DQA, 16u);
      }
    }
  }
}
