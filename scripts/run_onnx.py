#!/usr/bin/env python3
"""Runs an ONNX model in ONNX Runtime (or OpenVINO) on a tensor file and writes its logits.

  .venv-onnx/bin/python scripts/run_onnx.py MODEL.onnx INPUT.safetensors OUTPUT.safetensors
  .venv-peers/bin/python scripts/run_onnx.py --runtime=openvino MODEL.onnx INPUT OUTPUT

INPUT holds tensor "input" (float32 NCHW, as ompq_eval's tensor mode reads it); OUTPUT gets tensor
"logits" (float32 [N, classes]), so that the two programs' outputs compare directly. The files are
read and written with numpy alone (safetensors: an 8-byte little-endian header length, a JSON
header, raw little-endian data), so no PyTorch is needed. The environment comes from
scripts/setup.sh (.venv-onnx/: onnxruntime); OpenVINO's from scripts/setup_peers.sh (.venv-peers/).
"""
import argparse
import json
import struct
import sys

import numpy as np

# ONNX Runtime's graph optimization levels by their GraphOptimizationLevel names.
LEVELS = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
          "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I8": np.int8, "U8": np.uint8,
          "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        sys.exit(f"run_onnx: {path}: {len(blob)} bytes, too short for a safetensors file")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if 8 + header_len > len(blob):
        sys.exit(f"run_onnx: {path}: header of {header_len} bytes runs past the file's end")
    header = json.loads(blob[8:8 + header_len])
    data = memoryview(blob)[8 + header_len:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] not in DTYPES:
            sys.exit(f"run_onnx: {path}: tensor {name} has dtype {entry['dtype']} "
                     f"(expected one of {', '.join(DTYPES)})")
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=np.dtype(DTYPES[entry["dtype"]]).newbyteorder("<"))
        tensors[name] = array.reshape(entry["shape"])
    return tensors


def write_safetensors(path, tensors, metadata):
    names = {np.dtype(v): k for k, v in DTYPES.items()}
    header, chunks, offset = {"__metadata__": metadata}, [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": names[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)  # data aligned to 8 bytes, as the format recommends
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks))


def onnxruntime_runner(args):
    """A function running one batch in ONNX Runtime, and the runtime's name and version."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[args.optimization])
    if args.optimized_model:
        options.optimized_model_filepath = args.optimized_model
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return (lambda batch: session.run(None, {input_name: batch})[0]), f"onnxruntime {ort.__version__}"


def openvino_runner(args):
    """OpenVINO's CPU plugin on the same file (it reads ONNX itself and fuses QDQ on its own)."""
    import openvino as ov
    config = {"INFERENCE_NUM_THREADS": args.threads} if args.threads > 0 else {}
    compiled = ov.Core().compile_model(args.model, "CPU", config)
    request = compiled.create_infer_request()
    output = compiled.output(0)
    return (lambda batch: request.infer([batch])[output].copy()), f"openvino {ov.__version__}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="the .onnx file")
    parser.add_argument("input", help='safetensors file holding tensor "input" (float32 NCHW)')
    parser.add_argument("output", help='safetensors file to write tensor "logits" to')
    parser.add_argument("--batch_size", type=int, default=100, help="images per run")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: ORT's choice)")
    parser.add_argument("--optimization", choices=list(LEVELS), default="all",
                        help="ORT's graph optimizations; 'disabled' runs the operators exactly as "
                             "ONNX specifies them (at 'basic' and above ORT rounds a QDQ model's "
                             "float conv biases to int32, as an integer kernel would)")
    parser.add_argument("--optimized_model", default="",
                        help="also save the graph as ORT optimized it (shows which Q/DQ it fused)")
    parser.add_argument("--runtime", choices=["onnxruntime", "openvino"], default="onnxruntime",
                        help="openvino: OpenVINO's CPU plugin (--optimization and --optimized_model "
                             "are ONNX Runtime's and do not apply)")
    args = parser.parse_args()

    tensors = read_safetensors(args.input)
    if "input" not in tensors:
        sys.exit(f'run_onnx: {args.input} has no tensor "input" (it holds: {", ".join(tensors) or "nothing"})')
    images = tensors["input"]
    if images.dtype != np.float32 or images.ndim != 4:
        sys.exit(f'run_onnx: {args.input}: tensor "input" is {images.dtype} {list(images.shape)} '
                 "(expected float32 NCHW)")
    if args.runtime == "openvino" and (args.optimized_model or args.optimization != "all"):
        sys.exit("run_onnx: --optimization and --optimized_model are ONNX Runtime's "
                 "(not for --runtime=openvino)")
    run, runtime = (openvino_runner if args.runtime == "openvino" else onnxruntime_runner)(args)
    logits = np.concatenate([run(images[i:i + args.batch_size])
                             for i in range(0, len(images), args.batch_size)])
    metadata = {"model": args.model, "input": args.input, "runtime": runtime}
    if args.runtime == "onnxruntime":
        metadata["optimization"] = args.optimization
    write_safetensors(args.output, {"logits": logits.astype(np.float32)}, metadata)
    print(f"run_onnx: wrote logits {list(logits.shape)} to {args.output} ({runtime})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
