#!/usr/bin/env bash
# QAT and ONNX export on models the solver was not written for (resnet101 and vgg16_bn, small-input
# variants on Fashion-MNIST): for each, ompq_train runs every stage (pretraining, search, QAT,
# evaluation, export) on a few steps; both ONNX files pass ONNX's checker with strict shape
# inference as ompq reads them back (ompq_export --check); ompq_export writes the same
# quantized.onnx from the run's quantized state and bit config. Where ONNX Runtime is set up
# (.venv-onnx from scripts/setup.sh) it runs both files on 16 test images: FP32 logits within 1e-4
# of ompq_eval's, QDQ logits within one step of the classifier's input of ompq's quantized model
# (compare_onnx_logits.py; the models are barely trained, so top-1 agreement is not asked).
#   new_models_onnx.sh OMPQ_TRAIN OMPQ_EVAL OMPQ_EXPORT VENV_PYTHON
source "$(dirname "$0")/common.sh"
train=$1 eval=$2 export_app=$3 python=$4
here=$(cd "$(dirname "$0")" && pwd)
run_onnx=$here/../../scripts/run_onnx.py
compare=$here/compare_onnx_logits.py
require_fashion_mnist
have_ort=true
if ! "$python" -c 'import onnxruntime, onnx, numpy' 2> /dev/null; then
  have_ort=false
  echo "note: no ONNX Runtime environment at $python (scripts/setup.sh creates .venv-onnx):" \
    "checking the files with ONNX's checker only"
fi

for model in vgg16_bn resnet101; do
  run=$out/$model
  spec=(--model=$model --small_input)  # ompq_train takes the class count from the data set
  # Two steps of 8 images for pretraining and for QAT; 2..8-bit weights under the default budget.
  # Small learning rates: at the default 0.02 two steps blow resnet101's fresh weights up (QAT's
  # loss then reaches NaN).
  "$train" "${spec[@]}" --output_dir="$run" --quant=qat --train_limit=16 --test_limit=16 \
    --batch_size=8 --epochs=1 --lr=0.001 --warmup_iterations=1 --qat_epochs=1 --qat_lr=1e-4 \
    --search_images=8 \
    --eval_fp32=false --eval_batch_size=16 --checkpoint_steps=0 --log_interval=1 \
    > "$out/train_log" 2>&1 || { cat "$out/train_log"; fail "$model: ompq_train exited non-zero"; }
  grep -q '^qat,1,' "$run/metrics.csv" || fail "$model: metrics.csv has no QAT epoch"
  for f in model.onnx quantized.onnx; do [ -s "$run/$f" ] || fail "$model: ompq_train wrote no $f"; done
  "$export_app" --check="$run/model.onnx,$run/quantized.onnx" > "$out/check_log" 2>&1 \
    || { cat "$out/check_log"; fail "$model: the exported files fail ONNX's checker"; }

  # 16 test images as the model takes them, with ompq_eval's FP32 logits; ompq's quantized logits.
  spec+=(--num_classes=10)
  "$eval" "${spec[@]}" --weights="$run/fp32.safetensors" --dataset=fashion_mnist --limit=16 \
    --batch_size=16 --output="$out/images.safetensors" > "$out/eval_log" 2>&1 \
    || { cat "$out/eval_log"; fail "$model: ompq_eval exited non-zero"; }
  "$export_app" "${spec[@]}" --quantized="$run/quantized.safetensors" --bits="$run/bits.pbtxt" \
    --output_dir="$out/export" --check_input="$out/images.safetensors" > "$out/export_log" 2>&1 \
    || { cat "$out/export_log"; fail "$model: ompq_export exited non-zero"; }
  cmp "$run/quantized.onnx" "$out/export/quantized.onnx" \
    || fail "$model: ompq_export's quantized.onnx differs from ompq_train's"
  if $have_ort; then
    "$python" "$run_onnx" "$run/model.onnx" "$out/images.safetensors" "$out/ort_fp32.safetensors" \
      --batch_size=16 || fail "$model: ONNX Runtime could not run model.onnx"
    "$python" "$compare" fp32 "$out/ort_fp32.safetensors" "$out/images.safetensors" || exit 1
    "$python" "$run_onnx" "$run/quantized.onnx" "$out/images.safetensors" \
      "$out/ort_qdq.safetensors" --batch_size=16 --optimization=disabled \
      || fail "$model: ONNX Runtime could not run quantized.onnx"
    "$python" "$compare" qdq "$run/quantized.onnx" "$out/ort_qdq.safetensors" \
      "$out/export/reference_logits.safetensors" 0 || exit 1
  fi
  rm -rf "$run" "$out/export"  # resnet101's files take 0.5 GB
  echo "$model: QAT and ONNX export pass"
done
echo "PASS"
