#!/usr/bin/env bash
# Several branches' gpu_session steps in one device call (the lead's tool: one machine start for
# the work of several worktrees). Here, before the call:
#   scripts/device_branches.sh --stage NAME...   copies each branch's committed tree (git archive
#                                                of NAME) into .device/wt-NAME
# There (carry [".device"]):
#   bash scripts/device_branches.sh --run SECONDS NAME...
# runs `gpu_session.sh NAME` inside .device/wt-NAME for each NAME (NAME:STEP runs step STEP of
# branch NAME), at most SECONDS each, and packs each one's output folder and log into
# $OUT/STEP.tgz (the device tool returns at most 8 files), printing each log's last lines.
set -uo pipefail
mode=${1:-}; shift || true
case "$mode" in
  --stage)
    cd "$(git rev-parse --show-toplevel)"
    for name in "$@"; do
      rm -rf ".device/wt-$name" && mkdir -p ".device/wt-$name"
      git archive "$name" -- . ':!docs' | tar x -C ".device/wt-$name" || exit 1
      git rev-parse "$name" > ".device/wt-$name/.commit"
      echo "staged $name $(cat ".device/wt-$name/.commit")"
    done
    du -sh .device ;;
  --run)
    limit=$1; shift
    root=$(pwd)
    OUT=${OUT:-$root/out/branches}
    for arg in "$@"; do
      name=${arg%%:*} step=${arg#*:}
      dir=$root/.device/wt-$name
      [ -d "$dir" ] || { echo "no $dir"; continue; }
      out=/tmp/out-$step
      rm -rf "$out" && mkdir -p "$out"
      # The branch's own .device: the shared files linked, its own commit recorded.
      rm -rf "$dir/.device" && mkdir -p "$dir/.device"
      for f in "$root"/.device/*; do
        case "$(basename "$f")" in wt-* | commit) ;; *) ln -s "$f" "$dir/.device/" ;; esac
      done
      cp "$dir/.commit" "$dir/.device/commit"
      (cd "$dir" && cp .commit "$out/commit" &&
        OUT=$out timeout "$limit" bash scripts/gpu_session.sh "$step" >"$out/log.txt" 2>&1)
      echo "=== $arg rc=$? $(date +%T)"
      tail -n 25 "$out/log.txt"
      tar czf "$OUT/$step.tgz" -C /tmp "out-$step"
    done ;;
  *) echo "usage: device_branches.sh --stage NAME... | --run SECONDS NAME..." >&2; exit 2 ;;
esac
