#!/usr/bin/env bash
# Installs figsearch, builds a collection from a folder of patents, and serves it on http://127.0.0.1:8000
#   scripts/run.sh [DATA_DIR [COLLECTION_DIR]]     defaults: ../shared/data  ./collection
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
COLLECTION=${2:-collection}
scripts/bootstrap.sh
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
.venv/bin/figsearch build "$DATA" --collection "$COLLECTION"
exec .venv/bin/figsearch serve --collection "$COLLECTION"
