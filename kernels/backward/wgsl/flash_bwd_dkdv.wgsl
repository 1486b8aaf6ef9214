// FlashAttention backward, pass 2 of 3: dK and dV, key/value blocks outer (FlashAttention-2).
//
// For one head, with Q, K, V, dO in R^{N x D}, the forward's log-sum-exp L in R^N and
// D = rowsum(dO ∘ O) from pass 1, for each key row j:
//   P_ij  = exp(scale * q_i.k_j - L_i)          (recomputed; 0 where masked)
//   dP_ij = dO_i . v_j
//   dS_ij = P_ij (dP_ij - D_i)
//   dV_j  = sum_i P_ij dO_i,        dK_j = scale * sum_i dS_ij q_i
// A workgroup owns BR key rows: it stages K_j and V_j in workgroup memory once and keeps dK_j,
// dV_j in registers while it walks the query blocks of BC rows (staging Q_i, dO_i, L_i, D_i).
// No N x N matrix reaches GPU memory; dK and dV are written once. Key rows at or past N are
// zero-filled and never written; query rows past N, masked entries and rows whose every key is
// masked (L = -3e38, only under a block mask) get P = 0.
//
// The roles of the forward are swapped: here BR is the workgroup's KEY rows (the forward's Bc,
// the block mask's column block) and BC the QUERY rows of one step (the forward's Br, the mask's
// row block). The tile constants keep their forward meaning otherwise: a thread owns RM key
// rows (ty + i*TY) and RN query columns (tx + j*TX) of the BR x BC score tile, then RD4 vec4
// columns (tx*RD4 + c) of dK and dV.
//
// Scores are kept in base 2: s2 = scale * log2(e) * k.q, so P = exp2(s2 - L * log2(e)).
//
// The prelude defines T, T4 (storage; arithmetic is f32), D, D4, BR, BC, RM, TX, TY, RN, RD4,
// WG, VEC, BC4, D4P and BC4P (padded tile rows in vec4), the slot constants and the counting
// helpers, q_block_count(kb, t) and q_block_at(kb, i, t) (dense: query blocks from
// floor(k0 / BC) when causal, else 0, to the last; block-sparse: the mask's CSC column kb, read
// by thread 0 and shared through workgroup memory), then declares the bindings from the host's
// list (generated in that order: params at 0, then 1, 2, …):
//   params: uniform { n, bh, causal, scale }
//   q, k, v, dout: array<T4>, B*H*N*D4 each (dout = dO)
//   lse: array<f32>, B*H*N (natural log, as the forward writes it)   delta: array<f32>, B*H*N
//   dk, dv: array<T4>, B*H*N*D4 (written)
//   block-sparse only: colptr: array<u32>, Tc + 1;  rowidx: array<u32>, nnz (the mask in CSC)
//   counting only: counters (generated, one 64-bit count per slot and direction)
//
// dq_add(q0, bh, t): nothing (dq = "pass": the dQ pass computes dQ), or, with dq = "atomic",
// flash_bwd_dq_atomic.wgsl's adds of tau dS K to the f32 dQ accumulator (bound as dqa).
//
// Grid: (ceil(N / BR), B*H) workgroups of WG threads.

const NEG: f32 = -3.0e38;
const LOG2E: f32 = 1.4426950408889634;

var<workgroup> k_tile: array<array<T4, D4P>, BR>;
var<workgroup> v_tile: array<array<T4, D4P>, BR>;
var<workgroup> q_tile: array<array<T4, D4P>, BC>;
var<workgroup> do_tile: array<array<T4, D4P>, BC>;
var<workgroup> p_tile: array<array<vec4<f32>, BC4P>, BR>;
var<workgroup> ds_tile: array<array<vec4<f32>, BC4P>, BR>;
var<workgroup> lse_tile: array<f32, BC>;
var<workgroup> delta_tile: array<f32, BC>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = params.n;
  let kb = wid.x;
  let bh = wid.y;
  if t == 0u {
    count_read(SLOT_UNIFORM, 16u);
  }
  let k0 = kb * BR;
  let base = bh * n * D4;
  let ty = t / TX;
  let tx = t % TX;
  let causal = params.causal != 0u;
  let scale2 = params.scale * LOG2E;

  for (var idx = t; idx < BR * D4; idx += WG) {
    let r = idx / D4;
    let c = idx % D4;
    var kx = T4();
    var vx = T4();
    if k0 + r < n {
      kx = k[base + (k0 + r) * D4 + c];
      vx = v[base + (k0 + r) * D4 + c];
      count_read(SLOT_K, 4u * T_BYTES);
      count_read(SLOT_V, 4u * T_BYTES);
    }
    k_tile[r][c] = kx;
    v_tile[r][c] = vx;
  }

  var acc_dk: array<array<vec4<f32>, RD4>, RM>;
  var acc_dv: array<array<vec4<f32>, RD4>, RM>;
  let blocks = q_block_count(kb, t);
  for (var bi = 0u; bi < blocks; bi++) {
    // Every thread is done with the previous block's tiles.
    workgroupBarrier();
    let q0 = q_block_at(kb, bi, t) * BC;
    if causal && min(q0 + BC, n) - 1u < k0 {
      continue; // only a block-sparse column can list a block wholly above the diagonal
    }
    for (var idx = t; idx < BC * D4; idx += WG) {
      let r = idx / D4;
      let c = idx % D4;
      var qx = T4();
      var dx = T4();
      if q0 + r < n {
        qx = q[base + (q0 + r) * D4 + c];
        dx = dout[base + (q0 + r) * D4 + c];
        count_read(SLOT_Q, 4u * T_BYTES);
        count_read(SLOT_DOUT, 4u * T_BYTES);
      }
      q_tile[r][c] = qx;
      do_tile[r][c] = dx;
    }
    for (var r = t; r < BC; r += WG) {
      var l = NEG;
      var dd = 0.0;
      if q0 + r < n {
        l = lse[bh * n + q0 + r];
        dd = delta[bh * n + q0 + r];
        count_read(SLOT_LSE, 4u);
        count_read(SLOT_DELTA, 4u);
      }
      lse_tile[r] = l;
      delta_tile[r] = dd;
    }
    workgroupBarrier();

    // S^T and dP^T of this thread's RM key rows and RN query columns.
    var s: array<array<f32, RN>, RM>;
    var dp: array<array<f32, RN>, RM>;
    // Zeroed here: naga declares a loop's variables once, at the top of the function.
    for (var i = 0u; i < RM; i++) {
      for (var j = 0u; j < RN; j++) {
        s[i][j] = 0.0;
        dp[i][j] = 0.0;
      }
    }
    for (var c = 0u; c < D4; c++) {
      var qc: array<vec4<f32>, RN>;
      var dc: array<vec4<f32>, RN>;
      for (var j = 0u; j < RN; j++) {
        qc[j] = vec4<f32>(q_tile[tx + j * TX][c]);
        dc[j] = vec4<f32>(do_tile[tx + j * TX][c]);
      }
      for (var i = 0u; i < RM; i++) {
        let kc = vec4<f32>(k_tile[ty + i * TY][c]);
        let vc = vec4<f32>(v_tile[ty + i * TY][c]);
        for (var j = 0u; j < RN; j++) {
          s[i][j] += dot(kc, qc[j]);
          dp[i][j] += dot(vc, dc[j]);
        }
      }
    }
    for (var i = 0u; i < RM; i++) {
      let r = ty + i * TY;
      let key = k0 + r;
      for (var j = 0u; j < RN; j++) {
        let col = tx + j * TX;
        let row = q0 + col;
        let l = lse_tile[col];
        let masked = key >= n || row >= n || (causal && key > row) || l <= NEG;
        let p = select(exp2(s[i][j] * scale2 - l * LOG2E), 0.0, masked);
        p_tile[r][col / 4u][col % 4u] = p;
        ds_tile[r][col / 4u][col % 4u] = p * (dp[i][j] - delta_tile[col]);
      }
    }
    workgroupBarrier();

    // dV += P^T dO and dK += dS^T Q over this block, four query rows at a time.
    for (var j4 = 0u; j4 < BC4; j4++) {
      var p4: array<vec4<f32>, RM>;
      var ds4: array<vec4<f32>, RM>;
      for (var i = 0u; i < RM; i++) {
        p4[i] = p_tile[ty + i * TY][j4];
        ds4[i] = ds_tile[ty + i * TY][j4];
      }
      for (var jj = 0u; jj < VEC; jj++) {
        var dj: array<vec4<f32>, RD4>;
        var qj: array<vec4<f32>, RD4>;
        for (var c = 0u; c < RD4; c++) {
          dj[c] = vec4<f32>(do_tile[j4 * 4u + jj][tx * RD4 + c]);
          qj[c] = vec4<f32>(q_tile[j4 * 4u + jj][tx * RD4 + c]);
        }
        for (var i = 0u; i < RM; i++) {
          for (var c = 0u; c < RD4; c++) {
            acc_dv[i][c] += p4[i][jj] * dj[c];
            acc_dk[i][c] += ds4[i][jj] * qj[c];
          }
        }
      }
    }
    // Atomic dQ (dq = "atomic"): this block's dQ share, added to the accumulator; else nothing.
    dq_add(q0, bh, t);
  }

  for (var i = 0u; i < RM; i++) {
    let key = k0 + ty + i * TY;
    if key < n {
      for (var c = 0u; c < RD4; c++) {
        dk[base + key * D4 + tx * RD4 + c] = T4(acc_dk[i][c] * params.scale);
        dv[base + key * D4 + tx * RD4 + c] = T4(acc_dv[i][c]);
        count_write(SLOT_DK, 4u * T_BYTES);
        count_write(SLOT_DV, 4u * T_BYTES);
      }
    }
  }
  count_flush();
}
