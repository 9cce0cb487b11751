#!/usr/bin/env python3
"""Measures ONNX Runtime's (and OpenVINO's) throughput (images/s) on ONNX models, on the CPU.

  .venv-onnx/bin/python scripts/bench_onnx.py MODEL.onnx [MODEL.onnx ...] \\
      [--batch_sizes=32,1] [--threads=2] [--seconds=5] [--runtimes=onnxruntime]
  .venv-peers/bin/python scripts/bench_onnx.py --runtimes=onnxruntime,openvino MODEL.onnx ...

Each model runs on random inputs of its declared shape (batch dimension set per run), after 3
warm-up runs, for at least --seconds per batch size: in ONNX Runtime with its default graph
optimizations, intra_op_num_threads=--threads; in OpenVINO's CPU plugin (.venv-peers from
scripts/setup_peers.sh) compiled for that batch size, INFERENCE_NUM_THREADS=--threads and the
latency hint (one stream). The (model, runtime) pairs alternate so that a change in machine load
hits them alike.
"""
import argparse
import time

import numpy as np


def onnxruntime_runner(path, threads):
    """A function that makes a runner for one batch size (ORT takes any batch as it is)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    sess = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name, dims = sess.get_inputs()[0].name, list(sess.get_inputs()[0].shape[1:])
    return lambda batch: (lambda x: sess.run(None, {name: x}), [batch] + dims)


def openvino_runner(path, threads):
    """A function that compiles the model for one batch size and returns its runner."""
    import openvino as ov
    core = ov.Core()

    def for_batch(batch):
        model = core.read_model(path)
        dims = [batch] + [d.get_length() for d in model.input(0).get_partial_shape()[1:]]
        model.reshape(dims)
        compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                     "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        return (lambda x: request.infer([x])), dims
    return for_batch


RUNTIMES = {"onnxruntime": onnxruntime_runner, "openvino": openvino_runner}


def images_per_second(run, dims, seconds):
    x = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
    for _ in range(3):
        run(x)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run(x)
        runs += 1
    return runs * dims[0] / (time.perf_counter() - start)


def version(runtime):
    module = __import__(runtime)
    return f"{runtime} {module.__version__}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--batch_sizes", default="32,1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--runtimes", default="onnxruntime",
                        help="comma-separated: onnxruntime, openvino")
    args = parser.parse_args()
    runtimes = args.runtimes.split(",")
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        parser.error(f"--runtimes: unknown {', '.join(unknown)} (expected {', '.join(RUNTIMES)})")
    makers = {(path, r): RUNTIMES[r](path, args.threads) for path in args.models for r in runtimes}
    print(f"{', '.join(version(r) for r in runtimes)}; {args.threads} threads")
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        runners = {key: make(batch) for key, make in makers.items()}
        for (path, runtime), (run, dims) in runners.items():
            print(f"batch {batch:3d}  {images_per_second(run, dims, args.seconds):9.1f} img/s  "
                  f"{runtime:12s} {path}")


if __name__ == "__main__":
    main()
