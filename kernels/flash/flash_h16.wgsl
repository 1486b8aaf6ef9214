// FlashAttention forward with packed half arithmetic (issue 10, `f16Math: "packed"`): the v5
// algorithm and layout of flash.wgsl (query blocks outer, online softmax in base 2, O divided
// by l once at the end), f16 storage only, with both matrix products in f16 registers.
//
// - Scores: h[i][j] += q * k as vec4<f16> FMAs over CH4 vec4s of the head dim (CH4 * 4
//   elements, two packed HFMA2 a vec4 on NVIDIA), then the chunk's four lanes are summed in f16
//   (two adds) and added to the f32 score s[i][j]. So no f16 partial sum holds more than CH4
//   products plus two additions; the row maxima, the exponentials, l and the LSE stay f32.
// - P·V: p = exp2(s - m) is computed in f32 and rounded to f16 into p_tile (half the workgroup
//   memory and reads of v5's f32 p_tile); hv[i][c] += p * v as vec4<f16> over CK4 * 4 keys,
//   then added to the f32 accumulator acc. l sums the same rounded p, in f32: each thread only
//   its own RN keys of a row (v5 has every thread of the row add all BC, which here would cost
//   about half as much as the P·V FMAs), the row's TX partial sums added once at the end.
//
// Error (per output, relative to max |O|): the f16 chunk sums add at most about
// (CH4 + 2) * u * sum_k |q_k k_k| <= (CH4 + 2) * u * |q| |k| to a score before it is scaled
// (u = 2^-11, f16's unit roundoff), which moves p by a relative (CH4 + 2) * u * scale * |q||k|;
// P·V adds (CK4 * 4 + 1) * u relative to the chunk's sum of |p v|.
//
// The prelude (flash/mod.ts) defines what flash.wgsl's does (T4 is vec4<f16> here: the program
// is built only for f16 storage), plus CH4 (vec4s of the head dim per score chunk) and CK4 (key
// quads per P·V chunk). Bindings, grid and counters are flash.wgsl's.

// flash_tiles.wgsl (before this body): NEG, LN2, q_tile, kv_tile, row_max_part, load_q_tile and
// load_kv_tile.
var<workgroup> p_tile: array<array<vec4<f16>, BC4P>, BR>;

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

    // Scores of this thread's RM rows (ty + i*TY) and RN key columns (tx + j*TX): f16 chunks of
    // CH4 vec4s, each folded into the f32 score.
    var s: array<array<f32, RN>, RM>;
    var h: array<array<vec4<f16>, RN>, RM>;
    for (var i = 0u; i < RM; i++) {
      for (var j = 0u; j < RN; j++) {
        s[i][j] = 0.0;
        h[i][j] = vec4<f16>();
      }
    }
    for (var c = 0u; c < D4; c++) {
      var kc: array<vec4<f16>, RN>;
      for (var j = 0u; j < RN; j++) {
        kc[j] = kv_tile[tx + j * TX][c];
      }
      for (var i = 0u; i < RM; i++) {
        let qc = q_tile[ty + i * TY][c];
        for (var j = 0u; j < RN; j++) {
          h[i][j] = fma(qc, kc[j], h[i][j]);
        }
      }
      if (c + 1u) % CH4 == 0u || c + 1u == D4 {
        for (var i = 0u; i < RM; i++) {
          for (var j = 0u; j < RN; j++) {
            let hh = h[i][j].xy + h[i][j].zw;
            s[i][j] += f32(hh.x + hh.y);
            h[i][j] = vec4<f16>();
          }
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
      for (var c = 0u; c < RD4; c++) {
        acc[i][c] *= alpha;
      }
      var own = 0.0;
      for (var j = 0u; j < RN; j++) {
        let col = tx + j * TX;
        let p = f16(select(exp2(s[i][j] - mx), 0.0, s[i][j] <= NEG));
        p_tile[r][col / 4u][col % 4u] = p;
        own += f32(p);
      }
      l[i] = l[i] * alpha + own;
    }
    workgroupBarrier();

    // acc += P V over this block, four keys at a time (P read as vec4<f16>), in f16 chunks of
    // CK4 key quads.
    var hv: array<array<vec4<f16>, RD4>, RM>;
    for (var i = 0u; i < RM; i++) {
      for (var c = 0u; c < RD4; c++) {
        hv[i][c] = vec4<f16>();
      }
    }
    for (var j4 = 0u; j4 < BC4; j4++) {
      var p4: array<vec4<f16>, RM>;
      for (var i = 0u; i < RM; i++) {
        p4[i] = p_tile[ty + i * TY][j4];
      }
      for (var jj = 0u; jj < VEC; jj++) {
        var vj: array<vec4<f16>, RD4>;
        for (var c = 0u; c < RD4; c++) {
          vj[c] = kv_tile[j4 * 4u + jj][tx * RD4 + c];
        }
        for (var i = 0u; i < RM; i++) {
          for (var c = 0u; c < RD4; c++) {
            hv[i][c] = fma(vec4<f16>(p4[i][jj]), vj[c], hv[i][c]);
          }
        }
      }
      if (j4 + 1u) % CK4 == 0u || j4 + 1u == BC4 {
        for (var i = 0u; i < RM; i++) {
          for (var c = 0u; c < RD4; c++) {
            acc[i][c] += vec4<f32>(hv[i][c]);
            hv[i][c] = vec4<f16>();
          }
        }
      }
    }
  }

  // The row's l: its TX threads' partial sums (row_max_part is free once all are here).
  workgroupBarrier();
  for (var i = 0u; i < RM; i++) {
    row_max_part[ty + i * TY][tx] = l[i];
  }
  workgroupBarrier();
  for (var i = 0u; i < RM; i++) {
    var sum = 0.0;
    for (var x = 0u; x < TX; x++) {
      sum += row_max_part[ty + i * TY][x];
    }
    l[i] = sum;
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
