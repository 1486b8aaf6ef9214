// Standard attention (Algorithm 0), pass 2 of 3: row softmax, P = softmax(S), written to GPU memory.
//
// One workgroup of WG threads per row of S. Each thread reads the row's elements t, t + WG, ...
// (coalesced) and keeps up to CACHE of them in registers, so a row of up to WG * CACHE elements
// is read once; a longer row is read a second time for the normalisation pass.
// Causal: elements j > i are excluded from the max and the sum, and P = 0 there (P is still
// written in full: Algorithm 0 materialises the whole N x N matrix).
//
// The prelude defines T, WG, CACHE and the counting helpers.
//
// Bindings:
//   @binding(0) params: uniform { n, bh, causal, scale (unused here) }
//   @binding(3) s: array<T>, B*H*N*N     @binding(4) p: array<T>, B*H*N*N (written)
//   counting only: @binding(8) counters
//
// Grid: (N, B*H).

struct Params {
  n: u32,
  bh: u32,
  causal: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> s: array<T>;
@group(0) @binding(4) var<storage, read_write> p: array<T>;

const NEG: f32 = -3.0e38;
const LOG2E: f32 = 1.4426950408889634;

var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_l: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = params.n;
  if t == 0u {
    count_read(SLOT_UNIFORM, 16u);
  }
  let row = wid.x;
  let row_base = (wid.y * n + row) * n;
  let end = select(n, row + 1u, params.causal != 0u); // keys [0, end) take part

  var cache: array<f32, CACHE>;
  var m = NEG;
  for (var c = 0u; c < CACHE; c++) {
    let j = t + c * WG;
    var x = NEG;
    if j < n {
      x = f32(s[row_base + j]);
      count_read(SLOT_S, T_BYTES);
      if j >= end {
        x = NEG;
      }
    }
    cache[c] = x;
    m = max(m, x);
  }
  for (var j = t + CACHE * WG; j < n; j += WG) { // rows longer than the cache
    var x = f32(s[row_base + j]);
    count_read(SLOT_S, T_BYTES);
    if j < end {
      m = max(m, x);
    }
  }
  var l = 0.0;
  for (var c = 0u; c < CACHE; c++) {
    l += select(exp2((cache[c] - m) * LOG2E), 0.0, cache[c] <= NEG);
  }
  for (var j = t + CACHE * WG; j < end; j += WG) {
    l += exp2((f32(s[row_base + j]) - m) * LOG2E);
    count_read(SLOT_S, T_BYTES);
  }

  // Combine the threads' (max, sum) pairs: a tree in workgroup memory.
  red_m[t] = m;
  red_l[t] = l;
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if t < stride {
      let m1 = red_m[t];
      let m2 = red_m[t + stride];
      let mx = max(m1, m2);
      red_l[t] = select(red_l[t] * exp2((m1 - mx) * LOG2E), 0.0, m1 <= NEG) +
        select(red_l[t + stride] * exp2((m2 - mx) * LOG2E), 0.0, m2 <= NEG);
      red_m[t] = mx;
    }
  }
  workgroupBarrier();
  let row_max = red_m[0];
  let inv_sum = 1.0 / red_l[0];

  for (var c = 0u; c < CACHE; c++) {
    let j = t + c * WG;
    if j < n {
      p[row_base + j] = T(select(exp2((cache[c] - row_max) * LOG2E) * inv_sum, 0.0, j >= end));
      count_write(SLOT_P, T_BYTES);
    }
  }
  for (var j = t + CACHE * WG; j < n; j += WG) {
    var x = 0.0;
    if j < end {
      x = exp2((f32(s[row_base + j]) - row_max) * LOG2E) * inv_sum;
      count_read(SLOT_S, T_BYTES);
    }
    p[row_base + j] = T(x);
    count_write(SLOT_P, T_BYTES);
  }
  count_flush();
}
