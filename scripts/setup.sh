#!/usr/bin/env bash
# One idempotent set-up step, run first by both README commands (the main job and the tests):
#   1. system packages (Debian/Ubuntu), installed with apt-get when root; otherwise the exact command is
#      printed and we stop. By default only python3-venv (when the Python has no venv module);
#      RLHF_LIBTORCH=debian adds libtorch-dev (Debian's libtorch 1.13), libopenblas0-pthread (its fast BLAS:
#      ~100 vs ~6 GFLOP/s with the reference one) and python3-torch (the benchmarks' baseline on that same
#      libtorch). RLHF_SETUP_BROWSER=1 (set by `npm test`) adds chromium, which the browser test tier opens
#      the HTML report in; the main job never needs it.
#   2. the default libtorch: PyTorch's CPU wheel (pinned below) in a project-local virtual environment,
#      .venv/ in the package root (node_modules/rlhf-ts/.venv/ when rlhf-ts is a dependency of another
#      project), made with the first `python3` on PATH (RLHF_PYTHON=/path picks another) and pip as the
#      user configured it; where that does not serve the wheel, from PyTorch's CPU index (RLHF_TORCH_INDEX;
#      empty: pip's own configuration only). Never the system Python. Skipped with RLHF_LIBTORCH=debian or LIBTORCH=/path
#      (the addon then builds against that libtorch).
#   3. npm ci, when package-lock.json changed since the last install (better-sqlite3 built from source);
#   4. the native addon, rebuilt only when its sources or the libtorch found changed;
#   5. the TypeScript build (incremental).
# Progress goes to stderr so that `--json` commands keep a clean stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 3>&1 1>&2

# The CPU wheel links MKL statically and ships its own libgomp; 2.13 is the newest the CPU index serves
# for CPython 3.10-3.13 at the time of writing. Change both together (scripts/cuda-build.sh pins the CUDA one).
TORCH_PIN='torch==2.13.0+cpu'
TORCH_VERSION='2.13.0+cpu'
choice=${RLHF_LIBTORCH:-venv}
[ -n "${LIBTORCH:-}" ] && choice=LIBTORCH
python=${RLHF_PYTHON:-python3}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  pkgs=()
  [ "$choice" = debian ] && pkgs+=(libtorch-dev libopenblas0-pthread python3-torch)
  [ "${RLHF_SETUP_BROWSER:-}" = 1 ] && pkgs+=(chromium)
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  # Debian's own Python splits venv's pip bootstrap into python3-venv.
  if [ "$choice" = venv ] && ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then missing+=(python3-venv); fi
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

if [ "$choice" = venv ]; then
  have=$(.venv/bin/python -c 'import torch; print(torch.__version__)' 2>/dev/null || true)
  if [ "$have" != "$TORCH_VERSION" ]; then
    echo "[setup] $TORCH_PIN into $(pwd)/.venv (about 900 MB)"
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    pip=(.venv/bin/pip install -q --disable-pip-version-check --retries "${PIP_RETRIES:-2}")
    torch_index=${RLHF_TORCH_INDEX-https://download.pytorch.org/whl/cpu}
    # numpy only quiets torch's import-time warning; the baselines do not use it. pip's own configuration
    # first (a mirror that serves the CPU wheel answers at once); PyTorch's CPU index only when it has not
    # (PyPI has no +cpu wheels), so a machine that cannot reach that index does not wait on its retries.
    if ! "${pip[@]}" "$TORCH_PIN" numpy 2>/dev/null; then
      [ -n "$torch_index" ] || { echo "[setup] pip could not install $TORCH_PIN"; exit 1; }
      "${pip[@]}" --extra-index-url "$torch_index" "$TORCH_PIN" numpy
    fi
  fi
fi

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.rlhf-lock-hash ] || [ "$(cat node_modules/.rlhf-lock-hash)" != "$lock_hash" ]; then
  echo "[setup] npm ci"
  # better-sqlite3 (the feedback app's database) compiles its addon from source (about a minute): its
  # prebuilt binaries and Node's header tarball are downloads outside the npm registry. node-gyp takes the
  # headers of the Node that runs this from its install prefix (Debian's nodejs: /usr/include/node); a
  # Node without them (an nvm build has them) needs its -dev package, e.g. `apt-get install libnode-dev`.
  node_prefix=$(dirname "$(dirname "$(node -p 'process.execPath')")")
  if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node_api.h" ]; then
    export npm_config_nodedir=$node_prefix
  fi
  export npm_config_build_from_source=${npm_config_build_from_source:-true}
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.rlhf-lock-hash
fi

node scripts/build-native.mjs
npx tsc -p tsconfig.json --incremental --tsBuildInfoFile dist/.tsbuildinfo
echo "[setup] ready"
