#!/usr/bin/python3
"""Writes the PyTorch parity goldens of tests/layers/parity_test.cc into tests/data/parity/.

For each case (a model of layers/models/ built here from torchvision, at a small resolution, batch
2, 10 classes) two files hold:
  input                      f32 [2, 3, S, S]
  target                     i64 [2]
  state.<name>               every 0-D and 1-D tensor of the state_dict before the passes below
                             (BN weight/bias/running stats/num_batches_tracked, fc.bias)
  eval.logits, eval.loss     eval mode (running statistics)
  eval.grad.<param>          gradient of the cross-entropy loss, for a few parameters
  train.logits, train.loss, train.grad.<param>
                             training mode (batch statistics), run after the eval pass
  train.after.<bn>.running_mean / running_var
                             every BN's running statistics after the training-mode forward
The conv and linear weights (the 2-D and 4-D tensors) are too big to commit, so they are not
stored: both sides synthesize them with `synthetic_weight` below (integer hashing, exact in any
language), which tests/layers/parity_test.cc mirrors. BN parameters come from torch's RNG and the
running statistics from a few training-mode passes over random batches, so that eval mode sees
realistic statistics.

The two files differ in their BN parameters and in which gradients they hold:
  <case>.safetensors          "centred": BN weight 0.5..1.5, bias ~N(0, 0.1), the usual regime in
                              which about half of the ReLU inputs are negative. Gradients of the
                              classifier only.
  <case>_shifted.safetensors  BN weight 0.5..0.8, bias 2.8..3.2: the inputs of ReLU and ReLU6 lie
                              3.5 spreads or more from their kinks (0, and 6) but for a few
                              outliers, which ReLU still zeroes. Gradients of parameters from the
                              stem to the classifier.
Why: a gradient is discontinuous at a kink, and an input within rounding error of it takes either
branch; one element of N flipping moves the gradients of every parameter below it by about
1/sqrt(N), 1% here. In the centred regime that happens in most passes, to PyTorch's fp32 as much as
to ours (measured: up to 2% between PyTorch fp32 and fp64 on these cases), so only gradients that no
kink separates from the loss are compared there; the shifted regime makes flips rare enough
(PyTorch fp32 vs fp64: <= 5e-5) to compare the others at 1e-3.

The passes run in float64 on the float32 values, so the goldens are the exact results (to f64
precision) of the weights and input that the C++ side holds in f32: the tolerances of the test then
bound our own fp32 error alone.

`layouts.txt` lists, for each architecture of LAYOUTS, torchvision's parameters and buffers (name,
shape, in named_parameters / named_buffers order) and its conv/linear layers in the order a
forward pass runs them (recorded with forward hooks), for the name/shape/count and
quantizable_layers() tests.

resnet20 also gets `resnet20_32px_weights.safetensors`, the full state_dict of its centred case as
scripts/torchvision_to_safetensors.py writes it (1 MB), for the ompq_eval end-to-end test.

    /usr/bin/python3 scripts/make_parity_golden.py [CASE ...]

With CASE names (the first column of CASES) only those goldens are rewritten; layouts.txt always
is. The float32 warm-up passes are not bit-reproducible across machines and thread counts, so
rewriting a committed golden changes its bits (by rounding) though not what it tests.
"""
import argparse
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_to_safetensors import build_model, export_state, write_safetensors  # noqa: E402

OUT_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                        "data", "parity"))

# name, model arguments, image size, parameters whose gradients the shifted golden stores.
CASES = [
    ("resnet18_64px", dict(name="resnet18"), 64,
     ["conv1.weight", "layer2.1.bn1.weight", "layer3.0.downsample.1.bias", "fc.weight", "fc.bias"]),
    ("resnet50_64px", dict(name="resnet50"), 64,
     ["conv1.weight", "layer1.0.downsample.0.weight", "layer3.2.bn2.weight", "fc.weight"]),
    ("resnet18_small_32px", dict(name="resnet18", small_input=True), 32,
     ["conv1.weight", "layer2.1.bn1.weight", "fc.weight", "fc.bias"]),
    ("resnet20_32px", dict(name="resnet20"), 32,
     ["conv1.weight", "layer2.0.downsample.0.weight", "layer2.1.bn2.weight", "fc.weight", "fc.bias"]),
    ("mobilenet_v2_64px", dict(name="mobilenet_v2", dropout=0.0), 64,
     ["features.0.0.weight", "features.8.conv.1.0.weight", "features.9.conv.1.1.weight",
      "classifier.1.weight", "classifier.1.bias"]),
    ("mobilenet_v2_small_w0.5_32px", dict(name="mobilenet_v2", small_input=True, width_mult=0.5,
                                          dropout=0.0), 32,
     ["features.0.0.weight", "features.2.conv.1.0.weight", "features.5.conv.3.weight",
      "classifier.1.weight"]),
    ("resnet101_64px", dict(name="resnet101"), 64,
     ["conv1.weight", "layer1.0.downsample.0.weight", "layer3.0.downsample.1.weight",
      "layer3.17.bn2.weight", "fc.weight"]),
    # 32 px: the features end at 1x1, which the adaptive pool replicates to 7x7 as in torchvision.
    # The classifier's 4096-wide matrices are synthesized like every weight, so the goldens stay
    # small; only their biases' and the last layer's gradients are stored. (The conv biases are
    # not compared: a batch norm in training mode subtracts them out, their gradient is rounding.)
    ("vgg16_bn_32px", dict(name="vgg16_bn", dropout=0.0), 32,
     ["features.0.weight", "features.1.bias", "features.21.weight", "classifier.0.bias",
      "classifier.6.weight"]),
]
NUM_CLASSES = 10
# Architectures whose layout is recorded: model arguments, num_classes, image size of the hooked pass.
LAYOUTS = [
    (dict(name="resnet18"), 1000, 64),
    (dict(name="resnet34"), 1000, 64),
    (dict(name="resnet50"), 1000, 64),
    (dict(name="mobilenet_v2"), 1000, 64),
    (dict(name="resnet18", small_input=True), 10, 32),
    (dict(name="resnet50", small_input=True), 10, 32),
    (dict(name="mobilenet_v2", small_input=True, width_mult=0.5), 10, 32),
    (dict(name="mobilenet_v2", width_mult=1.4), 1000, 32),
    (dict(name="resnet20"), 10, 32),
    (dict(name="resnet101"), 1000, 64),
    (dict(name="vgg16_bn"), 1000, 32),
]
BATCH = 2
WARMUP_BATCHES = 3


def fnv1a32(text):
    h = 0x811C9DC5
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def mul32(x, c):
    """(x * c) mod 2^32 for int64 tensors x < 2^32, without overflowing int64."""
    lo, hi = x & 0xFFFF, x >> 16
    return (lo * c + (((hi * c) & 0xFFFF) << 16)) & 0xFFFFFFFF


def synthetic_weight(name, shape, chunk=1 << 22):
    """Element j = bound * (2u - 1), u = fmix32(fnv1a32(name) + j * 0x9E3779B9 mod 2^32) / 2^32,
    bound = sqrt(6 / fan_in) (He-uniform), computed in float64 and rounded once to float32.
    Elements are made `chunk` at a time, so that vgg16_bn's 100M-element matrix needs no
    gigabytes of int64 temporaries."""
    n = math.prod(shape)
    bound = math.sqrt(6.0 / math.prod(shape[1:]))
    out = torch.empty(n, dtype=torch.float32)
    for begin in range(0, n, chunk):
        j = torch.arange(begin, min(n, begin + chunk), dtype=torch.int64)
        x = (fnv1a32(name) + j * 0x9E3779B9) & 0xFFFFFFFF
        x = x ^ (x >> 16)  # MurmurHash3's fmix32
        x = mul32(x, 0x85EBCA6B)
        x = x ^ (x >> 13)
        x = mul32(x, 0xC2B2AE35)
        x = x ^ (x >> 16)
        u = x.to(torch.float64) / 2.0 ** 32
        out[begin:begin + len(j)] = ((2.0 * u - 1.0) * bound).to(torch.float32)
    return out.reshape(shape)


def make_case(name, model_args, size, grad_names, shifted):
    torch.manual_seed(0)
    args = dict(model_args)
    model = build_model(args.pop("name"), NUM_CLASSES, **args)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(synthetic_weight(pname, tuple(p.shape)))
        bns = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
        for _, bn in bns:
            if shifted:
                bn.weight.uniform_(0.5, 0.8)
                bn.bias.uniform_(2.8, 3.2)
            else:
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_(0.0, 0.1)
            bn.momentum = None  # cumulative average over the warm-up batches
        model.train()
        for _ in range(WARMUP_BATCHES):
            model(torch.randn(4, 3, size, size))
        for _, bn in bns:
            bn.momentum = 0.1
    x = torch.randn(BATCH, 3, size, size)
    target = torch.tensor([3, 7], dtype=torch.int64)
    golden = {"input": x, "target": target}
    weights = {k: v.clone() for k, v in export_state(model).items()}
    for key, value in weights.items():
        if value.dim() < 2:
            golden[f"state.{key}"] = value.clone()

    if not shifted:  # the classifier's parameters: no kink lies between them and the loss
        classifier = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
        grad_names = [n for n, _ in model.named_parameters() if n.startswith(classifier + ".")]
    model = model.double()
    params = dict(model.named_parameters())
    for mode in ("eval", "train"):
        model.train(mode == "train")
        model.zero_grad()
        logits = model(x.double())
        loss = F.cross_entropy(logits, target)
        loss.backward()
        golden[f"{mode}.logits"] = logits.detach().float()
        golden[f"{mode}.loss"] = loss.detach().float()
        for g in grad_names:
            golden[f"{mode}.grad.{g}"] = params[g].grad.float()
    for bn_name, bn in bns:
        golden[f"train.after.{bn_name}.running_mean"] = bn.running_mean.float()
        golden[f"train.after.{bn_name}.running_var"] = bn.running_var.float()

    file_name = f"{name}_shifted" if shifted else name
    path = os.path.join(OUT_DIR, f"{file_name}.safetensors")
    write_safetensors(path, golden, {"producer": "scripts/make_parity_golden.py", "case": file_name,
                                     "torch": torch.__version__})
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    if name.startswith("resnet20") and not shifted:
        path = os.path.join(OUT_DIR, f"{name}_weights.safetensors")
        write_safetensors(path, weights, {"format": "pt", "model": "resnet20",
                                          "num_classes": NUM_CLASSES})
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def shape_text(shape):
    return ",".join(str(d) for d in shape) or "scalar"


def layout_lines(model_args, num_classes, size):
    args = dict(model_args)
    name = args.pop("name")
    model = build_model(name, num_classes, **args).eval()
    lines = [f"model {name} num_classes={num_classes} small_input={int(args.get('small_input', False))} "
             f"width_mult={args.get('width_mult', 1.0)}"]
    lines += [f"param {n} {shape_text(p.shape)}" for n, p in model.named_parameters()]
    lines += [f"buffer {n} {shape_text(b.shape)}" for n, b in model.named_buffers()]
    executed = []
    for n, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_pre_hook(lambda mod, inp, n=n: executed.append((n, mod.weight.shape)))
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    lines += [f"layer {n} {shape_text(shape)}" for n, shape in executed]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", metavar="CASE",
                        help=f"cases to rewrite (default: all of {', '.join(c[0] for c in CASES)})")
    args = parser.parse_args()
    unknown = set(args.cases) - {c[0] for c in CASES}
    if unknown:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown))}")
    torch.set_num_threads(2)
    os.makedirs(OUT_DIR, exist_ok=True)
    lines = []
    for layout in LAYOUTS:
        lines += layout_lines(*layout)
    path = os.path.join(OUT_DIR, "layouts.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path} ({len(lines)} lines)")
    for case in CASES:
        if args.cases and case[0] not in args.cases:
            continue
        for shifted in (False, True):
            make_case(*case, shifted)


if __name__ == "__main__":
    main()
