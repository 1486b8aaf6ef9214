// Decode attention, split pass (flash-decoding: Dao et al., 2023; the KV cache of PagedAttention:
// Kwon et al., 2023).
//
// One decode step: every sequence s has one new query token, one query vector per query head h,
// and attends over its whole KV cache of L = lens[s] tokens. With g = RM query heads per KV head
// (grouped-query attention; g = 1 is plain multi-head attention), query head h reads KV head
// h / g:
//   o[s, h] = softmax(scale * K[s, h / g, 0..L) q[s, h]) V[s, h / g, 0..L)
// A long context is cut into splits of `chunk` tokens, each handled by its own workgroup, so a
// small batch with a long context still fills the GPU. Split i of sequence s covers tokens
// [i * chunk, min((i + 1) * chunk, L)) and leaves, for each of the g query heads of its KV head,
// the partial softmax state: the maximum m_i and sum l_i of its scores (base 2) and the
// unnormalised output acc_i = sum_j 2^(s_j - m_i) v_j. decode_combine.wgsl merges the splits.
// A workgroup serves all g query heads of one KV head, so every live K and V row is read once.
//
// Within a split (v2, bandwidth-bound): the WG threads form NG = WG / LT token groups of LT
// lanes. A group reads one token's K and V rows at a time, lane c owning the vec4 columns
// c, c + LT, c + 2 LT, ... (CPL of them): the group's lanes read consecutive addresses, so the
// loads are coalesced. Each lane dots its columns with the query, the LT partial dot products
// are summed across the group's lanes (subgroupShuffleXor when SG = 1, the lanes being
// consecutive in one subgroup; else an exchange through workgroup memory, the portable path),
// and every group keeps its own online softmax state (m, l and the acc columns of its lanes) per
// head: no barrier, no serial max or sum over a tile in the token loop. A round gives each group
// UT consecutive tokens, all their K and V rows loaded before any is used (UT * CPL * 2 loads
// in flight per lane). At the end of the split the NG group states are merged (maxima through
// workgroup memory, acc columns summed in MS slots) and written.
//
// The split is walked in segments of SEG tokens (a whole number of rounds): at the start of each
// the layout may stage what it needs (paged: the segment's block-table entries).
//
// Where token p of sequence s, KV head kvh lies is the layout's business, given by the prelude:
//   tile_begin(seq, t0, nt, t)  called by every thread before a segment's rows are read (paged:
//                               the segment's block-table entries are staged in workgroup memory)
//   kv_row(seq, kvh, p) -> u32  index (in T4) of the first element of token p's K (and V) row
// kv_contiguous.wgsl and kv_paged.wgsl define them and state the cache layouts.
//
// The prelude (program.ts and decode/program.ts) also defines:
//   T, T4, T_BYTES   storage scalar and vec4 (f32 or f16); arithmetic and partials are f32
//   D, D4            head dim and D / 4
//   RM               query heads per KV head (g)
//   WG               threads per workgroup
//   LT, NG, CPL      lanes per token, token groups (WG / LT), vec4 columns per lane (D4 / LT)
//   UT               tokens per group and round
//   SEG              tokens per segment (a multiple of NG * UT)
//   MS               slots of the final acc merge (min(NG, 8))
//   group_sum(x, t)  the sum of x over the LT lanes of thread t's token group, in every lane;
//                    called by every thread (program.ts: subgroupShuffleXor when the lanes lie in
//                    one subgroup, else an exchange through workgroup memory `red`, with barriers)
//   Params           the uniforms, generated from DECODE_UNIFORMS in decode/program.ts:
//                      seqs, heads, kv_heads: batch size, query heads, KV heads
//                      stride: contiguous: rows reserved per (sequence, KV head);
//                              paged: block-table entries per sequence
//                      block: paged: tokens per block
//                      chunk: tokens per split
//                      max_splits: splits the partial buffers hold per (sequence, head)
//                      scale_log2e: softmax scale * log2(e)
//   PARAMS_BYTES     size of Params
//   count_read / count_write / count_flush and SLOT_*: the counting variant's instrumentation
//   params, lens, sequence_length(seq, t): decode_common.wgsl
//
// Buffers (declared by the generated header, numbered from the pass's binding list in
// program.ts; params is binding 0, the counters follow the list in the counting variant):
//   params: uniform Params
//   q: array<T4>, [seqs, heads, D]
//   k, v: array<T4>, the KV cache (layout: see the prelude)
//   lens: array<u32>, [seqs], context length of each sequence (>= 1)
//   paged only: table: array<u32>, [seqs, stride] block tables
//   part_ml: array<vec2<f32>>, [seqs, heads, max_splits], (m_i, l_i) (written)
//   part_o: array<vec4<f32>>, [seqs, heads, max_splits, D] f32, acc_i (written)
//
// Grid: (max_splits, kv_heads, seqs) workgroups of WG threads; a workgroup whose split starts at
// or past its sequence's length reads lens[s] and exits.

const NEG: f32 = -3.0e38;

var<workgroup> q_tile: array<array<vec4<f32>, D4>, RM>;
var<workgroup> ml_g: array<vec2<f32>, NG>;
var<workgroup> o_red: array<array<vec4<f32>, D4>, MS>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let split = wid.x;
  let kvh = wid.y;
  let seq = wid.z;
  let len = sequence_length(seq, t);
  let start = split * params.chunk;
  if start >= len {
    count_flush();
    return;
  }
  let end = min(start + params.chunk, len);
  let h0 = kvh * RM;
  let lane = t % LT;
  let g = t / LT;

  for (var idx = t; idx < RM * D4; idx += WG) {
    let i = idx / D4;
    let c = idx % D4;
    q_tile[i][c] = vec4<f32>(q[(seq * params.heads + h0 + i) * D4 + c]);
    count_read(SLOT_Q, 4u * T_BYTES);
  }
  // Zeroed explicitly: naga does not re-zero a var declared without a value in a loop.
  var m: array<f32, RM>;
  var l: array<f32, RM>;
  var acc: array<array<vec4<f32>, CPL>, RM>;
  for (var i = 0u; i < RM; i++) {
    m[i] = NEG;
    l[i] = 0.0;
    for (var cc = 0u; cc < CPL; cc++) {
      acc[i][cc] = vec4<f32>();
    }
  }

  for (var s0 = start; s0 < end; s0 += SEG) {
    // Every thread is done with the previous segment's block list (and the query is staged).
    workgroupBarrier();
    let ns = min(SEG, end - s0);
    tile_begin(seq, s0, ns, t);
    for (var r0 = 0u; r0 < ns; r0 += NG * UT) {
      // Group g's UT tokens of this round: s0 + r0 + g * UT + u, all loaded first.
      var kr: array<array<T4, CPL>, UT>;
      var vr: array<array<T4, CPL>, UT>;
      for (var u = 0u; u < UT; u++) {
        let j = r0 + g * UT + u;
        for (var cc = 0u; cc < CPL; cc++) {
          kr[u][cc] = T4();
          vr[u][cc] = T4();
        }
        if j < ns {
          let row = kv_row(seq, kvh, s0 + j) + lane;
          for (var cc = 0u; cc < CPL; cc++) {
            kr[u][cc] = k[row + cc * LT];
            vr[u][cc] = v[row + cc * LT];
            count_read(SLOT_K, 4u * T_BYTES);
            count_read(SLOT_V, 4u * T_BYTES);
          }
        }
      }
      for (var u = 0u; u < UT; u++) {
        let valid = r0 + g * UT + u < ns;
        for (var i = 0u; i < RM; i++) {
          var part = 0.0;
          for (var cc = 0u; cc < CPL; cc++) {
            part += dot(q_tile[i][lane + cc * LT], vec4<f32>(kr[u][cc]));
          }
          let s = group_sum(part, t) * params.scale_log2e;
          if valid {
            let mx = max(m[i], s);
            let a = exp2(m[i] - mx);
            let p = exp2(s - mx);
            l[i] = l[i] * a + p;
            for (var cc = 0u; cc < CPL; cc++) {
              acc[i][cc] = acc[i][cc] * a + p * vec4<f32>(vr[u][cc]);
            }
            m[i] = mx;
          }
        }
      }
    }
  }

  // Merge the NG groups' states head by head: M = max m_g, L = sum l_g 2^(m_g - M), acc the same;
  // group g adds its scaled columns into slot g % MS in round g / MS, then MS slots are summed.
  let slot = g % MS;
  for (var i = 0u; i < RM; i++) {
    workgroupBarrier();
    if lane == 0u {
      ml_g[g] = vec2<f32>(m[i], l[i]);
    }
    workgroupBarrier();
    var mx = NEG;
    for (var gg = 0u; gg < NG; gg++) {
      mx = max(mx, ml_g[gg].x);
    }
    let f = exp2(m[i] - mx);
    for (var r = 0u; r < NG / MS; r++) {
      if g / MS == r {
        for (var cc = 0u; cc < CPL; cc++) {
          let c = lane + cc * LT;
          if r == 0u {
            o_red[slot][c] = acc[i][cc] * f;
          } else {
            o_red[slot][c] += acc[i][cc] * f;
          }
        }
      }
      workgroupBarrier();
    }
    let row = (seq * params.heads + h0 + i) * params.max_splits + split;
    for (var c = t; c < D4; c += WG) {
      var o4 = o_red[0][c];
      for (var sl = 1u; sl < MS; sl++) {
        o4 += o_red[sl][c];
      }
      part_o[row * D4 + c] = o4;
      count_write(SLOT_PART_O, 16u);
    }
    if t == 0u {
      var sum = 0.0;
      for (var gg = 0u; gg < NG; gg++) {
        let e = ml_g[gg];
        sum += e.y * exp2(e.x - mx);
      }
      part_ml[row] = vec2<f32>(mx, sum);
      count_write(SLOT_PART_ML, 8u);
    }
  }
  count_flush();
}
