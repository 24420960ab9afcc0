#!/usr/bin/env bash
# One idempotent set-up step, run first by both README commands (the main job and the tests):
#   1. system packages (Debian/Ubuntu): libtorch-dev, libopenblas0-pthread (fast BLAS: ~100 vs ~6
#      GFLOP/s with the reference one), python3-torch (the benchmarks' baseline: the same libtorch from
#      Python). Installed with apt-get when root; otherwise the exact command is printed and we stop.
#      LIBTORCH=/path skips libtorch-dev (the addon then builds against that libtorch).
#      RLHF_SETUP_BROWSER=1 (set by `npm test`) adds chromium, which the browser test tier opens the
#      HTML report in; the main job never needs it.
#   2. npm ci, when package-lock.json changed since the last install;
#   3. the native addon, rebuilt only when its sources or the libtorch found changed;
#   4. the TypeScript build (incremental).
# Progress goes to stderr so that `--json` commands keep a clean stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 3>&1 1>&2

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  pkgs=(libopenblas0-pthread python3-torch)
  [ -z "${LIBTORCH:-}" ] && pkgs+=(libtorch-dev)
  [ "${RLHF_SETUP_BROWSER:-}" = 1 ] && pkgs+=(chromium)
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[setup] installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[setup] missing system packages; run:"
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
fi

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.rlhf-lock-hash ] || [ "$(cat node_modules/.rlhf-lock-hash)" != "$lock_hash" ]; then
  echo "[setup] npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.rlhf-lock-hash
fi

node scripts/build-native.mjs
npx tsc -p tsconfig.json --incremental --tsBuildInfoFile dist/.tsbuildinfo
echo "[setup] ready"
