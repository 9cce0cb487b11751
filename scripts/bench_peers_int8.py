#!/usr/bin/env python3
"""Int8 CPU inference: ompq's packed models (apps/ompq_bench BM_InferPacked) against ONNX Runtime
and OpenVINO running int8 models of the same architectures, in one run.

Runs in the peers' environment (scripts/setup_peers.sh):

  .venv-peers/bin/python scripts/bench_peers_int8.py [--bench build/apps/ompq_bench]
      [--export build/apps/ompq_export] [--models resnet18,...] [--batches 32,1] [--threads 2]
      [--iterations N] [--work_dir out/peers_int8] [--qdq resnet18=quantized.onnx ...]

For each model (resnet20 at 32 px with 10 classes, the twin of ompq's from
scripts/torchvision_to_safetensors.py; resnet18, resnet50 and mobilenet_v2 from torchvision at
224 px with 1000 classes; random weights, as ompq_bench's) the script
  1. exports the FP32 model to ONNX (torch.onnx, opset 17, symbolic batch) into --work_dir;
  2. quantizes it with each peer's own int8 tool on the same calibration images (--calibration
     random N(0, 1) images, as ompq_bench calibrates on):
       ort-qdq:  onnxruntime.quantization.quantize_static, QDQ format, per-channel int8 weights,
                 uint8 activations, MinMax calibration, after ORT's quant_pre_process;
       nncf:     OpenVINO's NNCF post-training quantization (nncf.quantize) of the FP32 model read
                 by OpenVINO (its default: per-channel symmetric int8 weights, int8/uint8
                 activations);
  3. times, at each batch of --batches with --threads threads, on one tensor of random images:
       ompq fp32 (BM_Infer) and ompq packed (BM_InferPacked, qat and ptq bits), in ompq_bench;
       ORT fp32 and ORT int8 (the ort-qdq model), all graph optimizations, intra-op threads;
       OpenVINO fp32, OpenVINO int8 of the ort-qdq model and of the nncf model
         (INFERENCE_NUM_THREADS, LATENCY hint, one synchronous request);
       ORT and OpenVINO on ompq's own QDQ export of the very packed models BM_InferPacked
         times (ompq_bench --packed_dir saves them, ompq_export --packed writes quantized.onnx:
         the same weights, bits and activation scales, so the three engines do the same work);
     and --qdq MODEL=PATH adds any other QDQ model of that architecture (e.g. ompq_export's
     quantized.onnx of a trained model) to both runtimes.
Each timing: one untimed warm-up run, then --iterations timed runs (default: as ompq_bench, 5
at 224 px and 40 at 32 px for batch 32; 20 and 100 at batch 1). Prints images/s (wall time) and
CPU ms per image (the whole process; on a shared machine the less disturbed measure, exact at
--threads 1) per engine, and ompq packed (the better of qat, ptq) against each peer's int8 in both
measures (> 1: ompq is faster).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
import openvino as ov
import torch
import torchvision  # noqa: F401  (build_model imports it too; fail here if missing)
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_to_safetensors import build_model  # noqa: E402

MODELS = {"resnet20": (32, 10), "resnet18": (224, 1000), "resnet50": (224, 1000),
          "mobilenet_v2": (224, 1000)}


def default_iterations(batch, resolution):
    if batch == 1:
        return 100 if resolution <= 32 else 20
    return 40 if resolution <= 32 else 5


def export_fp32(name, resolution, classes, path):
    torch.manual_seed(0)
    model = build_model(name, num_classes=classes).eval()
    x = torch.randn(1, 3, resolution, resolution)
    torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=17, dynamo=False)


class Images(CalibrationDataReader):
    def __init__(self, images):
        self.batches = iter([{"input": images[i:i + 1]} for i in range(len(images))])

    def get_next(self):
        return next(self.batches, None)


def quantize_ort(fp32_path, int8_path, images):
    prepared = int8_path + ".pre.onnx"
    quant_pre_process(fp32_path, prepared)
    quantize_static(prepared, int8_path, Images(images), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)


def quantize_nncf(fp32_path, int8_path, images):
    import nncf  # imported here: it is slow to import and only this step needs it
    model = ov.Core().read_model(fp32_path)
    dataset = nncf.Dataset([images[i:i + 1] for i in range(len(images))])
    quantized = nncf.quantize(model, dataset, subset_size=len(images))
    ov.save_model(quantized, int8_path)


def time_runs(run, x, iterations):
    """(images/s of wall time, CPU ms per image of the whole process)."""
    run(x)  # untimed warm-up: kernels and memory for this shape
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        run(x)
    images = x.shape[0] * iterations
    return images / (time.perf_counter() - start), (time.process_time() - start_cpu) * 1e3 / images


def ort_rate(path, x, threads, iterations):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return time_runs(lambda v: session.run(None, {name: v}), x, iterations)


def openvino_rate(path, x, threads, iterations):
    compiled = ov.Core().compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                     "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return time_runs(lambda v: request.infer([v]), x, iterations)


def ompq_rates(bench, name, batch, resolution, iterations, threads, packed_dir):
    """(images/s, CPU ms per image) of BM_Infer (fp32) and BM_InferPacked (qat, ptq) for one
    model and batch, saving the packed models into packed_dir. BM_InferPacked's CPU time is its
    main thread's: the process's at 1 thread."""
    command = [bench, f"--batch={batch}", f"--model_iterations={iterations}",
               f"--packed_dir={packed_dir}",
               f"--benchmark_filter=^BM_Infer(Packed)?/{name}/{batch}/{resolution}(/|$)",
               "--benchmark_format=json"]
    result = subprocess.run(command, check=True, capture_output=True, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    rates = {}
    for b in json.loads(result.stdout)["benchmarks"]:
        if b.get("error_occurred"):
            raise RuntimeError(f"{b['name']}: {b.get('error_message')}")
        family, _, _, _, *rest = b["name"].split("/")
        key = "ompq fp32" if family == "BM_Infer" else f"ompq packed {rest[0]}"
        unit_ms = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
        rates[key] = (b["items_per_second"], b["cpu_time"] * unit_ms / batch)
    if len(rates) != 3:
        raise RuntimeError(f"{' '.join(command)} ran {sorted(rates)}, expected BM_Infer and "
                           "BM_InferPacked qat and ptq")
    return rates


def export_ompq_qdq(export, name, resolution, classes, packed_dir, mode):
    """ompq_export's quantized.onnx of the packed model BM_InferPacked timed (mode: qat or ptq)."""
    output_dir = os.path.join(packed_dir, f"{name}_{mode}")
    subprocess.run([export, f"--model={name}", f"--num_classes={classes}",
                    f"--image_size={resolution}",
                    f"--packed={os.path.join(packed_dir, f'{name}_{resolution}_{mode}.safetensors')}",
                    f"--output_dir={output_dir}"], check=True, capture_output=True, text=True)
    return os.path.join(output_dir, "quantized.onnx")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", default="build/apps/ompq_bench")
    parser.add_argument("--export", default="build/apps/ompq_export")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="32,1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=0, help="0: see above")
    parser.add_argument("--calibration", type=int, default=32, help="calibration images")
    parser.add_argument("--work_dir", default="out/peers_int8", help="where the models go")
    parser.add_argument("--qdq", action="append", default=[], metavar="MODEL=PATH",
                        help="another QDQ model of MODEL to run in both runtimes")
    args = parser.parse_args()
    extra = {}
    for item in args.qdq:
        model, sep, path = item.partition("=")
        if not sep or model not in MODELS or not os.path.isfile(path):
            sys.exit(f"bench_peers_int8: --qdq {item}: expected MODEL=PATH with MODEL one of "
                     f"{', '.join(MODELS)} and PATH an existing .onnx file")
        extra.setdefault(model, []).append(path)
    models = args.models.split(",")
    for model in models:
        if model not in MODELS:
            sys.exit(f"bench_peers_int8: --models: unknown model '{model}' "
                     f"(expected some of {', '.join(MODELS)})")
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)
    packed_dir = os.path.join(args.work_dir, "ompq_packed")
    os.makedirs(packed_dir, exist_ok=True)
    import nncf
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, openvino "
          f"{ov.get_version()}, nncf {nncf.__version__}; {args.threads} threads")

    for model in models:
        resolution, classes = MODELS[model]
        rng = np.random.default_rng(0)
        images = rng.standard_normal((args.calibration, 3, resolution, resolution),
                                     dtype=np.float32)
        paths = {kind: os.path.join(args.work_dir, f"{model}.{kind}.onnx" if kind != "nncf"
                                    else f"{model}.nncf.xml") for kind in ("fp32", "ort-qdq", "nncf")}
        export_fp32(model, resolution, classes, paths["fp32"])
        quantize_ort(paths["fp32"], paths["ort-qdq"], images)
        quantize_nncf(paths["fp32"], paths["nncf"], images)
        runs = [("ORT fp32", ort_rate, paths["fp32"]), ("ORT int8 (ort-qdq)", ort_rate, paths["ort-qdq"]),
                ("OpenVINO fp32", openvino_rate, paths["fp32"]),
                ("OpenVINO int8 (ort-qdq)", openvino_rate, paths["ort-qdq"]),
                ("OpenVINO int8 (nncf)", openvino_rate, paths["nncf"])]
        for path in extra.get(model, []):
            runs += [(f"ORT int8 ({path})", ort_rate, path), (f"OpenVINO int8 ({path})", openvino_rate, path)]
        for batch in batches:
            iterations = args.iterations or default_iterations(batch, resolution)
            x = rng.standard_normal((batch, 3, resolution, resolution), dtype=np.float32)
            rates = ompq_rates(args.bench, model, batch, resolution, iterations, args.threads,
                               packed_dir)
            if batch == batches[0]:  # the packed models are the same at every batch
                for mode in ("qat", "ptq"):
                    path = export_ompq_qdq(args.export, model, resolution, classes, packed_dir,
                                           mode)
                    runs += [(f"ORT int8 (ompq qdq {mode})", ort_rate, path),
                             (f"OpenVINO int8 (ompq qdq {mode})", openvino_rate, path)]
            for label, rate, path in runs:
                rates[label] = rate(path, x, args.threads, iterations)
            best = max(("ompq packed qat", "ompq packed ptq"), key=lambda k: rates[k][0])
            ours, our_cpu_ms = rates[best]
            print(f"\n{model}, batch {batch}, {resolution} px, {iterations} timed runs; "
                  f"ratios: {best} against each int8 peer (> 1: ompq is faster)")
            print(f"  {'engine':44s} {'img/s':>9s} {'CPU ms/img':>11s} {'ratio img/s':>12s} "
                  f"{'ratio CPU':>10s}")
            for label, (value, cpu_ms) in rates.items():
                ratio = (f"{ours / value:11.2f}x {cpu_ms / our_cpu_ms:9.2f}x"
                         if "int8" in label else "")
                print(f"  {label:44s} {value:9.2f} {cpu_ms:11.2f} {ratio}", flush=True)


if __name__ == "__main__":
    main()
