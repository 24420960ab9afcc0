#!/usr/bin/env bash
# Installs TRL for `rlhf bench peers` (rlhf-ts against TRL itself), on demand: the suite never needs it.
# TRL and transformers go into .venv-peers/, a virtual environment layered over .venv/ (a .pth file puts
# .venv/'s site-packages on its path), so the baseline imports the very torch, and so the very libtorch,
# the addon links, while .venv/ itself stays as scripts/setup.sh made it. pip uses its own configuration
# (a mirror where one is set up). transformers 4.57 needs huggingface-hub < 1.0; 5.18 is the one that
# resolves against trl 1.13 where only hub 1.x is served.
#   RLHF_PEERS_VENV=DIR   install there instead of .venv-peers/
#   TRL_PIN / TRANSFORMERS_PIN override the pins below.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 3>&1 1>&2

TRL_PIN=${TRL_PIN:-trl==1.13.0}
TRANSFORMERS_PIN=${TRANSFORMERS_PIN:-transformers==5.18.0}
venv=${RLHF_PEERS_VENV:-.venv-peers}
[ -x .venv/bin/python ] || { echo "[setup-peers] no .venv/: run scripts/setup.sh (npm run setup) first"; exit 1; }
base_site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ ! -x "$venv/bin/python" ]; then
  # The interpreter .venv/ was made from (its bin/python3 is a link to it), so both share one Python ABI.
  base_python=$(readlink -f .venv/bin/python3)
  echo "[setup-peers] creating $venv over .venv/ ($base_python)"
  "$base_python" -m venv "$venv"
fi
venv_site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$base_site" > "$venv_site/rlhf-base-venv.pth"
echo "[setup-peers] $TRL_PIN $TRANSFORMERS_PIN into $venv (torch stays .venv/'s: $(.venv/bin/python -c 'import torch; print(torch.__version__)'))"
"$venv/bin/pip" install -q --disable-pip-version-check --retries "${PIP_RETRIES:-0}" "$TRL_PIN" "$TRANSFORMERS_PIN"
# The same torch, not a second copy pulled in by a dependency.
"$venv/bin/python" - "$base_site" <<'PY'
import os, sys, torch, trl, transformers
if not os.path.realpath(torch.__file__).startswith(os.path.realpath(sys.argv[1])):
    sys.exit(f"[setup-peers] torch came from {torch.__file__}, not .venv/: the baseline would run another libtorch")
print(f"[setup-peers] ready: trl {trl.__version__}, transformers {transformers.__version__}, torch {torch.__version__} from .venv/")
PY
