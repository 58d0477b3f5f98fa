#!/usr/bin/env bash
# The main job on the embedded default: install, then train, enrich and evaluate on every dataset in ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/tagatlas demo --data-root "${TAGATLAS_DATA:-../shared/data}" --out "${TAGATLAS_RUNS:-runs}" "$@"
