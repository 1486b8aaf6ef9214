// The softmax pass's row reductions with subgroups: subgroupMax / subgroupAdd over each subgroup
// (SG lanes, lane = local_invocation_index mod SG, TPR a multiple of SG, so a subgroup lies in
// one row), then the row's TPR / SG subgroup results through workgroup memory. Called by every
// thread of the workgroup (uniform control flow).

const NSG: u32 = TPR / SG;

var<workgroup> red: array<array<f32, NSG>, ROWS>;

fn row_max(x: f32, r: u32, lane: u32) -> f32 {
  red[r][lane / SG] = subgroupMax(x);
  workgroupBarrier();
  var v = red[r][0];
  for (var k = 1u; k < NSG; k++) {
    v = max(v, red[r][k]);
  }
  workgroupBarrier(); // red is reused by the next reduction
  return v;
}

fn row_sum(x: f32, r: u32, lane: u32) -> f32 {
  red[r][lane / SG] = subgroupAdd(x);
  workgroupBarrier();
  var v = red[r][0];
  for (var k = 1u; k < NSG; k++) {
    v += red[r][k];
  }
  workgroupBarrier();
  return v;
}
