// Standard attention backward (Algorithm 3), the three N x d products:
//   C = op(A) B * (scale if SCALED else 1),   A in R^{N x N} from GPU memory, B, C in R^{N x D}
// where op(A) = A^T when A_T, else A. Algorithm 3 uses it three times:
//   step 1: dV = P^T dO     (a = p,  A_T, b = dout, c = dv)
//   step 4: dQ = dS K       (a = ds,      b = k,    c = dq, scaled)
//   step 5: dK = dS^T Q     (a = ds, A_T, b = q,    c = dk, scaled)
// (dS here is P ∘ (dP - D) without the softmax scale; the scale of S = scale * Q K^T is applied
// to the products, as the paper's tau in Algorithm 4.)
//
// A workgroup computes BR rows of C (all D columns). It walks the reduction index in blocks of
// BC: stages the BR x BC block of op(A) (as f32; read along A's rows, so a transposed block is
// read column-wise from A's rows, coalesced across threads either way) and the BC x D block of B
// in workgroup memory; each thread accumulates RM rows (ty + i*TY) by RD4 vec4 columns
// (tx*RD4 + c). A is read in full, causal or not: Algorithm 3 does not skip P's zeros.
//
// The prelude defines T, T4 (storage; arithmetic is f32), D, D4, BR, BC, BC4, RM, TX, TY, RD4,
// WG, VEC, BC4P (padded row of the A tile in vec4), A_T and SCALED (bool), SLOT_A, SLOT_B and
// SLOT_C (the counter slots of the buffers bound as a, b and c_out), the counting helpers, and the
// bindings from the host's list (numbers in that order, skipping the counters'):
//   params: uniform { n, bh, causal, scale }
//   a: array<T>, B*H*N*N      b: array<T4>, B*H*N*D4      c_out: array<T4>, B*H*N*D4 (written)
//   counting only: counters: array<atomic<u32>, 64>
//
// Grid: (ceil(N / BR), B*H).

var<workgroup> a_tile: array<array<vec4<f32>, BC4P>, BR>;
var<workgroup> b_tile: array<T4, BC * D4>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = params.n;
  if t == 0u {
    count_read(SLOT_UNIFORM, 16u);
  }
  let r0 = wid.x * BR;
  let bh = wid.y;
  let base = bh * n * D4;
  let a_base = bh * n * n;
  let ty = t / TX;
  let tx = t % TX;

  var acc: array<array<vec4<f32>, RD4>, RM>;
  for (var k0 = 0u; k0 < n; k0 += BC) {
    workgroupBarrier();
    for (var idx = t; idx < BR * BC; idx += WG) {
      // Consecutive threads take consecutive elements of A's rows.
      let r = select(idx / BC, idx % BR, A_T);
      let c = select(idx % BC, idx / BR, A_T);
      let row = r0 + r;
      let col = k0 + c;
      var x = 0.0;
      if row < n && col < n {
        x = f32(a[a_base + select(row * n + col, col * n + row, A_T)]);
        count_read(SLOT_A, T_BYTES);
      }
      a_tile[r][c / 4u][c % 4u] = x;
    }
    for (var idx = t; idx < BC * D4; idx += WG) {
      var x = T4();
      if k0 + idx / D4 < n {
        x = b[base + k0 * D4 + idx];
        count_read(SLOT_B, 4u * T_BYTES);
      }
      b_tile[idx] = x;
    }
    workgroupBarrier();
    for (var j4 = 0u; j4 < BC4; j4++) {
      var a4: array<vec4<f32>, RM>;
      for (var i = 0u; i < RM; i++) {
        a4[i] = a_tile[ty + i * TY][j4];
      }
      for (var jj = 0u; jj < VEC; jj++) {
        var bj: array<vec4<f32>, RD4>;
        for (var c = 0u; c < RD4; c++) {
          bj[c] = vec4<f32>(b_tile[(j4 * 4u + jj) * D4 + tx * RD4 + c]);
        }
        for (var i = 0u; i < RM; i++) {
          for (var c = 0u; c < RD4; c++) {
            acc[i][c] += a4[i][jj] * bj[c];
          }
        }
      }
    }
  }

  let factor = select(1.0, params.scale, SCALED);
  for (var i = 0u; i < RM; i++) {
    let row = r0 + ty + i * TY;
    if row < n {
      for (var c = 0u; c < RD4; c++) {
        c_out[base + row * D4 + tx * RD4 + c] = T4(acc[i][c] * factor);
        count_write(SLOT_C, 4u * T_BYTES);
      }
    }
  }
  count_flush();
}
