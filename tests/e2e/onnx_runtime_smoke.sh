#!/usr/bin/env bash
# ONNX export checked by a real runtime: a short QAT run of ompq_train on real Fashion-MNIST data
# writes model.onnx and quantized.onnx; ompq_export writes the same two files from the run's
# weights and bit config; ONNX Runtime (.venv-onnx from scripts/setup.sh) runs both on 1,000
# Fashion-MNIST test images: FP32 logits within 1e-4 (relative to the largest) of ompq_eval's, QDQ
# logits within the tolerance of compare_onnx_logits.py (one step of the classifier's input) of
# ompq's quantized model and the same top-1 on >= 99% of the images, run as ONNX specifies the
# operators; with ORT's default optimizations (which round the float biases to int32 as integer
# kernels do) within the same tolerance, with every conv whose output the export quantizes fused
# into QLinearConv reading uint8 codes with zero point 0 (check_ort_fusion.py). Bad inputs to
# ompq_export end with one clear message.
#   onnx_runtime_smoke.sh OMPQ_TRAIN OMPQ_EVAL OMPQ_EXPORT VENV_PYTHON
source "$(dirname "$0")/common.sh"
train=$1 eval=$2 export_app=$3 python=$4
here=$(cd "$(dirname "$0")" && pwd)
run_onnx=$here/../../scripts/run_onnx.py
compare=$here/compare_onnx_logits.py
require_fashion_mnist
if ! "$python" -c 'import onnxruntime, onnx, numpy' 2> /dev/null; then
  echo "SKIP: no ONNX Runtime environment at $python (scripts/setup.sh creates .venv-onnx)"
  exit 0
fi

# 1. A short QAT run (the default experiment on a slice): its export stage writes both files.
"$train" --output_dir="$out/run" --train_limit=2048 --test_limit=200 --batch_size=64 --epochs=1 \
  --warmup_iterations=4 --qat_epochs=1 --search_images=8 --eval_fp32=false --log_interval=16 \
  > "$out/train_log" 2>&1 || { cat "$out/train_log"; fail "ompq_train exited non-zero"; }
for f in model.onnx quantized.onnx; do [ -s "$out/run/$f" ] || fail "ompq_train wrote no $f"; done

# 2. 1,000 test images as the model takes them, with ompq_eval's FP32 logits.
"$eval" --model=resnet20 --num_classes=10 --weights="$out/run/fp32.safetensors" \
  --dataset=fashion_mnist --limit=1000 --output="$out/images.safetensors" > "$out/eval_log" 2>&1 \
  || { cat "$out/eval_log"; fail "ompq_eval exited non-zero"; }

# 3. ompq_export from the run's files writes the same bytes, and ompq's quantized logits.
model=(--model=resnet20 --num_classes=10)
"$export_app" "${model[@]}" --weights="$out/run/fp32.safetensors" \
  --quantized="$out/run/quantized.safetensors" --bits="$out/run/bits.pbtxt" \
  --output_dir="$out/export" --check_input="$out/images.safetensors" > "$out/export_log" 2>&1 \
  || { cat "$out/export_log"; fail "ompq_export exited non-zero"; }
cmp "$out/run/model.onnx" "$out/export/model.onnx" || fail "ompq_export's model.onnx differs from ompq_train's"
cmp "$out/run/quantized.onnx" "$out/export/quantized.onnx" || fail "ompq_export's quantized.onnx differs from ompq_train's"

# 4. ONNX Runtime on both files.
"$python" "$run_onnx" "$out/run/model.onnx" "$out/images.safetensors" "$out/ort_fp32.safetensors" \
  || fail "ONNX Runtime could not run model.onnx"
"$python" "$compare" fp32 "$out/ort_fp32.safetensors" "$out/images.safetensors" || exit 1
"$python" "$run_onnx" "$out/run/quantized.onnx" "$out/images.safetensors" "$out/ort_qdq.safetensors" \
  --optimization=disabled || fail "ONNX Runtime could not run quantized.onnx"
"$python" "$compare" qdq "$out/run/quantized.onnx" "$out/ort_qdq.safetensors" \
  "$out/export/reference_logits.safetensors" 0.99 || exit 1
"$python" "$run_onnx" "$out/run/quantized.onnx" "$out/images.safetensors" \
  "$out/ort_qdq_optimized.safetensors" --optimized_model="$out/ort_optimized.onnx" \
  || fail "ONNX Runtime could not run quantized.onnx optimized"
"$python" "$here/check_ort_fusion.py" "$out/run/quantized.onnx" "$out/ort_optimized.onnx" || exit 1
"$python" "$compare" qdq "$out/run/quantized.onnx" "$out/ort_qdq_optimized.safetensors" \
  "$out/export/reference_logits.safetensors" 0 || exit 1

# 5. The TensorRT form (int8 pairs only) of the same packed model passes the checker too.
"$export_app" "${model[@]}" --packed="$out/run/packed.safetensors" --qdq_activations=signed \
  --output_dir="$out/signed" || fail "signed QDQ export"
"$export_app" --check="$out/signed/quantized.onnx" || fail "signed QDQ check"

# 6. Bad inputs: one message naming the problem, nothing written.
program=$export_app
expect_error "--qdq_activations=int4 (expected unsigned or signed)" "${model[@]}" \
  --packed="$out/run/packed.safetensors" --qdq_activations=int4 --output_dir="$out/bad"
expect_error "nothing to export" "${model[@]}" --output_dir="$out/bad"
expect_error "$out/missing.safetensors" "${model[@]}" --weights="$out/missing.safetensors" --output_dir="$out/bad"
expect_error "--quantized needs --bits" "${model[@]}" --quantized="$out/run/quantized.safetensors" --output_dir="$out/bad"
# The run's bit config describes resnet20, not resnet18.
expect_error "$out/run/bits.pbtxt" --model=resnet18 --num_classes=10 --small_input \
  --quantized="$out/run/quantized.safetensors" --bits="$out/run/bits.pbtxt" --output_dir="$out/bad"
# A packed model of another architecture: the first layer the graph lacks is named.
expect_error '"layer1.0.conv1" is no conv or linear node' --model=fashion_cnn --num_classes=10 \
  --packed="$out/run/packed.safetensors" --output_dir="$out/bad"
# --check reads ONNX files back: a file that is no ONNX model, and --check mixed with an export.
expect_error "$out/run/bits.pbtxt" --check="$out/run/model.onnx,$out/run/bits.pbtxt"
expect_error "--check reads ONNX files only" --check="$out/run/model.onnx" \
  --weights="$out/run/fp32.safetensors" --output_dir="$out/bad"
[ ! -e "$out/bad/model.onnx" ] && [ ! -e "$out/bad/quantized.onnx" ] || fail "a refused export wrote a file"
echo "PASS"
