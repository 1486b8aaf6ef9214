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

fn dq_add(q0: u32, bh: u32, t: u32) {
  let n = params.n;
  for (var idx = t; idx < BC * D4; idx += WG) {
    let r = idx / D4;
    let c = idx % D4;
    if q0 + r < n {
      var acc = vec4<f32>(0.0);
      for (var j = 0u; j < BR; j++) {
        acc += ds_tile[j][r / 4u][r % 4u] * vec4<f32>(k_tile[j][c]);
      }
      acc *= params.scale;
      let at = (bh * n + q0 + r) * D + c * 4u;
      atomicAdd(&dqa[at], acc.x);
      atomicAdd(&dqa[at + 1u], acc.y);
      atomicAdd(&dqa[at + 2u], acc.z);
      atomicAdd(&dqa[at + 3u], acc.w);
      count_read(SLOT_DQA, 16u);
      count_write(SLOT_DQA, 16u);
    }
  }
}
