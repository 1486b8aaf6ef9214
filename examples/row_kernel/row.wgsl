// A deliberately simple attention kernel: one thread per query row.
//
// For one head, with Q, K, V, O in R^{N x D}:   O = softmax(scale * Q K^T) V
// Thread `row` keeps its query row and a D-wide accumulator in registers and walks every key
// (up to the diagonal when causal) once, with the online softmax: a running maximum m and sum l.
// No tiling, no workgroup memory: K and V are read from memory once per query row, so it moves
// about N times more bytes than flash. It is an example of the Kernel interface, not a fast one.
//
// The generated header defines T (the storage type), T_BYTES, the counter slots SLOT_Q, SLOT_K,
// SLOT_V, SLOT_O, SLOT_UNIFORM with count_read / count_write / count_flush, `params` (n, bh,
// causal, scale) and the bindings q, k, v (array<T>, [B*H, N, D], read) and o (written), in
// the order row_kernel/mod.ts lists them. The constant D comes from mod.ts.
//
// Grid: (ceil(N / WG), B*H) workgroups of WG threads.

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = params.n;
  if t == 0u {
    count_read(SLOT_UNIFORM, 16u);
  }
  let row = wid.x * WG + t;
  let base = wid.y * n * D;
  if row < n {
    var qv: array<f32, D>;
    for (var c = 0u; c < D; c++) {
      qv[c] = f32(q[base + row * D + c]);
    }
    count_read(SLOT_Q, D * T_BYTES);
    var m = -3.0e38;
    var l = 0.0;
    var acc: array<f32, D>;
    let keys = select(n, row + 1u, params.causal != 0u);
    for (var j = 0u; j < keys; j++) {
      var s = 0.0;
      for (var c = 0u; c < D; c++) {
        s += qv[c] * f32(k[base + j * D + c]);
      }
      count_read(SLOT_K, D * T_BYTES);
      s *= params.scale;
      let m_new = max(m, s);
      let alpha = exp(m - m_new);
      let p = exp(s - m_new);
      l = l * alpha + p;
      for (var c = 0u; c < D; c++) {
        acc[c] = acc[c] * alpha + p * f32(v[base + j * D + c]);
      }
      count_read(SLOT_V, D * T_BYTES);
      m = m_new;
    }
    for (var c = 0u; c < D; c++) {
      o[base + row * D + c] = T(acc[c] / l);
    }
    count_write(SLOT_O, D * T_BYTES);
  }
  count_flush();
}
