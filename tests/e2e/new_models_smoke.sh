#!/usr/bin/env bash
# End-to-end check that ompq_search runs models the solver was not written for (resnet101 and
# vgg16_bn, small-input variants, randomly initialized): the lp solver on 8 Fashion-MNIST images
# lists every conv and linear once, in execution order (vgg16_bn: its 13 convs and 3 linears as
# 16 units; resnet101: 101 units, the 4 projection shortcuts merged into the unit of the conv they
# are added to), with PTQ bits in 2..4, and DFS rounding keeps resnet101 within its budget.
#   new_models_smoke.sh OMPQ_SEARCH
source "$(dirname "$0")/common.sh"
search=$1
require_fashion_mnist
# layer_names FILE: the `name` of every `layer` block of a bit config, space-separated.
layer_names() { awk '/^layer \{/ { getline; print $2 }' "$1" | tr -d '"' | tr '\n' ' ' | sed 's/ $//'; }
# bits_in FILE: the bits of the `layer` blocks.
bits_in() { awk '/^layer \{/ { in_layer = 1 } /^fixed \{/ { in_layer = 0 }
                 in_layer && /^  bits:/ { print $2 }' "$1"; }
search_args=(--num_classes=10 --small_input --quant=ptq --data=fashion-mnist --num_images=8 --threads=2)

"$search" --model=vgg16_bn "${search_args[@]}" --budget_mb=45 --bits_out="$out/vgg.pbtxt" \
  > "$out/result" 2> "$out/log" || { cat "$out/log"; fail "vgg16_bn search exited non-zero"; }
expected="features.0 features.3 features.7 features.10 features.14 features.17 features.20"
expected+=" features.24 features.27 features.30 features.34 features.37 features.40"
expected+=" classifier.0 classifier.3 classifier.6"
[ "$(layer_names "$out/vgg.pbtxt")" = "$expected" ] \
  || fail "vgg16_bn units $(layer_names "$out/vgg.pbtxt") (expected $expected)"
[ -z "$(bits_in "$out/vgg.pbtxt" | grep -v '^[234]$')" ] || fail "vgg16_bn bits outside 2..4"

"$search" --model=resnet101 "${search_args[@]}" --budget_mb=15 --rounding=dfs \
  --bits_out="$out/r101.pbtxt" > "$out/result" 2> "$out/log" \
  || { cat "$out/log"; fail "resnet101 search exited non-zero"; }
names=($(layer_names "$out/r101.pbtxt"))
[ "${#names[@]}" -eq 101 ] || fail "resnet101: ${#names[@]} units (expected 101)"
[ "${names[0]} ${names[3]} ${names[100]}" = "conv1 layer1.0.conv3 fc" ] \
  || fail "resnet101 units out of order: ${names[0]} ${names[3]} ${names[100]}"
for stage in 1 2 3 4; do
  grep -q "^  layers: \"layer$stage.0.downsample.0\"$" "$out/r101.pbtxt" \
    || fail "resnet101: layer$stage.0's shortcut is not listed with its unit"
done
[ -z "$(bits_in "$out/r101.pbtxt" | grep -v '^[234]$')" ] || fail "resnet101 bits outside 2..4"
grep -q '^size 1[0-4]\.[0-9]* MiB (budget 15.0000' "$out/result" \
  || { cat "$out/result"; fail "resnet101: DFS rounding went over the 15 MiB budget"; }

echo "PASS"
