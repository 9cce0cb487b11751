#!/usr/bin/env python3
"""Measures ONNX Runtime's throughput (images/s) on ONNX models, CPU execution provider.

  .venv-onnx/bin/python scripts/bench_onnx.py MODEL.onnx [MODEL.onnx ...] \\
      [--batch_sizes=32,1] [--threads=2] [--seconds=5]

Each model runs on random inputs of its declared shape (batch dimension set per run) with ORT's
default graph optimizations and intra_op_num_threads=--threads, after 3 warm-up runs, for at least
--seconds per batch size; the models alternate so that a change in machine load hits them alike.
"""
import argparse
import time

import numpy as np
import onnxruntime as ort


def session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def images_per_second(sess, batch, seconds):
    spec = sess.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal([batch] + list(spec.shape[1:])).astype(np.float32)
    for _ in range(3):
        sess.run(None, {spec.name: x})
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sess.run(None, {spec.name: x})
        runs += 1
    return runs * batch / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--batch_sizes", default="32,1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    sessions = {path: session(path, args.threads) for path in args.models}
    print(f"onnxruntime {ort.__version__}, {args.threads} intra-op threads")
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        for path, sess in sessions.items():
            print(f"batch {batch:3d}  {images_per_second(sess, batch, args.seconds):9.1f} img/s  {path}")


if __name__ == "__main__":
    main()
