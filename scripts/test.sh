#!/usr/bin/env bash
# Set up (idempotent), then run the test suite offline. Slow tests: add `-m slow` (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
.venv/bin/python -m pytest -m "not slow" -q --durations=40 "$@"
