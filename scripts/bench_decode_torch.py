#!/usr/bin/python3
"""BM_Decode side by side with torchvision's PIL pipeline, on the same JPEG bytes, in one run.

Runs the BM_Decode cases of ompq_bench, which write their generated 500x375 JPEGs into a temporary
folder (environment variable OMPQ_DECODE_BENCH_DIR), then times torchvision 0.14 on those files
with the same transforms: PIL decode + convert("RGB") as ImageFolder's loader does (from memory,
as ours), the transform, ToTensor and Normalize, on one thread. Prints images/s per thread over
CPU time (what a decode worker sustains on a core of its own) and over wall time (lower when the
machine is loaded), and the ratio ours / torchvision.

  /usr/bin/python3 scripts/bench_decode_torch.py [--bench build/apps/ompq_bench] [--seconds 3]
"""
import argparse
import glob
import io
import json
import os
import subprocess
import tempfile
import time

import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CASES = {
    "BM_Decode/RandomResizedCrop224": T.Compose([
        T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)]),
    "BM_Decode/Resize256_CenterCrop224": T.Compose([
        T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)]),
}


def run_ours(bench, seconds, folder):
    env = dict(os.environ, OMPQ_DECODE_BENCH_DIR=folder)
    command = [bench, "--benchmark_filter=BM_Decode", "--benchmark_format=json",
               f"--benchmark_min_time={seconds}"]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    to_seconds = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    rates = {}
    for b in json.loads(result.stdout)["benchmarks"]:
        unit = to_seconds[b["time_unit"]]
        rates[b["name"]] = (1.0 / (b["cpu_time"] * unit), 1.0 / (b["real_time"] * unit),
                            b.get("jpeg_kb", 0.0))
    return rates


def run_torch(transform, jpegs, seconds):
    count = 0
    cpu_start, wall_start = time.thread_time(), time.perf_counter()
    while count % len(jpegs) != 0 or time.thread_time() - cpu_start < seconds:
        image = Image.open(io.BytesIO(jpegs[count % len(jpegs)])).convert("RGB")
        transform(image)
        count += 1
    return count / (time.thread_time() - cpu_start), count / (time.perf_counter() - wall_start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", default="build/apps/ompq_bench")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per case")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as folder:
        ours = run_ours(args.bench, args.seconds, folder)
        paths = sorted(glob.glob(os.path.join(folder, "*.JPEG")))
        if not paths:
            raise SystemExit(f"{args.bench} wrote no JPEGs: does it register BM_Decode?")
        jpegs = [open(p, "rb").read() for p in paths]

    print(f"{len(jpegs)} JPEGs 500x375, mean {sum(map(len, jpegs)) / len(jpegs) / 1024:.0f} KB; "
          f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"1 thread; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'case':36s} {'ours img/s cpu (wall)':>22s} {'torch img/s cpu (wall)':>23s} "
          f"{'ratio cpu':>9s}")
    for name, transform in CASES.items():
        if name not in ours:
            raise SystemExit(f"{args.bench} has no {name}")
        our_cpu, our_wall, _ = ours[name]
        torch_cpu, torch_wall = run_torch(transform, jpegs, args.seconds)
        print(f"{name:36s} {our_cpu:12.0f} ({our_wall:6.0f}) {torch_cpu:13.0f} ({torch_wall:6.0f}) "
              f"{our_cpu / torch_cpu:8.2f}x")


if __name__ == "__main__":
    main()
