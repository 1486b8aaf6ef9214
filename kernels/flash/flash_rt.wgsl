// FlashAttention forward with GEMM-style register tiles (flash v6): the same algorithm as
// flash.wgsl (query blocks outer, online softmax in base 2, O divided by l once at the end), with
// the thread tiles of a good SGEMM.
//
// A thread owns RM query rows (RM4 groups of four consecutive rows: 4 * (ty + i * TY) + e) and,
// in the score tile, RN4 groups of four consecutive keys (4 * (tx + j * TX) + e); in the output,
// RD4 vec4 columns (tx + j * TX). Q and K are staged transposed (q_t[k][rows / 4], k_t[k][keys /
// 4]), so the score loop over the head dim k reads RM4 + RN4 vec4s for RM * RN4 vec4 FMAs, and a
// warp's lanes read consecutive vec4s (no bank conflicts; lanes of one ty share an address). Q is
// pre-multiplied by scale * log2(e) while staged. P goes through p_t[key][rows / 4] (rows padded
// by one vec4), read as vec4s in the P·V loop beside V's rows.
//
// Row maxima and sums: the TX threads of a row group are TX consecutive invocations. With SG
// (the device has subgroups of at least TX lanes in invocation order, see gpu.ts) they combine
// through subgroupShuffleXor: no workgroup memory, no barrier. Without, through red[][] and a
// barrier. Row sums stay per-thread partial sums (each thread's own keys) until the end.
//
// KV_SHARED (head dims past 64, where Q^T, K^T, V and P^T do not fit in workgroup memory
// together): K^T and V take turns in one buffer, V loaded after the scores are read.
//
// The generated prelude (flash/mod.ts, program.ts) defines D, D4, BR, BC, RM, RM4, TX, TY, RN4,
// RD4, WG, BR4, BR4P, SG, KV_SHARED, the key-block walk, the tile accessors k_at, k_put, v_at,
// v_put and row_combine (subgroup shuffles, or a stub on the portable path); the header the
// bindings (flash.wgsl's list) and counters.

const NEG: f32 = -3.0e38;
const LN2: f32 = 0.6931471805599453;

var<workgroup> q_t: array<array<vec4<f32>, BR4>, D>;
var<workgroup> p_t: array<array<vec4<f32>, BR4P>, BC>;
var<workgroup> red: array<array<f32, TX>, BR>;

// Stages K rows [row0, row0 + BC) transposed (consecutive invocations take consecutive rows, so
// the scalar stores into k_t are conflict-free), zero past n.
fn stage_k(base: u32, row0: u32, n: u32, t: u32) {
  for (var idx = t; idx < BC * D4; idx += WG) {
    let r = idx % BC;
    let c = idx / BC;
    var x = vec4<f32>();
    if row0 + r < n {
      x = vec4<f32>(k[base + (row0 + r) * D4 + c]);
      count_read(SLOT_K, 4u * T_BYTES);
    }
    k_put(4u * c, r, x.x);
    k_put(4u * c + 1u, r, x.y);
    k_put(4u * c + 2u, r, x.z);
    k_put(4u * c + 3u, r, x.w);
  }
}

// Stages V rows [row0, row0 + BC) as they are (coalesced), zero past n.
fn stage_v(base: u32, row0: u32, n: u32, t: u32) {
  for (var idx = t; idx < BC * D4; idx += WG) {
    let r = idx / D4;
    let c = idx % D4;
    var x = vec4<f32>();
    if row0 + r < n {
      x = vec4<f32>(v[base + (row0 + r) * D4 + c]);
      count_read(SLOT_V, 4u * T_BYTES);
    }
    v_put(r, c, x);
  }
}

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

  for (var idx = t; idx < BR * D4; idx += WG) {
    let r = idx % BR;
    let c = idx / BR;
    var x = vec4<f32>();
    if q0 + r < n {
      x = vec4<f32>(q[base + (q0 + r) * D4 + c]) * params.scale_log2e;
      count_read(SLOT_Q, 4u * T_BYTES);
    }
    q_t[4u * c][r / 4u][r % 4u] = x.x;
    q_t[4u * c + 1u][r / 4u][r % 4u] = x.y;
    q_t[4u * c + 2u][r / 4u][r % 4u] = x.z;
    q_t[4u * c + 3u][r / 4u][r % 4u] = x.w;
  }

  var m: array<array<f32, VEC>, RM4>;
  var l: array<array<f32, VEC>, RM4>;
  var acc: array<array<array<vec4<f32>, RD4>, VEC>, RM4>;
  for (var i = 0u; i < RM4; i++) {
    for (var e = 0u; e < VEC; e++) {
      m[i][e] = NEG;
      l[i][e] = 0.0;
    }
  }

  let causal = params.causal != 0u;
  let q_last = min(q0 + BR, n) - 1u;
  let blocks = kv_block_count(qb, select(n - 1u, q_last, causal), t);

  for (var bi = 0u; bi < blocks; bi++) {
    // Every thread is done with the previous block's tiles.
    workgroupBarrier();
    let k0 = kv_block_at(qb, bi, t) * BC;
    if causal && k0 > q_last {
      continue; // only a block-sparse row can list a block past the diagonal
    }
    stage_k(base, k0, n, t);
    if !KV_SHARED {
      stage_v(base, k0, n, t);
    }
    workgroupBarrier();

    var s: array<array<array<vec4<f32>, RN4>, VEC>, RM4>;
    for (var i = 0u; i < RM4; i++) {
      for (var e = 0u; e < VEC; e++) {
        for (var j = 0u; j < RN4; j++) {
          s[i][e][j] = vec4<f32>();
        }
      }
    }
    for (var kk = 0u; kk < D; kk++) {
      var qv: array<vec4<f32>, RM4>;
      for (var i = 0u; i < RM4; i++) {
        qv[i] = q_t[kk][ty + i * TY];
      }
      var kv: array<vec4<f32>, RN4>;
      for (var j = 0u; j < RN4; j++) {
        kv[j] = k_at(kk, tx + j * TX);
      }
      for (var i = 0u; i < RM4; i++) {
        for (var e = 0u; e < VEC; e++) {
          for (var j = 0u; j < RN4; j++) {
            s[i][e][j] += qv[i][e] * kv[j];
          }
        }
      }
    }

    // Mask, and this block's maximum of each row over this thread's keys.
    var mx: array<array<f32, VEC>, RM4>;
    for (var i = 0u; i < RM4; i++) {
      for (var e = 0u; e < VEC; e++) {
        let row = q0 + 4u * (ty + i * TY) + e;
        var x = NEG;
        for (var j = 0u; j < RN4; j++) {
          let key = vec4<u32>(k0 + 4u * (tx + j * TX)) + vec4<u32>(0u, 1u, 2u, 3u);
          let masked = (key >= vec4<u32>(n)) | (vec4<bool>(causal) & (key > vec4<u32>(row)));
          s[i][e][j] = select(s[i][e][j], vec4<f32>(NEG), masked);
          let sv = s[i][e][j];
          x = max(x, max(max(sv.x, sv.y), max(sv.z, sv.w)));
        }
        mx[i][e] = x;
      }
    }
    if SG {
      for (var i = 0u; i < RM4; i++) {
        for (var e = 0u; e < VEC; e++) {
          mx[i][e] = row_combine(mx[i][e], false);
        }
      }
    } else {
      for (var i = 0u; i < RM4; i++) {
        for (var e = 0u; e < VEC; e++) {
          red[4u * (ty + i * TY) + e][tx] = mx[i][e];
        }
      }
    }
    if KV_SHARED || !SG {
      // Scores are read (K^T may take V) and the partial maxima are in red.
      workgroupBarrier();
    }
    if KV_SHARED {
      stage_v(base, k0, n, t);
    }
    for (var i = 0u; i < RM4; i++) {
      var pr: array<array<f32, VEC>, VEC>; // [key e2][row e] of key group j, transposed for p_t
      for (var e = 0u; e < VEC; e++) {
        var x = mx[i][e];
        if !SG {
          let r = 4u * (ty + i * TY) + e;
          for (var j = 0u; j < TX; j++) {
            x = max(x, red[r][j]);
          }
        }
        let mnew = max(m[i][e], x);
        let alpha = exp2(m[i][e] - mnew);
        m[i][e] = mnew;
        l[i][e] *= alpha;
        for (var c = 0u; c < RD4; c++) {
          acc[i][e][c] *= alpha;
        }
        for (var j = 0u; j < RN4; j++) {
          let sv = s[i][e][j];
          s[i][e][j] = select(exp2(sv - vec4<f32>(mnew)), vec4<f32>(), sv <= vec4<f32>(NEG));
          let p = s[i][e][j];
          l[i][e] += (p.x + p.y) + (p.z + p.w);
        }
      }
      for (var j = 0u; j < RN4; j++) {
        let key = 4u * (tx + j * TX);
        let col = ty + i * TY;
        p_t[key][col] = vec4<f32>(s[i][0][j].x, s[i][1][j].x, s[i][2][j].x, s[i][3][j].x);
        p_t[key + 1u][col] = vec4<f32>(s[i][0][j].y, s[i][1][j].y, s[i][2][j].y, s[i][3][j].y);
        p_t[key + 2u][col] = vec4<f32>(s[i][0][j].z, s[i][1][j].z, s[i][2][j].z, s[i][3][j].z);
        p_t[key + 3u][col] = vec4<f32>(s[i][0][j].w, s[i][1][j].w, s[i][2][j].w, s[i][3][j].w);
      }
    }
    workgroupBarrier();

    // acc += P V over this block's keys.
    for (var key = 0u; key < BC; key++) {
      var pv: array<vec4<f32>, RM4>;
      for (var i = 0u; i < RM4; i++) {
        pv[i] = p_t[key][ty + i * TY];
      }
      var vv: array<vec4<f32>, RD4>;
      for (var c = 0u; c < RD4; c++) {
        vv[c] = v_at(key, tx + c * TX);
      }
      for (var i = 0u; i < RM4; i++) {
        for (var e = 0u; e < VEC; e++) {
          for (var c = 0u; c < RD4; c++) {
            acc[i][e][c] += pv[i][e] * vv[c];
          }
        }
      }
    }
  }

  // Each row's sum over all its keys: the TX threads' partial sums. The portable path's red
  // was last read before the P·V barrier of the last block.
  for (var i = 0u; i < RM4; i++) {
    for (var e = 0u; e < VEC; e++) {
      if SG {
        l[i][e] = row_combine(l[i][e], true);
      } else {
        red[4u * (ty + i * TY) + e][tx] = l[i][e];
      }
    }
  }
  if !SG {
    workgroupBarrier();
    for (var i = 0u; i < RM4; i++) {
      for (var e = 0u; e < VEC; e++) {
        var x = 0.0;
        for (var j = 0u; j < TX; j++) {
          x += red[4u * (ty + i * TY) + e][j];
        }
        l[i][e] = x;
      }
    }
  }

  for (var i = 0u; i < RM4; i++) {
    for (var e = 0u; e < VEC; e++) {
      let row = q0 + 4u * (ty + i * TY) + e;
      if row < n {
        let inv = select(0.0, 1.0 / l[i][e], l[i][e] > 0.0);
        for (var c = 0u; c < RD4; c++) {
          o[base + row * D4 + tx + c * TX] = T4(acc[i][e][c] * inv);
          count_write(SLOT_O, 4u * T_BYTES);
        }
        if tx == 0u {
          lse[bh * n + row] = select(NEG, m[i][e] * LN2 + log(l[i][e]), l[i][e] > 0.0);
          count_write(SLOT_LSE, 4u);
        }
      }
    }
  }
  count_flush();
}
