// Standard attention backward (Algorithm 3), step 3: dS = P ∘ (dP - D), written to GPU memory.
//
// For one head, with P, dP in R^{N x N} read from GPU memory, for each row i:
//   D_i = sum_j P_ij dP_ij,   dS_ij = P_ij (dP_ij - D_i),   dS in R^{N x N}.
// (D_i = dO_i . O_i as well; Algorithm 3 computes it from P and dP, as here.)
//
// A workgroup takes ROWS rows, TPR threads a row. Thread x of a row reads elements
// x + c*TPR: the first CACHE of them (c < CACHE) stay in registers, so a row of up to
// TPR * CACHE elements reads P and dP once; the tail of a longer row is read twice (for D, then
// for dS). The row's partial sums meet in a tree over workgroup memory.
//
// The prelude defines T (storage scalar; arithmetic is f32), TPR (a power of two), ROWS,
// WG (= TPR * ROWS), CACHE, the slot constants, the counting helpers, and the bindings from the
// host's list (generated in that order: params at 0, then 1, 2, …):
//   params: uniform { n, first, causal, scale } (first unused: every buffer here is N x N)
//   p, dp: array<T>, heads of this chunk * N*N      ds: the same (written)
//   counting only: counters (generated, one 64-bit count per slot and direction)
//
// Grid: (ceil(N / ROWS), heads of this chunk): P, dP and dS may be split in chunks of whole heads
// (backward/mod.ts); wid.y is the head within the chunk.

var<workgroup> partial: array<array<f32, TPR>, ROWS>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = params.n;
  if t == 0u {
    count_read(SLOT_UNIFORM, 16u);
  }
  let r = t / TPR;
  let x = t % TPR;
  let row = wid.x * ROWS + r;
  let bh = wid.y;
  let live = row < n;
  let at = (bh * n + min(row, n - 1u)) * n;

  var pc: array<f32, CACHE>;
  var dpc: array<f32, CACHE>;
  var sum = 0.0;
  for (var c = 0u; c < CACHE; c++) {
    let j = x + c * TPR;
    if live && j < n {
      pc[c] = f32(p[at + j]);
      dpc[c] = f32(dp[at + j]);
      count_read(SLOT_P, T_BYTES);
      count_read(SLOT_DP, T_BYTES);
      sum += pc[c] * dpc[c];
    }
  }
  if live {
    for (var j = x + CACHE * TPR; j < n; j += TPR) {
      sum += f32(p[at + j]) * f32(dp[at + j]);
      count_read(SLOT_P, T_BYTES);
      count_read(SLOT_DP, T_BYTES);
    }
  }
  partial[r][x] = sum;
  for (var width = TPR / 2u; width > 0u; width /= 2u) {
    workgroupBarrier();
    if x < width {
      partial[r][x] += partial[r][x + width];
    }
  }
  workgroupBarrier();
  let d_row = partial[r][0];

  for (var c = 0u; c < CACHE; c++) {
    let j = x + c * TPR;
    if live && j < n {
      ds[at + j] = T(pc[c] * (dpc[c] - d_row));
      count_write(SLOT_DS, T_BYTES);
    }
  }
  if live {
    for (var j = x + CACHE * TPR; j < n; j += TPR) {
      let pj = f32(p[at + j]);
      ds[at + j] = T(pj * (f32(dp[at + j]) - d_row));
      count_read(SLOT_P, T_BYTES);
      count_read(SLOT_DP, T_BYTES);
      count_write(SLOT_DS, T_BYTES);
    }
  }
  count_flush();
}
