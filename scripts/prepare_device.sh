#!/usr/bin/env bash
# Here (the development machine, with registry access), before using the GPU machine, which
# reaches no registry. Fills the git-ignored .device/ with everything the CLI needs there:
#   deno-<version>.tgz   the Deno binary, from the npm registry (@deno/linux-x64-glibc)
#   gl/*.deb             Debian's Vulkan/EGL loader packages (amd64)
#   enter.sh             sourced first there: unpacks the loaders, puts deno on PATH
#   peer_sdpa.py         the PyTorch SDPA peer timings
#   node_modules.tgz     this checkout's node_modules/ (`deno install`) without playwright-core,
#                        which only the browser test imports; gpu_session.sh unpacks it and runs
#                        Deno with --node-modules-dir=manual, which needs no npm cache and no network
#   commit               the commit checked out here, recorded as gitCommit there
# Then carry [".device"] alone (about 50 MB; the limit is 64 MiB) and run
# `bash scripts/gpu_session.sh <step>...` there.
# enter.sh and peer_sdpa.py come from the shared device folder beside the main checkout
# (../shared/device from it; works from a git worktree too) or from $SHARED_DEVICE.
set -euo pipefail
DENO_VERSION=${DENO_VERSION:-2.9.6}
cd "$(git rev-parse --show-toplevel)"
common=$(git rev-parse --path-format=absolute --git-common-dir)
shared=${SHARED_DEVICE:-$(dirname "$(dirname "$common")")/shared/device}
for f in enter.sh peer_sdpa.py; do
  [ -f "$shared/$f" ] || { echo "prepare_device: no $shared/$f (set SHARED_DEVICE)" >&2; exit 2; }
done
mkdir -p .device/gl
rm -f .device/enter.sh .device/peer_sdpa.py
cp "$shared/enter.sh" "$shared/peer_sdpa.py" .device/
if [ ! -s ".device/deno-$DENO_VERSION.tgz" ]; then
  rm -f .device/deno-*.tgz
  (cd .device && npm pack --silent "@deno/linux-x64-glibc@$DENO_VERSION" >/dev/null &&
    mv "deno-linux-x64-glibc-$DENO_VERSION.tgz" "deno-$DENO_VERSION.tgz")
fi
if ! ls .device/gl/libvulkan1_*.deb >/dev/null 2>&1; then
  lists=$(mktemp -d)
  mkdir -p "$lists/partial"
  o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
  apt-get $o update -qq >/dev/null 2>&1 || true
  (cd .device/gl && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 \
    libglx0 libgles2 >/dev/null)
  rm -rf "$lists"
fi
# node_modules exactly as deno.lock pins it, then packed without playwright-core (14 MB).
deno install --frozen >/dev/null
tar czf .device/node_modules.tgz --exclude=playwright-core \
  --exclude='playwright-core@*' node_modules
packed=$(tar tzf .device/node_modules.tgz)
for p in deno-std chart.js; do
  grep -q "^node_modules/$p" <<<"$packed" ||
    { echo "prepare_device: $p missing from node_modules" >&2; exit 1; }
done
git rev-parse HEAD > .device/commit
du -sh .device
