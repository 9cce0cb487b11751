#!/usr/bin/env python3
"""Writes tests/data/safetensors_golden.safetensors, the interop fixture of tests/core/safetensors_test.cc.

The format is written by hand (8-byte little-endian header length, JSON header padded with spaces
to a multiple of 8, raw little-endian data) from torch tensors, so that the test checks our reader
against bytes that torch produced, without the safetensors package. Tensors are laid out in the
data section in reverse name order, to check that the reader follows data_offsets rather than the
order of names. Run: python3 scripts/make_safetensors_golden.py (needs torch; Debian python3-torch).
"""
import json
import os
import struct

import torch

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data",
                                    "safetensors_golden.safetensors"))

DTYPE_NAMES = {
    torch.float32: "F32", torch.float64: "F64", torch.bfloat16: "BF16", torch.float16: "F16",
    torch.int8: "I8", torch.uint8: "U8", torch.int32: "I32", torch.int64: "I64",
}

TENSORS = {
    "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1.0,
    "f64": torch.tensor([1.0 / 3.0, -2.5, 1e-300], dtype=torch.float64),
    "bf16": torch.tensor([1.0, -2.5, 3.140625], dtype=torch.bfloat16),
    "f16": torch.tensor([0.5, -65504.0, 2.0 ** -14], dtype=torch.float16),
    "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
    "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
    "i32": torch.tensor([[-2147483648, 7], [123456, -1]], dtype=torch.int32),
    "i64": torch.tensor(2 ** 53 + 1, dtype=torch.int64),  # 0-dim, not representable in f64
    "empty": torch.zeros(0, 3, dtype=torch.float32),
    "features.1.running_var": torch.linspace(0.5, 2.0, 4, dtype=torch.float32),
}
METADATA = {"format": "pt", "producer": "make_safetensors_golden.py"}


def raw_bytes(t):
    flat = t.contiguous().reshape(-1)
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the bits
        flat = flat.view(torch.int16)
    return flat.numpy().astype(flat.numpy().dtype.newbyteorder("<")).tobytes()


def main():
    header = {"__metadata__": METADATA}
    data = b""
    for name in sorted(TENSORS, reverse=True):
        t = TENSORS[name]
        blob = raw_bytes(t)
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(OUT, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
    print(f"wrote {OUT} ({8 + len(text) + len(data)} bytes)")


if __name__ == "__main__":
    main()
