// Standard attention (Algorithm 0), pass 3b (when P·V is split over KS key ranges): O = the sum of
// the KS partial products pv.wgsl wrote to part, in split order, rounded to T once.
//
// A workgroup handles 8 rows of O, one thread a vec4 of a row (WG = 8 * D4 threads).
//
// The prelude defines T, T4, D4, KS, WG and the counting helpers.
//
// Bindings (declared by the generated header from standard/mod.ts's list, in this order):
//   params: uniform { n, first (0: one dispatch covers every head), causal, scale (unused) }
//   part: array<vec4<f32>>, [B*H][KS][N][D4]
//   o: array<T4>, B*H*N*D4 (written)
//   counting only: counters
//
// Grid: (ceil(N / 8), B*H).

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let n = params.n;
  if t == 0u {
    count_read(SLOT_UNIFORM, 16u);
  }
  let row = wid.x * 8u + t / D4;
  let c = t % D4;
  let bh = wid.y;
  if row < n {
    var x = vec4<f32>();
    for (var ks = 0u; ks < KS; ks++) {
      x += part[((bh * KS + ks) * n + row) * D4 + c];
      count_read(SLOT_PART_O, 16u);
    }
    o[(bh * n + row) * D4 + c] = T4(x);
    count_write(SLOT_O, 4u * T_BYTES);
  }
  count_flush();
}
