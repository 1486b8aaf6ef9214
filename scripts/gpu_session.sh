#!/usr/bin/env bash
# One experiment on the lent GPU machine (see BENCHMARKS.md and ../shared/device/README.md).
# Run there from the repo root, after `scripts/prepare_device.sh` here, with
#   carry: [".device", "node_modules/chart.js", and the two files
#           node_modules/.deno/chart.js@4.6.1/node_modules/chart.js/{package.json,dist/chart.umd.min.js}]
#   command: bash scripts/gpu_session.sh <step>... ; results land in $OUT.
# Steps: devices, verify, bench, peers, tune, sweeps. Each writes a log under $OUT.
set -uo pipefail
source .device/enter.sh
export DENO_NO_UPDATE_CHECK=1
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
# Offline: npm packages come from .device/deno_dir; the browser test's playwright-core stays behind.
sed -i '/playwright-core/d' deno.json
rm -f deno.lock
export DENO_DIR=$PWD/.device/deno_dir
[ -f .device/commit ] && export ATTNBENCH_GIT_COMMIT=$(cat .device/commit)
ab() {
  deno run --no-lock --cached-only --node-modules-dir=none --allow-read --allow-write \
    --allow-run=git --allow-env cli/main.ts "$@"
}
for step in "$@"; do
  echo "=== $step $(date +%T)"
  case "$step" in
    devices) ab devices ;;
    verify)
      for dt in f32 f16; do for d in 32 64 128; do
        ab verify --dtype $dt --d $d --n 1,37,257,1024 --heads 3 --batch 2 --count-io --quiet | tail -4
        ab verify --dtype $dt --d $d --n 77,1000 --causal --mask butterfly --quiet | tail -3
      done; done ;;
    bench) ab bench --out "$OUT" --reps 20 --verify --peers .device/peer64.jsonl --quiet ;;
    bench128) ab bench --out "$OUT/d128" --d 128 --reps 20 --no-report --quiet ;;
    causal) ab bench --out "$OUT/causal" --causal --kernels flash --n 1024..16384 --no-report --quiet ;;
    f16) ab bench --out "$OUT/f16" --dtype f16 --kernels flash --no-report --quiet ;;
    peers)
      python3 .device/peer_sdpa.py --d 64 --dtype float32 > "$OUT/peer64.jsonl"
      python3 .device/peer_sdpa.py --d 128 --dtype float32 > "$OUT/peer128.jsonl"
      cat "$OUT/peer64.jsonl" "$OUT/peer128.jsonl" ;;
    *) echo "unknown step $step"; exit 2 ;;
  esac
done
