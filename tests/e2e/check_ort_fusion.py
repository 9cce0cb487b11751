#!/usr/bin/env python3
"""Checks that ONNX Runtime ran a QDQ model's quantized convs as integer convolutions.

  check_ort_fusion.py QUANTIZED.onnx OPTIMIZED.onnx

OPTIMIZED is the graph ORT saved after its optimizations (run_onnx.py --optimized_model). ORT
fuses DequantizeLinear -> Conv -> QuantizeLinear into QLinearConv, so every Conv of QUANTIZED whose
output only a QuantizeLinear reads (the exporter places such a pair where it is exact:
layers/export/onnx_export.cc) must be a QLinearConv in OPTIMIZED, and there must be at least one.
Each QLinearConv must read uint8 codes with zero point 0: the exporter writes a ReLU's output so
(codes 0..127). Signed codes would be shifted by ORT into 128..255 on x86, where the u8 x s8 kernels
without VNNI saturate their 16-bit pair sums against 8-bit weights.
"""
import collections
import sys

import onnx
from onnx import numpy_helper


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    quantized, optimized = onnx.load(sys.argv[1]), onnx.load(sys.argv[2])
    readers = collections.defaultdict(list)
    for node in quantized.graph.node:
        for name in node.input:
            readers[name].append(node.op_type)
    convs = [n for n in quantized.graph.node if n.op_type == "Conv"]
    quantized_output = sum(readers[c.output[0]] == ["QuantizeLinear"] for c in convs)
    ops = collections.Counter(n.op_type for n in optimized.graph.node)
    print(f"ort fusion: {len(convs)} convs, {quantized_output} with a quantized output; "
          f"ORT's graph: {ops['QLinearConv']} QLinearConv, {ops['FusedConv'] + ops['Conv']} "
          f"float convs")
    if quantized_output == 0:
        sys.exit(f"FAIL: {sys.argv[1]}: no conv's output is quantized, so none can fuse")
    initializers = {t.name: numpy_helper.to_array(t) for t in optimized.graph.initializer}
    for node in optimized.graph.node:
        if node.op_type != "QLinearConv":
            continue
        zero_point = initializers.get(node.input[2])
        if zero_point is None or zero_point.dtype != "uint8" or int(zero_point) != 0:
            sys.exit(f"FAIL: ORT's QLinearConv {node.name} reads codes with zero point "
                     f"{zero_point if zero_point is None else f'{int(zero_point)} ({zero_point.dtype})'}"
                     " (expected uint8 0: the exporter's unsigned pair on a ReLU's output)")
    if ops["QLinearConv"] != quantized_output:
        sys.exit(f"FAIL: ORT fused {ops['QLinearConv']} convs into QLinearConv, expected "
                 f"{quantized_output}")


if __name__ == "__main__":
    main()
