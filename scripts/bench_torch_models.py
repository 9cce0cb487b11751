#!/usr/bin/python3
"""Whole-model speed and memory: ompq (apps/ompq_bench BM_TrainStep / BM_Infer) against PyTorch.

Runs under whichever interpreter starts it, and every row names the torch version it measured:
Debian's PyTorch 1.13 (/usr/bin/python3) or today's from PyPI (.venv-peers/bin/python, made by
scripts/setup_peers.sh).

For each model case (resnet20 at 32 px with 10 classes; resnet18, resnet50 and mobilenet_v2 at
224 px with 1000 classes) the ompq benchmark runs first, then PyTorch in a child process of this
interpreter, so both see the same machine load and each case has a process of its own: the peak
resident memory of a case (VmHWM, reset through /proc/self/clear_refs when the case starts, before
its model is built; ompq_bench's peak_rss_mib counter) is then that case's alone. The step is the same on both sides:
  train: forward in train mode, cross-entropy, zero_grad, backward, SGD step (lr 0.01,
         momentum 0.9, weight decay 1e-4);
  infer: forward in eval mode without grad.
Each side does one untimed warm-up step, then --iterations timed steps (ompq_bench's default
counts when not given); images/s = batch * iterations / wall time. Both run channels_last (ompq_bench's
default --model_layout) with --threads threads (OMP_NUM_THREADS for ompq). --precision bf16 runs both
under bf16 autocast (ompq_bench --model_precision=bf16; torch.autocast("cpu", torch.bfloat16)).

  /usr/bin/python3 scripts/bench_torch_models.py [--bench build/apps/ompq_bench] [--batch 32]
      [--filter REGEX] [--iterations N] [--threads 2] [--precision f32|bf16]
  .venv-peers/bin/python scripts/bench_torch_models.py ...      # the same against today's torch

--filter matches case names such as "train/resnet18/32/224" or "infer/resnet20/32/32".
Prints one row per case: the torch version, ompq and PyTorch images/s (wall time) and ompq/torch
(> 1: ompq is faster); both sides' CPU time per image (all threads of the process; on a machine
shared with other work the less disturbed measure) and torch/ompq of it (> 1: ompq needs less);
both sides' peak resident memory in MiB (PyTorch's includes the interpreter with torch imported,
the "torch start" column).
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


def ompq_case(bench, mode, model, batch, resolution, iterations, threads, precision):
    """ompq_bench's images/s and peak resident MiB for one case, in a process of its own."""
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
    unit_ms = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[benchmarks[0]["time_unit"]]
    cpu_ms_per_image = benchmarks[0]["cpu_time"] * unit_ms / batch
    return benchmarks[0]["items_per_second"], cpu_ms_per_image, benchmarks[0]["peak_rss_mib"]


def status_mib(field):
    """A "Name: <n> kB" line of /proc/self/status in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field} line")


def reset_peak_rss():
    """Sets VmHWM to the current VmRSS (as ompq_bench does at a case's start); returns that."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status_mib("VmRSS")


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
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        step()
    cpu_ms_per_image = (time.process_time() - start_cpu) * 1e3 / (batch * iterations)
    return batch * iterations / (time.perf_counter() - start), cpu_ms_per_image


def torch_case(args, mode, model, resolution, classes, iterations):
    """PyTorch's images/s and peak resident MiB for one case, measured by a child process of this
    interpreter (see child_main); None and the error's text when PyTorch cannot run the case."""
    command = [sys.executable, os.path.abspath(__file__), "--child",
               f"{mode}/{model}/{resolution}/{classes}", f"--batch={args.batch}",
               f"--iterations={iterations}", f"--threads={args.threads}",
               f"--precision={args.precision}"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): "
                           f"{result.stderr.strip()[-2000:]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if "error" in report:
        return None, report["error"]
    return report, None


def child_main(args):
    """Runs one PyTorch case and prints its numbers as one JSON line."""
    torch.set_num_threads(args.threads)
    mode, model, resolution, classes = args.child.split("/")
    start_rss = reset_peak_rss()
    try:
        rate, cpu_ms_per_image = torch_images_per_second(mode, model, args.batch, int(resolution), int(classes),
                                       args.iterations, args.precision)
    except RuntimeError as e:  # e.g. PyTorch 1.13 has no bf16 ReLU6 backward on the CPU
        print(json.dumps({"error": str(e).splitlines()[0]}))
        return
    print(json.dumps({"images_per_second": rate, "cpu_ms_per_image": cpu_ms_per_image,
                      "peak_rss_mib": status_mib("VmHWM"),
                      "start_rss_mib": start_rss}))


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
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)  # mode/model/res/classes
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return

    print(f"torch {torch.__version__} ({sys.executable}), {args.threads} threads, "
          f"batch {args.batch}, {args.precision}")
    print(f"{'case':26s} {'torch':>9s} {'ompq img/s':>11s} {'torch img/s':>12s} "
          f"{'ompq/torch':>11s} {'CPU ms/img ompq':>16s} {'torch':>7s} {'ratio':>7s} "
          f"{'peak MiB ompq':>14s} {'torch':>6s} {'(torch start)':>14s}")
    for model, resolution, classes in MODELS:
        for mode in ("train", "infer"):
            case = f"{mode}/{model}/{args.batch}/{resolution}"
            if not re.search(args.filter, case):
                continue
            iterations = args.iterations or DEFAULT_ITERATIONS[(mode, resolution <= 32)]
            ours, our_cpu_ms, our_mib = ompq_case(args.bench, mode, model, args.batch, resolution, iterations,
                                      args.threads, args.precision)
            theirs, error = torch_case(args, mode, model, resolution, classes, iterations)
            version = torch.__version__.split("+")[0]
            if theirs is None:
                print(f"{case:26s} {version:>9s} {ours:11.2f} {'n/a':>12s} {'':>11s} "
                      f"{our_cpu_ms:16.1f} {'':>7s} {'':>7s} {our_mib:14.0f} "
                      f"torch: {error}", flush=True)
                continue
            rate, cpu_ms = theirs["images_per_second"], theirs["cpu_ms_per_image"]
            print(f"{case:26s} {version:>9s} {ours:11.2f} {rate:12.2f} {ours / rate:10.2f}x "
                  f"{our_cpu_ms:16.1f} {cpu_ms:7.1f} {cpu_ms / our_cpu_ms:6.2f}x "
                  f"{our_mib:14.0f} {theirs['peak_rss_mib']:6.0f} "
                  f"{theirs['start_rss_mib']:14.0f}", flush=True)

if __name__ == "__main__":
    main()
