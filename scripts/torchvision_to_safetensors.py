#!/usr/bin/python3
"""Converts a torchvision classification model's state_dict to a safetensors file that ompq loads
unchanged (`ompq_eval --weights=...`, nn::Module::load): same tensor names, float tensors as F32,
BatchNorm's num_batches_tracked as I64.

    /usr/bin/python3 scripts/torchvision_to_safetensors.py MODEL OUT.safetensors
        [--num_classes 1000] [--seed 0 | --weights CHECKPOINT.pth] [--small_input] [--width_mult 1.0]

MODEL is any torchvision classification model name (resnet18, resnet50, resnet101, mobilenet_v2,
vgg16_bn, ...; see torchvision.models.list_models()) or resnet20, the CIFAR ResNet of
layers/models/resnet.h (option-B shortcuts, torchvision names, as chenyaofo/pytorch-cifar-models).
Of these, ompq builds resnet18/34/50/101, mobilenet_v2, vgg16_bn and resnet20. --small_input
builds the small-image variants of ompq's resnet18/34/50/101 and mobilenet_v2 (see
layers/models/resnet.h and mobilenet_v2.h); vgg16_bn's small-input variant is the same network
(layers/models/vgg.h), so the flag only goes into the file's metadata. Without --weights the model has torchvision's random initialization drawn from
--seed; with --weights the checkpoint (a state_dict, or a dict holding one under "state_dict" or
"model"; a "module." prefix from DataParallel is dropped) must fit the model exactly.

Needs only torch and torchvision (Debian python3-torch, python3-torchvision): the safetensors format
(8-byte little-endian header length, JSON header, raw little-endian data) is written by hand.
"""
import argparse
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torchvision

DTYPE_NAMES = {
    torch.float32: "F32", torch.float64: "F64", torch.bfloat16: "BF16", torch.float16: "F16",
    torch.int8: "I8", torch.uint8: "U8", torch.int32: "I32", torch.int64: "I64", torch.bool: "BOOL",
}


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} to `path` in name order, atomically (a temporary file renamed)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in DTYPE_NAMES:
            raise ValueError(f"{name}: dtype {t.dtype} has no safetensors name here")
        flat = t.reshape(-1)
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16: write the raw bits
            flat = flat.view(torch.int16)
        array = flat.numpy()
        blob = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


class CifarResNet(nn.Module):
    """ResNet-20 (He et al. 2016, sec. 4.2) with option-B shortcuts and torchvision's names; the
    twin of ompq's resnet20 (layers/models/resnet.h)."""

    def __init__(self, blocks=(3, 3, 3), num_classes=10):
        super().__init__()
        from torchvision.models.resnet import BasicBlock, conv1x1
        self.inplanes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        stages = []
        for i, (planes, n) in enumerate(zip((16, 32, 64), blocks)):
            stride = 1 if i == 0 else 2
            layers = []
            for b in range(n):
                s = stride if b == 0 else 1
                downsample = None
                if s != 1 or self.inplanes != planes:
                    downsample = nn.Sequential(conv1x1(self.inplanes, planes, s), nn.BatchNorm2d(planes))
                layers.append(BasicBlock(self.inplanes, planes, s, downsample))
                self.inplanes = planes
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def make_small_input(name, model):
    """ompq's small-input variant of a torchvision model, built in place (see module docstring)."""
    if name in ("resnet18", "resnet34", "resnet50", "resnet101"):
        model.conv1 = nn.Conv2d(3, model.conv1.out_channels, kernel_size=3, stride=1, padding=1,
                                bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
    elif name == "mobilenet_v2":
        model.features[0][0].stride = (1, 1)          # stem
        model.features[2].conv[1][0].stride = (1, 1)  # depthwise conv of the 24-channel stage's first block
    elif name != "vgg16_bn":  # vgg16_bn takes 32 px images as it is
        raise ValueError("--small_input exists for resnet18, resnet34, resnet50, resnet101, "
                         f"mobilenet_v2 and vgg16_bn, not {name}")
    return model


def build_model(name, num_classes=1000, small_input=False, width_mult=1.0, **kwargs):
    """A freshly initialized model (torch's global RNG draws the weights)."""
    if name == "resnet20":
        if small_input or width_mult != 1.0:
            raise ValueError("resnet20 is a 32 px design with no width multiplier")
        return CifarResNet(num_classes=num_classes)
    if width_mult != 1.0:
        if name != "mobilenet_v2":
            raise ValueError(f"--width_mult is for mobilenet_v2, not {name}")
        kwargs["width_mult"] = width_mult
    if name not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(f"unknown model {name!r}: not a torchvision classification model nor resnet20")
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)
    return make_small_input(name, model) if small_input else model


def load_checkpoint(model, path):
    checkpoint = torch.load(path, map_location="cpu")
    if isinstance(checkpoint, dict):
        for key in ("state_dict", "model"):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: expected a state_dict, got {type(checkpoint).__name__}")
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in checkpoint.items()}
    model.load_state_dict(state, strict=True)


def export_state(model):
    """state_dict with floating tensors as float32 (ompq's parameters are f32)."""
    return {k: (v.float() if v.is_floating_point() else v) for k, v in model.state_dict().items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("output")
    parser.add_argument("--num_classes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random initialization")
    parser.add_argument("--weights", help="a .pth checkpoint to convert instead of random weights")
    parser.add_argument("--small_input", action="store_true")
    parser.add_argument("--width_mult", type=float, default=1.0)
    args = parser.parse_args()
    if args.num_classes <= 0 or not (math.isfinite(args.width_mult) and args.width_mult > 0):
        parser.error("--num_classes and --width_mult must be positive")
    torch.manual_seed(args.seed)
    try:
        model = build_model(args.model, args.num_classes, args.small_input, args.width_mult)
        if args.weights:
            load_checkpoint(model, args.weights)
    except (ValueError, RuntimeError, OSError) as e:
        sys.exit(f"torchvision_to_safetensors: error: {e}")
    metadata = {"format": "pt", "model": args.model, "num_classes": args.num_classes,
                "small_input": int(args.small_input), "width_mult": args.width_mult,
                "source": args.weights or f"random init, seed {args.seed}"}
    state = export_state(model)
    write_safetensors(args.output, state, metadata)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.output}: {len(state)} tensors, {params} parameters")


if __name__ == "__main__":
    main()
