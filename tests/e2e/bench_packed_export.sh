#!/usr/bin/env bash
# ompq_bench --packed_dir: BM_InferPacked saves the packed model it times, and ompq_export turns
# it into quantized.onnx that passes the ONNX check (what scripts/bench_peers_int8.py hands to
# ONNX Runtime and OpenVINO); a --packed_dir that is not a folder is refused before anything runs.
#   bench_packed_export.sh OMPQ_BENCH OMPQ_EXPORT
source "$(dirname "$0")/common.sh"
bench=$1 export_bin=$2

mkdir "$out/packed"
"$bench" --batch=2 --model_iterations=1 --packed_dir="$out/packed" \
  --benchmark_filter='^BM_InferPacked/resnet20/2/32/ptq/' > "$out/log" 2>&1 \
  || { cat "$out/log"; fail "ompq_bench exited non-zero"; }
grep -q 'items_per_second' "$out/log" || { cat "$out/log"; fail "the case did not run"; }
packed=$out/packed/resnet20_32_ptq.safetensors
[ -s "$packed" ] || { ls -l "$out/packed"; fail "no $packed"; }

"$export_bin" --model=resnet20 --num_classes=10 --packed="$packed" --output_dir="$out/onnx" \
  > "$out/log" 2>&1 || { cat "$out/log"; fail "ompq_export of the bench's packed model exited non-zero"; }
"$export_bin" --check="$out/onnx/quantized.onnx" > "$out/log" 2>&1 \
  || { cat "$out/log"; fail "the exported file fails the ONNX check"; }

if "$bench" --packed_dir="$out/nowhere" --benchmark_filter=none > "$out/log" 2>&1; then
  fail "a missing --packed_dir was accepted"
fi
grep -q -- "--packed_dir=$out/nowhere is not a folder" "$out/log" || { cat "$out/log"; fail "unclear refusal"; }
echo "PASS"
