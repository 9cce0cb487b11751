#!/usr/bin/env bash
# Makes the peers' Python environment (.venv-peers/ in the repository) from PyPI: today's torch and
# torchvision (CPU), onnx, onnxruntime and openvino with NNCF, so that the benchmark scripts can
# compare ompq with what users install now, beside Debian's PyTorch 1.13 (/usr/bin/python3).
# Not part of scripts/setup.sh and no test needs it. Idempotent: a second run checks the imports
# and prints the versions.
#   .venv-peers/bin/python scripts/bench_torch_models.py     # the comparisons against torch 2.x
#   .venv-peers/bin/python scripts/bench_peers_int8.py       # ONNX Runtime / OpenVINO int8
# torch comes from PyTorch's CPU-only index when that is reachable; otherwise PyPI's wheel, which
# also pulls its CUDA libraries (several GB) but runs on the CPU all the same.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-peers
cpu_index=https://download.pytorch.org/whl/cpu
check='import torch, torchvision, onnx, onnxruntime, openvino, nncf'

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2> /dev/null; then
  echo "setup_peers: $venv ready"
else
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  pip=("$venv/bin/pip" install -q --disable-pip-version-check)
  if curl -sf -o /dev/null --max-time 20 "$cpu_index/torch/"; then
    echo "setup_peers: torch, torchvision from $cpu_index"
    "${pip[@]}" --index-url "$cpu_index" torch torchvision
  else
    echo "setup_peers: $cpu_index unreachable; torch, torchvision from PyPI (with its CUDA libraries)"
    "${pip[@]}" torch torchvision
  fi
  "${pip[@]}" onnx onnxruntime openvino nncf
  "$venv/bin/python" -c "$check"
fi
"$venv/bin/python" - << 'EOF'
import importlib
print("setup_peers: " + ", ".join(
    f"{name} {importlib.import_module(name).__version__}"
    for name in ("torch", "torchvision", "onnx", "onnxruntime", "openvino", "nncf", "numpy")))
EOF
