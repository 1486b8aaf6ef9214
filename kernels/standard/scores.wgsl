// Standard attention (Algorithm 0 of the FlashAttention paper), pass 1 of 3: the score matrix.
//
// For one head, with Q, K in R^{N x D}:   S = scale * Q K^T,   S in R^{N x N}, written to GPU memory.
// Every score is computed and stored, causal or not: masking happens in the softmax pass, as in a
// framework's unfused attention.
//
// A workgroup computes one BR x BC tile of S: it stages BR rows of Q and BC rows of K (all D
// columns) in workgroup memory; each thread computes RM rows (ty + i*TY) by RN columns
// (tx + j*TX) of the tile.
//
// The prelude defines T, T4, D, D4, BR, BC, RM, TX, TY, RN, WG, D4P (row stride of the tiles,
// padded by one vec4 against bank conflicts), LOADS_A (= BR * D4 / WG), LOADS_B (= ceil(BC * D4 /
// WG)) and the counting helpers.
//
// Bindings (declared by the generated header from standard/mod.ts's list, in this order):
//   params: uniform { n, first, causal, scale }
//   q: array<T4>, B*H*N*D4     k: same
//   s: array<T>, B*H*N*N (written)
//   counting only: counters
//
// S here is this dispatch's chunk (standard/mod.ts): heads first / n … first / n + grid.z - 1,
// or rows first % n … of one head, laid out [head in chunk][row - first % n][key].
//
// Grid: (ceil(N / BC), ceil(chunk rows / BR), heads in the chunk).

var<workgroup> q_tile: array<array<T4, D4P>, BR>;
var<workgroup> k_tile: array<array<T4, D4P>, BC>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = params.n;
  if t == 0u {
    count_read(SLOT_UNIFORM, 16u);
  }
  // This dispatch's chunk of S starts at flattened row params.first (head first / n, row
  // first % n): whole heads (wid.z the head within the chunk) or rows of one head.
  let r0 = params.first % n;
  let k0 = wid.x * BC;
  let q0 = r0 + wid.y * BR;
  let bh = params.first / n + wid.z;
  let base = bh * n * D4;
  let ty = t / TX;
  let tx = t % TX;

  // All of a thread's loads first (LOADS_A vec4s of Q, LOADS_B of K, in flight at once), then
  // the stores to workgroup memory.
  var qa: array<T4, LOADS_A>;
  var kb: array<T4, LOADS_B>;
  for (var u = 0u; u < LOADS_A; u++) {
    let idx = t + u * WG; // BR * D4 is LOADS_A * WG
    qa[u] = T4();
    if q0 + idx / D4 < n {
      qa[u] = q[base + q0 * D4 + idx];
      count_read(SLOT_Q, 4u * T_BYTES);
    }
  }
  for (var u = 0u; u < LOADS_B; u++) {
    let idx = t + u * WG;
    kb[u] = T4();
    if idx < BC * D4 && k0 + idx / D4 < n {
      kb[u] = k[base + k0 * D4 + idx];
      count_read(SLOT_K, 4u * T_BYTES);
    }
  }
  for (var u = 0u; u < LOADS_A; u++) {
    let idx = t + u * WG;
    q_tile[idx / D4][idx % D4] = qa[u];
  }
  for (var u = 0u; u < LOADS_B; u++) {
    let idx = t + u * WG;
    if idx < BC * D4 {
      k_tile[idx / D4][idx % D4] = kb[u];
    }
  }
  workgroupBarrier();

  var acc: array<array<f32, RN>, RM>;
  for (var i = 0u; i < RM; i++) {
    for (var j = 0u; j < RN; j++) {
      acc[i][j] = 0.0;
    }
  }
  for (var c = 0u; c < D4; c++) {
    var kc: array<vec4<f32>, RN>;
    for (var j = 0u; j < RN; j++) {
      kc[j] = vec4<f32>(k_tile[tx + j * TX][c]);
    }
    for (var i = 0u; i < RM; i++) {
      let qc = vec4<f32>(q_tile[ty + i * TY][c]);
      for (var j = 0u; j < RN; j++) {
        acc[i][j] += dot(qc, kc[j]);
      }
    }
  }

  for (var i = 0u; i < RM; i++) {
    let row = q0 + ty + i * TY;
    for (var j = 0u; j < RN; j++) {
      let col = k0 + tx + j * TX;
      if row < n && col < n {
        s[(wid.z * n + row - r0) * n + col] = T(acc[i][j] * params.scale);
        count_write(SLOT_S, T_BYTES);
      }
    }
  }
  count_flush();
}
