// Standard attention backward (Algorithm 3), step 2: dP = dO V^T, written to GPU memory.
//
// For one head, with dO, V in R^{N x D}:   dP = dO V^T,   dP in R^{N x N}.
// Every entry is computed and stored, causal or not (Algorithm 3 does not skip P's zeros; the
// next step multiplies them away).
//
// A workgroup computes one BR x BC tile of dP: it stages BR rows of dO and BC rows of V (all D
// columns) in workgroup memory; each thread computes RM rows (ty + i*TY) by RN columns
// (tx + j*TX) of the tile.
//
// The prelude defines T, T4 (storage; arithmetic is f32), D, D4, BR, BC, RM, TX, TY, RN, WG,
// D4P (padded tile row in vec4), the slot constants, the counting helpers, and the bindings from
// the host's list (generated in that order: params at 0, then 1, 2, …):
//   params: uniform { n, first, causal, scale }
//   dout: array<T4>, B*H*N*D4 (dO)      v: array<T4>, B*H*N*D4
//   dp: array<T>, heads of this chunk * N*N (written)
//   counting only: counters (generated, one 64-bit count per slot and direction)
//
// Grid: (ceil(N / BC), ceil(N / BR), heads of this chunk). dP may be split in chunks of whole
// heads (no buffer over the device's binding limit, backward/mod.ts): this dispatch's chunk starts
// at head first / N (first is the chunk's flattened first row), and dP holds only its heads.

var<workgroup> do_tile: array<array<T4, D4P>, BR>;
var<workgroup> v_tile: array<array<T4, D4P>, BC>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = params.n;
  if t == 0u {
    count_read(SLOT_UNIFORM, 16u);
  }
  let c0 = wid.x * BC;
  let r0 = wid.y * BR;
  let bh = params.first / n + wid.z; // the head, for dO and V
  let base = bh * n * D4;
  let ty = t / TX;
  let tx = t % TX;

  for (var idx = t; idx < BR * D4; idx += WG) {
    let r = idx / D4;
    let c = idx % D4;
    var x = T4();
    if r0 + r < n {
      x = dout[base + (r0 + r) * D4 + c];
      count_read(SLOT_DOUT, 4u * T_BYTES);
    }
    do_tile[r][c] = x;
  }
  for (var idx = t; idx < BC * D4; idx += WG) {
    let r = idx / D4;
    let c = idx % D4;
    var x = T4();
    if c0 + r < n {
      x = v[base + (c0 + r) * D4 + c];
      count_read(SLOT_V, 4u * T_BYTES);
    }
    v_tile[r][c] = x;
  }
  workgroupBarrier();

  var acc: array<array<f32, RN>, RM>;
  for (var c = 0u; c < D4; c++) {
    var vc: array<vec4<f32>, RN>;
    for (var j = 0u; j < RN; j++) {
      vc[j] = vec4<f32>(v_tile[tx + j * TX][c]);
    }
    for (var i = 0u; i < RM; i++) {
      let dc = vec4<f32>(do_tile[ty + i * TY][c]);
      for (var j = 0u; j < RN; j++) {
        acc[i][j] += dot(dc, vc[j]);
      }
    }
  }
  for (var i = 0u; i < RM; i++) {
    let row = r0 + ty + i * TY;
    for (var j = 0u; j < RN; j++) {
      let col = c0 + tx + j * TX;
      if row < n && col < n {
        dp[(wid.z * n + row) * n + col] = T(acc[i][j]);
        count_write(SLOT_DP, T_BYTES);
      }
    }
  }
  count_flush();
}
