#!/usr/bin/python3
"""Writes Fashion-MNIST (IDX files) as an ImageNet-layout folder of JPEG files, so that the
ImageNet path of ompq (`ompq_train --dataset=imagenet --data_dir=DIR`) runs on real images:

    DIR/train/n00000009/train_000000.JPEG ...   (the 60000 training images)
    DIR/val/n00000009/val_000000.JPEG ...       (the 10000 test images)

Each image is the 28x28 gray image resized bilinearly to --size pixels (with --pad: centred on a
black square of that side, as ompq's IDX reader feeds 32-px models), replicated to RGB, saved as
JPEG of --quality. Class k (label k of the IDX file) is the folder n0000000k, so that the sorted
folder names, from which the ImageNet reader numbers the classes, give back labels 0..9. Image
file names carry the image's position in its IDX split, zero-padded so that sorted order is IDX
order.

--train_limit N / --val_limit N keep the FIRST N images of a split, the same images as an IDX run
with the same limit. With --flat_val, val/ holds the images directly, as the ILSVRC2012 archive
does, and DIR/val_labels.txt gives each one's class ("val_000000.JPEG n00000009" per line), the
label-file layout of the ImageNet reader.

Uses only Debian's python3 with python3-numpy and python3-pil. The output is deterministic: the
same arguments write the same bytes.

    /usr/bin/python3 scripts/fashion_mnist_to_imagefolder.py --output_dir=/tmp/fmnist32
"""
import argparse
import gzip
import os
import struct
import sys

import numpy as np
from PIL import Image

DEFAULT_INPUT = "/usr/share/datasets/fashion-mnist"
NUM_CLASSES = 10
SOURCE_SIZE = 28
MAX_SIZE = 4096
SPLITS = (("train", "train"), ("val", "t10k"))  # (output folder, IDX file prefix)
LABEL_FILE = "val_labels.txt"
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801


class ConversionError(Exception):
    pass


def wnid(label):
    return f"n{label:08d}"


def idx_path(folder, base):
    """folder/base, or folder/base.gz when only that exists (as the C++ IDX reader looks)."""
    for name in (base, base + ".gz"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    raise ConversionError(f"input folder '{folder}': neither {base} nor {base}.gz found")


def read_idx(path, magic, item_shape, limit):
    """The first `limit` items (all when None) of an IDX file as a uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    header_size = 4 * (1 + 1 + len(item_shape))
    try:
        with opener(path, "rb") as f:
            header = f.read(header_size)
            if len(header) < header_size:
                raise ConversionError(f"IDX file '{path}': truncated header")
            fields = struct.unpack(f">{len(header) // 4}I", header)
            if fields[0] != magic:
                raise ConversionError(f"IDX file '{path}': magic 0x{fields[0]:08x}, expected "
                                      f"0x{magic:08x}")
            count, shape = fields[1], tuple(fields[2:])
            if shape != item_shape:
                raise ConversionError(f"IDX file '{path}': items of shape {shape}, expected "
                                      f"{item_shape}")
            if limit is not None and limit > count:
                raise ConversionError(f"IDX file '{path}': limit {limit} exceeds its {count} "
                                      "items")
            n = count if limit is None else limit
            item_bytes = int(np.prod(item_shape, dtype=np.int64))
            data = f.read(n * item_bytes)
    except (OSError, EOFError) as e:  # unreadable file or corrupt gzip stream
        raise ConversionError(f"IDX file '{path}': {e}") from e
    if len(data) != n * item_bytes:
        raise ConversionError(f"IDX file '{path}': truncated, {len(data)} bytes of items, "
                              f"expected {n * item_bytes}")
    return np.frombuffer(data, dtype=np.uint8).reshape((n,) + item_shape)


def read_split(input_dir, prefix, limit):
    images_path = idx_path(input_dir, f"{prefix}-images-idx3-ubyte")
    labels_path = idx_path(input_dir, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(images_path, IMAGES_MAGIC, (SOURCE_SIZE, SOURCE_SIZE), limit)
    labels = read_idx(labels_path, LABELS_MAGIC, (), limit)
    if len(images) != len(labels):
        raise ConversionError(f"IDX files '{images_path}' and '{labels_path}': {len(images)} "
                              f"images but {len(labels)} labels")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise ConversionError(f"IDX file '{labels_path}': label {labels.max()} is not a class "
                              f"0..{NUM_CLASSES - 1}")
    # A class without images would have no folder (the reader rejects empty ones), and the
    # classes after it would shift down by one.
    missing = sorted(set(range(NUM_CLASSES)) - set(labels.tolist()))
    if missing:
        raise ConversionError(f"the first {len(labels)} images of '{prefix}' have no image of "
                              f"class {', '.join(map(str, missing))}: every class needs one, "
                              "raise the limit")
    return images, labels


def to_jpeg(pixels, size, quality, pad, path):
    image = Image.fromarray(pixels, mode="L")
    if pad:
        # Black borders (pixel 0) around the centred image, as the IDX reader pads.
        canvas = Image.new("L", (size, size), 0)
        offset = (size - SOURCE_SIZE) // 2
        canvas.paste(image, (offset, offset))
        image = canvas
    elif size != SOURCE_SIZE:
        image = image.resize((size, size), Image.BILINEAR)
    image.convert("RGB").save(path, format="JPEG", quality=quality)


def write_split(output_dir, folder, images, labels, size, quality, pad, flat):
    split_dir = os.path.join(output_dir, folder)
    label_lines = []
    if not flat:
        for label in range(NUM_CLASSES):
            os.makedirs(os.path.join(split_dir, wnid(label)))
    else:
        os.makedirs(split_dir)
    for i, (pixels, label) in enumerate(zip(images, labels)):
        name = f"{folder}_{i:06d}.JPEG"
        if flat:
            label_lines.append(f"{name} {wnid(label)}\n")
            to_jpeg(pixels, size, quality, pad, os.path.join(split_dir, name))
        else:
            to_jpeg(pixels, size, quality, pad, os.path.join(split_dir, wnid(label), name))
    if flat:
        with open(os.path.join(output_dir, LABEL_FILE), "w") as f:
            f.writelines(label_lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input_dir", default=DEFAULT_INPUT,
                        help="folder of the Fashion-MNIST IDX files, plain or .gz "
                             f"(default {DEFAULT_INPUT})")
    parser.add_argument("--output_dir", required=True,
                        help="folder to create (must not exist or be empty)")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality 1..95 (default 95)")
    parser.add_argument("--train_limit", type=int, help="keep the first N training images")
    parser.add_argument("--val_limit", type=int, help="keep the first N test images")
    parser.add_argument("--pad", action="store_true",
                        help="centre each 28-px image on a black square of --size instead of "
                             "resizing it (as ompq's IDX reader shapes images for 32-px models)")
    parser.add_argument("--flat_val", action="store_true",
                        help=f"flat val/ folder plus {LABEL_FILE} instead of class folders")
    args = parser.parse_args(argv)
    if not 1 <= args.size <= MAX_SIZE:
        parser.error(f"--size {args.size}: expected 1..{MAX_SIZE} pixels")
    if args.pad and args.size < SOURCE_SIZE:
        parser.error(f"--pad needs --size >= {SOURCE_SIZE}, got {args.size}")
    # PIL advises against qualities above 95: much larger files for hardly any gain.
    if not 1 <= args.quality <= 95:
        parser.error(f"--quality {args.quality}: expected 1..95")
    for name in ("train_limit", "val_limit"):
        value = getattr(args, name)
        if value is not None and value < NUM_CLASSES:
            parser.error(f"--{name} {value}: expected at least {NUM_CLASSES} (one image per "
                         "class)")
    if not os.path.isdir(args.input_dir):
        parser.error(f"--input_dir '{args.input_dir}' is not a folder (Debian's "
                     f"dataset-fashion-mnist installs {DEFAULT_INPUT})")
    if os.path.exists(args.output_dir) and (not os.path.isdir(args.output_dir)
                                            or os.listdir(args.output_dir)):
        parser.error(f"--output_dir '{args.output_dir}' exists and is not an empty folder")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    limits = {"train": args.train_limit, "val": args.val_limit}
    try:
        splits = {folder: read_split(args.input_dir, prefix, limits[folder])
                  for folder, prefix in SPLITS}
        for folder, (images, labels) in splits.items():
            write_split(args.output_dir, folder, images, labels, args.size, args.quality,
                        args.pad, flat=args.flat_val and folder == "val")
    except ConversionError as e:
        sys.exit(f"fashion_mnist_to_imagefolder: {e}")
    counts = ", ".join(f"{folder} {len(labels)}" for folder, (_, labels) in splits.items())
    print(f"wrote {args.output_dir}: {counts} images of {args.size}x{args.size} px")


if __name__ == "__main__":
    main()
