#!/usr/bin/python3
"""Whole-model speed: ompq (apps/ompq_bench BM_TrainStep / BM_Infer) against PyTorch 1.13.

For each model case (resnet20 at 32 px with 10 classes; resnet18, resnet50 and mobilenet_v2 at
224 px with 1000 classes) the ompq benchmark runs first, then PyTorch in this process, so both
see the same machine load. The step is the same on both sides:
  train: forward in train mode, cross-entropy, zero_grad, backward, SGD step (lr 0.01,
         momentum 0.9, weight decay 1e-4);
  infer: forward in eval mode without grad.
Each side does one untimed warm-up step, then --iterations timed steps (ompq_bench's default
counts when not given); images/s = batch * iterations / wall time. Both run channels_last (ompq_bench's
default --model_layout) with --threads threads (OMP_NUM_THREADS for ompq). --precision bf16 runs both
under bf16 autocast (ompq_bench --model_precision=bf16; torch.autocast("cpu", torch.bfloat16)).

  /usr/bin/python3 scripts/bench_torch_models.py [--bench build/apps/ompq_bench] [--batch 32]
      [--filter REGEX] [--iterations N] [--threads 2] [--precision f32|bf16]

--filter matches case names such as "train/resnet18/32/224" or "infer/resnet20/32/32".
Prints one row per case: ompq and PyTorch images/s and ompq/torch (> 1: ompq is faster).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_to_safetensors import build_model  # noqa: E402  (the twin of ompq's resnet20)

# (model, resolution, classes), in ompq_bench's registration order.
MODELS = [("resnet20", 32, 10), ("resnet18", 224, 1000), ("resnet50", 224, 1000),
          ("mobilenet_v2", 224, 1000)]
DEFAULT_ITERATIONS = {("train", True): 20, ("infer", True): 40, ("train", False): 3,
                      ("infer", False): 5}  # keyed by (mode, resolution <= 32), as ompq_bench


def ompq_images_per_second(bench, mode, model, batch, resolution, iterations, threads, precision):
    family = "BM_TrainStep" if mode == "train" else "BM_Infer"
    command = [bench, f"--batch={batch}", f"--benchmark_filter=^{family}/{model}/{batch}/{resolution}/",
               f"--model_precision={precision}", "--benchmark_format=json"]
    if iterations:
        command.append(f"--model_iterations={iterations}")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    result = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    benchmarks = json.loads(result.stdout)["benchmarks"]
    if len(benchmarks) != 1:
        raise RuntimeError(f"{' '.join(command)} ran {len(benchmarks)} benchmarks, expected 1")
    if benchmarks[0].get("error_occurred"):
        raise RuntimeError(f"{benchmarks[0]['name']}: {benchmarks[0].get('error_message')}")
    return benchmarks[0]["items_per_second"]


def torch_images_per_second(mode, model_name, batch, resolution, classes, iterations, precision):
    torch.manual_seed(0)
    model = build_model(model_name, num_classes=classes).to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, resolution, resolution).contiguous(memory_format=torch.channels_last)
    labels = torch.arange(batch) % classes
    if mode == "train":
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = F.cross_entropy(model(x), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    else:
        model.eval()

        def step():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                 enabled=precision == "bf16"):
                model(x)
    step()  # untimed warm-up, as in ompq_bench
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return batch * iterations / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", default="build/apps/ompq_bench")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--filter", default="", help="regex over case names, e.g. 'resnet(20|18)/'")
    parser.add_argument("--iterations", type=int, default=0,
                        help="timed steps per case on each side (0: ompq_bench's defaults)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=("f32", "bf16"), default="f32",
                        help="bf16: both sides under bf16 autocast")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, {args.precision}")
    print(f"{'case':32s} {'ompq img/s':>11s} {'torch img/s':>12s} {'ompq/torch':>11s}")
    for model, resolution, classes in MODELS:
        for mode in ("train", "infer"):
            case = f"{mode}/{model}/{args.batch}/{resolution}"
            if not re.search(args.filter, case):
                continue
            iterations = args.iterations or DEFAULT_ITERATIONS[(mode, resolution <= 32)]
            ours = ompq_images_per_second(args.bench, mode, model, args.batch, resolution,
                                          iterations, args.threads, args.precision)
            try:
                theirs = torch_images_per_second(mode, model, args.batch, resolution, classes,
                                                 iterations, args.precision)
            except RuntimeError as e:  # e.g. PyTorch 1.13 has no bf16 ReLU backward on the CPU
                print(f"{case:32s} {ours:11.2f} {'n/a':>12s} {'':>11s} torch: {e}", flush=True)
                continue
            print(f"{case:32s} {ours:11.2f} {theirs:12.2f} {ours / theirs:10.2f}x", flush=True)


if __name__ == "__main__":
    main()
