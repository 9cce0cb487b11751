#!/usr/bin/python3
"""Side-by-side kernel timings: ompq (apps/ompq_bench) against PyTorch on the same cases.

Every case comes from ompq_bench's own list (its names encode the parameters), and each one is
timed in ompq and then immediately in PyTorch, with the same estimator on both sides: the minimum
over repetitions of the mean time per iteration. On a shared machine the minimum is the number
least disturbed by other processes; interleaving keeps slow phases from favouring either side.

  /usr/bin/python3 scripts/bench_torch_ops.py [--bench build/apps/ompq_bench] [--batch 32]
      [--filter REGEX] [--repetitions 3] [--min-time 0.3] [--threads 2]

Prints one row per case: ompq and PyTorch time, the rate (GFLOP/s or GB/s), and torch/ompq
(> 1: ompq is faster). Uses Debian's python3-torch (/usr/bin/python3).
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


def parse_case(name):
    """'BM_Conv2dForward/N32_C64_H56_O128_K3_S2_P1_G1_CL' -> ('Conv2dForward', {...}, cl)."""
    family, params = name.split("/", 1)
    params = params.replace("/real_time", "")
    channels_last = params.endswith("_CL")
    values = {m.group(1): int(m.group(2)) for m in re.finditer(r"([A-Za-z])(\d+)", params)}
    return family[len("BM_"):], values, channels_last


def torch_case(family, v, channels_last):
    """A closure running the PyTorch equivalent of one ompq_bench case, and its work unit."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if family in ("Conv2dForward", "Conv2dBackward"):
        n, c, h, o, k, s, p, g = (v[key] for key in "NCHOKSPG")
        x = torch.randn(n, c, h, h).contiguous(memory_format=fmt)
        w = torch.randn(o, c // g, k, k).contiguous(memory_format=fmt)
        if family == "Conv2dForward":
            return lambda: F.conv2d(x, w, None, s, p, 1, g)
        grad = F.conv2d(x, w, None, s, p, 1, g)
        grad = torch.randn_like(grad).contiguous(memory_format=fmt)
        return lambda: torch.ops.aten.convolution_backward(
            grad, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], g, [True, True, False])
    if family == "Matmul":
        a, b = torch.randn(v["M"], v["K"]), torch.randn(v["K"], v["N"])
        return lambda: torch.mm(a, b)
    if family == "Add":
        a, b = torch.randn(v["n"]), torch.randn(v["n"])
        return lambda: torch.add(a, b)
    if family == "Relu":
        a = torch.randn(v["n"])
        return lambda: torch.relu(a)
    if family == "MaxPool2d":
        x = torch.randn(v["N"], v["C"], v["H"], v["H"])
        return lambda: F.max_pool2d(x, v["K"], v["S"], v["P"], return_indices=True)
    raise ValueError(f"no PyTorch equivalent for {family}")


def time_torch(fn, repetitions, min_time):
    fn()
    fn()
    best = float("inf")
    for _ in range(repetitions):
        iterations, start = 0, time.perf_counter()
        while True:
            fn()
            iterations += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time and iterations >= 2:
                break
        best = min(best, elapsed / iterations)
    return best


def time_ompq(bench, name, batch, repetitions, min_time):
    out = subprocess.run(
        [bench, f"--batch={batch}", f"--benchmark_filter=^{re.escape(name)}(/real_time)?$",
         "--benchmark_format=json", f"--benchmark_repetitions={repetitions}",
         f"--benchmark_min_time={min_time}", "--benchmark_report_aggregates_only=false"],
        check=True, capture_output=True, text=True).stdout
    runs = [r for r in json.loads(out)["benchmarks"] if r.get("run_type") == "iteration"]
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    best = min(runs, key=lambda r: r["real_time"] * scale[r["time_unit"]])
    seconds = best["real_time"] * scale[best["time_unit"]]
    if "FLOPS" in best:
        return seconds, best["FLOPS"] * seconds, "GFLOP/s"
    return seconds, best["bytes_per_second"] * seconds, "GB/s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", default="build/apps/ompq_bench")
    parser.add_argument("--batch", type=int, default=32)
    # The kernel families this script has PyTorch twins for; the model and data benchmarks have
    # their own scripts (bench_torch_models.py, bench_decode_torch.py).
    parser.add_argument("--filter", default=r"^BM_(Conv2dForward|Conv2dBackward|Matmul|Add|Relu|MaxPool2d)/")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--min-time", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    listing = subprocess.run([args.bench, f"--batch={args.batch}", "--benchmark_list_tests"],
                             check=True, capture_output=True, text=True).stdout.split()
    names = [n for n in (n.replace("/real_time", "") for n in listing) if re.search(args.filter, n)]

    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}; "
          f"min over {args.repetitions} repetitions of >= {args.min_time} s")
    header = f"{'case':<48} {'ompq ms':>9} {'torch ms':>9} {'ompq rate':>17} {'torch rate':>11} {'torch/ompq':>10}"
    print(header)
    print("-" * len(header))
    for name in names:
        family, values, channels_last = parse_case(name)
        ours, work, unit = time_ompq(args.bench, name, args.batch, args.repetitions, args.min_time)
        theirs = time_torch(torch_case(family, values, channels_last), args.repetitions,
                            args.min_time)
        print(f"{name:<48} {ours * 1e3:9.3f} {theirs * 1e3:9.3f} "
              f"{work / ours / 1e9:9.1f} {unit:<7} {work / theirs / 1e9:11.1f} "
              f"{theirs / ours:10.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
