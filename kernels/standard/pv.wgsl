// Standard attention (Algorithm 0), pass 3 of 3: O = P V, reading P from GPU memory.
//
// A workgroup computes BR rows of O (all D columns) over one of KS ranges of the keys (split-K:
// with one head a dispatch at large N, ceil(N / BR) workgroups alone cannot fill the GPU, and
// each would walk all N keys). It walks its keys in blocks of BC: stages the BR x BC block of P
// (as f32) and the BC x D block of V in workgroup memory; each thread accumulates RM rows
// (ty + i*TY) by RD4 vec4 columns (tx*RD4 + c). P is read in full, causal or not (Algorithm 0
// does not skip the zeros). KS = 1 writes O; else each split writes its partial sum (f32) to
// part, and pv_sum.wgsl adds the KS partials into O.
//
// The prelude defines T, T4, D, D4, BR, BC, BC4 (= BC / 4), RM, TX, TY, RD4, WG, BC4P (row length
// of the P tile in vec4, padded by one against bank conflicts), KS, LOADS_A (= BR * BC / WG),
// LOADS_B (= ceil(BC * D4 / WG)) and the counting helpers.
//
// Bindings (declared by the generated header from standard/mod.ts's list, in this order):
//   params: uniform { n, first, causal, scale }
//   v: array<T4>, B*H*N*D4     p: array<T>, B*H*N*N (this dispatch's chunk, as in scores.wgsl)
//   KS = 1: o: array<T4>, B*H*N*D4 (written)
//   KS > 1: part: array<vec4<f32>>, [B*H][KS][N][D4] (written)
//   counting only: counters
// store(bh, split, row, column vec4, value) writes one vec4 of the result to o or to part
// (standard/mod.ts appends the one this KS needs).
//
// Grid: (ceil(chunk rows / BR), KS, heads in the chunk).

var<workgroup> p_tile: array<array<vec4<f32>, BC4P>, BR>;
var<workgroup> v_tile: array<T4, BC * D4>;

var<private> pa: array<f32, LOADS_A>;
var<private> vb: array<T4, LOADS_B>;

// Loads the key block at k (P rows q0.., V rows k..) into pa and vb.
fn load_block(k: u32, q0: u32, p_base: u32, base: u32, t: u32) {
  let n = params.n;
  for (var u = 0u; u < LOADS_A; u++) {
    let idx = t + u * WG;
    let r = q0 + idx / BC;
    let c = k + idx % BC;
    pa[u] = 0.0;
    if r < n && c < n {
      pa[u] = f32(p[p_base + r * n + c]);
      count_read(SLOT_P, T_BYTES);
    }
  }
  for (var u = 0u; u < LOADS_B; u++) {
    let idx = t + u * WG;
    vb[u] = T4();
    if idx < BC * D4 && k + idx / D4 < n {
      vb[u] = v[base + k * D4 + idx];
      count_read(SLOT_V, 4u * T_BYTES);
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = params.n;
  if t == 0u {
    count_read(SLOT_UNIFORM, 16u);
  }
  let r0 = params.first % n; // this chunk's first row (0 for whole heads)
  let q0 = r0 + wid.x * BR;
  let bh = params.first / n + wid.z;
  let base = bh * n * D4;
  let p_base = wid.z * n * n - r0 * n; // P is this dispatch's chunk, as in scores.wgsl
  // Keys a split: whole BC blocks, the key blocks shared out as evenly as KS allows.
  let kb = ((n + BC - 1u) / BC + KS - 1u) / KS * BC;
  let k_begin = wid.y * kb;
  let k_end = min(n, k_begin + kb);
  let ty = t / TX;
  let tx = t % TX;

  // The next block's P and V are loaded into registers (LOADS_A scalars of P, LOADS_B vec4s of
  // V a thread, all in flight at once) while the current block is multiplied, then stored to
  // workgroup memory after a barrier.
  load_block(k_begin, q0, p_base, base, t);
  var acc: array<array<vec4<f32>, RD4>, RM>;
  for (var k0 = k_begin; k0 < k_end; k0 += BC) {
    workgroupBarrier();
    for (var u = 0u; u < LOADS_A; u++) {
      let idx = t + u * WG; // BR * BC is LOADS_A * WG
      p_tile[idx / BC][idx % BC / 4u][idx % 4u] = pa[u];
    }
    for (var u = 0u; u < LOADS_B; u++) {
      let idx = t + u * WG;
      if idx < BC * D4 {
        v_tile[idx] = vb[u];
      }
    }
    workgroupBarrier();
    if k0 + BC < k_end {
      load_block(k0 + BC, q0, p_base, base, t);
    }
    for (var j4 = 0u; j4 < BC4; j4++) {
      var p4: array<vec4<f32>, RM>;
      for (var i = 0u; i < RM; i++) {
        p4[i] = p_tile[ty + i * TY][j4];
      }
      for (var jj = 0u; jj < VEC; jj++) {
        var vj: array<vec4<f32>, RD4>;
        for (var c = 0u; c < RD4; c++) {
          vj[c] = vec4<f32>(v_tile[(j4 * 4u + jj) * D4 + tx * RD4 + c]);
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
      for (var c = 0u; c < RD4; c++) {
        store(bh, wid.y, row, tx * RD4 + c, acc[i][c]);
      }
    }
  }
  count_flush();
}
