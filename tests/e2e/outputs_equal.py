#!/usr/bin/env python3
"""Whether an ompq_train output folder holds what another run's does: the same files, each equal
byte for byte, except for the wall time some of them record (how long a stage, an epoch or a PTQ
unit took), which no two runs share. Those files are compared with it taken out:

  metrics.csv                 the columns images_per_second, epoch_seconds and data_wait
  stages.pbtxt                each stage's seconds
  report.json                 the seconds of each entry of "timings"
  report.html                 the "Stage times" table
  ptq_checkpoint.safetensors  the tensors unit.seconds and phase_seconds

Both folders must have been written at the same path (they record it: config.pbtxt's output_dir,
bits.pbtxt's weights): run one, move it aside, run the other.

  outputs_equal.py REFERENCE_DIR OTHER_DIR    prints how each file compared; exit 1 on a mismatch
"""
import csv
import io
import json
import os
import re
import struct
import sys

METRICS_WALL_TIME = ["data_wait", "epoch_seconds", "images_per_second"]
PTQ_CHECKPOINT_WALL_TIME = ["phase_seconds", "unit.seconds"]


def _metrics(data):
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    for row in rows:
        for column in METRICS_WALL_TIME:
            row.pop(column)
    return rows


def _stages(data):
    return re.sub(r"seconds: \S+", "seconds: -", data.decode())


def _report_json(data):
    report = json.loads(data)
    for timing in report["timings"]:
        timing.pop("seconds")
    return report


def _report_html(data):
    return re.sub(r"<h2>Stage times</h2>.*?</table>", "", data.decode(), flags=re.S)


def _ptq_checkpoint(data):
    """(metadata, {tensor: (dtype, shape, bytes)}) without the wall-time tensors."""
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    tensors = {}
    for name, entry in header.items():
        if name != "__metadata__" and name not in PTQ_CHECKPOINT_WALL_TIME:
            begin, end = entry["data_offsets"]
            tensors[name] = (entry["dtype"], entry["shape"], data[8 + size + begin:8 + size + end])
    return header.get("__metadata__"), tensors


# file: (its contents without the wall time, what was left out)
WITHOUT_WALL_TIME = {
    "metrics.csv": (_metrics, "the wall-time columns " + ", ".join(METRICS_WALL_TIME)),
    "stages.pbtxt": (_stages, "each stage's seconds"),
    "report.json": (_report_json, "the stage times"),
    "report.html": (_report_html, "the stage-times table"),
    "ptq_checkpoint.safetensors":
        (_ptq_checkpoint, "the wall-time tensors " + ", ".join(PTQ_CHECKPOINT_WALL_TIME)),
}


def compare_outputs(reference, other):
    """[(file, how it compared)] when `other` holds the files of `reference` and each is equal;
    raises AssertionError naming the first file that is not."""
    names, other_names = sorted(os.listdir(reference)), sorted(os.listdir(other))
    assert names == other_names, f"{other} holds {other_names}, {reference} holds {names}"
    compared = []
    for name in names:
        with open(os.path.join(reference, name), "rb") as f:
            a = f.read()
        with open(os.path.join(other, name), "rb") as f:
            b = f.read()
        if name in WITHOUT_WALL_TIME:
            strip, left_out = WITHOUT_WALL_TIME[name]
            assert strip(a) == strip(b), f"{other}/{name} differs beyond {left_out}"
            compared.append((name, f"equal except {left_out}"))
        else:
            assert a == b, f"{other}/{name} differs"
            compared.append((name, "byte for byte"))
    return compared


if __name__ == "__main__":
    try:
        for name, how in compare_outputs(sys.argv[1], sys.argv[2]):
            print(f"  {name}: {how}")
    except AssertionError as error:
        print(f"FAIL: {error}")
        sys.exit(1)
