#!/usr/bin/python3
"""scripts/fashion_mnist_to_imagefolder.py on small made-up IDX files (training set gzipped, test
set plain, as either may be found): the class-folder and flat layouts, that each file is the right
image under the right class, the limits, determinism and the errors."""
import gzip
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from PIL import Image

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                      "fashion_mnist_to_imagefolder.py")
TRAIN_IMAGES, TEST_IMAGES = 30, 20
WNIDS = [f"n{k:08d}" for k in range(10)]


def write_idx(path, magic, array):
    header = struct.pack(f">{2 + array.ndim - 1}I", magic, *array.shape)
    with (gzip.open if path.endswith(".gz") else open)(path, "wb") as f:
        f.write(header + array.tobytes())


def make_split(rng, count):
    # Smooth images (a random gradient per image) survive JPEG nearly unchanged, so the test can
    # tell which image a file holds.
    ramp = np.linspace(0.0, 1.0, 28)
    a, b, c = (rng.uniform(0, 120, size=(count, 1, 1)) for _ in range(3))
    images = (a + b * ramp[None, None, :] + c * ramp[None, :, None]).astype(np.uint8)
    labels = rng.permutation(np.arange(count) % 10).astype(np.uint8)
    return images, labels


class FashionMnistToImageFolderTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.input = os.path.join(self.dir.name, "idx")
        os.makedirs(self.input)
        rng = np.random.default_rng(7)
        self.splits = {"train": make_split(rng, TRAIN_IMAGES), "val": make_split(rng, TEST_IMAGES)}
        for folder, prefix, suffix in (("train", "train", ".gz"), ("val", "t10k", "")):
            images, labels = self.splits[folder]
            write_idx(os.path.join(self.input, f"{prefix}-images-idx3-ubyte{suffix}"), 0x803,
                      images)
            write_idx(os.path.join(self.input, f"{prefix}-labels-idx1-ubyte{suffix}"), 0x801,
                      labels)

    def tearDown(self):
        self.dir.cleanup()

    def convert(self, name, *args, input_dir=None):
        output = os.path.join(self.dir.name, name)
        result = subprocess.run([sys.executable, SCRIPT, f"--input_dir={input_dir or self.input}",
                                 f"--output_dir={output}", *args], capture_output=True, text=True)
        return output, result

    def convert_ok(self, name, *args):
        output, result = self.convert(name, *args)
        self.assertEqual(result.returncode, 0, result.stderr)
        return output

    def assert_error(self, message, *args, **kwargs):
        output, result = self.convert("rejected", *args, **kwargs)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(message, result.stderr)
        self.assertFalse(os.path.exists(output))

    def assert_image(self, path, folder, index, size):
        with Image.open(path) as image:
            self.assertEqual(image.format, "JPEG")
            self.assertEqual(image.mode, "RGB")
            self.assertEqual(image.size, (size, size))
            rgb = np.asarray(image, dtype=np.int16)
        # Gray replicated: no chroma at all.
        self.assertLessEqual(np.abs(rgb[..., 0] - rgb[..., 1]).max(), 1)
        self.assertLessEqual(np.abs(rgb[..., 0] - rgb[..., 2]).max(), 1)
        expected = Image.fromarray(self.splits[folder][0][index], mode="L")
        expected = np.asarray(expected.resize((size, size), Image.BILINEAR), dtype=np.int16)
        self.assertLess(np.abs(rgb[..., 0] - expected).mean(), 2.0, path)

    def test_class_folders_hold_the_first_images_under_their_labels(self):
        output = self.convert_ok("out", "--train_limit=25", "--size=40")
        self.assertEqual(sorted(os.listdir(output)), ["train", "val"])
        for folder, count in (("train", 25), ("val", TEST_IMAGES)):
            split_dir = os.path.join(output, folder)
            self.assertEqual(sorted(os.listdir(split_dir)), WNIDS)
            labels = self.splits[folder][1]
            for k, wnid in enumerate(WNIDS):
                expected = [f"{folder}_{i:06d}.JPEG" for i in range(count) if labels[i] == k]
                self.assertEqual(sorted(os.listdir(os.path.join(split_dir, wnid))), expected)
                for name in expected:
                    self.assert_image(os.path.join(split_dir, wnid, name), folder,
                                      int(name[len(folder) + 1:-5]), 40)

    def test_flat_val_writes_a_label_file(self):
        output = self.convert_ok("flat", "--val_limit=15", "--flat_val", "--size=28")
        self.assertEqual(sorted(os.listdir(output)), ["train", "val", "val_labels.txt"])
        self.assertEqual(sorted(os.listdir(os.path.join(output, "train"))), WNIDS)
        names = [f"val_{i:06d}.JPEG" for i in range(15)]
        self.assertEqual(sorted(os.listdir(os.path.join(output, "val"))), names)
        with open(os.path.join(output, "val_labels.txt")) as f:
            lines = f.read().splitlines()
        labels = self.splits["val"][1]
        self.assertEqual(lines, [f"{name} {WNIDS[labels[i]]}" for i, name in enumerate(names)])
        for i, name in enumerate(names):
            self.assert_image(os.path.join(output, "val", name), "val", i, 28)

    def test_pad_centres_the_image_on_black(self):
        output = self.convert_ok("padded", "--pad", "--size=32")
        labels = self.splits["val"][1]
        path = os.path.join(output, "val", WNIDS[labels[0]], "val_000000.JPEG")
        with Image.open(path) as image:
            self.assertEqual(image.size, (32, 32))
            gray = np.asarray(image, dtype=np.int16)[..., 0]
        # JPEG rings a little at the edge of the image; the border's middle stays black and the
        # centre is the image itself, not resized.
        self.assertLessEqual(gray[0, 8:24].max(), 8)
        self.assertLessEqual(gray[8:24, 31].max(), 8)
        self.assertLess(np.abs(gray[2:30, 2:30] - self.splits["val"][0][0]).mean(), 3.0)
        self.assert_error("--pad needs --size >= 28, got 20", "--pad", "--size=20")

    def test_same_arguments_write_the_same_bytes(self):
        contents = []
        for name in ("first", "second"):
            output = self.convert_ok(name, "--flat_val", "--quality=80")
            files = {}
            for parent, _, children in os.walk(output):
                for child in children:
                    path = os.path.join(parent, child)
                    with open(path, "rb") as f:
                        files[os.path.relpath(path, output)] = f.read()
            contents.append(files)
        self.assertEqual(len(contents[0]), TRAIN_IMAGES + TEST_IMAGES + 1)
        self.assertEqual(contents[0], contents[1])

    def test_errors(self):
        self.assert_error("'/nonexistent/fashion' is not a folder",
                          input_dir="/nonexistent/fashion")
        self.assert_error("--size 0: expected 1..4096", "--size=0")
        self.assert_error("--quality 100: expected 1..95", "--quality=100")
        self.assert_error("--train_limit 5: expected at least 10", "--train_limit=5")
        self.assert_error("limit 21 exceeds its 20 items", "--val_limit=21")
        # The first 10 labels of this shuffled 3 x (0..9) miss some classes.
        labels = self.splits["train"][1]
        missing = sorted(set(range(10)) - set(labels[:10].tolist()))
        self.assertTrue(missing)
        self.assert_error(f"have no image of class {', '.join(map(str, missing))}",
                          "--train_limit=10")
        os.remove(os.path.join(self.input, "t10k-labels-idx1-ubyte"))
        self.assert_error("neither t10k-labels-idx1-ubyte nor t10k-labels-idx1-ubyte.gz found")

    def test_rejects_a_non_empty_output_folder(self):
        output = os.path.join(self.dir.name, "taken")
        os.makedirs(os.path.join(output, "train"))
        _, result = self.convert("taken")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("exists and is not an empty folder", result.stderr)

    def test_rejects_a_corrupt_idx_file(self):
        with open(os.path.join(self.input, "t10k-images-idx3-ubyte"), "r+b") as f:
            f.write(struct.pack(">I", 0x801))
        self.assert_error("magic 0x00000801, expected 0x00000803")
        write_idx(os.path.join(self.input, "t10k-images-idx3-ubyte"), 0x803,
                  self.splits["val"][0][:12])
        self.assert_error("12 images but 20 labels")
        self.assert_error("limit 15 exceeds its 12 items", "--val_limit=15")


if __name__ == "__main__":
    unittest.main()
