#!/usr/bin/env bash
# Install rxmrl into the current Python environment: `bash scripts/install.sh [EXTRAS]`, e.g. `dev`.
#
# torch comes first and only when missing, so a CUDA/ROCm build you installed yourself is kept. On a
# machine without one we take TORCH_SPEC (default: the CPU build this project is tested with); pip then
# sees torch satisfied and pulls no CUDA packages for the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
fi
extras="${1:-}"
"$PY" -m pip install --quiet -e ".${extras:+[$extras]}"
