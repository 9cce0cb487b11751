#!/usr/bin/env python3
"""Compares ONNX Runtime's logits with ompq's (tests/e2e/onnx_runtime_smoke.sh).

  compare_onnx_logits.py fp32 ORT.safetensors OMPQ.safetensors
      FP32: max |ort - ompq| <= 1e-4 * max |ompq| (relative to the largest logit: elementwise
      relative error is meaningless for logits near 0).
  compare_onnx_logits.py qdq QUANTIZED.onnx ORT.safetensors REFERENCE.safetensors MIN_TOP1
      QDQ: max |ort - ompq| <= the tolerance below, and the same top-1 class on at least MIN_TOP1
      of the images.

The QDQ tolerance, from the model itself: the two computations agree up to float rounding, which
now and then moves a value across a rounding boundary of the next quantizer, so an activation
code differs by one step here and there (and, at ORT's optimization levels above "disabled", ORT
rounds each float bias to the int32 grid of input scale x weight scale, shifting outputs by up to
half that grid, which moves more values across boundaries). Each such one-step change anywhere
upstream reaches the logits through the classifier, whose input is quantized itself: however the
upstream steps add up, they change the classifier's input codes, and if every input moved by one
step, logit o would move by at most s_in * sum_j |W[o, j]| (s_in the classifier's input scale,
W its dequantized weight). That bound, over o, is the tolerance: one quantization step of the last
layer's input, seen at its output.
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0] + "/scripts")
import run_onnx  # noqa: E402  (the repository's safetensors reader)


def logits(path, name):
    tensors = run_onnx.read_safetensors(path)
    if name not in tensors:
        sys.exit(f"FAIL: {path} has no tensor {name}")
    return tensors[name].astype(np.float64)


def classifier_tolerance(model_path):
    """s_in * max_o sum_j |W[o, j]| of the node writing the model's output (a QDQ Gemm)."""
    model = onnx.load(model_path)
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    head = producer[model.graph.output[0].name]
    x_dq, w_dq = producer[head.input[0]], producer[head.input[1]]
    if x_dq.op_type != "DequantizeLinear" or w_dq.op_type != "DequantizeLinear":
        sys.exit(f"FAIL: {model_path}: the classifier {head.name} has no quantized input and weight")
    s_in = float(init[x_dq.input[1]])
    codes = init[w_dq.input[0]].astype(np.float64)
    scale = init[w_dq.input[1]].astype(np.float64).reshape(-1, 1)
    zero = init[w_dq.input[2]].astype(np.float64).reshape(-1, 1)
    weight = (codes - zero) * scale
    return s_in * np.abs(weight).sum(axis=1).max(), s_in


def main():
    if sys.argv[1] == "fp32":
        ort, ompq = logits(sys.argv[2], "logits"), logits(sys.argv[3], "logits")
        diff, scale = np.abs(ort - ompq).max(), np.abs(ompq).max()
        print(f"fp32: max |ort - ompq_eval| {diff:.3g}, {diff / scale:.3g} of the largest logit "
              f"{scale:.3g} (bound 1e-4)")
        if diff > 1e-4 * scale:
            sys.exit("FAIL: FP32 logits differ by more than 1e-4 relative")
        return
    model, ort_path, ref_path, min_top1 = sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
    ort, ompq = logits(ort_path, "logits"), logits(ref_path, "quantized_logits")
    tolerance, s_in = classifier_tolerance(model)
    diff = np.abs(ort - ompq)
    top1 = float((ort.argmax(1) == ompq.argmax(1)).mean())
    print(f"qdq: max |ort - ompq| {diff.max():.4g}, mean {diff.mean():.3g}; tolerance {tolerance:.4g} "
          f"(classifier input scale {s_in:.4g}); same top-1 on {100 * top1:.1f}% of {len(ort)} images "
          f"(needed {100 * min_top1:.0f}%)")
    if diff.max() > tolerance:
        sys.exit("FAIL: QDQ logits differ by more than the tolerance")
    if top1 < min_top1:
        sys.exit("FAIL: QDQ top-1 agrees too rarely")


if __name__ == "__main__":
    main()
