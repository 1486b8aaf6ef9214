// ceilings.wgsl: micro-kernels that measure what the device can do, so attention results can be
// read against its ceilings (kernels/ceilings.ts runs them).
//
//   fill_main  dst[i] = four pseudo-random f32 in [1, 2) from a hash of (4i + lane, seed):
//              fresh, non-zero input for the copy. Grid-stride over all of dst.
//   copy_main  dst[i] = src[i] for every vec4 of src: a streaming copy, one 16-byte load and one
//              16-byte store per element, grid-stride (thread t handles t, t + T, t + 2T, ...
//              where T = 256 · workgroups), so consecutive threads touch consecutive vec4s.
//              Bandwidth = (bytes read + bytes written) / time.
//   fma_main   each thread runs CHAINS = 4 independent chains a ← fma(a, mul, add) on vec4<f32>
//              in registers, UNROLL = 4 steps per loop iteration, `iters` iterations, then writes
//              the sum of its chains to dst[global id] so nothing is optimized away.
//              FLOPs per thread = iters · UNROLL · CHAINS · 4 lanes · 2 = 128 · iters.
//              mul < 1 and add > 0 come from the uniform, so the chains converge to add/(1-mul)
//              (no overflow, no denormals) and cannot be folded at compile time.
//   noop_main  does nothing: its one write is guarded by a condition the host never makes true
//              (seed == 0xffffffff); it measures the cost of a dispatch itself.
//
// Bindings (group 0; each entry point uses only some, so pipelines use layout "auto"):
//   @binding(0) src     array<vec4<f32>>, read-only storage: the copy's source, n vec4s.
//   @binding(1) dst     array<vec4<f32>>, read_write storage: the copy's destination (at least
//                       as long as src), the fill's target, the FMA results (one vec4 per
//                       thread), the no-op's never-taken write.
//   @binding(2) params  uniform Params, 16 bytes: iters (u32), mul (f32), add (f32), seed (u32).

struct Params {
  iters: u32,
  mul: f32,
  add: f32,
  seed: u32,
}

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> params: Params;

const WORKGROUP: u32 = 256u;

// lowbias32 (Chris Wellons): a cheap, well-mixed 32-bit hash.
fn hash(x: u32) -> u32 {
  var h = x;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

// A value in [1, 2) from 24 bits of the hash: never zero.
fn unit(x: u32) -> f32 {
  return 1.0 + f32(hash(x) >> 8u) * (1.0 / 16777216.0);
}

@compute @workgroup_size(256)
fn fill_main(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let n = arrayLength(&dst);
  let stride = groups.x * WORKGROUP;
  let salt = params.seed * 0x9e3779b9u;
  for (var i = gid.x; i < n; i += stride) {
    let base = (i * 4u) ^ salt;
    dst[i] = vec4<f32>(unit(base), unit(base + 1u), unit(base + 2u), unit(base + 3u));
  }
}

@compute @workgroup_size(256)
fn copy_main(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
) {
  let n = arrayLength(&src);
  let stride = groups.x * WORKGROUP;
  for (var i = gid.x; i < n; i += stride) {
    dst[i] = src[i];
  }
}

@compute @workgroup_size(256)
fn fma_main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m = vec4<f32>(params.mul);
  let c = vec4<f32>(params.add);
  let x = f32(gid.x & 1023u) * (1.0 / 1024.0);
  var a0 = vec4<f32>(x, x + 0.125, x + 0.25, x + 0.375);
  var a1 = a0 + vec4<f32>(0.5);
  var a2 = a0 + vec4<f32>(1.0);
  var a3 = a0 + vec4<f32>(1.5);
  for (var i = 0u; i < params.iters; i++) {
    a0 = fma(a0, m, c);
    a1 = fma(a1, m, c);
    a2 = fma(a2, m, c);
    a3 = fma(a3, m, c);
    a0 = fma(a0, m, c);
    a1 = fma(a1, m, c);
    a2 = fma(a2, m, c);
    a3 = fma(a3, m, c);
    a0 = fma(a0, m, c);
    a1 = fma(a1, m, c);
    a2 = fma(a2, m, c);
    a3 = fma(a3, m, c);
    a0 = fma(a0, m, c);
    a1 = fma(a1, m, c);
    a2 = fma(a2, m, c);
    a3 = fma(a3, m, c);
  }
  if (gid.x < arrayLength(&dst)) {
    dst[gid.x] = a0 + a1 + a2 + a3;
  }
}

@compute @workgroup_size(64)
fn noop_main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (params.seed == 0xffffffffu) {
    dst[gid.x] = vec4<f32>(f32(gid.x));
  }
}
