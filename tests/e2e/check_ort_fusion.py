#!/usr/bin/env python3
"""Checks that ONNX Runtime ran a QDQ model's quantized convs as integer convolutions.

  check_ort_fusion.py QUANTIZED.onnx OPTIMIZED.onnx

OPTIMIZED is the graph ORT saved after its optimizations (run_onnx.py --optimized_model). ORT
fuses DequantizeLinear -> Conv -> QuantizeLinear into QLinearConv, so every Conv of QUANTIZED whose
output only a QuantizeLinear reads (the exporter places such a pair where it is exact:
layers/export/onnx_export.cc) must be a QLinearConv in OPTIMIZED, and there must be at least one.
"""
import collections
import sys

import onnx


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
    if ops["QLinearConv"] != quantized_output:
        sys.exit(f"FAIL: ORT fused {ops['QLinearConv']} convs into QLinearConv, expected "
                 f"{quantized_output}")


if __name__ == "__main__":
    main()
