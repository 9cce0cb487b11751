#!/usr/bin/python3
"""Whole-model GPU speed of PyTorch, the peer of ompq_bench's BM_TrainStep / BM_Infer on a GPU.

Runs on the GPU machine (scripts/gpu_check.sh calls it with that machine's python3, which has
torch and torchvision; Debian's /usr/bin/python3 here has no CUDA). Cases as in
scripts/bench_torch_models.py, named "<mode>/<model>/<batch>/<resolution>":
  train: forward in train mode under bf16 autocast, cross-entropy, zero_grad, backward, SGD step
         (lr 0.01, momentum 0.9, weight decay 1e-4) on fp32 master weights;
  infer: forward in eval mode under bf16 autocast without grad.
Models resnet20 (10 classes, 32 px; scripts/torchvision_to_safetensors.py's twin of ompq's) and
resnet18, resnet50 and mobilenet_v2 (torchvision, 1000 classes, 224 px), channels_last,
torch.backends.cudnn.benchmark on. --warmup untimed steps (cudnn.benchmark tunes there), then
--iterations timed steps between two synchronizations; images/s = batch * iterations / time.

  python3 scripts/bench_torch_gpu.py [--batch 64] [--iterations 30] [--warmup 5]
      [--filter REGEX] [--json FILE]

Prints one row per case; --json writes {"context": {...}, "benchmarks": [{"name",
"images_per_second", "batch", "iterations"}]}, the rows Google Benchmark's JSON would hold, again
after every case.
"""
import argparse
import json
import os
import re
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_to_safetensors import build_model  # noqa: E402  (resnet20 and torchvision's)

# (model, resolution, classes), in ompq_bench's registration order.
MODELS = [("resnet20", 32, 10), ("resnet18", 224, 1000), ("resnet50", 224, 1000),
          ("mobilenet_v2", 224, 1000)]


def images_per_second(mode, model_name, batch, resolution, classes, warmup, iterations):
    torch.manual_seed(0)
    device = torch.device("cuda")
    model = build_model(model_name, num_classes=classes)
    model = model.to(device, memory_format=torch.channels_last)
    x = torch.randn(batch, 3, resolution, resolution, device=device)
    x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.arange(batch, device=device) % classes
    if mode == "train":
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = F.cross_entropy(model(x), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    else:
        model.eval()

        def step():
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                model(x)
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    torch.cuda.synchronize()
    return batch * iterations / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--filter", default="", help="regex over case names, e.g. 'train/resnet50'")
    parser.add_argument("--json", default="", help="write the results here as JSON")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_torch_gpu.py: no CUDA device visible to torch")
    torch.backends.cudnn.benchmark = True

    context = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
               "device": torch.cuda.get_device_name(0), "batch": args.batch,
               "precision": "bf16 autocast, fp32 master weights", "memory_format": "channels_last"}
    print(f"torch {context['torch']}, cuDNN {context['cudnn']}, {context['device']}, "
          f"batch {args.batch}, bf16 autocast, channels_last")
    rows = []
    for model, resolution, classes in MODELS:
        for mode in ("train", "infer"):
            name = f"{mode}/{model}/{args.batch}/{resolution}"
            if not re.search(args.filter, name):
                continue
            rate = images_per_second(mode, model, args.batch, resolution, classes, args.warmup,
                                     args.iterations)
            rows.append({"name": name, "images_per_second": rate, "batch": args.batch,
                         "iterations": args.iterations})
            print(f"{name:32s} {rate:10.1f} img/s", flush=True)
            if args.json:  # after every case: a run cut short by a timeout keeps what it measured
                with open(args.json, "w") as f:
                    json.dump({"context": context, "benchmarks": rows}, f, indent=1)


if __name__ == "__main__":
    main()
