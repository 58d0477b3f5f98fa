#!/usr/bin/env bash
# Create .venv (if missing) and install TagAtlas with its test extras. Idempotent and offline-safe:
# torch/torchvision are pinned (CPU build) as ../shared/MODELS.md requires.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.tagatlas-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  touch "$stamp"
fi
