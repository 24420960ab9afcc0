#!/usr/bin/env bash
# The CUDA build, checked on any machine (`npm run test:cuda`):
#   1. PyTorch's CUDA 13.0 wheel (pinned below) and its nvidia-* libraries into .venv-cuda/ (~4 GB; it
#      needs ~6 GB free), beside the CPU one in .venv/;
#   2. the addon against it, with CUDA, into build-cuda/ (build/ keeps the default CPU build);
#   3. the cuda-build test tier with that addon: it loads, `rlhf info` reports CUDA built in and the devices
#      the driver sees, and a CUDA request without a device fails with a one-line error, not a crash;
#   4. where a GPU is present (nvidia-smi lists one), the GPU tier too.
# The wheel's Python-only requirements cuda-bindings and triton are left out: the addon links the C++
# libraries alone (and the local mirror of this machine kind does not carry them).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_PIN='torch==2.14.1'
TORCH_VERSION='2.14.1+cu130'
python=${RLHF_PYTHON:-python3}
venv=.venv-cuda

have=$($venv/bin/python -c 'import torch; print(torch.__version__)' 2>/dev/null || true)
if [ "$have" != "$TORCH_VERSION" ]; then
  free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
  if [ "$free_kb" -lt $((6 * 1024 * 1024)) ]; then
    echo "[cuda-build] $(pwd) has $((free_kb / 1024 / 1024)) GB free; the CUDA wheels need ~6 GB" >&2
    exit 1
  fi
  echo "[cuda-build] $TORCH_PIN (CUDA 13.0) into $(pwd)/$venv" >&2
  [ -x $venv/bin/python ] || "$python" -m venv $venv
  pip=($venv/bin/pip install -q --disable-pip-version-check --retries "${PIP_RETRIES:-2}")
  "${pip[@]}" --no-deps "$TORCH_PIN"
  "${pip[@]}" filelock 'typing-extensions>=4.10.0' 'sympy>=1.13.3' 'networkx>=2.5.1' jinja2 'fsspec>=0.8.5' numpy \
    'cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3' \
    nvidia-cudnn-cu13==9.24.0.43 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 nvidia-nvshmem-cu13==3.4.5
fi

# TorchConfig.cmake needs the CUDA toolkit's nvcc for its CUDA targets (the wheel has no nvcc).
if ! command -v nvcc >/dev/null 2>&1; then
  for d in /usr/local/cuda/bin /usr/local/cuda-13.0/bin; do [ -x "$d/nvcc" ] && export PATH="$d:$PATH" && break; done
fi
command -v nvcc >/dev/null 2>&1 || { echo "[cuda-build] nvcc (CUDA 13 toolkit) not found: install it or put it on PATH" >&2; exit 1; }

RLHF_LIBTORCH="$(pwd)/$venv/bin/python" RLHF_BUILD_DIR=build-cuda node scripts/build-native.mjs
npx tsc -p tsconfig.json --incremental --tsBuildInfoFile dist/.tsbuildinfo
export RLHF_ADDON="$(pwd)/build-cuda/rlhf_native.node"
tiers=(dist/test/cuda-build/*.test.js)
if [ -d dist/test/gpu ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then
  tiers+=(dist/test/gpu/*.test.js)
fi
node --expose-gc --test --test-concurrency=1 "${tiers[@]}"
