#!/usr/bin/python3
"""scripts/check_layering.py on the repository (no include breaks the layering) and on small
made-up trees, one per rule, that it must refuse."""
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "check_layering.py"


def check(root):
    return subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True)


class CheckLayeringTest(unittest.TestCase):
    def make_tree(self, files):
        root = pathlib.Path(self.enterContext(tempfile.TemporaryDirectory()))
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        return root

    def test_repository_keeps_the_layering(self):
        result = check(REPO)
        self.assertEqual(result.returncode, 0, result.stdout)

    def test_allowed_includes_pass(self):
        root = self.make_tree({
            "core/tensor.h": "",
            "layers/conv.h": '#include "core/tensor.h"\n',
            "solver/space/search_space.h": '#include "layers/conv.h"\n',
            "solver/search/search.h": '#include "solver/space/search_space.h"\n',
        })
        self.assertEqual(check(root).returncode, 0)

    def test_room_including_a_room_above_it_fails(self):
        root = self.make_tree({
            "core/tensor.h": "",
            "layers/conv.h": '#include "core/tensor.h"\n#include "solver/search/search.h"\n',
            "solver/search/search.h": "",
        })
        result = check(root)
        self.assertEqual(result.returncode, 1)
        self.assertIn("layers/conv.h:2: includes solver/search/search.h", result.stdout)

    def test_solver_folder_including_a_later_one_fails(self):
        root = self.make_tree({
            "core/tensor.h": "",
            "solver/search/bit_config.cc": '#include "solver/quantize/qat.h"\n',
            "solver/quantize/qat.h": "",
        })
        result = check(root)
        self.assertEqual(result.returncode, 1)
        self.assertIn("solver/search/bit_config.cc:1: includes solver/quantize/qat.h",
                      result.stdout)

    def test_unknown_solver_folder_fails(self):
        root = self.make_tree({"core/tensor.h": "", "solver/misc/util.h": ""})
        result = check(root)
        self.assertEqual(result.returncode, 1)
        self.assertIn("solver/misc/util.h: not in one of solver/'s pipeline folders", result.stdout)

    def test_not_a_repository_is_refused(self):
        root = self.make_tree({"README": ""})
        result = check(root)
        self.assertEqual(result.returncode, 2)
        self.assertIn("has no core/ folder", result.stdout)


if __name__ == "__main__":
    unittest.main()
