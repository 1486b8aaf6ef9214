#!/usr/bin/env bash
# Here (the development machine), before using the GPU machine: fills .device/ with Deno and the
# Vulkan loaders (../shared/device/prepare.sh) and .device/deno_dir with the npm packages the CLI
# imports, so that Deno there runs offline (--cached-only). playwright-core, needed only by the
# browser test, is left out: the GPU machine's copy of deno.json drops it (gpu_session.sh).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
../shared/device/prepare.sh >/dev/null
rm -rf .device/deno_dir
DENO_DIR=.device/deno_dir deno cache --node-modules-dir=none cli/main.ts >/dev/null 2>&1
rm -rf .device/deno_dir/npm/registry.npmjs.org/playwright-core
cache=$(deno info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["npmCache"])')
for p in deno-std chart.js @kurkle/color; do
  cp "$cache/registry.npmjs.org/$p/registry.json" ".device/deno_dir/npm/registry.npmjs.org/$p/"
done
du -sh .device
