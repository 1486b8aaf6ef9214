// Standard attention (Algorithm 0), pass 2 of 3: row softmax, P = softmax(S), written to GPU memory.
//
// A workgroup of WG = ROWS * TPR threads handles ROWS rows, TPR threads a row (TPR and CACHE are
// chosen per N by standard/mod.ts so that a row of up to TPR * CACHE elements sits in registers:
// 32 threads a row up to 2048 elements, up to 256 threads (one row a workgroup) up to 16384). Each
// thread reads its row's elements lane, lane + TPR, ... (coalesced) and keeps CACHE of them in
// registers, so such a row is read once. The tail of a longer row is read twice: once for an
// online (max, sum) — the sum rescaled whenever the thread's max grows — and once for the output.
// The row's max and sum are combined by row_max and row_sum (softmax_tree.wgsl: a tree in
// workgroup memory; softmax_subgroup.wgsl: subgroupMax / subgroupAdd, then the row's subgroups
// through workgroup memory), appended after this body.
// Causal: elements j > i are neither read nor part of the max and the sum, and P = 0 there (P is
// still written in full: Algorithm 0 materialises the whole N x N matrix).
//
// The prelude defines T, WG, ROWS, TPR, CACHE (and SG, the subgroup size, on the subgroup path)
// and the counting helpers.
//
// Bindings (declared by the generated header from standard/mod.ts's list, in this order):
//   params: uniform { n, first, causal, scale (unused here) }; S and P are this
//   dispatch's chunk, as in scores.wgsl
//   s: array<T>, B*H*N*N     p: array<T>, B*H*N*N (written)
//   counting only: counters
//
// Grid: (ceil(chunk rows / ROWS), heads in the chunk).

const NEG: f32 = -3.0e38;
const LOG2E: f32 = 1.4426950408889634;

// exp(x - m), 0 where x is masked (NEG) or m is still NEG (no element seen).
fn scaled_exp(x: f32, m: f32) -> f32 {
  return select(exp2((x - m) * LOG2E), 0.0, x <= NEG);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = params.n;
  if t == 0u {
    count_read(SLOT_UNIFORM, 16u);
  }
  let r = t / TPR; // this thread's row in the workgroup
  let lane = t % TPR;
  let r0 = params.first % n; // this chunk's first row (0 for whole heads)
  let row = r0 + wid.x * ROWS + r;
  let live = row < n; // the last workgroup may run past the last row
  let row_base = (wid.y * n + row - r0) * n;
  // Keys [0, end) take part; none for a dead row.
  let end = select(0u, select(n, row + 1u, params.causal != 0u), live);

  var cache: array<f32, CACHE>;
  var m = NEG;
  for (var c = 0u; c < CACHE; c++) {
    let j = lane + c * TPR;
    var x = NEG;
    if j < end {
      x = f32(s[row_base + j]);
      count_read(SLOT_S, T_BYTES);
    }
    cache[c] = x;
    m = max(m, x);
  }
  var l = 0.0; // the tail's sum, relative to m
  for (var j = lane + CACHE * TPR; j < end; j += TPR) { // rows longer than the cache
    let x = f32(s[row_base + j]);
    count_read(SLOT_S, T_BYTES);
    if x > m {
      l = l * scaled_exp(m, x);
      m = x;
    }
    l += exp2((x - m) * LOG2E);
  }
  for (var c = 0u; c < CACHE; c++) {
    l += scaled_exp(cache[c], m);
  }

  let mx = row_max(m, r, lane);
  let inv_sum = 1.0 / row_sum(select(l * exp2((m - mx) * LOG2E), 0.0, m <= NEG), r, lane);

  if live {
    for (var c = 0u; c < CACHE; c++) {
      let j = lane + c * TPR;
      if j < n {
        p[row_base + j] = T(scaled_exp(cache[c], mx) * inv_sum);
        count_write(SLOT_P, T_BYTES);
      }
    }
    for (var j = lane + CACHE * TPR; j < n; j += TPR) {
      var x = 0.0;
      if j < end {
        x = exp2((f32(s[row_base + j]) - mx) * LOG2E) * inv_sum;
        count_read(SLOT_S, T_BYTES);
      }
      p[row_base + j] = T(x);
      count_write(SLOT_P, T_BYTES);
    }
  }
  count_flush();
}
