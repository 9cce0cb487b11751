#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job: the default OMPQ experiment of ompq_train
# (ResNet-20 on Fashion-MNIST: pretrain, search, QAT, eval, export, report) into out/demo. Extra
# arguments go to ompq_train.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target ompq_train
"$build/apps/ompq_train" --output_dir=out/demo "$@"
