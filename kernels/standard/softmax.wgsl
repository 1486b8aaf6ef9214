// Standard attention (Algorithm 0), pass 2 of 3: row softmax, P = softmax(S), written to GPU memory.
//
// A workgroup of WG = ROWS * TPR threads handles ROWS rows, TPR threads a row. Each thread reads
// its row's elements t, t + TPR, ... (coalesced) and keeps up to CACHE of them in registers, so
// a row of up to TPR * CACHE elements is read once; the tail of a longer row is read again for
// the sum and once more for the output.
// Causal: elements j > i are excluded from the max and the sum, and P = 0 there (P is still
// written in full: Algorithm 0 materialises the whole N x N matrix).
//
// The prelude defines T, WG, ROWS, TPR, CACHE and the counting helpers.
//
// Bindings (declared by the generated header from standard/mod.ts's list, in this order):
//   params: uniform { n, first, causal, scale (unused here) }; S and P are this
//   dispatch's chunk, as in scores.wgsl
//   s: array<T>, B*H*N*N     p: array<T>, B*H*N*N (written)
//   counting only: counters
//
// Grid: (ceil(N / ROWS), B*H).

const NEG: f32 = -3.0e38;
const LOG2E: f32 = 1.4426950408889634;

var<workgroup> red_m: array<array<f32, TPR>, ROWS>;
var<workgroup> red_l: array<array<f32, TPR>, ROWS>;

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
  let end = select(n, row + 1u, params.causal != 0u); // keys [0, end) take part

  var cache: array<f32, CACHE>;
  var m = NEG;
  for (var c = 0u; c < CACHE; c++) {
    let j = lane + c * TPR;
    var x = NEG;
    if live && j < n {
      x = f32(s[row_base + j]);
      count_read(SLOT_S, T_BYTES);
      if j >= end {
        x = NEG;
      }
    }
    cache[c] = x;
    m = max(m, x);
  }
  if live {
    for (var j = lane + CACHE * TPR; j < n; j += TPR) { // rows longer than the cache
      let x = f32(s[row_base + j]);
      count_read(SLOT_S, T_BYTES);
      if j < end {
        m = max(m, x);
      }
    }
  }
  var l = 0.0;
  for (var c = 0u; c < CACHE; c++) {
    l += select(exp2((cache[c] - m) * LOG2E), 0.0, cache[c] <= NEG);
  }
  if live {
    for (var j = lane + CACHE * TPR; j < end; j += TPR) {
      l += exp2((f32(s[row_base + j]) - m) * LOG2E);
      count_read(SLOT_S, T_BYTES);
    }
  }

  // Combine the row's (max, sum) pairs: a tree in workgroup memory, all rows at once.
  red_m[r][lane] = m;
  red_l[r][lane] = l;
  for (var stride = TPR / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if lane < stride {
      let m1 = red_m[r][lane];
      let m2 = red_m[r][lane + stride];
      let mx = max(m1, m2);
      red_l[r][lane] = select(red_l[r][lane] * exp2((m1 - mx) * LOG2E), 0.0, m1 <= NEG) +
        select(red_l[r][lane + stride] * exp2((m2 - mx) * LOG2E), 0.0, m2 <= NEG);
      red_m[r][lane] = mx;
    }
  }
  workgroupBarrier();
  let row_max = red_m[r][0];
  let inv_sum = 1.0 / red_l[r][0];

  if live {
    for (var c = 0u; c < CACHE; c++) {
      let j = lane + c * TPR;
      if j < n {
        p[row_base + j] = T(select(exp2((cache[c] - row_max) * LOG2E) * inv_sum, 0.0, j >= end));
        count_write(SLOT_P, T_BYTES);
      }
    }
    for (var j = lane + CACHE * TPR; j < n; j += TPR) {
      var x = 0.0;
      if j < end {
        x = exp2((f32(s[row_base + j]) - row_max) * LOG2E) * inv_sum;
        count_read(SLOT_S, T_BYTES);
      }
      p[row_base + j] = T(x);
      count_write(SLOT_P, T_BYTES);
    }
  }
  count_flush();
}
