#!/usr/bin/env python3
"""Checks that #include arrows point one way: between the rooms of the tree, and between the
pipeline folders of solver/ in the order the data flows. Prints each include that breaks a rule
(file, line, what it includes, what that file may include) and exits 1; exits 0 when none does.

Usage: check_layering.py [ROOT]   (ROOT: the repository, default: this script's parent's parent)
"""
import pathlib
import re
import sys

# What each room's files may include besides their own room (core/proto is core's).
ROOM_DEPENDENCIES = {
    "core": set(),
    "cuda": {"core"},
    "runtime": {"core", "cuda"},
    "layers": {"core"},
    "data": {"core"},
    "solver": {"core", "layers", "data"},
}
# solver/'s folders in data-flow order: each may include only the folders before it.
SOLVER_FOLDERS = ["config", "space", "capture", "search", "train", "quantize", "report", "pipeline"]
SOURCE_SUFFIXES = {".h", ".cc", ".cu", ".cuh"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def violations(root):
    found = []
    for room, allowed in ROOM_DEPENDENCIES.items():
        for path in sorted((root / room).rglob("*")):
            if path.suffix not in SOURCE_SUFFIXES:
                continue
            relative = path.relative_to(root)
            if room == "solver" and (len(relative.parts) < 3 or
                                     relative.parts[1] not in SOLVER_FOLDERS):
                found.append(f"{relative}: not in one of solver/'s pipeline folders "
                             f"{', '.join(SOLVER_FOLDERS)}")
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                match = INCLUDE.match(line)
                if not match:
                    continue
                target = match.group(1)
                target_room = target.split("/")[0]
                if target_room in ROOM_DEPENDENCIES and target_room != room \
                        and target_room not in allowed:
                    found.append(f"{relative}:{number}: includes {target}; {room}/ may include "
                                 f"{', '.join(sorted(allowed | {room}))}")
                if room == "solver" and target_room == "solver":
                    found += solver_violation(relative, number, target)
    return found


def solver_violation(relative, number, target):
    source_folder, target_folder = relative.parts[1], target.split("/")[1]
    if target_folder not in SOLVER_FOLDERS:
        return [f"{relative}:{number}: includes {target}, outside the pipeline folders"]
    if SOLVER_FOLDERS.index(target_folder) > SOLVER_FOLDERS.index(source_folder):
        earlier = SOLVER_FOLDERS[:SOLVER_FOLDERS.index(source_folder) + 1]
        return [f"{relative}:{number}: includes {target}; solver/{source_folder} may include "
                f"solver/{{{', '.join(earlier)}}}"]
    return []


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parents[1])
    if not (root / "core").is_dir():
        print(f"check_layering: {root} has no core/ folder (expected the repository root)")
        return 2
    found = violations(root)
    for line in found:
        print(line)
    print(f"check_layering: {len(found)} include(s) against the layering in {root}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
