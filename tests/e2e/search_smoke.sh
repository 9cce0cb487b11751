#!/usr/bin/env bash
# End-to-end check of ompq_search:
#  - the data-free projection solver reproduces released ResNet-18 PTQ configurations (docs/METHOD.md 2.11)
#    and writes a bit config that parses as proto::BitConfig, one layer per searched unit in
#    execution order (QAT: stem and classifier listed as fixed at 8 bits);
#  - the data-driven lp solver on a randomly initialized resnet20, with 32 Fashion-MNIST images
#    (when installed) and with a tiny ImageNet-layout folder (when /usr/bin/python3 has PIL):
#    bits within 4..8, at most one layer strictly between them before rounding (an LP vertex),
#    the same bits on a rerun, the time of every phase printed; on cuda:0 (when a GPU is usable)
#    the CPU's bits;
#  - the baselines (--allocation=uniform|random) at the ResNet-18 QAT budget of 6.7 MiB: uniform
#    says between which uniform sizes the budget lies; random stays within the budget, differs
#    across seeds and repeats for a seed; both bit configs name the baseline as their solver;
#  - every bad input ends with one clear message and a non-zero exit, writes no --bits_out file and
#    leaves an existing one untouched.
#   search_smoke.sh OMPQ_SEARCH PROTOC PROTO_FILE PARITY_DIR
source "$(dirname "$0")/common.sh"
search=$1 protoc=$2 proto=$3 parity=$4
program=$search
# parses FILE: checks that FILE is a BitConfig in text format.
parses() {
  "$protoc" --encode=ompq.proto.BitConfig -I "$(dirname "$proto")" "$proto" < "$1" > /dev/null \
    || fail "$1 is not a BitConfig in protobuf text format"
}
# field FILE NAME: the values of every `NAME: value` line of FILE, space-separated.
field() { sed -n "s/^ *$2: \"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" "$1" | tr '\n' ' ' | sed 's/ $//'; }
# bits_in FILE: the bits of the searched layers (the `layer` blocks, not the `fixed` ones).
bits_in() { awk '/^layer \{/ { in_layer = 1 } /^fixed \{/ { in_layer = 0 }
                 in_layer && /^  bits:/ { printf "%s%s", sep, $2; sep = " " }' "$1"; }

# Projection, ResNet-18 PTQ at 3.0 MiB: the released configuration of docs/METHOD.md 2.11.
"$search" --model=resnet18 --quant=ptq --budget_mb=3.0 --solver=projection \
  --bits_out="$out/ptq.pbtxt" > "$out/result" 2> "$out/log" || { cat "$out/log"; fail "projection exited non-zero"; }
cat "$out/result"
parses "$out/ptq.pbtxt"
[ "$(bits_in "$out/ptq.pbtxt")" = "4 3 4 4 4 4 4 3 4 4 2 2 2 2 2 2 2 2" ] \
  || fail "projection bits $(bits_in "$out/ptq.pbtxt") are not the released 3.0 MiB config"
names=$(awk '/^layer \{/ { getline; print $2 }' "$out/ptq.pbtxt" | tr -d '"' | tr '\n' ' ')
[ "$names" = "conv1 layer1.0.conv1 layer1.0.conv2 layer1.1.conv1 layer1.1.conv2 layer2.0.conv1 layer2.0.conv2 layer2.1.conv1 layer2.1.conv2 layer3.0.conv1 layer3.0.conv2 layer3.1.conv1 layer3.1.conv2 layer4.0.conv1 layer4.0.conv2 layer4.1.conv1 layer4.1.conv2 fc " ] \
  || fail "layers not in execution order: $names"
grep -q '^  layers: "layer2.0.downsample.0"$' "$out/ptq.pbtxt" || fail "the shortcut is not listed with its unit"
[ "$(field "$out/ptq.pbtxt" model) $(field "$out/ptq.pbtxt" quant) $(field "$out/ptq.pbtxt" solver) $(field "$out/ptq.pbtxt" rounding)" = "resnet18 QUANT_PTQ SOLVER_PROJECTION ROUNDING_DFS" ] \
  || fail "settings not recorded in the bit config"
grep -q '^size 2.9983 MiB' "$out/result" || fail "size of the 3.0 MiB config should be 2.9983 MiB"
grep -q '^ 17  fc  *513000  *2 ' "$out/result" || fail "table row of fc (params 513000, 2 bits) missing"
[ ! -e "$out/ptq.pbtxt.tmp" ] || fail "temporary file left behind"

# Projection, ResNet-18 QAT: 16 searched layers, stem and classifier fixed at 8 bits, in budget.
"$search" --model=resnet18 --quant=qat --budget_mb=6.7 --solver=projection \
  --bits_out="$out/qat.pbtxt" > "$out/result" 2> "$out/log" || { cat "$out/log"; fail "QAT projection exited non-zero"; }
parses "$out/qat.pbtxt"
[ "$(bits_in "$out/qat.pbtxt" | wc -w)" -eq 16 ] || fail "QAT should search 16 layers"
[ "$(awk '/^fixed \{/ { getline; print $2 }' "$out/qat.pbtxt" | tr -d '"' | tr '\n' ' ')" = "conv1 fc " ] \
  || fail "QAT fixed layers should be conv1 and fc"
awk -v s="$(field "$out/qat.pbtxt" size_mib)" 'BEGIN { exit !(s <= 6.7 && s > 6.6) }' || fail "QAT size $(field "$out/qat.pbtxt" size_mib)"

# Baselines, ResNet-18 QAT at 6.7 MiB: uniform 4 bits (the 5-bit size is over), random per seed.
"$search" --model=resnet18 --quant=qat --budget_mb=6.7 --allocation=uniform \
  --bits_out="$out/uniform.pbtxt" > "$out/result" 2> "$out/log" || { cat "$out/log"; fail "uniform exited non-zero"; }
cat "$out/result"
parses "$out/uniform.pbtxt"
[ "$(bits_in "$out/uniform.pbtxt")" = "4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4" ] || fail "uniform bits $(bits_in "$out/uniform.pbtxt")"
grep -q '^uniform: the budget 6.7000 MiB lies between the uniform 4-bit size 5.8232 MiB and the 5-bit size 7.1544 MiB: 4 bits' "$out/result" \
  || fail "uniform does not say where the budget lies"
[ "$(field "$out/uniform.pbtxt" solver)|$(field "$out/uniform.pbtxt" rounding)|$(field "$out/uniform.pbtxt" size_mib)" = "SOLVER_UNIFORM||5.8231582641601562" ] \
  || fail "uniform bit config: solver, rounding or size wrong"
[ "$(awk '/^fixed \{/ { getline; print $2 }' "$out/uniform.pbtxt" | tr -d '"' | tr '\n' ' ')" = "conv1 fc " ] \
  || fail "uniform: stem and classifier not fixed at 8 bits"
for seed in 1 2 3; do
  "$search" --model=resnet18 --quant=qat --budget_mb=6.7 --allocation=random --allocation_seed=$seed \
    --bits_out="$out/random$seed.pbtxt" > "$out/result" 2> "$out/log" || { cat "$out/log"; fail "random seed $seed exited non-zero"; }
  parses "$out/random$seed.pbtxt"
  grep -q "^random: seed $seed, 0.00[0-4][0-9] MiB under the budget 6.7000 MiB" "$out/result" \
    || { cat "$out/result"; fail "random seed $seed: not within 0.005 MiB of the budget (one bit of a layer1 conv is 0.0044 MiB)"; }
  [ "$(field "$out/random$seed.pbtxt" solver) $(field "$out/random$seed.pbtxt" seed)" = "SOLVER_RANDOM $seed" ] \
    || fail "random seed $seed: solver or seed not recorded"
  awk -v s="$(field "$out/random$seed.pbtxt" size_mib)" 'BEGIN { exit !(s <= 6.7) }' || fail "random seed $seed over the budget"
  bits=$(bits_in "$out/random$seed.pbtxt")
  [ "$(echo "$bits" | wc -w)" -eq 16 ] || fail "random seed $seed: not 16 layers"
  for b in $bits; do [ "$b" -ge 4 ] && [ "$b" -le 8 ] || fail "random seed $seed: bits $b outside 4..8"; done
done
[ "$(for seed in 1 2 3; do bits_in "$out/random$seed.pbtxt"; echo; done | sort -u | wc -l)" -eq 3 ] \
  || fail "three seeds gave fewer than three random allocations"
"$search" --model=resnet18 --quant=qat --budget_mb=6.7 --allocation=random --allocation_seed=2 \
  --bits_out="$out/random2_again.pbtxt" > /dev/null 2>&1 || fail "random rerun exited non-zero"
cmp -s "$out/random2.pbtxt" "$out/random2_again.pbtxt" || fail "random seed 2 differs on a rerun"

# lp on data: checks the run's output and bit config.
check_lp_run() {  # check_lp_run FILE LABEL
  parses "$1"
  local bits relaxed
  bits=$(bits_in "$1")
  [ "$(echo "$bits" | wc -w)" -eq 18 ] || fail "$2: resnet20 QAT should search 18 layers, got '$bits'"
  for b in $bits; do [ "$b" -ge 4 ] && [ "$b" -le 8 ] || fail "$2: bits $b outside 4..8"; done
  relaxed=$(awk '$1 ~ /^[0-9]+$/ && NF == 5 { print $5 }' "$out/result" | grep -cv '^[48]\.0000$' || true)
  [ "$relaxed" -le 1 ] || fail "$2: $relaxed layers strictly between the bounds (not an LP vertex)"
  grep -q '^time: features [0-9.]* s, ORM [0-9.]* s, solve [0-9.]* s, search [0-9.]* s' "$out/result" \
    || fail "$2: phase times missing"
}
lp=(--model=resnet20 --num_classes=10 --quant=qat --budget_mb=0.2 --beta=2 --solver=lp --rounding=dfs)
if have_fashion_mnist; then
  "$search" "${lp[@]}" --data=fashion-mnist --num_images=32 --bits_out="$out/lp.pbtxt" > "$out/result" 2> "$out/log" \
    || { cat "$out/log"; fail "lp on Fashion-MNIST exited non-zero"; }
  cat "$out/result"
  check_lp_run "$out/lp.pbtxt" "Fashion-MNIST"
  grep -q '32 images of MNIST-format train split' "$out/log" || fail "not 32 Fashion-MNIST training images"
  awk -v s="$(field "$out/lp.pbtxt" size_mib)" 'BEGIN { exit !(s <= 0.2) }' || fail "DFS rounding went over the budget"
  "$search" "${lp[@]}" --data=fashion-mnist:"$fashion_mnist" --num_images=32 --bits_out="$out/lp2.pbtxt" > /dev/null 2>&1 \
    || fail "second lp run exited non-zero"
  [ "$(bits_in "$out/lp.pbtxt")" = "$(bits_in "$out/lp2.pbtxt")" ] || fail "a rerun found other bits"
  # The same search with the model and images on the GPU, when there is one: the CPU's bits.
  if "$search" "${lp[@]}" --data=fashion-mnist --num_images=32 --device=cuda:0 \
       --bits_out="$out/lp_gpu.pbtxt" > "$out/result" 2> "$out/log"; then
    cat "$out/result"
    check_lp_run "$out/lp_gpu.pbtxt" "Fashion-MNIST on cuda:0"
    grep -q 'cuda:0$' "$out/log" || fail "the cuda:0 run does not say it ran on cuda:0"
    [ "$(bits_in "$out/lp.pbtxt")" = "$(bits_in "$out/lp_gpu.pbtxt")" ] \
      || fail "cuda:0 found bits $(bits_in "$out/lp_gpu.pbtxt"), the CPU $(bits_in "$out/lp.pbtxt")"
  elif grep -q 'no GPU is usable' "$out/log"; then
    echo "SKIP part: lp on cuda:0 ($(grep -m1 -o 'no GPU is usable.*' "$out/log"))"
  else
    cat "$out/log"; fail "lp on cuda:0 exited non-zero"
  fi
else
  echo "SKIP part: lp on Fashion-MNIST (needs $fashion_mnist, Debian package dataset-fashion-mnist)"
fi

imagenet=$out/imagenet
if /usr/bin/python3 -c 'import PIL' 2> /dev/null; then
  /usr/bin/python3 - "$imagenet" <<'PY'
import os, random, sys
from PIL import Image
random.seed(0)
for wnid in ("n01440764", "n01443537"):
    os.makedirs(os.path.join(sys.argv[1], "train", wnid))
    for i in range(3):
        pixels = bytes(random.randrange(256) for _ in range(48 * 40 * 3))
        Image.frombytes("RGB", (48, 40), pixels).save(os.path.join(sys.argv[1], "train", wnid, f"{i}.JPEG"))
PY
  "$search" "${lp[@]}" --data="$imagenet" --num_images=6 --bits_out="$out/lp_imagenet.pbtxt" > "$out/result" 2> "$out/log" \
    || { cat "$out/log"; fail "lp on an ImageNet folder exited non-zero"; }
  check_lp_run "$out/lp_imagenet.pbtxt" "ImageNet folder"
else
  echo "SKIP part: lp on an ImageNet-layout folder (no /usr/bin/python3 with PIL to write JPEGs)"
  mkdir -p "$imagenet/train/n01440764"
fi

# Bad inputs. Each run is given --bits_out=$out/bad.pbtxt (must not appear) or the good QAT file
# (must not change).
sum=$(md5sum < "$out/qat.pbtxt")
bad=--bits_out="$out/bad.pbtxt"
proj=(--model=resnet18 --quant=qat --solver=projection)
small=(--model=resnet20 --quant=qat --solver=projection --budget_mb=0.3)  # quick to build
weights=$parity/resnet20_32px_weights.safetensors
expect_error 'resnet18: model size budget 5.000000 MiB is outside the feasible range [5.823158, 11.147987] MiB for qat' \
  "${proj[@]}" --budget_mb=5 "$bad"
expect_error 'resnet18: model size budget 6.000000 MiB is outside the feasible range [2.786997, 5.573994] MiB for ptq' \
  --model=resnet18 --quant=ptq --solver=projection --budget_mb=6 "$bad"
expect_error 'resnet20: --budget_mb is required (model size in MiB; feasible for qat: [0.191826, 0.321220])' \
  --model=resnet20 --solver=projection "$bad"
expect_error 'unknown model "resnet9000" (known: resnet18' --model=resnet9000 --budget_mb=7 --solver=projection "$bad"
expect_error 'fashion_cnn: search space: the model takes no part in the OMPQ search' --model=fashion_cnn --budget_mb=1 --solver=projection "$bad"
expect_error 'resnet20: model size budget 0.400000 MiB is outside the feasible range [0.191826, 0.321220]' \
  "${small[@]}" --budget_mb=0.4 --bits_out="$out/qat.pbtxt"
expect_error '--model is required' --budget_mb=7 --solver=projection "$bad"
expect_error '--solver=simplex (expected lp, ilp or projection)' "${small[@]}" --solver=simplex "$bad"
expect_error '--solver=random (expected lp, ilp or projection)' "${small[@]}" --solver=random "$bad"
expect_error '--rounding=up (expected dfs, nearest or empty)' "${small[@]}" --rounding=up "$bad"
expect_error '--quant=int8 (expected qat or ptq)' "${small[@]}" --quant=int8 "$bad"
expect_error '--allocation=greedy (expected ompq, uniform, random or hessian)' "${small[@]}" --allocation=greedy "$bad"
expect_error 'resnet20: the random baseline has the size budget only (BOPs budget 2 G' \
  "${small[@]}" --allocation=random --bops_budget_g=2 "$bad"
expect_error 'resnet18: model size budget 5.000000 MiB is outside the feasible range [5.823158, 11.147987] MiB for qat' \
  "${proj[@]}" --allocation=uniform --budget_mb=5 "$bad"
expect_error 'resnet20: --budget_mb is required (model size in MiB; feasible for qat: [0.191826, 0.321220])' \
  --model=resnet20 --allocation=random "$bad"
expect_error "--bits_out=$out/nodir/bits.pbtxt: folder $out/nodir does not exist" \
  "${small[@]}" --allocation=uniform --bits_out="$out/nodir/bits.pbtxt"
expect_error '--beta -1 (expected finite and >= 0)' "${lp[@]}" --beta=-1 --data="$imagenet" "$bad"
expect_error 'a BOPs budget needs the ilp solver (the projection solver has the size budget only)' \
  "${small[@]}" --bops_budget_g=2 "$bad"
expect_error 'resnet20: BOPs budget 1.0000 G is below the smallest BOPs 1.3631 G' \
  "${small[@]}" --solver=ilp --bops_budget_g=1 --data="$imagenet" "$bad"
expect_error 'the lp solver needs --data (an ImageNet folder or fashion-mnist[:DIR])' "${lp[@]}" "$bad"
expect_error "safetensors file '$out/nowhere.safetensors' does not exist" \
  "${lp[@]}" --weights="$out/nowhere.safetensors" --data="$imagenet" "$bad"
expect_error 'does not fit model resnet18 (the file'"'"'s metadata says model "resnet20"' \
  --model=resnet18 --small_input --num_classes=10 --budget_mb=7 --weights="$weights" --data="$imagenet" "$bad"
expect_error 'holds a classifier for 10 classes (fc.weight [10, 64]), but the resnet20 being loaded has 1000' \
  --model=resnet20 --budget_mb=0.3 --weights="$weights" --data="$imagenet" --bits_out="$out/qat.pbtxt"
expect_error "image folder root '$out/nowhere' is not a folder" "${lp[@]}" --data="$out/nowhere" "$bad"
expect_error "MNIST folder '$out/nowhere' does not exist" "${lp[@]}" --data="fashion-mnist:$out/nowhere" "$bad"
expect_error '--num_images 1 (expected >= 2)' "${lp[@]}" --data="$imagenet" --num_images=1 "$bad"
if [ -e "$imagenet/train/n01443537" ]; then
  expect_error "--num_images 7 but image folder '$imagenet/train' (6 images, 2 classes) has only 6 images" "${lp[@]}" --data="$imagenet" --num_images=7 "$bad"
fi
expect_error 'bad device "tpu"' "${small[@]}" --device=tpu "$bad"
expect_error "--bits_out=$out/nodir/bits.pbtxt: folder $out/nodir does not exist" "${small[@]}" --bits_out="$out/nodir/bits.pbtxt"
[ -z "$(find "$out" -maxdepth 1 -name 'bad.pbtxt*')" ] || fail "a failed run wrote its --bits_out file"
[ "$sum" = "$(md5sum < "$out/qat.pbtxt")" ] || fail "a failed run changed an existing --bits_out file"
echo "PASS"
