// FlashAttention forward (Dao et al., 2022), query blocks outer as in FlashAttention-2.
//
// For one head, with Q, K, V, O in R^{N x D} and scale = 1/sqrt(D):
//   O = softmax(scale * Q K^T + mask) V
// A workgroup owns BR query rows and walks the key/value blocks of BC rows. It keeps the running
// row maximum m, the running row sum l and the unnormalised output accumulator on chip (online
// softmax); S and P exist only in registers and workgroup memory. O is divided by l once, at the
// end, and written once, together with the row's log-sum-exp.
//
// Scores are kept in base 2: s2 = scale * log2(e) * q.k, so p = exp2(s2 - m2).
// A row whose every key is masked (only possible with a block-sparse mask) yields O = 0 and
// LSE = -3.4e38 (there is no -inf in WGSL).
//
// The prelude that program.ts prepends defines:
//   T, T4          storage scalar and vec4 (f32 or f16); arithmetic is f32
//   D, D4          head dim and D / 4
//   BR, BC         query rows per workgroup, key rows per block
//   RM, TX, TY     rows per thread, threads along keys / output columns, threads along rows
//   RN, RD4        key columns per thread in the score tile (BC / TX), output vec4s per thread
//   WG             threads per workgroup (TX * TY)
//   BC4            BC / 4
//   D4P, BC4P      padded row lengths (in vec4) of the workgroup tiles: one extra vec4 a row
//                  moves consecutive rows to other banks, so the column reads do not conflict
//   kv_block_count(qb, last_key, t) and kv_block_at(qb, i, t): the key blocks to visit
//     (dense: 0 ..= last_key / BC, last_key clipped by the causal diagonal; block-sparse: the
//     mask's CSR row, read by thread t = 0 and shared through workgroup memory)
//   count_read(slot, bytes), count_write(slot, bytes), count_flush(): the counting variant's
//     instrumentation (empty functions otherwise)
//
// Bindings, declared by the generated header from the plan's binding list (flash/mod.ts), in
// this order after params (tensors [B, H, N, D] row-major, one (b, h) pair per workgroup row of
// the grid):
//   params: uniform { n, bh, causal, scale_log2e }
//   q: array<T4>, B*H*N*D4      k: same      v: same
//   o: array<T4>, B*H*N*D4 (written)
//   lse: array<f32>, B*H*N (written; natural-log log-sum-exp of each row's scores)
//   block-sparse only: rowptr: array<u32>, Tr + 1;  colidx: array<u32>
//   counting only: counters (one 64-bit read and write count per counter slot)
//
// Grid: (Tr, B*H) workgroups of WG threads, Tr = ceil(N / BR).

// flash_tiles.wgsl (before this body): NEG, LN2, q_tile, kv_tile, row_max_part, load_q_tile and
// load_kv_tile.
var<workgroup> p_tile: array<array<vec4<f32>, BC4P>, BR>;

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

  load_q_tile(base, q0, n, t);

  var m: array<f32, RM>;
  var l: array<f32, RM>;
  var acc: array<array<vec4<f32>, RD4>, RM>;
  for (var i = 0u; i < RM; i++) {
    m[i] = NEG;
    l[i] = 0.0;
  }

  let causal = params.causal != 0u;
  let q_last = min(q0 + BR, n) - 1u;
  let blocks = kv_block_count(qb, select(n - 1u, q_last, causal), t);

  for (var bi = 0u; bi < blocks; bi++) {
    // Every thread is done with the previous block's kv_tile and p_tile.
    workgroupBarrier();
    let k0 = kv_block_at(qb, bi, t) * BC;
    if causal && k0 > q_last {
      continue; // only a block-sparse row can list a block past the diagonal
    }
    load_kv_tile(false, base, k0, n, t);
    workgroupBarrier();

    // Scores of this thread's RM rows (ty + i*TY) and RN key columns (tx + j*TX).
    var s: array<array<f32, RN>, RM>;
    for (var i = 0u; i < RM; i++) {
      for (var j = 0u; j < RN; j++) {
        s[i][j] = 0.0;
      }
    }
    for (var c = 0u; c < D4; c++) {
      var kc: array<vec4<f32>, RN>;
      for (var j = 0u; j < RN; j++) {
        kc[j] = vec4<f32>(kv_tile[tx + j * TX][c]);
      }
      for (var i = 0u; i < RM; i++) {
        let qc = vec4<f32>(q_tile[ty + i * TY][c]);
        for (var j = 0u; j < RN; j++) {
          s[i][j] += dot(qc, kc[j]);
        }
      }
    }
    for (var i = 0u; i < RM; i++) {
      let row = q0 + ty + i * TY;
      var mx = NEG;
      for (var j = 0u; j < RN; j++) {
        let key = k0 + tx + j * TX;
        let masked = key >= n || (causal && key > row);
        s[i][j] = select(s[i][j] * params.scale_log2e, NEG, masked);
        mx = max(mx, s[i][j]);
      }
      row_max_part[ty + i * TY][tx] = mx;
    }
    workgroupBarrier();

    // Scores are read: kv_tile can take V while the row maxima are combined.
    load_kv_tile(true, base, k0, n, t);
    for (var i = 0u; i < RM; i++) {
      let r = ty + i * TY;
      var mx = m[i];
      for (var x = 0u; x < TX; x++) {
        mx = max(mx, row_max_part[r][x]);
      }
      let alpha = exp2(m[i] - mx);
      m[i] = mx;
      l[i] *= alpha;
      for (var c = 0u; c < RD4; c++) {
        acc[i][c] *= alpha;
      }
      for (var j = 0u; j < RN; j++) {
        let col = tx + j * TX;
        p_tile[r][col / 4u][col % 4u] = select(exp2(s[i][j] - mx), 0.0, s[i][j] <= NEG);
      }
    }
    workgroupBarrier();

    // acc += P V over this block, four keys at a time (P read as vec4); every thread of a row
    // also sums the row's p into l.
    for (var j4 = 0u; j4 < BC4; j4++) {
      var p4: array<vec4<f32>, RM>;
      for (var i = 0u; i < RM; i++) {
        p4[i] = p_tile[ty + i * TY][j4];
        l[i] += p4[i].x + p4[i].y + p4[i].z + p4[i].w;
      }
      for (var jj = 0u; jj < VEC; jj++) {
        var vj: array<vec4<f32>, RD4>;
        for (var c = 0u; c < RD4; c++) {
          vj[c] = vec4<f32>(kv_tile[j4 * 4u + jj][tx * RD4 + c]);
        }
        for (var i = 0u; i < RM; i++) {
          for (var c = 0u; c < RD4; c++) {
            acc[i][c] += p4[i][jj] * vj[c];
          }
        }
      }
    }
  }

  for (var i = 0u; i < RM; i++) {
    let row = q0 + ty + i * TY;
    if row < n {
      let inv = select(0.0, 1.0 / l[i], l[i] > 0.0);
      for (var c = 0u; c < RD4; c++) {
        o[base + row * D4 + tx * RD4 + c] = T4(acc[i][c] * inv);
        count_write(SLOT_O, 4u * T_BYTES);
      }
      if tx == 0u {
        lse[bh * n + row] = select(NEG, m[i] * LN2 + log(l[i]), l[i] > 0.0);
        count_write(SLOT_LSE, 4u);
      }
    }
  }
  count_flush();
}
