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

# TorchConfig.cmake needs the CUDA 13 toolkit (nvcc, cuda_runtime.h, libcudart) for its CUDA targets; the
# wheel carries no nvcc. CMake finds it through CUDA_PATH: one given, else /usr/local/cuda(-13.0).
if [ -z "${CUDA_PATH:-}" ]; then
  for d in "${CUDA_HOME:-}" /usr/local/cuda /usr/local/cuda-13.0; do
    [ -n "$d" ] && [ -x "$d/bin/nvcc" ] && [ -f "$d/include/cuda_runtime.h" ] && export CUDA_PATH="$d" && break
  done
fi
[ -n "${CUDA_PATH:-}" ] || { echo "[cuda-build] the CUDA 13 toolkit (nvcc, cuda_runtime.h) not found: install it or set CUDA_PATH" >&2; exit 1; }
export PATH="$CUDA_PATH/bin:$PATH"

# A toolkit without NVRTC (nvcc alone) leaves TorchConfig's CUDA_nvrtc_LIBRARY unset: the wheel's own has it.
nvlib=$($venv/bin/python -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')
extra=()
[ -f "$CUDA_PATH/lib64/libnvrtc.so" ] || extra+=("-DCUDA_nvrtc_LIBRARY=$nvlib/libnvrtc.so.13")
RLHF_CMAKE_ARGS="${extra[*]}" RLHF_LIBTORCH="$(pwd)/$venv/bin/python" RLHF_BUILD_DIR=build-cuda node scripts/build-native.mjs
npx tsc -p tsconfig.json --incremental --tsBuildInfoFile dist/.tsbuildinfo
export RLHF_ADDON="$(pwd)/build-cuda/rlhf_native.node"
tiers=(dist/test/cuda-build/*.test.js)
if [ -d dist/test/gpu ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then
  tiers+=(dist/test/gpu/*.test.js)
fi
node --expose-gc --test --test-concurrency=1 "${tiers[@]}"
