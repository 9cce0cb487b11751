#!/usr/bin/env bash
# End-to-end check of ompq_train --dataset=imagenet on real JPEG files: Debian's Fashion-MNIST
# written as an ImageNet-layout folder (scripts/fashion_mnist_to_imagefolder.py, 32 px). Every
# stage runs (pretraining, search, QAT, eval, export, report; then PTQ from the FP32 weights with
# a flat val/ and its label file); pretraining killed in mid-epoch resumes and ends with the very
# weights of an uninterrupted run; bad folders, label files, weights and image sizes end with one
# clear message before anything is written.
#   imagenet_smoke.sh PATH_TO_OMPQ_TRAIN PATH_TO_CONVERTER_SCRIPT
source "$(dirname "$0")/common.sh"
train=$1
convert=$2
program=$train
require_fashion_mnist
folder=$out/fmnist_jpeg
/usr/bin/python3 "$convert" --output_dir="$folder" --size 32 --train_limit 1200 --val_limit 300 \
  > "$out/convert.log" 2>&1 || { cat "$out/convert.log"; fail "the converter failed"; }
/usr/bin/python3 "$convert" --output_dir="$out/flat" --size 32 --train_limit 1200 --val_limit 300 \
  --flat_val > "$out/convert_flat.log" 2>&1 || { cat "$out/convert_flat.log"; fail "the flat converter failed"; }
[ "$(find "$folder/train" -name '*.JPEG' | wc -l)" = 1200 ] || fail "train/ should hold 1200 JPEGs"
[ "$(ls "$folder/train" | wc -l)" = 10 ] || fail "train/ should hold 10 class folders"

# One thread: the machine running the tests is often busy, and spinning OpenMP threads then crawl.
# Workers 2: batches come from loader threads, as on a real run.
small=(--dataset=imagenet --data_dir="$folder" --threads=1 --workers=2 --train_limit=1024
       --test_limit=300 --batch_size=32 --eval_batch_size=100 --log_interval=8 --search_images=8)
run=("$train" "${small[@]}" --epochs=1 --checkpoint_steps=4 --qat_epochs=1)

# 1. Every stage; pretraining is killed once its first mid-epoch checkpoint exists, then resumed.
"${run[@]}" --output_dir="$out/run" > "$out/log1" 2>&1 &
kill_once_exists "$out/run/pretrain_checkpoint.safetensors" $! "$out/log1"
[ ! -e "$out/run/fp32.safetensors" ] || fail "pretraining finished before the kill"
grep -q 'warming up for 3 instead' "$out/log1" || { cat "$out/log1"; fail "no note on the clamped warm-up"; }
"${run[@]}" --output_dir="$out/run" > "$out/log2" 2>&1 || { cat "$out/log2"; fail "resumed run exited non-zero"; }
grep -q '\[pretrain\] resuming from .*pretrain_checkpoint.safetensors at epoch 1 step [1-9]' "$out/log2" \
  || { cat "$out/log2"; fail "pretraining did not resume in mid-epoch"; }
grep -q "ompq experiment: resnet20 on 1024 spread over image folder '$folder/train' (1200 images, 10 classes)" \
  "$out/log2" || { cat "$out/log2"; fail "the run does not name the image folder"; }
grep -q '% waiting for data' "$out/log2" || { cat "$out/log2"; fail "no data-wait share in the epoch line"; }
for f in config.pbtxt stages.pbtxt metrics.csv fp32.safetensors bits.pbtxt search.safetensors \
         quantized.safetensors packed.safetensors report.json report.html; do
  [ -s "$out/run/$f" ] || fail "missing output $f"
done
grep -q 'dataset: DATASET_IMAGENET' "$out/run/config.pbtxt" || fail "config.pbtxt lacks the data set"
grep -q "data: \"imagenet:$folder\"" "$out/run/bits.pbtxt" || fail "bits.pbtxt does not name the image folder"
/usr/bin/python3 - "$out/run" << 'EOF' || fail "metrics.csv is wrong"
import csv, sys
rows = list(csv.DictReader(open(f"{sys.argv[1]}/metrics.csv")))
stages = [r["stage"] for r in rows]
assert stages == ["pretrain", "qat", "eval_fp32", "eval_qat"], stages
for r in rows[:2]:
    assert 0 <= float(r["data_wait"]) < 1, r
top1 = {r["stage"]: float(r["test_top1"]) for r in rows}
assert top1["eval_fp32"] > 20 and top1["eval_qat"] > 20, top1  # above chance (10%)
EOF
# The same command never killed: the same FP32 weights, byte for byte (--quant=none: the weights
# do not depend on what follows pretraining).
"${run[@]}" --output_dir="$out/whole" --quant=none > "$out/log3" 2>&1 \
  || { cat "$out/log3"; fail "uninterrupted run exited non-zero"; }
cmp "$out/run/fp32.safetensors" "$out/whole/fp32.safetensors" \
  || fail "the resumed pretraining ended with other weights than the uninterrupted one"

# 2. PTQ from those weights on the flat val/ with its label file, without the FP32 evaluation; a
#    config's published result appears in the report beside ours.
printf 'published { source: "a paper" size_mb: 0.1 top1: 91.5 act_bits: 8 }\n' > "$out/preset.pbtxt"
"$train" --config="$out/preset.pbtxt" "${small[@]}" --data_dir="$out/flat" --label_file="$out/flat/val_labels.txt" \
  --weights="$out/run/fp32.safetensors" --quant=ptq --budget_fraction=0.4 --ptq_iters=20 \
  --calibration_images=64 --eval_fp32=false --output_dir="$out/ptq" > "$out/log4" 2>&1 \
  || { cat "$out/log4"; fail "PTQ on the flat val/ exited non-zero"; }
grep -q '\[pretrain\] skipped: FP32 weights given' "$out/log4" || { cat "$out/log4"; fail "pretrained despite --weights"; }
grep -q '\[eval\] fp32: skipped' "$out/log4" || { cat "$out/log4"; fail "evaluated FP32 despite --eval_fp32=false"; }
grep -q '\[eval\] ptq: test loss' "$out/log4" || { cat "$out/log4"; fail "no PTQ evaluation"; }
[ -s "$out/ptq/packed.safetensors" ] || fail "PTQ exported nothing"
/usr/bin/python3 - "$out/ptq/report.json" << 'EOF' || fail "report.json lacks the published row"
import json, sys
rows = {r["label"]: r for r in json.load(open(sys.argv[1]))["results"]}
assert rows["published: a paper (A8)"]["top1"] == 91.5, rows
assert rows["fp32"]["top1"] is None, rows  # not evaluated
EOF

# 3. A corrupt image is skipped, counted and named; --strict_images stops at it instead.
cp -r "$folder" "$out/corrupt"
# The first image of the first class: example 0, which every spread subset holds.
first=n00000000/$(ls "$out/corrupt/train/n00000000" | sed -n 1p)
victim=$out/corrupt/train/$first
head -c 50 "$folder/train/$first" > "$victim"
tiny=(--dataset=imagenet --data_dir="$out/corrupt" --threads=1 --train_limit=64 --test_limit=50
      --batch_size=32 --quant=none --epochs=1)
"$train" "${tiny[@]}" --output_dir="$out/skipping" > "$out/log5" 2>&1 || { cat "$out/log5"; fail "a corrupt image stopped the run"; }
grep -qF "$victim" "$out/log5" || { cat "$out/log5"; fail "the corrupt image is not named"; }
grep -q 'note: 1 unreadable image(s) were skipped' "$out/log5" || { cat "$out/log5"; fail "the corrupt image is not counted"; }
expect_error "$victim" "${tiny[@]}" --strict_images --output_dir="$out/strict"

# 4. Bad inputs: one clear message each, before anything is written; a finished run is untouched.
before=$(fingerprint "$out/run")
bad() { mkdir -p "$out/$1"; cp -r "$folder/$2" "$out/$1/"; }
bad no_val train
expect_error "$out/no_val/val' does not exist" "${run[@]:1}" --data_dir="$out/no_val" --output_dir="$out/bad"
bad no_train val
expect_error "$out/no_train/train' does not exist" "${run[@]:1}" --data_dir="$out/no_train" --output_dir="$out/bad"
bad empty_class train && cp -r "$folder/val" "$out/empty_class/" && mkdir "$out/empty_class/train/n9999999"
expect_error 'n9999999' "${run[@]:1}" --data_dir="$out/empty_class" --output_dir="$out/bad"
bad other_classes train && cp -r "$folder/val" "$out/other_classes/"
mv "$out/other_classes/val/$(ls "$out/other_classes/val" | tail -1)" "$out/other_classes/val/n9999999"
expect_error "class 'n00000009' is only in the first" "${run[@]:1}" --data_dir="$out/other_classes" --output_dir="$out/bad"
sed '1s/ [^ ]*$/ n0000000x/' "$out/flat/val_labels.txt" > "$out/unknown_wnid.txt"
expect_error 'n0000000x' "${run[@]:1}" --data_dir="$out/flat" --label_file="$out/unknown_wnid.txt" --output_dir="$out/bad"
expect_error 'label_file is for dataset imagenet' "$train" --label_file="$out/flat/val_labels.txt" --output_dir="$out/bad"
# Weights for 10 classes on a 3-class folder.
mkdir -p "$out/three/train" "$out/three/val"
for c in $(ls "$folder/train" | head -3); do cp -r "$folder/train/$c" "$out/three/train/"; cp -r "$folder/val/$c" "$out/three/val/"; done
expect_error 'holds a classifier for 10 classes (fc.weight [10, 64]), but the resnet20 being loaded has 3' \
  "${run[@]:1}" --data_dir="$out/three" --weights="$out/run/fp32.safetensors" --output_dir="$out/bad"
expect_error 'fashion_cnn cannot take images of this side' "$train" --model=fashion_cnn --quant=none \
  --image_size=32 --output_dir="$out/bad"
expect_error 'image_size must not be negative' "${run[@]:1}" --image_size=-4 --output_dir="$out/bad"
expect_error '--dataset=cifar10 (expected fashion_mnist, mnist or imagenet)' "${run[@]:1}" --dataset=cifar10 --output_dir="$out/bad"
expect_error 'imagenet needs a data folder' "$train" --dataset=imagenet --output_dir="$out/bad"
[ ! -e "$out/bad" ] || fail "refused commands created their output folder"
expect_error 'holds a run of another config' "${run[@]:1}" --output_dir="$out/run" --image_size=28
[ "$before" = "$(fingerprint "$out/run")" ] || fail "a refused command changed the finished run's files"
echo PASS
