#!/usr/bin/env bash
# One experiment on the lent GPU machine (see BENCHMARKS.md and ../shared/device/README.md).
# Run there from the repo root, after `scripts/prepare_device.sh` here, with
#   carry: [".device"]
#   command: bash scripts/gpu_session.sh <step>... ; results land in $OUT.
set -uo pipefail
source .device/enter.sh
export DENO_NO_UPDATE_CHECK=1
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
# Offline: node_modules/ comes from .device/node_modules.tgz (playwright-core, which only the
# browser test imports, stays behind) and --node-modules-dir=manual resolves every npm import
# there, without an npm cache or a registry. deno.json and deno.lock stay as they are.
rm -rf node_modules && tar xzf .device/node_modules.tgz || { echo "no node_modules.tgz"; exit 2; }
[ -f .device/commit ] && export ATTNBENCH_GIT_COMMIT=$(cat .device/commit)
ab() {
  deno run --node-modules-dir=manual --allow-read --allow-write --allow-run=git --allow-env \
    cli/main.ts "$@" 2>&1 | grep --line-buffered -v '^\s*at '
}
# scripts/speed_variants.ts (flash variants, each checked against the reference, then timed).
sv() { deno run --node-modules-dir=manual -A scripts/speed_variants.ts "$@" 2>&1 | grep --line-buffered -v '^\s*at '; }
# PyTorch SDPA decode (query length 1; f16, d = 128, 256 (sequence, head) rows) at the contexts
# $1 into $OUT/decode_peers.jsonl; prints its EFFICIENT_ATTENTION lines.
DP=$OUT/decode_peers.jsonl
decode_peers() {
  python3 .device/peer_sdpa.py --decode --d 128 --dtype float16 --n "$1" --batch-heads 256 \
    2>/dev/null > "$DP"
  grep -h EFFICIENT "$DP" | cut -c1-200
}
# scripts/decode_bimodal.ts for at most $1 seconds (the rest its flags) into
# $OUT/decode_bimodal.txt, printing its rows without the nvidia-smi samples and JSON lines.
bimodal() {
  timeout "$1" deno run --node-modules-dir=manual -A scripts/decode_bimodal.ts "${@:2}" 2>&1 \
    | grep --line-buffered -v '^\s*at ' | tee "$OUT/decode_bimodal.txt" \
    | grep --line-buffered -v '^smi \|^{'
}
[ -f "$OUT/tuned.json" ] || cp attnbench-tuned.json "$OUT/tuned.json"
TUNED=$OUT/tuned.json
PEERS=$OUT/peers.jsonl  # written by the peers step; an earlier call's copy in .device/ else
peers() { if [ -f "$PEERS" ]; then echo "$PEERS"; else echo .device/peers.jsonl; fi; }
# Flash backward variants (speed_variants flags "$@", e.g. --dq pass,atomic), f32 d = 64: peers
# (EFFICIENT bwd, fwdbwd), causal checks, flash-bwd 32x32x2x16 and flash-fwd+bwd 64x32x4x16 at
# N = 4096 (B·H = 4·16), each variant checked first; the rows in $OUT/<name>_table.txt.
bwd_variants() {
  local name=$1
  shift
  local bp=$OUT/peers_$name.jsonl t=$OUT/${name}_table.txt
  python3 .device/peer_sdpa.py --pass bwd --n 4096 --d 64 --dtype float32 2>/dev/null > "$bp"
  python3 .device/peer_sdpa.py --pass fwdbwd --n 4096 --d 64 --dtype float32 2>/dev/null >> "$bp"
  grep -h EFFICIENT "$bp" | cut -c1-200
  : > "$t"
  sv --kernel flash-bwd --causal --n 512 --d 64 --check-n 77,300 --reps 2 --sg off \
    --tiles 32x32x2x16 "$@" | grep '^check'
  sv --kernel flash-bwd --n 4096 --d 64 --check-n 1,77,300 --reps 5 --sg off --peers "$bp" \
    --tiles 32x32x2x16 "$@" --table "$t" | grep -v '^{'
  sv --kernel flash-fwd+bwd --n 4096 --d 64 --check-n 77,300 --reps 5 --sg off --peers "$bp" \
    --tiles 64x32x4x16 "$@" --table "$t" | grep -v '^{'
  echo "variant | pass | N | ms | TFLOP/s | max check error | ratio to EFFICIENT f32"
  cat "$t"
}
for step in "$@"; do
  echo "=== $step $(date +%T)"
  case "$step" in
    devices) ab devices ;;
    verify)
      for dt in f32 f16; do for d in 32 64 128; do
        ab verify --dtype $dt --d $d --n 1,37,257,1024 --heads 3 --batch 2 --count-io --quiet | tail -4
        ab verify --dtype $dt --d $d --n 77,1000 --causal --mask local --quiet | tail -3
      done; done ;;
    tune)
      cp attnbench-tuned.json "$OUT/tuned.json" 2>/dev/null
      ab tune --kernels flash --d 64 --out "$OUT/tuned.json" --max-candidates 12 | tail -2
      ab tune --kernels flash --d 128 --out "$OUT/tuned.json" --max-candidates 12 | tail -2
      ab tune --kernels flash --d 64 --dtype f16 --out "$OUT/tuned.json" --max-candidates 8 | tail -2 ;;
    peers)
      for d in 64 128; do python3 .device/peer_sdpa.py --d $d --dtype float32 2>/dev/null; done > "$OUT/peers.jsonl"
      python3 .device/peer_sdpa.py --d 64 --dtype float32 --causal 2>/dev/null >> "$OUT/peers.jsonl"
      python3 .device/peer_sdpa.py --d 64 --dtype float16 2>/dev/null >> "$OUT/peers.jsonl"
      grep -c . "$OUT/peers.jsonl" ;;
    d64) ab bench --out "$OUT/d64" --verify --peers "$(peers)" --tuned "$TUNED" --quiet ;;
    d128) ab bench --out "$OUT/d128" --d 128 --kernels standard,flash --peers "$(peers)" \
      --tuned "$TUNED" --no-report --quiet ;;
    causal) ab bench --out "$OUT/causal" --causal --kernels flash,block-sparse --n 1024..16384 \
      --tuned "$TUNED" --no-report --quiet ;;
    density) ab bench --out "$OUT/density" --sweep density --n 4096,8192 --tuned "$TUNED" \
      --no-report --quiet ;;
    blocksize) ab bench --out "$OUT/blocksize" --sweep block-size --kernels flash --n 4096 \
      --block-sizes 16,32,64,128 --no-report --quiet ;;
    f16) ab bench --out "$OUT/f16" --dtype f16 --kernels flash --tuned "$TUNED" --no-report \
      --quiet ;;
    decode)
      # Issue 14's targets: paged-decode f16, d=128, context 8192, 256 (sequence, head) rows
      # (16 sequences x 16 heads, MHA as the peer) against contiguous decode, the measured copy
      # ceiling and PyTorch SDPA decode (query length 1) in the same device call.
      decode_peers 2048,8192
      ab verify --kernels decode,paged-decode --dtype f16 --d 128 --n 1,37,257,2048 --heads 8 \
        --kv-heads 2 --batch 3 --count-io --quiet | tail -6
      ab bench --out "$OUT/decode" --sweep decode --dtype f16 --d 128 --n 2048,8192 \
        --batches 16 --heads 16 --peers "$DP" --verify --quiet ;;
    decode3)
      # Issue 14, decode v2: coalesced token groups, per-group online softmax, split count from
      # the GPU's size. Peers first (same call), then correctness (f16 d128, odd lengths, GQA,
      # counted == modeled), the default knobs through bench (results JSON), then the variants
      # side by side (each checked against the float64 reference before it is timed) and the
      # table: variant, context, decode ms, paged ms, paged/contiguous, GB/s, x PyTorch, % copy.
      decode_peers 2048,8192
      ab verify --kernels decode,paged-decode --dtype f16 --d 128 --n 1,37,257,2048 --heads 8 \
        --kv-heads 2 --batch 3 --count-io --quiet | tail -10
      ab verify --kernels decode,paged-decode --dtype f32 --d 64 --context 1,61,1000,4099 \
        --heads 4 --count-io --quiet | tail -6
      ab bench --out "$OUT/decode3" --sweep decode --dtype f16 --d 128 --n 8192 \
        --batches 16 --heads 16 --peers "$DP" --no-report --quiet | tail -8
      deno run --node-modules-dir=manual -A scripts/decode_variants.ts --n 2048,8192 \
        --peers "$DP" 2>&1 | grep --line-buffered -v '^\s*at ' | tee "$OUT/decode3.txt" ;;
    decode-bimodal | decodeinv)
      # Issue 14, open: decode timed at ~4 TB/s in decode_variants and ~1 TB/s in bench, same
      # kernel, shape and commit (BENCHMARKS.md, decode v2). Both kernels checked against the
      # float64 reference first; then bench's own measureRun after bench's ceilings, one plan
      # timed whole / split / combine alternating, a ramp after 2 s idle, seeds 1 vs 7 on one
      # plan, fresh allocations (one shifted, one with a padded stride); nvidia-smi's clocks,
      # power and clock-event reasons sampled beside every row. Table last.
      nvidia-smi --query-gpu=pstate,clocks.sm,clocks.max.sm,clocks.mem,power.limit,clocks_event_reasons.active \
        --format=csv 2>&1 | head -3
      nvidia-smi --query-compute-apps=pid,name,used_memory --format=csv 2>&1 | head -5
      bimodal 120 ;;
    decode-sweep) ab bench --out "$OUT/decode-sweep" --sweep decode --dtype f16 --d 128 \
      --heads 32 --kv-heads 8 --no-report --quiet ;;
    speed)
      # Issue 10: flash variants (register tiles, subgroups on/off, v5 for reference), each
      # checked against the float64 reference before it is timed, beside PyTorch's peers.
      python3 .device/peer_sdpa.py --d 64 --n 1024,4096,16384 --dtype float32 2>/dev/null > "$OUT/peers.jsonl"
      python3 .device/peer_sdpa.py --d 128 --n 1024,4096,16384 --dtype float32 2>/dev/null >> "$OUT/peers.jsonl"
      python3 .device/peer_sdpa.py --d 64 --n 4096 --causal --dtype float32 2>/dev/null >> "$OUT/peers.jsonl"
      grep -h '"EFFICIENT\|MATH' "$OUT/peers.jsonl" | cut -c1-220
      sv --d 64 --tiles 64x32x8x8,64x32x4x8,32x32x8x8,64x32x4x16 --sg both | tee "$OUT/d64.txt"
      sv --d 128 --tiles 32x32x4x8,32x32x8x8,32x32x2x16 --sg both | tee "$OUT/d128.txt"
      sv --d 64 --n 4096 --tiles 64x32x8x8 --sg on --causal | tee "$OUT/causal.txt"
      sv --d 64 --n 4096 --tiles 64x32x8x8 --sg on --kernel block-sparse | tee "$OUT/sparse.txt" ;;
    speed2)
      # Issue 10, second call: v5 with subgroup row maxima against its portable path, d=128,
      # causal and block-sparse, then standard against flash up to the memory limit (B·H = 16).
      python3 .device/peer_sdpa.py --d 64 --n 4096,16384 --reps 10 --dtype float32 2>/dev/null > "$OUT/peers.jsonl"
      grep -h '"EFFICIENT\|MATH' "$OUT/peers.jsonl" | cut -c1-200
      sv --d 64 --n 4096,16384 --check-n 77,300 --tiles 64x32x4x16 --sg both | tee "$OUT/d64.txt"
      sv --d 64 --n 4096 --check-n 77 --tiles 64x32x4x16 --sg on --causal | tee "$OUT/causal.txt"
      sv --d 64 --n 4096 --check-n 77 --tiles 64x32x4x16 --sg on --kernel block-sparse | tee "$OUT/sparse.txt"
      ab bench --out "$OUT/limit" --kernels standard,flash --batch 1 --heads 16 \
        --n 4096,16384,32768,65536 --reps 3 --tuned "$TUNED" --no-ceilings --no-report --quiet | tail -12
      python3 .device/peer_sdpa.py --d 64 --n 16384,32768 --batch-heads 16 --reps 3 --dtype float32 2>&1 | grep -h 'MATH\|rror' | cut -c1-200
      sv --d 128 --n 4096 --check-n 77 --tiles 32x32x2x16,32x32x4x8 --sg both | tee "$OUT/d128.txt" ;;
    flashfwd)
      # Issue 10, flash forward f32 at d = 64 and 128: v5 on its tuned tiles (64x32x4x16,
      # 32x32x2x16) and the default d = 64 tile, beside v7 (suffix v7: interleaved output
      # columns, no bank conflicts in P·V at RD4 > 1; row sums from each thread's own keys) on
      # the same tiles and on the tx = 8 tiles v5's conflicts ruled out. Each variant is checked
      # against the float64 reference (n = 77, 300, B·H = 6, poisoned outputs) before it is
      # timed; PyTorch's EFFICIENT_ATTENTION in the same call gives the ratios.
      # Table: variant (kernel dtype d tiles subgroup size), N, ms, TFLOP/s, ratio.
      FP=$OUT/flashfwd_peers.jsonl FT=$OUT/flashfwd_table.txt
      rm -f "$FT"
      for d in 64 128; do
        python3 .device/peer_sdpa.py --d $d --n 4096,16384 --reps 10 --dtype float32 2>/dev/null
      done > "$FP"
      grep -h '"EFFICIENT' "$FP" | cut -c1-200
      sv --d 64 --n 4096,16384 --check-n 77,300 --reps 8 --sg on --peers "$FP" --table "$FT" \
        --tiles 64x32x4x16,64x32x4x16v7,64x32x4x8,64x32x4x8v7,32x32x2x8v7,64x32x8x8v7 \
        > "$OUT/flashfwd_d64.txt"
      ;&
    flashfwd128)
      # (flashfwd's d = 128 half alone: the whole step outran 140 s on 2026-11-30.)
      FP=$OUT/flashfwd_peers.jsonl FT=$OUT/flashfwd_table.txt
      [ -s "$FP" ] || python3 .device/peer_sdpa.py --d 128 --n 4096,16384 --reps 10 \
        --dtype float32 2>/dev/null > "$FP"
      sv --d 128 --n 4096,16384 --check-n 77,300 --reps 8 --sg on --peers "$FP" --table "$FT" \
        --tiles 32x32x2x16,32x32x2x16v7,32x32x2x8v7,32x32x4x16v7,32x32x4x8v7,64x16x2x4v7 \
        > "$OUT/flashfwd_d128.txt"
      grep -h '^check' "$OUT"/flashfwd_d*.txt | grep -vc ' ok$' | sed 's/^/checks not ok: /'
      grep -h '^check' "$OUT"/flashfwd_d*.txt | grep -v ' ok$'
      echo "--- flashfwd (B·N = 16384, 16 heads, f32)"
      cat "$FT" ;;
    occupancy)
      # Issue 10's occupancy experiment (docs/analysis/flash_inner_loop.md, "What the counts
      # point to", item 2): does flash forward f32 d = 64 (v7, the tuned 64x32x4x16: 256 threads)
      # lose time when fewer of its workgroups fit an SM? The kernel option padWorkgroupBytes
      # (speed_variants --pad) adds workgroup memory that no run touches; work and bytes stay.
      # Workgroup memory of the unpadded program: q_tile 64·68·4 = 17408, kv_tile 32·68·4 = 8704,
      # p_tile 64·36·4 = 9216, row_max_part 64·16·4 = 4096: S = 39424 B (the plan's limit check
      # counts 39696, block-sparse's 272-byte prelude included, so a pad of at most
      # (49152 - 39696) rounded down to 16 = 9456 fits WebGPU's 49152 on the H200).
      # Hopper SM: 228 KB = 233472 B of shared memory (227 KB usable a block), 1 KB of it
      # reserved per block by the system (CUDA C++ Programming Guide, compute capability 9.0;
      # neither HOPPER.md nor H200.md gives the figure). Workgroups an SM from shared memory,
      # floor(233472 / (S + 1024)), and without the reserve floor(233472 / S):
      #   pad 0     S = 39424: 233472 / 40448 = 5.77 -> 5 (5.92 -> 5)
      #   pad 4096  S = 43520: 233472 / 44544 = 5.24 -> 5 (5.36 -> 5)   control: pad, same 5
      #   pad 9456  S = 48880: 233472 / 49904 = 4.68 -> 4 (4.78 -> 4)
      # 4 an SM needs S + 1024 > 233472 / 5 = 46694 (pad >= 6256), or S > 46694 without the
      # reserve (pad >= 7280); 9456 is past both. 3 an SM would need S > 57344
      # and 2 S > 76800, past WebGPU's 48 KiB: not reachable by padding (speed_variants would
      # refuse them with one line). Threads allow 8 (2048 / 256) and registers 4 at 64 a thread
      # or 3 at 65-72. This assumes the driver picks the full 228 KB carveout for this kernel.
      # pad 0 runs again last: the drift between the two bounds the noise.
      # Each variant is checked against the float64 reference first (n = 1, 77, 300, B·H = 6,
      # poisoned outputs), then timed at N = 4096 and 16384 (B·N = 16384, 16 heads) beside
      # PyTorch's EFFICIENT_ATTENTION in the same call. Expected time ~90 s, under 120 s:
      # flashfwd's peers (d = 64 and 128) and 6 d = 64 variants took at most 2 min 20 s (stop 9,
      # 13:53:22-13:55:42), so ~20 s a variant; here 4 variants and half those peers.
      OP=$OUT/occupancy_peers.jsonl OT=$OUT/occupancy_table.txt
      rm -f "$OT"
      ab devices | grep -i 'description\|WorkgroupStorage'
      python3 .device/peer_sdpa.py --d 64 --n 4096,16384 --reps 10 --dtype float32 2>/dev/null > "$OP"
      grep -h '"EFFICIENT' "$OP" | cut -c1-200
      sv --d 64 --n 4096,16384 --check-n 1,77,300 --reps 8 --sg on --peers "$OP" --table "$OT" \
        --tiles 64x32x4x16v7 --pad 0,4096,9456,0 > "$OUT/occupancy.txt"
      grep -h '^check' "$OUT/occupancy.txt" | grep -v ' ok$'
      echo "--- occupancy (flash f32 d64 v7 64x32x4x16; pad bytes -> workgroups an SM: 0 -> 5, 4096 -> 5, 9456 -> 4)"
      cat "$OT" ;;
    v8 | v8d128)
      # Issue 10, v8 (docs/analysis/v8_prefetch.md): does staging K/V through registers ahead
      # of use (no global load between two barriers) speed up flash forward f32? v7 (global ->
      # kv_tile between barriers) against v8 (the next block's K and V prefetched), v8k (next K
      # only) and v8e (next K, and the current block's V fetched at the block's start, so its
      # registers are free before P·V); step v8: d = 64 on the tuned 64x32x4x16; step v8d128:
      # d = 128 on 32x32x2x16, v7, v8e and v8 (v8 needs 32 more registers there). Each variant
      # is checked against the float64 reference first (n = 77, 300, B·H = 6, poisoned
      # outputs), then timed at N = 4096 and 16384 (B·N = 16384, 16 heads) beside PyTorch's
      # EFFICIENT_ATTENTION in the same call. Expected ~90 s for v8 (the occupancy step's
      # figure: d = 64 peers and 4 variants; flashfwd's d = 64 half, peers for both head dims
      # and 6 variants, took at most 2 min 20 s on stop 9) and ~70 s for v8d128 (3 variants,
      # d = 128 peers): each under 150 s, both in one call ~160 s.
      d=64 tiles=64x32x4x16v7,64x32x4x16v8,64x32x4x16v8k,64x32x4x16v8e
      [ "$step" = v8d128 ] && d=128 tiles=32x32x2x16v7,32x32x2x16v8e,32x32x2x16v8
      VP=$OUT/${step}_peers.jsonl VT=$OUT/${step}_table.txt
      rm -f "$VT"
      python3 .device/peer_sdpa.py --d $d --n 4096,16384 --reps 10 --dtype float32 2>/dev/null > "$VP"
      grep -h '"EFFICIENT' "$VP" | cut -c1-200
      sv --d $d --n 4096,16384 --check-n 77,300 --reps 8 --sg on --peers "$VP" --table "$VT" \
        --tiles $tiles > "$OUT/$step.txt"
      grep -h '^check' "$OUT/$step.txt" | grep -vc ' ok$' | sed 's/^/checks not ok: /'
      grep -h '^check' "$OUT/$step.txt" | grep -v ' ok$'
      echo "--- $step (flash f32 d$d, B·N = 16384, 16 heads; v7 against the v8 layouts)"
      cat "$VT" ;;
    flashh16)
      # Issue 10, f16: packed half arithmetic (f16Math packed, flash_h16.wgsl) against f16
      # storage with f32 arithmetic, each variant checked against the float64 reference at odd
      # sizes (speed_variants' check, B·H = 2·3) before it is timed, beside PyTorch f16 peers.
      HP=$OUT/peers_f16.jsonl
      python3 .device/peer_sdpa.py --d 64 --n 4096,16384 --reps 10 --dtype float16 2>/dev/null > "$HP"
      grep -h 'EFFICIENT\|FLASH' "$HP" | cut -c1-200
      ab verify --kernels flash,block-sparse --dtype f16 --f16-math packed --d 64 --n 1,37,257,1000 \
        --heads 3 --batch 2 --count-io --quiet | tail -3
      ab verify --kernels flash,block-sparse --dtype f16 --f16-math packed --d 128 --n 77,1000 \
        --causal --mask local --quiet | tail -3
      sv --dtype f16 --d 64 --n 4096,16384 --check-n 1,77,1000 --sg off --f16-math f32,packed \
        --tiles 64x32x2x8,64x32x4x16,64x64x4x16 --peers "$HP" | tee "$OUT/h16.txt" | grep -v "^{"
      # One f16 partial sum a score (64 = the head dim) and 64 keys: the cost of the f32 folds.
      sv --dtype f16 --d 64 --n 4096,16384 --check-n 77,1000 --sg off --f16-math packed \
        --f16-chunk 64 --tiles 64x32x4x16 --peers "$HP" | tee "$OUT/h16_c64.txt" | grep -v "^{"
      sv --dtype f16 --d 64 --n 4096 --check-n 77 --sg off --f16-math f32,packed --causal \
        --tiles 64x32x4x16 | tee "$OUT/h16_causal.txt" | grep -v "^{"
      H16="$OUT/h16.txt $OUT/h16_c64.txt $OUT/h16_causal.txt"
      grep '^check' $H16 | grep -v ' ok$'
      echo "variant (kernel dtype/math+chunk d tiles) | N | ms | TFLOP/s | max check error | ratio to EFFICIENT f16"
      for f in $H16; do sed -n '/^$/,$p' "$f"; done | grep . ;;
    backward)
      # Issue 13. Correctness first (f16 has never run elsewhere: llvmpipe has no shader-f16).
      for dt in f32 f16; do for pass in bwd fwd+bwd; do
        ab verify --pass $pass --dtype $dt --d 64 --n 1,37,257,1024 --heads 3 --batch 2 \
          --count-io --quiet | tail -3
        ab verify --pass $pass --dtype $dt --d 128 --n 77,1000 --causal --mask local --quiet | tail -2
      done; done
      # Peers in the same call: PyTorch SDPA forward+backward at Figure 2 (left)'s shape
      # (GPT-2 medium: N = 1024, d = 64, 16 heads, batch 64) and at the target shape (N = 4096,
      # B·N = 16384, 16 heads: peer_sdpa's default batch-heads).
      BP=$OUT/peers_bwd.jsonl
      python3 .device/peer_sdpa.py --pass fwdbwd --n 1024 --d 64 --dtype float16 \
        --batch-heads 1024 2>/dev/null > "$BP"
      python3 .device/peer_sdpa.py --pass fwdbwd --n 1024 --d 64 --dtype float32 \
        --batch-heads 1024 2>/dev/null >> "$BP"
      python3 .device/peer_sdpa.py --pass fwdbwd --n 4096 --d 64 --dtype float32 2>/dev/null >> "$BP"
      python3 .device/peer_sdpa.py --pass bwd --n 256,512,1024,2048,4096 --d 64 \
        --dtype float32 2>/dev/null >> "$BP"
      grep -c . "$BP"
      # Figure 2 (left): standard vs flash, forward+backward, f16 and f32, timed, then counted.
      for dt in f16 f32; do
        ab bench --out "$OUT/fig2-$dt" --pass fwd+bwd --kernels standard,flash --n 1024 --d 64 \
          --heads 16 --batch 64 --dtype $dt --peers "$BP" --no-report --quiet
        ab bench --out "$OUT/fig2-$dt-counted" --pass fwd+bwd --kernels standard,flash --n 1024 \
          --d 64 --heads 16 --batch 64 --dtype $dt --count-io --reps 3 --no-report --quiet
      done
      # Target: flash forward+backward f32, d = 64, N = 4096, B·N = 16384 (batch 4), 16 heads.
      ab bench --out "$OUT/target-fwdbwd" --pass fwd+bwd --kernels flash --n 4096 --d 64 \
        --heads 16 --batch 4 --dtype f32 --peers "$BP" --no-report --quiet
      # Crossover: standard vs flash backward, bytes and time, N = 256..4096, B·N = 16384,
      # 16 heads (standard-bwd uploads P from the host: N² a head; it does not fit at 4096).
      ab bench --out "$OUT/crossover-bwd" --pass bwd --kernels standard,flash --n 256..4096 \
        --d 64 --heads 16 --dtype f32 --peers "$BP" --count-io --quiet
      ab bench --out "$OUT/crossover-fwdbwd" --pass fwd+bwd --kernels standard,flash \
        --n 256..4096 --d 64 --heads 16 --dtype f32 --peers "$BP" --quiet ;;
    crossover)
      # Issue 13's crossover alone (the backward step's last part): standard vs flash backward,
      # bytes (counted) and time, N = 256..4096, B·N = 16384, 16 heads, f32, PyTorch's backward
      # beside them; then forward + backward.
      BP=$OUT/peers_crossover.jsonl
      python3 .device/peer_sdpa.py --pass bwd --n 256,512,1024,2048,4096 --d 64 --reps 5 \
        --dtype float32 2>/dev/null > "$BP"
      ab bench --out "$OUT/crossover-bwd" --pass bwd --kernels standard,flash --n 256..4096 \
        --d 64 --heads 16 --dtype f32 --peers "$BP" --count-io --reps 5 --no-report --quiet
      ab bench --out "$OUT/crossover-fwdbwd" --pass fwd+bwd --kernels standard,flash \
        --n 256..4096 --d 64 --heads 16 --dtype f32 --reps 5 --no-report --quiet ;;
    decode-final)
      # Issue 14 with settled clocks (kernels/timing.ts settleMs): peers first, correctness
      # (f16 d = 128, odd lengths, GQA, counted == modeled), the target shape through bench
      # twice (two processes: the bimodal timing of stop 9 showed between them), the default
      # decode sweep over context and batch with its report, then decode_bimodal's bench phase.
      decode_peers 2048,8192
      ab verify --kernels decode,paged-decode --dtype f16 --d 128 --n 1,37,257,2048 --heads 8 \
        --kv-heads 2 --batch 3 --count-io --quiet | tail -3
      for i in 1 2; do
        ab bench --out "$OUT/decode-target-$i" --sweep decode --dtype f16 --d 128 --n 2048,8192 \
          --batches 16 --heads 16 --peers "$DP" --verify --no-report --quiet | grep -v '^Warn'
      done
      ab bench --out "$OUT/decode-sweep" --sweep decode --dtype f16 --d 128 --heads 32 \
        --kv-heads 8 --quiet | tail -4
      bimodal 60 --phases check,ceil,bench ;;
    crossover-small)
      # Issue 13's crossover below N = 256 (flash backward was already faster there), then the
      # forward + backward sweep that did not fit the crossover step's time.
      ab bench --out "$OUT/crossover-small" --pass bwd --kernels standard,flash --n 64,128 \
        --d 64 --heads 16 --dtype f32 --count-io --reps 5 --no-report --quiet | tail -6
      ab bench --out "$OUT/crossover-fwdbwd" --pass fwd+bwd --kernels standard,flash \
        --n 256..4096 --d 64 --heads 16 --dtype f32 --reps 5 --no-report --quiet | grep -v '^Warn' ;;
    decode2)
      # Issue 14, the rest of decode-final (it ran past its time after the first bench): the
      # target shape through bench a second time, decode_bimodal's bench phase (bench's own
      # measureRun, settled clocks), then a decode sweep over context and batch with its report.
      decode_peers 8192
      ab bench --out "$OUT/decode-target-2" --sweep decode --dtype f16 --d 128 --n 8192 \
        --batches 16 --heads 16 --peers "$DP" --no-report --quiet | grep -v '^Warn'
      bimodal 40 --phases bench
      ab bench --out "$OUT/decode-sweep" --sweep decode --dtype f16 --d 128 --heads 32 \
        --kv-heads 8 --n 1024,4096,16384 --batches 1,16,64 --quiet | grep -v '^Warn' ;;
    fig2count)
      # Issue 13, Figure 2 (left): flash forward + backward's bytes counted at the figure's shape
      # (standard's were counted in the fig2 step), f16 and f32, one timed rep each.
      for dt in f16 f32; do
        ab bench --out "$OUT/fig2count-$dt" --pass fwd+bwd --kernels flash --n 1024 --d 64 \
          --heads 16 --batch 64 --dtype $dt --count-io --reps 1 --no-ceilings --no-report \
          --quiet | grep -v '^Warn' | head -3
      done ;;
    refresh10)
      # Issue 10's refreshed docs/h200 results and report: peers, then the d64 sweep (verified,
      # with the report), d128, causal, density and f16, all in this step's OUT.
      for st in peers d64 d128 causal density f16; do bash "$0" "$st"; done ;;
    refresh10b)
      # What refresh10 did not reach in stop 10 (the d64 sweep took 3.7 min: settling and the
      # float64 checks): peers, then d128, causal, density and f16 through bench into this OUT.
      for st in peers d128 causal density f16; do bash "$0" "$st"; done ;;
    sparse)
      # Issue 10's "keep" targets with the committed flash (v5 source): block-sparse time over
      # dense at density s (target <= 1.2 s) and causal speed-up (target >= 1.7x), by the tool.
      ab bench --out "$OUT/sparse-density" --sweep density --kernels flash,block-sparse \
        --n 4096,16384 --tuned "$TUNED" --no-report --quiet | tail -14
      ab bench --out "$OUT/sparse-causal" --causal --kernels flash --n 4096,16384 \
        --tuned "$TUNED" --no-report --quiet | tail -6 ;;
    bwdfix)
      # Issue 13, second call: correctness first (f16 and f32, backward and forward+backward, odd
      # shapes with n = 1 and 2, issue 13's causal d = 128 case; the standard backward's
      # head-chunk split forced small on the device), then Figure 2 (left) with standard's P, dP,
      # dS split over 2 GiB bindings. Host time goes to drawing inputs (4 tensors of 67M normals
      # per set): standard is counted (its split is the change), flash only timed.
      for dt in f32 f16; do
        for pass in bwd fwd+bwd; do
          ab verify --pass $pass --dtype $dt --d 64 --n 1,2,37,130 --heads 3 --batch 1 \
            --count-io --quiet | tail -1
        done
        ab verify --pass bwd --dtype $dt --d 128 --n 1,2,77 --causal --quiet | tail -1
      done
      ;&
    fig2)
      # (bwdfix's second half alone.) The split test (kernels/backward/split_test.ts) runs in CI;
      # on the device it did not finish within the step's time (2026-11-30), so it is not here.
      BP=$OUT/peers_bwdfix.jsonl
      for pdt in float16 float32; do
        python3 .device/peer_sdpa.py --pass fwdbwd --n 1024 --d 64 --dtype $pdt \
          --batch-heads 1024 --reps 5 2>/dev/null
      done > "$BP"
      fig2() {
        ab bench --out "$OUT/bwdfix-fig2-$1-$2" --pass fwd+bwd --kernels $2 --n 1024 --d 64 \
          --heads 16 --batch 64 --dtype $1 --reps 5 --verify --no-ceilings --peers "$BP" \
          --no-report --quiet "${@:3}" | tail -2
      }
      for dt in f16 f32; do fig2 $dt standard --count-io; fig2 $dt flash; done
      python3 - "$OUT" "$BP" <<'PY'
import json, sys
out, bp = sys.argv[1], sys.argv[2]
peers = {}
for line in open(bp):
    if line.strip():
        p = json.loads(line)
        peers[(p["dtype"], p["backend"])] = p.get("ms")
print("Figure 2 (left), fwd+bwd, N=1024 d=64 B*H=64*16")
print(f"{'kernel':18} {'dtype':5} {'modeled GB':>10} {'counted GB':>10} {'ms':>8} {'err':>8} | "
      f"{'MATH':>7} {'EFFIC':>7} {'FLASH':>7}")
gb = lambda x: "-" if x is None else f"{x / 1e9:.2f}"
ms = lambda x: "-" if x is None else f"{x:.2f}"
for dt, pdt in (("f16", "float16"), ("f32", "float32")):
    runs = []
    for k in ("standard", "flash"):
        try:
            runs += json.load(open(f"{out}/bwdfix-fig2-{dt}-{k}/results.json"))["runs"]
        except OSError as e:
            print(dt, k, "no results:", e)
    for r in runs:
        h, t = r["hbmBytes"], r.get("timeMs")
        err = r.get("maxRelError")
        print(f"{r['kernel']:18} {dt:5} {gb(h['modeled']):>10} {gb(h.get('counted')):>10} "
              f"{ms(t['median'] if t else None):>8} {'-' if err is None else f'{err:.1e}':>8} | "
              + " ".join(f"{ms(peers.get((pdt, b))):>7}"
                         for b in ("MATH", "EFFICIENT_ATTENTION", "FLASH_ATTENTION"))
              + ("" if r["status"] == "ok" else f"  {r['status']}: {r.get('reason', '')[:90]}"))
PY
      ;;
    stdgemm)
      # Issue 10, standard's GEMMs and softmax: correctness first (odd shapes, f32 and f16,
      # counted == modeled), PyTorch MATH at B·N = 16384, then the variants (each checked against
      # the float64 reference first): P·V key splits, scores and P·V tiles, subgroups off.
      for dt in f32 f16; do
        ab verify --kernels standard --dtype $dt --d 64 --n 1,37,257,1000 --heads 3 --batch 2 \
          --count-io --quiet | tail -2
        ab verify --kernels standard --dtype $dt --d 128 --n 77,1000 --causal --count-io --quiet | tail -1
      done
      ab verify --kernels standard --d 32 --n 37,1000 --count-io --quiet | tail -1
      python3 .device/peer_sdpa.py --d 64 --n 1024,4096,16384 --reps 10 --dtype float32 \
        2>/dev/null > "$OUT/std_peers.jsonl"
      grep -h '"MATH' "$OUT/std_peers.jsonl" | cut -c1-200
      stv() { deno run --node-modules-dir=manual -A scripts/standard_variants.ts --d 64 \
        --peers "$OUT/std_peers.jsonl" "$@" 2>&1 | grep --line-buffered -v '^\s*at '; }
      V16=base,ks1,ks16,sc64x64x4x8,sc64x32x4x8,t64x64x4x8,t64x64x4x8+sc64x64x4x8,nosg
      stv --n 16384 --variants $V16 | tee "$OUT/std16k.txt"
      stv --n 1024,4096 --check-n 77 --variants base,sc64x64x4x8,t64x64x4x8 | tee "$OUT/std4k.txt"
      echo "=== stdgemm summary"
      grep -h ' n=' "$OUT/std16k.txt" "$OUT/std4k.txt" | grep -v '^check' ;;
    atomicdq)
      # Issue 13, dQ by float atomics (flash-bwd kernel option dq): "atomic" adds tau dS K to an
      # f32 dQ with atomicAdd in the dK/dV pass and drops the dQ pass; "atomic-stagger" also
      # starts each key block's walk of the query blocks at its own offset (less contention on
      # the same dQ rows); "pass" is the default (the dQ pass).
      # f32, d = 64, N = 4096, B·H = 4·16, beside PyTorch EFFICIENT_ATTENTION (same call). Each
      # variant is checked against the float64 reference at odd n (poisoned outputs; causal at
      # n = 77, 300 too) before it is timed; a variant the device refuses shows FAILED CHECK.
      bwd_variants atomicdq --dq pass,atomic,atomic-stagger ;;
    bwdprefetch)
      # Issue 13 follow-up, software-pipelined backward loads (flash-bwd option prefetch,
      # kernels/backward/prefetch.ts): each thread loads its share of the next inner block's
      # tiles (dK/dV pass: Q, dO, L, D of the next query block; dQ pass: K, V of the next key
      # block) into registers before the current block's arithmetic and stores them after the
      # barrier; off is the default source. f32, d = 64, N = 4096, B·H = 4·16 (dQ by the dQ
      # pass), beside PyTorch EFFICIENT_ATTENTION bwd and fwdbwd (same call). Each variant is
      # checked against the float64 reference at odd n (poisoned outputs; causal at n = 77, 300
      # too) before it is timed; the per-pass lines give the dkdv and dq passes' own ms.
      # Estimated ~90 s (< 150 s): step atomicdq, 3 variants a kernel, took 129 s in stop 10.
      bwd_variants bwdprefetch --prefetch off,on ;;
    dqflag)
      # Issue 13's `--dq` through the CLI (branch dqflag): correct first (verify each mode on
      # flash-bwd and flash-fwd+bwd at odd n, counted == modeled bytes, causal too), then bench
      # each mode, f32 d = 64 N = 4096 B·H = 4·16, with the records' `dq`; `check` of atomic
      # against pass must pair no run (a non-pass dq is in the run key).
      for dq in pass atomic atomic-stagger; do
        for pass in bwd fwd+bwd; do
          ab verify --pass $pass --kernels flash --dq $dq --d 64 --n 1,77,300 --heads 3 \
            --batch 2 --count-io --quiet | tail -1
          ab verify --pass $pass --kernels flash --dq $dq --d 64 --n 77 --causal --quiet | tail -1
          ab bench --out "$OUT/dq-$dq-$pass" --pass $pass --kernels flash --dq $dq --n 4096 \
            --batch 4 --heads 16 --d 64 --no-report --no-ceilings --quiet | tail -1
        done
      done
      ab check --baseline "$OUT/dq-pass-bwd/results.json" \
        --current "$OUT/dq-atomic-bwd/results.json" | tail -3
      python3 - "$OUT" <<'PY'
import json, sys
print("kernel          dq              tiles            median ms  TFLOP/s  status")
for dq in ["pass", "atomic", "atomic-stagger"]:
    for p in ["bwd", "fwd+bwd"]:
        try:
            runs = json.load(open(f"{sys.argv[1]}/dq-{dq}-{p}/results.json"))["runs"]
        except OSError:
            print(f"{p} {dq}: no results"); continue
        for r in runs:
            t, ms = r["tile"], (r.get("timeMs") or {}).get("median")
            print(f"{r['kernel']:15} {r.get('dq', 'pass'):15} "
                  f"{t['br']}x{t['bc']}x{t['rm']}x{t['tx']:<10} "
                  f"{'-' if ms is None else f'{ms:9.3f}'} {r.get('tflops') or 0:8.2f}  {r['status']}")
PY
      ;;
    bwdspeed)
      # Issue 13, backward speed: the flash backward's own tiles (many threads a workgroup) and,
      # in forward+backward, each half with its own tiles. Correct first (verify runs the
      # default tiles: flash-bwd's own candidates; speed_variants checks each variant against
      # the float64 reference at odd n before timing it). Target: flash fwd+bwd f32, d = 64,
      # N = 4096, B·H = 4·16, >= 0.75x PyTorch EFFICIENT_ATTENTION (same call).
      for pass in bwd fwd+bwd; do
        for d in 64 128; do
          ab verify --pass $pass --kernels flash --d $d --n 1,77,300 --heads 3 --batch 2 \
            --count-io --quiet | tail -4
        done
        ab verify --pass $pass --kernels flash --d 64 --n 77,300 --causal --quiet | tail -3
      done
      BP=$OUT/peers_bwdspeed.jsonl
      python3 .device/peer_sdpa.py --pass fwdbwd --n 4096 --d 64 --dtype float32 2>/dev/null > "$BP"
      python3 .device/peer_sdpa.py --pass bwd --n 4096 --d 64 --dtype float32 2>/dev/null >> "$BP"
      grep -h EFFICIENT "$BP" | cut -c1-200
      # flash-bwd alone: v1's tiles (32x32, 4 rows x 8 threads = 64 threads) against the new
      # candidates (256 / 128 / 512 threads), then forward+backward with the forward's tuned
      # tiles (its backward half 32x32x2x16), its default tiles (half 32x32x2x8) and v1's pair.
      sv --kernel flash-bwd --n 4096 --d 64 --check-n 77 --reps 5 --sg off --peers "$BP" \
        --tiles 32x32x4x8,32x32x2x16,32x32x2x8,32x32x1x16 | tee "$OUT/bwd.txt" | grep -v '^{'
      sv --kernel flash-fwd+bwd --n 4096 --d 64 --check-n 77 --reps 5 --sg off --peers "$BP" \
        --tiles 64x32x4x16,64x32x4x8,64x32x2x16 | tee "$OUT/fwdbwd.txt" | grep -v '^{' ;;
    passbytes)
      # Per-pass GB/s of chunked passes (every pass of a split plan carries its modeled bytes)
      # and decode's tiles column. Correct first: standard forward and forward+backward at odd
      # shapes, counted == modeled (the per-pass split is tested on the host with forced small
      # binding limits: kernels/standard/standard_test.ts, kernels/backward/split_test.ts), decode
      # verify (its tiles column). Then standard split over 2 GiB bindings: Figure 2's fwd+bwd
      # (f16, S and P in head chunks of 1023 + 1), the forward at N = 16384 f32 (4 head chunks)
      # and 32768 (row chunks 16320, 16320, 128), and the table: run, pass, ms, GB, GB/s; then
      # the passes' bytes (uniforms left out) against the modeled and the counted totals.
      for pass in fwd fwd+bwd; do
        ab verify --pass $pass --kernels standard --dtype f16 --d 64 --n 1,37,130 --heads 3 \
          --batch 1 --count-io --quiet | tail -1
      done
      ab verify --kernels decode,paged-decode --dtype f16 --d 128 --n 1,37 --heads 8 \
        --kv-heads 2 --batch 3 --quiet | tail -6
      pb() { ab bench --out "$OUT/passbytes-$1" --kernels standard --d 64 --reps 3 --count-io \
        --no-ceilings --no-report --quiet "${@:2}" | tail -3; }
      pb fig2 --pass fwd+bwd --n 1024 --heads 16 --batch 64 --dtype f16 --verify
      pb 16k --n 16384 --heads 4 --batch 1
      pb 32k --n 32768 --heads 1 --batch 1
      python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
print(f"{'run':34} {'pass':9} {'ms':>8} {'GB':>7} {'GB/s':>7}")
for name in ("fig2", "16k", "32k"):
    try:
        runs = json.load(open(f"{out}/passbytes-{name}/results.json"))["runs"]
    except OSError as e:
        print(name, "no results:", e)
        continue
    for r in runs:
        run = f"{r['kernel']} n={r['n']} {r['batch']}x{r['heads']} {r['dtype']}"
        if r["status"] != "ok":
            print(run, r["status"], r.get("reason", "")[:90])
            continue
        ps = r.get("passes") or []
        for p in ps:
            print(f"{run:34} {p['name']:9} {p['medianMs']:8.3f} {p['bytes'] / 1e9:7.3f} "
                  f"{p['achievedGBs']:7.0f}")
        h = r["hbmBytes"]
        counted = "-" if h.get("counted") is None else "%.3f" % (h["counted"] / 1e9)
        print(f"{run:34} {'all':9} {r['timeMs']['median']:8.3f} {h['modeled'] / 1e9:7.3f} "
              f"{r['achievedGBs'] or 0:7.0f}  passes' bytes {sum(p['bytes'] for p in ps) / 1e9:.3f}"
              f" GB, counted {counted} GB, zero-byte passes {sum(1 for p in ps if p['bytes'] == 0)}")
PY
      ;;
    final)
      # The session's last call (2026-11-30), cut to what the first two left unmeasured: each
      # variant still checked against the float64 reference before it is timed, peers in the
      # same call. Standard (issue 10) at N = 16384 and 4096, B·N = 16384:
      python3 .device/peer_sdpa.py --d 64 --n 4096,16384 --reps 5 --dtype float32 \
        2>/dev/null > "$OUT/std_peers.jsonl"
      grep -h '"MATH' "$OUT/std_peers.jsonl" | cut -c1-200
      deno run --node-modules-dir=manual -A scripts/standard_variants.ts --d 64 --n 4096,16384 \
        --check-n 77 --peers "$OUT/std_peers.jsonl" --variants base,ks16,t64x64x4x8+sc64x64x4x8,nosg \
        2>&1 | grep --line-buffered -v '^\s*at ' | tee "$OUT/std.txt" | grep --line-buffered -v '^{'
      ;&
    final-bwd)
      # Flash backward (issue 13): v1's tiles against the new default, and forward+backward.
      BP=$OUT/peers_bwd.jsonl
      python3 .device/peer_sdpa.py --pass fwdbwd --n 4096 --d 64 --dtype float32 --reps 5 \
        2>/dev/null > "$BP"
      python3 .device/peer_sdpa.py --pass bwd --n 4096 --d 64 --dtype float32 --reps 5 \
        2>/dev/null >> "$BP"
      grep -h EFFICIENT "$BP" | cut -c1-200
      sv --kernel flash-bwd --n 4096 --d 64 --check-n 77 --reps 5 --sg off --peers "$BP" \
        --tiles 32x32x4x8,32x32x2x16 | tee "$OUT/bwd.txt" | grep -v '^{'
      sv --kernel flash-fwd+bwd --n 4096 --d 64 --check-n 77 --reps 5 --sg off --peers "$BP" \
        --tiles 64x32x4x16 | tee "$OUT/fwdbwd.txt" | grep -v '^{'
      ;&
    final-d128)
      # Flash f32 d = 128 (issue 10): v5 on its tuned tile beside v7.
      FP=$OUT/peers_d128.jsonl
      python3 .device/peer_sdpa.py --d 128 --n 16384 --reps 5 --dtype float32 2>/dev/null > "$FP"
      sv --d 128 --n 16384 --check-n 77 --reps 8 --sg on --peers "$FP" \
        --tiles 32x32x2x16,32x32x2x16v7,32x32x2x8v7 | tee "$OUT/d128.txt" | grep -v '^{' ;;
    tune11)
      # Issue 10, stop 11: tune with the prefetch layouts among the candidates (v5, v7, v8e, v8
      # a tile, each checked against the float64 reference at n = 77 before it is timed): flash
      # f32 d = 64 and d = 128 and f16 d = 64 at N = 4096 (B·N = 16384, 16 heads), into
      # $OUT/tuned.json, started from the committed file; then f16 and density through bench
      # with it (the refresh steps stop 10 did not reach). Estimated ~2 s a candidate (72).
      cp attnbench-tuned.json "$OUT/tuned.json"
      ab tune --kernels flash --d 64 --out "$OUT/tuned.json" --max-candidates 28 | tail -34
      ab tune --kernels flash --d 128 --out "$OUT/tuned.json" --max-candidates 24 | tail -30
      ab tune --kernels flash --d 64 --dtype f16 --out "$OUT/tuned.json" --max-candidates 20 \
        | tail -26
      for st in f16 density; do bash "$0" "$st"; done ;;
    refresh11)
      # Issue 10, stop 11's last call (14 min of device time left): peers, the d64 sweep with
      # the new tuned file (v8e), tune f16 (3 tiles) and its sweep, tune d128 (2 tiles), density;
      # each capped so that a slow one leaves the rest their time.
      bash "$0" peers
      timeout 250 bash "$0" d64
      timeout 150 bash "$0" tunef16
      timeout 90 bash "$0" tuned128
      timeout 80 bash "$0" density ;;
    refresh11b)
      # (stop 11, 5 min of device time left) d128 and causal through bench with the tuned file
      # refresh11 wrote (d128: v8e), beside the d128 and causal d64 peers of the same call.
      python3 .device/peer_sdpa.py --d 128 --dtype float32 2>/dev/null > "$OUT/peers.jsonl"
      python3 .device/peer_sdpa.py --d 64 --dtype float32 --causal 2>/dev/null >> "$OUT/peers.jsonl"
      timeout 165 bash "$0" d128
      bash "$0" causal ;;
    tunef16)
      ab tune --kernels flash --d 64 --dtype f16 --out "$OUT/tuned.json" --max-candidates 15 \
        | tail -20
      bash "$0" f16 ;;
    tuned128)
      ab tune --kernels flash --d 128 --out "$OUT/tuned.json" --max-candidates 8 | tail -12 ;;
    tuneknobs)
      # Issue 10, tune searches the knobs: flash f32 and f16 d = 64 at N = 4096 (B·H = 4·16)
      # over tiles x layout (v5/v7) x f16 arithmetic (f32/packed) x subgroups (on/off where the
      # program has a subgroup path), standard at N = 1024 over tiles x subgroups (its softmax);
      # every candidate is checked against the float64 reference before it is timed. Into a
      # fresh file; then bench --verify runs the winners (knobs applied and recorded) beside the
      # committed file's entries, and the table: dtype, file, tile, knobs, ms, TFLOP/s.
      TK=$OUT/tuneknobs.json
      rm -f "$TK"
      ab tune --kernels flash --d 64 --out "$TK" --max-candidates 12 --reps 5 | tail -15
      ab tune --kernels flash --d 64 --dtype f16 --out "$TK" --max-candidates 12 --reps 5 | tail -15
      ab tune --kernels standard --d 64 --n 1024 --out "$TK" --max-candidates 6 --reps 5 | tail -9
      for dt in f32 f16; do
        for f in tuneknobs committed; do
          file=$TK; [ $f = committed ] && file=attnbench-tuned.json
          ab bench --out "$OUT/tk-$dt-$f" --kernels flash --dtype $dt --d 64 --n 4096 \
            --tuned "$file" --verify --no-ceilings --no-report --quiet | tail -1
        done
      done
      echo "=== tuneknobs summary"
      python3 - "$OUT" <<'PY'
import json, sys
print(f"{'dtype':5} {'file':10} {'tile':16} {'knobs':14} {'ms':>8} {'TFLOP/s':>8} {'err':>8} status")
for dt in ("f32", "f16"):
    for f in ("tuneknobs", "committed"):
        try:
            r = json.load(open(f"{sys.argv[1]}/tk-{dt}-{f}/results.json"))["runs"][0]
        except Exception as e:
            print(dt, f, "no results:", e); continue
        t = r["tile"]
        knobs = " ".join([t.get("variant", "-"), r.get("f16Math", "-"),
                          "portable" if r.get("subgroups") is False else "sg"])
        ms = (r.get("timeMs") or {}).get("median")
        err = r.get("maxRelError")
        print(f"{dt:5} {f:10} {t['br']}x{t['bc']}x{t['rm']}x{t['tx']:<9} {knobs:14} "
              f"{ms if ms is None else f'{ms:8.3f}'} {r.get('tflops') or 0:8.2f} "
              f"{err if err is None else f'{err:8.1e}'} {r['status']} {r.get('reason') or ''}")
PY
      ;;
    *) echo "unknown step $step"; exit 2 ;;
  esac
done
