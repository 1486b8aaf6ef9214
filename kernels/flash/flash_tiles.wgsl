// The tiles and staging loads of the v5 layout, shared by flash.wgsl (f32 arithmetic, and v7
// made from it) and flash_h16.wgsl (packed f16): flash/mod.ts puts this text before either body,
// which declares its own p_tile (f32 or f16). Names and bindings: see flash.wgsl's header.

const NEG: f32 = -3.0e38;
const LN2: f32 = 0.6931471805599453;

// Two-dimensional tiles: with the column loops unrolled, every column index is a constant, so
// the only bounds clamp naga adds is on the row, which the driver hoists out of the loops.
var<workgroup> q_tile: array<array<T4, D4P>, BR>;
var<workgroup> kv_tile: array<array<T4, D4P>, BC>;
var<workgroup> row_max_part: array<array<f32, TX>, BR>;

// Stages query rows [q0, q0 + BR) of head `base` (ending at n) into q_tile, zero-filling past n.
fn load_q_tile(base: u32, q0: u32, n: u32, t: u32) {
  for (var idx = t; idx < BR * D4; idx += WG) {
    let r = idx / D4;
    let c = idx % D4;
    var x = T4();
    if q0 + r < n {
      x = q[base + (q0 + r) * D4 + c];
      count_read(SLOT_Q, 4u * T_BYTES);
    }
    q_tile[r][c] = x;
  }
}

// Stages rows [row0, row0 + BC) of k or v (ending at n) into kv_tile, zero-filling past n.
fn load_kv_tile(use_v: bool, base: u32, row0: u32, n: u32, t: u32) {
  for (var idx = t; idx < BC * D4; idx += WG) {
    let r = idx / D4;
    let c = idx % D4;
    var x = T4();
    if row0 + r < n {
      let g = base + (row0 + r) * D4 + c;
      if use_v {
        x = v[g];
        count_read(SLOT_V, 4u * T_BYTES);
      } else {
        x = k[g];
        count_read(SLOT_K, 4u * T_BYTES);
      }
    }
    kv_tile[r][c] = x;
  }
}
