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
    cli/main.ts "$@" 2>&1 | grep -v '^\s*at '
}
TUNED=attnbench-tuned.json
[ -f "$OUT/tuned.json" ] && TUNED=$OUT/tuned.json
PEERS=$OUT/peers.jsonl  # written by the peers step; an earlier call's copy in .device/ else
peers() { if [ -f "$PEERS" ]; then echo "$PEERS"; else echo .device/peers.jsonl; fi; }
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
      ab tune --kernels flash --d 64 --dtype f16 --out "$OUT/tuned.json" --max-candidates 8 | tail -2
      TUNED=$OUT/tuned.json ;;
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
      python3 .device/peer_sdpa.py --decode --d 128 --dtype float16 --n 2048,8192 \
        --batch-heads 256 2>/dev/null > "$OUT/decode_peers.jsonl"
      grep -c . "$OUT/decode_peers.jsonl"
      ab verify --kernels decode,paged-decode --dtype f16 --d 128 --n 1,37,257,2048 --heads 8 \
        --kv-heads 2 --batch 3 --count-io --quiet | tail -6
      ab bench --out "$OUT/decode" --sweep decode --dtype f16 --d 128 --n 2048,8192 \
        --batches 16 --heads 16 --peers "$OUT/decode_peers.jsonl" --verify --quiet ;;
    decode-sweep) ab bench --out "$OUT/decode-sweep" --sweep decode --dtype f16 --d 128 \
      --heads 32 --kv-heads 8 --no-report --quiet ;;
    speed)
      # Issue 10: flash variants (register tiles, subgroups on/off, v5 for reference), each
      # checked against the float64 reference before it is timed, beside PyTorch's peers.
      sv() { deno run --node-modules-dir=manual -A scripts/speed_variants.ts "$@" 2>&1 | grep -v '^\s*at '; }
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
      sv() { deno run --node-modules-dir=manual -A scripts/speed_variants.ts "$@" 2>&1 | grep -v '^\s*at '; }
      python3 .device/peer_sdpa.py --d 64 --n 4096,16384 --reps 10 --dtype float32 2>/dev/null > "$OUT/peers.jsonl"
      grep -h '"EFFICIENT\|MATH' "$OUT/peers.jsonl" | cut -c1-200
      sv --d 64 --n 4096,16384 --check-n 77,300 --tiles 64x32x4x16 --sg both | tee "$OUT/d64.txt"
      sv --d 64 --n 4096 --check-n 77 --tiles 64x32x4x16 --sg on --causal | tee "$OUT/causal.txt"
      sv --d 64 --n 4096 --check-n 77 --tiles 64x32x4x16 --sg on --kernel block-sparse | tee "$OUT/sparse.txt"
      ab bench --out "$OUT/limit" --kernels standard,flash --batch 1 --heads 16 \
        --n 4096,16384,32768,65536 --reps 3 --tuned "$TUNED" --no-ceilings --no-report --quiet | tail -12
      python3 .device/peer_sdpa.py --d 64 --n 16384,32768 --batch-heads 16 --reps 3 --dtype float32 2>&1 | grep -h 'MATH\|rror' | cut -c1-200
      sv --d 128 --n 4096 --check-n 77 --tiles 32x32x2x16,32x32x4x8 --sg both | tee "$OUT/d128.txt" ;;
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
    bwdspeed)
      # Issue 13, backward speed: the flash backward's own tiles (many threads a workgroup) and,
      # in forward+backward, each half with its own tiles. Correct first (verify runs the
      # default tiles: flash-bwd's own candidates; speed_variants checks each variant against
      # the float64 reference at odd n before timing it). Target: flash fwd+bwd f32, d = 64,
      # N = 4096, B·H = 4·16, >= 0.75x PyTorch EFFICIENT_ATTENTION (same call).
      sv() { deno run --node-modules-dir=manual -A scripts/speed_variants.ts "$@" 2>&1 | grep -v '^\s*at '; }
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
    *) echo "unknown step $step"; exit 2 ;;
  esac
done
