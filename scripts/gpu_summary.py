#!/usr/bin/python3
"""Writes RESULTS_DIR/summary.txt from the raw outputs of scripts/gpu_check.sh --run.

  python3 scripts/gpu_summary.py RESULTS_DIR

gpu_check.sh calls it at the start of a run and after every step, so that a run killed at any
point leaves a summary of what it finished; the file is replaced whole (written beside, then
renamed), never left half written. Reads, in RESULTS_DIR (each may be missing or, for a step
killed by its timeout or with the run, cut short):
  steps.txt      one line per event, tab-separated: "start NAME LIMIT_S", "end NAME EXIT SECONDS",
                 "skipped NAME REASON" (not run, not a failure), "out_of_time NAME" (not run: the
                 run's deadline came first); a step started and never ended was cut short;
  log.txt        nvidia-smi's lines come first (copied to the summary's head);
  smoke.txt      gpu_smoke's lines: versions, and each check ok or FAIL;
  gtest.json     cuda_tests --gtest_output=json: passed / failed / skipped, failures by name;
  memcheck.txt, racecheck.txt   compute-sanitizer's logs: their SUMMARY lines;
  bench*.json    ompq_bench --benchmark_out (Google Benchmark JSON; a file cut short by a timeout
                 keeps the cases it completed);
  torch.json     scripts/bench_torch_gpu.py --json;
  search.txt     ompq_search's output: its "time: features ... s" line.
Each ompq benchmark row gets its counters and its ratios to its peers (> 1: this case is faster):
  BM_Packed*/WbA8/S      W8A8 of the same shape S (b < 8);
  BM_PackedLinear/*/S    cuBLASLt BM_Gemm/int8/S and BM_Gemm/bf16/S;
  BM_PackedConv2d/*/S    cuDNN BM_CudnnConv/S_CL/fwd (bf16, channels_last);
  BM_TrainStep/cuda/C    PyTorch's train/C, BM_Infer/cuda/C PyTorch's infer/C (images/s);
and, where DESIGN.md sets one, the target and whether it was met. Exits 1 when a test failed or a
step broke (failed, timed out, cut short or left out for lack of time), else 0. Standard library
only: it runs on the GPU machine's python3 and in ctest here (tests/scripts/gpu_summary_test.py).
"""
import enum
import glob
import json
import os
import re
import sys

# Dense int8 ops per HBM byte of one H100 SXM (1979 TOPS / 3.35 TB/s, as apps/bench_gpu.h): a
# case doing fewer ops per byte moved is memory-bound.
MEMORY_BOUND_OPS_PER_BYTE = 1979e12 / 3.35e12
RUN_SUFFIXES = re.compile(r"(/iterations:\d+|/manual_time|/real_time)+$")
SEPARATOR = re.compile(r"\s*,?\s*")  # between two runs of a benchmark JSON list
COUNTERS = ("TOPS", "TFLOPS", "GBps", "peak_fraction", "hbm_fraction", "roofline",
            "items_per_second")


def load_json(path):
    """The JSON in `path`, or None when it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_benchmarks(path):
    """Google Benchmark's runs in `path` (a list; [] when missing). A file cut short (the process
    was killed) keeps every run written before: Google Benchmark flushes the file after each."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return []
    try:
        return json.loads(text).get("benchmarks", [])
    except ValueError:
        pass
    start = text.find('"benchmarks"')
    if start < 0:
        return []
    start = text.find("[", start)
    runs = []
    decoder = json.JSONDecoder()
    position = start + 1
    while True:
        position = SEPARATOR.match(text, position).end()
        try:
            run, position = decoder.raw_decode(text, position)
        except ValueError:
            return runs
        runs.append(run)


def count_tests(gtest):
    """(passed, failed test names, skipped) of a gtest JSON report."""
    passed = skipped = 0
    failures = []
    for suite in gtest.get("testsuites", []):
        for case in suite.get("testsuite", []):
            if case.get("result") == "SKIPPED" or case.get("status") == "NOTRUN":
                skipped += 1
            elif case.get("failures"):
                failures.append(f"{suite['name']}.{case['name']}")
            else:
                passed += 1
    return passed, failures, skipped


def case_name(run_name):
    """A run's name without the suffixes Google Benchmark adds (/iterations:20/manual_time)."""
    return RUN_SUFFIXES.sub("", run_name)


def bench_rows(results):
    """ompq's benchmark runs by case name, over bench*.json."""
    rows = {}
    for path in sorted(glob.glob(os.path.join(results, "bench*.json"))):
        for run in load_benchmarks(path):
            if run.get("run_type") == "aggregate":
                continue
            rows[case_name(run["name"])] = run
    return rows


def is_memory_bound(row):
    """Whether a low-bit case moves too many bytes per op to reach the int8 peak."""
    if not row.get("GBps") or "TOPS" not in row:
        return False
    return row["TOPS"] * 1e12 / (row["GBps"] * 1e9) < MEMORY_BOUND_OPS_PER_BYTE


def is_depthwise(name):
    """Whether a convolution case (..._C<c>_..._O<o>_..._G<g>) has one group per channel."""
    conv = re.search(r"_C(\d+)_.*_O(\d+)_.*_G(\d+)(?:_CL)?(?:/|$)", name)
    return bool(conv) and conv.group(1) == conv.group(2) == conv.group(3)


def roofline_target(name, row):
    """DESIGN.md's fraction of the roofline for a memory-bound packed case (depthwise: 50% of HBM
    bandwidth; other GEMMs and convolutions: 80%), or None."""
    if not name.startswith("BM_Packed") or "roofline" not in row or not is_memory_bound(row):
        return None
    return 0.5 if is_depthwise(name) else 0.8


def peers(name, row):
    """[(peer name, what the ratio means, target or None)] for an ompq benchmark. Torch peers are
    named "torch:<case>"."""
    found = []
    m = re.match(r"BM_(PackedLinear|PackedConv2d)/W(\d)A8/((?:M|N)(\d+)_.*)$", name)
    if m:
        family, bits, shape, batch = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
        if bits != 8:
            # DESIGN.md: W4A8 >= 1.5x our W8A8 on memory-bound shapes at batch <= 16.
            target = 1.5 if bits == 4 and batch <= 16 and is_memory_bound(row) else None
            found.append((f"BM_{family}/W8A8/{shape}", "our W8A8", target))
        if family == "PackedLinear":
            found.append((f"BM_Gemm/int8/{shape}", "cuBLASLt int8", None))
            found.append((f"BM_Gemm/bf16/{shape}", "cuBLASLt bf16", None))
        else:
            # DESIGN.md: depthwise >= 1.0x cuDNN.
            found.append((f"BM_CudnnConv/{shape}_CL/fwd", "cuDNN bf16 fwd",
                          1.0 if is_depthwise(name) else None))
        return found
    m = re.match(r"BM_(TrainStep|Infer)/cuda/(.+)$", name)
    if m:
        mode = "train" if m.group(1) == "TrainStep" else "infer"
        found.append((f"torch:{mode}/{m.group(2)}", "PyTorch img/s",
                      1.0 if mode == "train" else None))
    return found


def ratio_to(name, row, peer, rows, torch_rows):
    """How many times faster `name` is than `peer`, or None when the peer did not run."""
    if peer.startswith("torch:"):
        other = torch_rows.get(peer[len("torch:"):])
        if other and row.get("items_per_second") and other.get("images_per_second"):
            return row["items_per_second"] / other["images_per_second"]
        return None
    other = rows.get(peer)
    if not other or other.get("error_occurred") or not row.get("real_time"):
        return None
    if other.get("time_unit") != row.get("time_unit"):
        return None
    return other["real_time"] / row["real_time"]


class Targets:
    """Each target DESIGN.md sets that this run measured: met or missed."""

    def __init__(self):
        self.met = []
        self.missed = []

    def check(self, what, ok):
        (self.met if ok else self.missed).append(what)
        return "met" if ok else "MISSED"


def search_times(text):
    """{phase: seconds} from ompq_search's "time: features 0.31 s, ORM ..." line, or None."""
    m = re.search(r"^time: (features .*)$", text, re.MULTILINE)
    if not m:
        return None
    times = {}
    for phase, seconds in re.findall(r"(\w+) ([0-9.]+) s", m.group(1)):
        times[phase] = float(seconds)
    return times


class StepState(enum.Enum):
    FINISHED = "finished"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    CUT_SHORT = "cut short"
    SKIPPED = "skipped"
    OUT_OF_TIME = "out of time"


TIMEOUT_EXIT = 124  # timeout(1)'s exit status when it killed the command


def read_steps(path):
    """[(name, StepState, text)] in the order the steps began, from gpu_check.sh's steps.txt."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    steps = {}
    for line in lines:
        fields = line.split("\t")
        kind, name = fields[0], fields[1] if len(fields) > 1 else "?"
        if kind == "start" and len(fields) == 3:
            steps[name] = (StepState.CUT_SHORT,
                           f"CUT SHORT: started with a limit of {fields[2]} s and never ended "
                           f"(the run was killed)")
        elif kind == "end" and len(fields) == 4:
            status, seconds = int(fields[2]), fields[3]
            if status == 0:
                steps[name] = (StepState.FINISHED, f"ok after {seconds} s")
            elif status == TIMEOUT_EXIT:
                steps[name] = (StepState.TIMED_OUT, f"TIMED OUT after {seconds} s")
            else:
                steps[name] = (StepState.FAILED, f"FAILED: exit {status} after {seconds} s")
        elif kind == "skipped" and len(fields) == 3:
            steps[name] = (StepState.SKIPPED, f"skipped: {fields[2]}")
        elif kind == "out_of_time":
            steps[name] = (StepState.OUT_OF_TIME, "NOT RUN: no time left before the deadline")
        else:
            steps[f"steps.txt line {line!r}"] = (StepState.FAILED, "not understood")
    return [(name, state, text) for name, (state, text) in steps.items()]


def read_lines(path):
    """The lines of a text file, or None when it is missing."""
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return None


def sanitizer_lines(results):
    """The SUMMARY lines of compute-sanitizer's logs that the run wrote."""
    lines = []
    for tool in ("memcheck", "racecheck"):
        log = read_lines(os.path.join(results, f"{tool}.txt"))
        if log is None:
            continue
        found = [line.strip("= ").strip() for line in log if "SUMMARY:" in line]
        lines.append(f"{tool}.txt: " +
                     ("; ".join(found) if found else "no SUMMARY line (cut short?)"))
    return lines


def summarize(results):
    """(summary text, exit status)."""
    lines = ["# GPU check summary"]
    targets = Targets()
    try:
        with open(os.path.join(results, "log.txt")) as f:
            lines.append(f.read().split("== ")[0].strip())
    except OSError:
        pass
    steps = read_steps(os.path.join(results, "steps.txt"))
    broken = [f"{name} ({state.value})" for name, state, _ in steps
              if state not in (StepState.FINISHED, StepState.SKIPPED)]
    lines.append("\n## steps: " + (f"{len(steps)} recorded" if steps else "none started yet"))
    lines += [f"{name}: {text}" for name, _, text in steps]
    smoke = read_lines(os.path.join(results, "smoke.txt"))
    lines.append("\n## smoke")
    lines += smoke if smoke else ["no smoke.txt"]

    gtest = load_json(os.path.join(results, "gtest.json"))
    failed_tests = []
    if gtest is None:
        lines.append("\n## gpu tests: no readable gtest.json")
    else:
        passed, failed_tests, skipped = count_tests(gtest)
        lines.append(f"\n## gpu tests: {passed} passed, {len(failed_tests)} failed, "
                     f"{skipped} skipped")
        lines += [f"FAILED {name}" for name in failed_tests]

    sanitizers = sanitizer_lines(results)
    if sanitizers:
        lines.append("\n## compute-sanitizer")
        lines += sanitizers

    rows = bench_rows(results)
    torch = load_json(os.path.join(results, "torch.json")) or {}
    torch_rows = {b["name"]: b for b in torch.get("benchmarks", [])}
    lines.append(f"\n## ompq GPU benchmarks: {len(rows)} cases (time per launch or step; "
                 f"counters; ratios to peers, > 1: ours faster)")
    for name, row in rows.items():
        if row.get("error_occurred"):
            lines.append(f"{name}: ERROR {row.get('error_message')}")
            continue
        text = f"{name}: {row['real_time']:.4g} {row.get('time_unit', 'ns')}"
        text += "".join(f" {k}={row[k]:.4g}" for k in COUNTERS if k in row)
        target = roofline_target(name, row)
        if target is not None:
            ok = row["roofline"] >= target
            text += f" [roofline >= {target:g}: {targets.check(name + ' roofline', ok)}]"
        for peer, meaning, target in peers(name, row):
            ratio = ratio_to(name, row, peer, rows, torch_rows)
            if ratio is None:
                continue
            text += f" | {ratio:.3f}x {meaning}"
            if target is not None:
                ok = ratio >= target
                text += f" [>= {target:g}x: {targets.check(f'{name} vs {meaning}', ok)}]"
        lines.append(text)

    if torch_rows:
        context = torch.get("context", {})
        lines.append(f"\n## PyTorch {context.get('torch', '')} on {context.get('device', '')} "
                     f"(bf16 autocast, channels_last, cudnn.benchmark)")
        for name, b in torch_rows.items():
            mode, case = name.split("/", 1)
            ours = rows.get(f"BM_{'TrainStep' if mode == 'train' else 'Infer'}/cuda/{case}")
            peer = (f" | ompq {ours['items_per_second']:.1f} img/s"
                    if ours and "items_per_second" in ours else " | no ompq GPU run")
            lines.append(f"{name}: {b['images_per_second']:.1f} img/s{peer}")

    try:
        with open(os.path.join(results, "search.txt")) as f:
            times = search_times(f.read())
    except OSError:
        times = None
    if times is None:
        lines.append("\n## search on GPU (ResNet-18, 32 images, 224 px): no timing line")
    else:
        phases = ", ".join(f"{phase} {seconds:.3f} s" for phase, seconds in times.items())
        line = f"\n## search on GPU (ResNet-18, 32 images, 224 px): {phases}"
        if "search" in times:
            line += f" [<= 1 s: {targets.check('search', times['search'] <= 1.0)}]"
        lines.append(line)

    lines.append(f"\n## targets: {len(targets.met)} met, {len(targets.missed)} missed")
    lines += [f"MISSED {what}" for what in targets.missed]
    lines.append("\n## steps that broke: " + (", ".join(broken) if broken else "none"))
    return "\n".join(lines) + "\n", 1 if broken or failed_tests else 0


def main(argv):
    if len(argv) != 2:
        raise SystemExit("usage: gpu_summary.py RESULTS_DIR")
    results = argv[1]
    text, status = summarize(results)
    path = os.path.join(results, "summary.txt")
    with open(path + ".partial", "w") as f:
        f.write(text)
    os.replace(path + ".partial", path)  # a kill never leaves half a summary
    print(text)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
