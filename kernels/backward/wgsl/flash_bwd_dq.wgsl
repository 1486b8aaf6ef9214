// FlashAttention backward, pass 3 of 3: dQ, query blocks outer (FlashAttention-2, no atomics).
//
// For one head, with Q, K, V, dO in R^{N x D}, the forward's log-sum-exp L in R^N and
// D = rowsum(dO ∘ O) from pass 1, for each query row i:
//   P_ij  = exp(scale * q_i.k_j - L_i)          (recomputed; 0 where masked)
//   dS_ij = P_ij (dO_i . v_j - D_i)
//   dQ_i  = scale * sum_j dS_ij k_j
// A workgroup owns BR query rows: it stages Q_i and dO_i once, keeps dQ_i in registers while it
// walks the key/value blocks of BC rows (exactly the blocks the forward visits), and writes dQ_i
// once. P and dS are recomputed here rather than shared with pass 2: the price of writing dQ
// without atomics is a second read of K and V per query block and a second S and dP.
//
// Scores are kept in base 2: s2 = scale * log2(e) * q.k, so P = exp2(s2 - L * log2(e)).
//
// The prelude defines T, T4 (storage; arithmetic is f32), D, D4, BR, BC, RM, TX, TY, RN, RD4,
// WG, VEC, BC4, D4P and BC4P (padded tile rows in vec4), the slot constants and the counting
// helpers, kv_block_count(qb, t) and kv_block_at(qb, i, t) (dense: key blocks 0 ..= last / BC,
// last = the block's last row when causal, else N - 1; block-sparse: the mask's CSR row qb, read
// by thread 0 and shared through workgroup memory, as in the forward), then declares
// the bindings from the host's list (generated in that order: params at 0, then 1, 2, …):
//   params: uniform { n, bh, causal, scale }
//   q, k, v, dout: array<T4>, B*H*N*D4 each (dout = dO)
//   lse: array<f32>, B*H*N (natural log, as the forward writes it)   delta: array<f32>, B*H*N
//   dq: array<T4>, B*H*N*D4 (written)
//   block-sparse only: rowptr: array<u32>, Tr + 1;  colidx: array<u32>, nnz (the mask in CSR)
//   counting only: counters (generated, one 64-bit count per slot and direction)
//
// Grid: (ceil(N / BR), B*H) workgroups of WG threads.

const NEG: f32 = -3.0e38;
const LOG2E: f32 = 1.4426950408889634;

var<workgroup> q_tile: array<array<T4, D4P>, BR>;
var<workgroup> do_tile: array<array<T4, D4P>, BR>;
var<workgroup> k_tile: array<array<T4, D4P>, BC>;
var<workgroup> v_tile: array<array<T4, D4P>, BC>;
var<workgroup> ds_tile: array<array<vec4<f32>, BC4P>, BR>;
var<workgroup> lse_tile: array<f32, BR>;
var<workgroup> delta_tile: array<f32, BR>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = params.n;
  let qb = wid.x;
  let bh = wid.y;
  if t == 0u {
    count_read(SLOT_UNIFORM, 16u);
  }
  let q0 = qb * BR;
  let base = bh * n * D4;
  let ty = t / TX;
  let tx = t % TX;
  let causal = params.causal != 0u;
  let scale2 = params.scale * LOG2E;

  for (var idx = t; idx < BR * D4; idx += WG) {
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
  for (var r = t; r < BR; r += WG) {
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

  var acc: array<array<vec4<f32>, RD4>, RM>;
  let q_last = min(q0 + BR, n) - 1u;
  let blocks = kv_block_count(qb, t);
  for (var bi = 0u; bi < blocks; bi++) {
    // Every thread is done with the previous block's tiles (and, the first time, Q's).
    workgroupBarrier();
    let k0 = kv_block_at(qb, bi, t) * BC;
    if causal && k0 > q_last {
      continue; // only a block-sparse row can list a block past the diagonal
    }
    for (var idx = t; idx < BC * D4; idx += WG) {
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
    workgroupBarrier();

    // S and dP of this thread's RM query rows and RN key columns.
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
      var kc: array<vec4<f32>, RN>;
      var vc: array<vec4<f32>, RN>;
      for (var j = 0u; j < RN; j++) {
        kc[j] = vec4<f32>(k_tile[tx + j * TX][c]);
        vc[j] = vec4<f32>(v_tile[tx + j * TX][c]);
      }
      for (var i = 0u; i < RM; i++) {
        let qc = vec4<f32>(q_tile[ty + i * TY][c]);
        let dc = vec4<f32>(do_tile[ty + i * TY][c]);
        for (var j = 0u; j < RN; j++) {
          s[i][j] += dot(qc, kc[j]);
          dp[i][j] += dot(dc, vc[j]);
        }
      }
    }
    for (var i = 0u; i < RM; i++) {
      let r = ty + i * TY;
      let row = q0 + r;
      let l = lse_tile[r];
      for (var j = 0u; j < RN; j++) {
        let col = tx + j * TX;
        let key = k0 + col;
        let masked = key >= n || row >= n || (causal && key > row) || l <= NEG;
        let p = select(exp2(s[i][j] * scale2 - l * LOG2E), 0.0, masked);
        ds_tile[r][col / 4u][col % 4u] = p * (dp[i][j] - delta_tile[r]);
      }
    }
    workgroupBarrier();

    // dQ += dS K over this block, four keys at a time (K is still in k_tile).
    for (var j4 = 0u; j4 < BC4; j4++) {
      var ds4: array<vec4<f32>, RM>;
      for (var i = 0u; i < RM; i++) {
        ds4[i] = ds_tile[ty + i * TY][j4];
      }
      for (var jj = 0u; jj < VEC; jj++) {
        var kj: array<vec4<f32>, RD4>;
        for (var c = 0u; c < RD4; c++) {
          kj[c] = vec4<f32>(k_tile[j4 * 4u + jj][tx * RD4 + c]);
        }
        for (var i = 0u; i < RM; i++) {
          for (var c = 0u; c < RD4; c++) {
            acc[i][c] += ds4[i][jj] * kj[c];
          }
        }
      }
    }
  }

  for (var i = 0u; i < RM; i++) {
    let row = q0 + ty + i * TY;
    if row < n {
      for (var c = 0u; c < RD4; c++) {
        dq[base + row * D4 + tx * RD4 + c] = T4(acc[i][c] * params.scale);
        count_write(SLOT_DQ, 4u * T_BYTES);
      }
    }
  }
  count_flush();
}
