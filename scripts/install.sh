#!/usr/bin/env bash
# Creates .venv inside the repo and installs keras-effnet with every extra.
# Usage: bash scripts/install.sh   (then use .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[all]"
# tensorflow-model-optimization 0.8.1 pins absl-py~=1.2 while mediapipe>=0.10.30
# needs absl-py~=2.3; one resolve asking for both fails. tfmot runs fine on
# absl-py 2.x, so install it without its stale pins (its real needs are in the
# "qat" extra above).
.venv/bin/python -m pip install -q --no-deps "tensorflow-model-optimization>=0.8.1"
.venv/bin/python -c "import keras_effnet, keras_effnet.export; print('keras-effnet', keras_effnet.__version__, 'installed in .venv')"
