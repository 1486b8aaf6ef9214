// The softmax pass's row reductions, portable: a tree over the row's TPR threads in workgroup
// memory, all ROWS rows at once. Called by every thread of the workgroup (uniform control flow).

var<workgroup> red: array<array<f32, TPR>, ROWS>;

fn row_max(x: f32, r: u32, lane: u32) -> f32 {
  red[r][lane] = x;
  for (var stride = TPR / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if lane < stride {
      red[r][lane] = max(red[r][lane], red[r][lane + stride]);
    }
  }
  workgroupBarrier();
  let v = red[r][0];
  workgroupBarrier(); // red is reused by the next reduction
  return v;
}

fn row_sum(x: f32, r: u32, lane: u32) -> f32 {
  red[r][lane] = x;
  for (var stride = TPR / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if lane < stride {
      red[r][lane] += red[r][lane + stride];
    }
  }
  workgroupBarrier();
  let v = red[r][0];
  workgroupBarrier();
  return v;
}
