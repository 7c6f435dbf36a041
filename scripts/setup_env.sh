#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install the pinned dependencies.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again (it reinstalls only when
# requirements.txt or pyproject.toml changed).
#   FLOWMIMIC_VENV=/path   use another venv location (default: .venv in the repo)
#   FLOWMIMIC_TORCH=cu128  install torch 2.13.0 built for that CUDA instead of the CPU wheel
#   PYTHON=python3.11      the interpreter that creates the venv
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FLOWMIMIC_VENV:-$ROOT/.venv}"
TORCH_VARIANT="${FLOWMIMIC_TORCH:-cpu}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
stamp="$VENV/.flowmimic-installed"
want="$(cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-$TORCH_VARIANT"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "[setup] installing pinned dependencies (torch: $TORCH_VARIANT) into $VENV"
  if [ "$TORCH_VARIANT" = "cpu" ]; then
    # requirements.txt pins torch==2.13.0+cpu: pip fails rather than fetching a multi-GB CUDA build.
    "$VENV/bin/pip" install --disable-pip-version-check -q -r "$ROOT/requirements.txt"
  else
    "$VENV/bin/pip" install --disable-pip-version-check -q "torch==2.13.0" \
      --index-url "https://download.pytorch.org/whl/$TORCH_VARIANT"
    grep -v '^torch==' "$ROOT/requirements.txt" > "$VENV/requirements-no-torch.txt"
    "$VENV/bin/pip" install --disable-pip-version-check -q -r "$VENV/requirements-no-torch.txt"
  fi
  "$VENV/bin/pip" install --disable-pip-version-check -q --no-deps -e "$ROOT"
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
