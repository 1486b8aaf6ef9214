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
// the partial softmax state: the running maximum m_i and sum l_i of its scores (base 2) and the
// unnormalised output acc_i = sum_j 2^(s_j - m_i) v_j. decode_combine.wgsl merges the splits.
// A workgroup serves all g query heads of one KV head, so every live K and V row is read once.
//
// Within a split, the workgroup walks tiles of TILE tokens: thread j scores token j of the tile
// against the g query vectors (one K row read, d elements); threads 0..g-1 each take one head's
// new running maximum over the tile (online softmax); thread j turns its token's scores into
// weights p; threads 0..g-1 add each head's weights into its running sum while thread (tg, c)
// adds p_j v_j for the tokens j = tg, tg + TG, ... of the tile into column vec4 c of its
// accumulators (V read once, coalesced along d). Scores are kept in base 2:
// s2 = scale * log2(e) * q.k.
//
// Where token p of sequence s, KV head kvh lies is the layout's business, given by the prelude:
//   tile_begin(seq, t0, nt, t)  called by every thread before a tile's rows are read (paged: the
//                               tile's block-table entries are staged in workgroup memory)
//   kv_row(seq, kvh, p) -> u32  index (in T4) of the first element of token p's K (and V) row
// kv_contiguous.wgsl and kv_paged.wgsl define them and state the cache layouts.
//
// The prelude (program.ts and decode/program.ts) also defines:
//   T, T4, T_BYTES   storage scalar and vec4 (f32 or f16); arithmetic and partials are f32
//   D, D4            head dim and D / 4
//   RM               query heads per KV head (g): the query rows each thread owns
//   WG, TILE         threads per workgroup; tokens per tile (= WG)
//   TG               threads per column in the P.V step (WG / D4)
//   Params           the uniforms, generated from PARAM_FIELDS in decode/program.ts:
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
// Bindings:
//   @binding(0) params: uniform Params
//   @binding(1) q: array<T4>, [seqs, heads, D]
//   @binding(2) k, @binding(3) v: array<T4>, the KV cache (layout: see the prelude)
//   @binding(4) lens: array<u32>, [seqs], context length of each sequence (>= 1)
//   paged only: @binding(5) table: array<u32>, [seqs, stride] block tables
//   @binding(6) part_ml: array<vec2<f32>>, [seqs, heads, max_splits], (m_i, l_i) (written)
//   @binding(7) part_o: array<vec4<f32>>, [seqs, heads, max_splits, D] f32, acc_i (written)
//   counting only: @binding(8) counters
//
// Grid: (max_splits, kv_heads, seqs) workgroups of WG threads; a workgroup whose split starts at
// or past its sequence's length reads lens[s] and exits.

@group(0) @binding(1) var<storage, read> q: array<T4>;
@group(0) @binding(2) var<storage, read> k: array<T4>;
@group(0) @binding(3) var<storage, read> v: array<T4>;
@group(0) @binding(6) var<storage, read_write> part_ml: array<vec2<f32>>;
@group(0) @binding(7) var<storage, read_write> part_o: array<vec4<f32>>;

const NEG: f32 = -3.0e38;

var<workgroup> q_tile: array<array<vec4<f32>, D4>, RM>;
var<workgroup> s_tile: array<array<f32, TILE>, RM>;
var<workgroup> m_run: array<f32, RM>;
var<workgroup> l_run: array<f32, RM>;
var<workgroup> alpha: array<f32, RM>;
var<workgroup> red: array<vec4<f32>, WG>;

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

  for (var idx = t; idx < RM * D4; idx += WG) {
    let i = idx / D4;
    let c = idx % D4;
    q_tile[i][c] = vec4<f32>(q[(seq * params.heads + h0 + i) * D4 + c]);
    count_read(SLOT_Q, 4u * T_BYTES);
  }
  if t < RM {
    m_run[t] = NEG;
    l_run[t] = 0.0;
  }
  let tg = t / D4;
  let c = t % D4;
  var acc: array<vec4<f32>, RM>;

  for (var t0 = start; t0 < end; t0 += TILE) {
    // Every thread is done with the previous tile's weights (and block list).
    workgroupBarrier();
    let nt = min(TILE, end - t0);
    tile_begin(seq, t0, nt, t);

    if t < nt {
      let row = kv_row(seq, kvh, t0 + t);
      // Zeroed explicitly: naga does not re-zero a var declared without a value in a loop.
      var sc: array<f32, RM>;
      for (var i = 0u; i < RM; i++) {
        sc[i] = 0.0;
      }
      for (var c4 = 0u; c4 < D4; c4++) {
        let kc = vec4<f32>(k[row + c4]);
        count_read(SLOT_K, 4u * T_BYTES);
        for (var i = 0u; i < RM; i++) {
          sc[i] += dot(q_tile[i][c4], kc);
        }
      }
      for (var i = 0u; i < RM; i++) {
        s_tile[i][t] = sc[i] * params.scale_log2e;
      }
    }
    workgroupBarrier();

    // Thread i < g: head i's new running maximum, and the factor that rescales what came before.
    if t < RM {
      let m_old = m_run[t];
      var mx = m_old;
      for (var j = 0u; j < nt; j++) {
        mx = max(mx, s_tile[t][j]);
      }
      alpha[t] = exp2(m_old - mx);
      m_run[t] = mx;
    }
    workgroupBarrier();

    // Thread j: token j's weight p = 2^(s - m) for every head.
    if t < nt {
      for (var i = 0u; i < RM; i++) {
        s_tile[i][t] = exp2(s_tile[i][t] - m_run[i]);
      }
    }
    workgroupBarrier();

    // The weights are read only from here to the next tile: thread i < g sums head i's into
    // its running sum while every thread accumulates P V.
    if t < RM {
      var sum = 0.0;
      for (var j = 0u; j < nt; j++) {
        sum += s_tile[t][j];
      }
      l_run[t] = l_run[t] * alpha[t] + sum;
    }
    for (var i = 0u; i < RM; i++) {
      acc[i] *= alpha[i];
    }
    for (var j = tg; j < nt; j += TG) {
      let vc = vec4<f32>(v[kv_row(seq, kvh, t0 + j) + c]);
      count_read(SLOT_V, 4u * T_BYTES);
      for (var i = 0u; i < RM; i++) {
        acc[i] += s_tile[i][j] * vc;
      }
    }
  }

  // Sum the TG threads of each column, head by head, and write the split's partial state.
  for (var i = 0u; i < RM; i++) {
    workgroupBarrier();
    red[t] = acc[i];
    workgroupBarrier();
    if tg == 0u {
      var o4 = red[c];
      for (var g = 1u; g < TG; g++) {
        o4 += red[g * D4 + c];
      }
      part_o[((seq * params.heads + h0 + i) * params.max_splits + split) * D4 + c] = o4;
      count_write(SLOT_PARTIAL_O, 16u);
    }
  }
  if t < RM {
    let slot = (seq * params.heads + h0 + t) * params.max_splits + split;
    part_ml[slot] = vec2<f32>(m_run[t], l_run[t]);
    count_write(SLOT_PARTIAL_ML, 8u);
  }
  count_flush();
}
