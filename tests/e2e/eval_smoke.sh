#!/usr/bin/env bash
# End-to-end check of ompq_eval:
#  - tensor mode on the committed resnet20 golden (weights converted from torchvision's twin by
#    scripts/make_parity_golden.py): our logits match PyTorch's to 1e-4;
#  - every bad input ends with one clear message and a non-zero exit;
#  - dataset mode on Fashion-MNIST (when installed) reports exactly what ompq_train measured on the
#    same test images with the model it trained;
#  - --packed: the export stage's packed model of a short resnet20 QAT run, run as integer layers,
#    scores what ompq_train's fake-quantized evaluation measured on the same images (within one
#    image: a rounding may move one activation by a code); bad packed files are refused;
#  - dataset mode on a tiny ImageNet-layout folder (when /usr/bin/python3 has PIL to write JPEGs).
#   eval_smoke.sh OMPQ_EVAL COMPARE_TENSORS PARITY_DIR [OMPQ_TRAIN]
source "$(dirname "$0")/common.sh"
eval_bin=$1 compare=$2 parity=$3 train=${4:-}
program=$eval_bin
weights=$parity/resnet20_32px_weights.safetensors
golden=$parity/resnet20_32px.safetensors
resnet20=(--model=resnet20 --num_classes=10 --weights="$weights")

"$eval_bin" "${resnet20[@]}" --input="$golden" --output="$out/logits.safetensors" > "$out/log" 2>&1 \
  || { cat "$out/log"; fail "tensor mode exited non-zero"; }
"$compare" "$out/logits.safetensors" logits "$golden" eval.logits 1e-4 || fail "logits differ from PyTorch's"
# Batching does not change the result.
"$eval_bin" "${resnet20[@]}" --input="$golden" --output="$out/logits1.safetensors" --batch_size=1 > "$out/log" 2>&1 \
  || { cat "$out/log"; fail "tensor mode with --batch_size=1 exited non-zero"; }
"$compare" "$out/logits1.safetensors" logits "$golden" eval.logits 1e-4 || fail "logits of batch size 1 differ"

expect_error 'does not fit model resnet18 (the file'"'"'s metadata says model "resnet20"' \
  --model=resnet18 --small_input --num_classes=10 --weights="$weights" --input="$golden" --output="$out/y.safetensors"
expect_error 'missing: layer4.0.bn1.bias' \
  --model=resnet18 --small_input --num_classes=10 --weights="$weights" --input="$golden" --output="$out/y.safetensors"
expect_error 'holds a classifier for 10 classes (fc.weight [10, 64]), but the resnet20 being loaded has 1000' \
  --model=resnet20 --weights="$weights" --input="$golden" --output="$out/y.safetensors"
expect_error "has no tensor \"input\" (it holds: bn1.bias" \
  "${resnet20[@]}" --input="$weights" --output="$out/y.safetensors"
expect_error 'tensor "input" is [2, 3, 32, 32] f32 (expected float32 [N, 1, H, W]' \
  --model=fashion_cnn --num_classes=10 --weights="$weights" --input="$golden" --output="$out/y.safetensors"
expect_error "$out/nowhere.safetensors" "${resnet20[@]}" --input="$out/nowhere.safetensors" --output="$out/y.safetensors"
expect_error 'give --weights (a safetensors file of float weights) or --packed' --model=resnet20 --input="$golden" --output="$out/y.safetensors"
expect_error 'give --weights (a safetensors file of float weights) or --packed' "${resnet20[@]}" --packed="$weights" --input="$golden" --output="$out/y.safetensors"
expect_error '--model is required (one of: resnet18' --weights="$weights" --input="$golden" --output="$out/y.safetensors"
expect_error 'unknown model "resnet9000"' --model=resnet9000 --weights="$weights" --input="$golden" --output="$out/y.safetensors"
expect_error 'tensor mode needs both --input and --output' "${resnet20[@]}" --input="$golden"
expect_error 'give either --input and --output (tensor mode) or --dataset' "${resnet20[@]}"
expect_error '--dataset=cifar10 (expected fashion_mnist, mnist or imagenet)' "${resnet20[@]}" --dataset=cifar10
expect_error '--dataset=imagenet needs --data_dir' "${resnet20[@]}" --dataset=imagenet
[ ! -e "$out/y.safetensors" ] || fail "a failed run wrote its output"

if [ -n "$train" ] && have_fashion_mnist; then
  "$train" --quant=none --model=fashion_cnn --output_dir="$out/train" --train_limit=1024 --test_limit=500 \
    --epochs=1 --warmup_iterations=2 > "$out/log" 2>&1 \
    || { cat "$out/log"; fail "ompq_train exited non-zero"; }
  "$eval_bin" --model=fashion_cnn --num_classes=10 --weights="$out/train/fp32.safetensors" \
    --dataset=fashion_mnist --limit=500 > "$out/result" 2> "$out/log" || { cat "$out/log"; fail "dataset mode exited non-zero"; }
  cat "$out/result"
  grep -q 'over 500 images' "$out/result" || fail "dataset mode did not evaluate 500 images"
  # ompq_train's eval stage measured the same 500 test images with the same weights (the last row:
  # stage eval_fp32, no epoch, no training columns).
  IFS=, read -r _ _ _ _ loss top1 top5 _ < <(tail -1 "$out/train/metrics.csv")
  for v in "top-1 $(printf %.2f "$top1")%" "top-5 $(printf %.2f "$top5")%" "loss $(printf %.4f "$loss")"; do
    grep -qF "$v" "$out/result" || fail "ompq_train measured $v"
  done
  expect_error 'has 10 classes but the model only 5' --model=resnet20 --num_classes=5 --weights="$weights" --dataset=fashion_mnist

  "$train" --quant=qat --model=resnet20 --output_dir="$out/qat" --train_limit=256 --test_limit=200 --batch_size=32 \
    --eval_batch_size=100 --search_images=8 --epochs=1 --warmup_iterations=2 --qat_epochs=1 > "$out/log" 2>&1 \
    || { cat "$out/log"; fail "ompq_train --quant=qat exited non-zero"; }
  packed=(--model=resnet20 --num_classes=10 --packed="$out/qat/packed.safetensors")
  "$eval_bin" "${packed[@]}" --dataset=fashion_mnist --limit=200 > "$out/result" 2> "$out/log" \
    || { cat "$out/log"; fail "dataset mode with --packed exited non-zero"; }
  cat "$out/result"
  IFS=, read -r _ _ _ _ _ top1 _ < <(grep '^eval_qat,' "$out/qat/metrics.csv")
  got=$(sed -n 's/.*top-1 \([0-9.]*\)%.*over 200 images.*/\1/p' "$out/result")
  [ -n "$got" ] || fail "--packed did not evaluate 200 images"
  awk -v a="$got" -v b="$top1" 'BEGIN { d = a - b; exit !(d <= 0.5 && d >= -0.5) }' \
    || fail "the packed model's top-1 $got% is not the fake-quantized model's $top1%"
  expect_error "'$out/qat/fp32.safetensors': not a packed model" \
    --model=resnet20 --num_classes=10 --packed="$out/qat/fp32.safetensors" --dataset=fashion_mnist
  expect_error "does not fit model resnet18 with 10 classes: load_integer_model: layer \"conv1\" has weight shape" \
    --model=resnet18 --small_input --num_classes=10 --packed="$out/qat/packed.safetensors" --dataset=fashion_mnist
else
  echo "SKIP part: Fashion-MNIST dataset mode (needs $fashion_mnist and ompq_train)"
fi

if /usr/bin/python3 -c 'import PIL' 2> /dev/null; then
  /usr/bin/python3 - "$out/imagenet" <<'PY'
import os, random, sys
from PIL import Image
random.seed(0)
for split in ("train", "val"):
    for wnid in ("n01440764", "n01443537"):
        os.makedirs(os.path.join(sys.argv[1], split, wnid))
        for i in range(3):
            pixels = bytes(random.randrange(256) for _ in range(48 * 40 * 3))
            Image.frombytes("RGB", (48, 40), pixels).save(os.path.join(sys.argv[1], split, wnid, f"{i}.JPEG"))
PY
  "$eval_bin" "${resnet20[@]}" --dataset=imagenet --data_dir="$out/imagenet" > "$out/result" 2> "$out/log" \
    || { cat "$out/log"; fail "imagenet dataset mode exited non-zero"; }
  cat "$out/result"
  grep -q 'over 6 images' "$out/result" || fail "imagenet dataset mode did not evaluate 6 images"
else
  echo "SKIP part: ImageNet-layout dataset mode (no /usr/bin/python3 with PIL to write JPEGs)"
fi
echo "PASS"
