#!/usr/bin/python3
"""scripts/gpu_summary.py on small made-up outputs of scripts/gpu_check.sh --run: test counting,
the ratios to each peer, targets, a benchmark file cut short by a timeout, the steps' states, the
exit status; and scripts/gpu_check.sh --run itself with stand-in programs: no GPU, and a run
killed in the middle of a step, which must leave its summary."""
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts")

sys.path.insert(0, SCRIPTS)
import gpu_summary  # noqa: E402


def run(name, real_time, unit="us", **counters):
    row = {"name": name + "/iterations:20/manual_time", "run_type": "iteration",
           "real_time": real_time, "cpu_time": real_time, "time_unit": unit}
    row.update(counters)
    return row


def gtest_report(passed, failed, skipped):
    cases = [{"name": f"Pass{i}", "status": "RUN", "result": "COMPLETED"} for i in range(passed)]
    cases += [{"name": f"Fail{i}", "status": "RUN", "result": "COMPLETED",
               "failures": [{"failure": "expected 1, got 2"}]} for i in range(failed)]
    cases += [{"name": f"Skip{i}", "status": "RUN", "result": "SKIPPED"} for i in range(skipped)]
    return {"testsuites": [{"name": "CudaSuite", "testsuite": cases}]}


# A memory-bound packed linear case: 2 * 16 * 8192 * 28672 ops over ~118 MB moved.
MEMORY_BOUND = {"TOPS": 50.0, "GBps": 3000.0}
LINEAR = "M16_K8192_N28672"
DEPTHWISE = "N32_C144_H56_O144_K3_S2_P1_G144"


class GpuSummaryTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.results = self.dir.name

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, content):
        with open(os.path.join(self.results, name), "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))

    def write_everything(self, failed_tests=0):
        self.write("log.txt", "GPU 0: NVIDIA H100 80GB HBM3\n== gpu tests (at most 100 s)\n")
        self.write("gtest.json", gtest_report(passed=5, failed=failed_tests, skipped=2))
        self.write("bench.json", {"benchmarks": [
            run(f"BM_PackedLinear/W4A8/{LINEAR}", 40.0, roofline=0.9, **MEMORY_BOUND),
            run(f"BM_PackedLinear/W8A8/{LINEAR}", 80.0, roofline=0.85, **MEMORY_BOUND),
            run(f"BM_Gemm/int8/{LINEAR}", 100.0, TOPS=20.0),
            run(f"BM_Gemm/bf16/{LINEAR}", 160.0, TFLOPS=12.0),
            run(f"BM_PackedConv2d/W4A8/{DEPTHWISE}", 30.0, TOPS=1.0, GBps=1300.0, roofline=0.45),
            run("BM_TrainStep/cuda/resnet18/64/224", 40.0, unit="ms", items_per_second=1600.0),
            run("BM_Infer/cuda/resnet18/64/224", 10.0, unit="ms", items_per_second=6400.0),
            {"name": "BM_CudaBatchNorm/train_fwd/N256_C64_H56/manual_time",
             "run_type": "iteration", "error_occurred": True, "error_message": "no kernel"},
        ]})
        # Killed by its timeout in the middle of its third run.
        cudnn = json.dumps({"context": {}, "benchmarks": [
            run(f"BM_CudnnConv/{DEPTHWISE}_CL/fwd", 45.0, TFLOPS=0.5),
            run(f"BM_CudnnConv/{DEPTHWISE}_CL/fwdbwd", 150.0, TFLOPS=0.4)]}, indent=2)
        self.write("bench_cudnn.json", cudnn[:cudnn.rindex("]")] + ',\n {"name": "BM_Cudnn')
        self.write("torch.json", {"context": {"torch": "2.5.1", "device": "NVIDIA H100"},
                                  "benchmarks": [
            {"name": "train/resnet18/64/224", "images_per_second": 2000.0},
            {"name": "infer/resnet18/64/224", "images_per_second": 6400.0},
            {"name": "train/resnet50/64/224", "images_per_second": 900.0}]})
        self.write("search.txt", "size 6.7 MiB\ntime: features 0.400 s, ORM 0.050 s, solve 0.010 s,"
                                 " search 0.460 s (loading 1.200 s)\n")

    def summary_lines(self):
        with contextlib.redirect_stdout(io.StringIO()):  # main() also prints the summary
            status = gpu_summary.main(["gpu_summary.py", self.results])
        with open(os.path.join(self.results, "summary.txt")) as f:
            text = f.read()
        return status, {line.split(":")[0]: line for line in text.splitlines()}, text

    def test_counts_tests_and_names_failures(self):
        self.write_everything(failed_tests=2)
        status, lines, text = self.summary_lines()
        self.assertEqual(status, 1)
        self.assertIn("## gpu tests: 5 passed, 2 failed, 2 skipped", text)
        self.assertIn("FAILED CudaSuite.Fail0", text)
        self.assertIn("FAILED CudaSuite.Fail1", text)
        self.assertTrue(text.startswith("# GPU check summary\nGPU 0: NVIDIA H100 80GB HBM3\n"))

    def test_ratios_to_every_peer(self):
        self.write_everything()
        status, lines, _ = self.summary_lines()
        self.assertEqual(status, 0)
        w4 = lines[f"BM_PackedLinear/W4A8/{LINEAR}"]
        self.assertIn("2.000x our W8A8 [>= 1.5x: met]", w4)
        self.assertIn("2.500x cuBLASLt int8", w4)
        self.assertIn("4.000x cuBLASLt bf16", w4)
        self.assertIn("[roofline >= 0.8: met]", w4)
        w8 = lines[f"BM_PackedLinear/W8A8/{LINEAR}"]
        self.assertNotIn("our W8A8", w8)
        self.assertIn("1.250x cuBLASLt int8", w8)
        depthwise = lines[f"BM_PackedConv2d/W4A8/{DEPTHWISE}"]
        self.assertIn("1.500x cuDNN bf16 fwd [>= 1x: met]", depthwise)
        self.assertIn("[roofline >= 0.5: MISSED]", depthwise)  # depthwise: 50% of HBM
        self.assertNotIn("our W8A8", depthwise)  # its W8A8 case did not run
        self.assertIn("0.800x PyTorch img/s [>= 1x: MISSED]",
                      lines["BM_TrainStep/cuda/resnet18/64/224"])
        self.assertIn("1.000x PyTorch img/s", lines["BM_Infer/cuda/resnet18/64/224"])
        self.assertNotIn("[>=", lines["BM_Infer/cuda/resnet18/64/224"])
        self.assertIn("ERROR no kernel", lines["BM_CudaBatchNorm/train_fwd/N256_C64_H56"])
        self.assertIn("ompq 1600.0 img/s", lines["train/resnet18/64/224"])
        self.assertIn("no ompq GPU run", lines["train/resnet50/64/224"])

    def test_cut_short_benchmark_file_keeps_completed_cases(self):
        self.write_everything()
        _, lines, text = self.summary_lines()
        self.assertIn(f"BM_CudnnConv/{DEPTHWISE}_CL/fwdbwd", lines)
        self.assertIn("## ompq GPU benchmarks: 10 cases", text)

    def test_search_times_and_targets(self):
        self.write_everything()
        _, _, text = self.summary_lines()
        self.assertIn("features 0.400 s, ORM 0.050 s, solve 0.010 s, search 0.460 s, "
                      "loading 1.200 s [<= 1 s: met]", text)
        # Met: W4 vs W8, W4 and W8 rooflines, depthwise vs cuDNN, search; missed: the depthwise
        # roofline and training vs PyTorch.
        self.assertIn("## targets: 5 met, 2 missed", text)
        self.assertIn("MISSED BM_TrainStep/cuda/resnet18/64/224 vs PyTorch img/s", text)

    def test_summary_before_any_step(self):
        status, _, text = self.summary_lines()
        self.assertEqual(status, 0)
        self.assertIn("## steps: none started yet", text)
        self.assertIn("## gpu tests: no readable gtest.json", text)
        self.assertIn("## ompq GPU benchmarks: 0 cases", text)
        self.assertIn("no timing line", text)
        self.assertFalse(os.path.exists(os.path.join(self.results, "summary.txt.partial")))

    def test_each_step_state(self):
        self.write("steps.txt", "start\tsmoke\t30\nend\tsmoke\t0\t3\n"
                                "start\tgpu tests\t120\nend\tgpu tests\t124\t120\n"
                                "skipped\tmemcheck\tno compute-sanitizer on this machine\n"
                                "start\tompq_bench models\t60\nend\tompq_bench models\t1\t9\n"
                                "out_of_time\tompq_bench cudnn\n")
        status, lines, text = self.summary_lines()
        self.assertEqual(status, 1)
        self.assertEqual(lines["smoke"], "smoke: ok after 3 s")
        self.assertEqual(lines["gpu tests"], "gpu tests: TIMED OUT after 120 s")
        self.assertEqual(lines["memcheck"], "memcheck: skipped: no compute-sanitizer on this machine")
        self.assertEqual(lines["ompq_bench models"], "ompq_bench models: FAILED: exit 1 after 9 s")
        self.assertIn("NOT RUN: no time left", lines["ompq_bench cudnn"])
        # A missing sanitizer is not a failure; running out of time is.
        self.assertIn("## steps that broke: gpu tests (timed out), ompq_bench models (failed), "
                      "ompq_bench cudnn (out of time)\n", text)

    def test_run_cut_short_keeps_what_finished(self):
        self.write_everything()
        self.write("smoke.txt", "gpu_smoke: ok   ompq kernel (add, 1M elements): relative error 0\n")
        self.write("memcheck.txt", "========= ERROR SUMMARY: 0 errors\n")
        self.write("racecheck.txt", "========= Racecheck is running\n")
        self.write("steps.txt", "start\tsmoke\t30\nend\tsmoke\t0\t2\n"
                                "start\tgpu tests\t120\nend\tgpu tests\t0\t40\n"
                                "start\tmemcheck\t45\nend\tmemcheck\t0\t30\n"
                                "start\tracecheck\t35\n")
        status, lines, text = self.summary_lines()
        self.assertEqual(status, 1)
        self.assertIn("CUT SHORT: started with a limit of 35 s and never ended", lines["racecheck"])
        self.assertIn("## steps that broke: racecheck (cut short)", text)
        self.assertIn("gpu_smoke: ok   ompq kernel", text)
        self.assertEqual(lines["memcheck"], "memcheck: ok after 30 s")
        self.assertIn("memcheck.txt: ERROR SUMMARY: 0 errors", text)
        self.assertIn("racecheck.txt: no SUMMARY line (cut short?)", text)
        self.assertIn("## gpu tests: 5 passed, 0 failed, 2 skipped", text)


# gpu_check.sh --run in a copy of scripts/ beside a .device/ of stand-in programs.
class GpuCheckRunTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.root = self.dir.name
        shutil.copytree(SCRIPTS, os.path.join(self.root, "scripts"))
        self.bin = os.path.join(self.root, ".device", "bin")
        os.makedirs(self.bin)
        with open(os.path.join(self.root, ".device", "env.sh"), "w") as f:
            f.write('export PATH="$(pwd)/.device/bin:$PATH"\n')
        self.results = os.path.join(self.root, "results")

    def tearDown(self):
        self.dir.cleanup()

    def program(self, name, body):
        path = os.path.join(self.bin, name)
        with open(path, "w") as f:
            f.write("#!/bin/bash\n" + body)
        os.chmod(path, 0o755)

    def start(self):
        return subprocess.Popen(["bash", "scripts/gpu_check.sh", "--run", self.results],
                                cwd=self.root, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    def read(self, name):
        with open(os.path.join(self.results, name)) as f:
            return f.read()

    def test_no_gpu_stops_after_the_smoke_step(self):
        self.program("gpu_smoke", 'echo "gpu_smoke: FAIL no usable GPU: no CUDA devices"; exit 2\n')
        self.program("cuda_tests", "touch ran_tests\n")
        run = self.start()
        self.assertEqual(run.wait(timeout=60), 1)
        summary = self.read("summary.txt")
        self.assertIn("smoke: FAILED: exit 2", summary)
        self.assertIn("gpu_smoke: FAIL no usable GPU: no CUDA devices", summary)
        self.assertNotIn("gpu tests", self.read("steps.txt"))
        self.assertFalse(os.path.exists(os.path.join(self.root, "ran_tests")))

    def test_missing_library_is_named(self):
        self.program("gpu_smoke", 'echo "gpu_smoke: error while loading shared libraries: '
                                  'libcudnn.so.9: cannot open shared object file" >&2; exit 127\n')
        self.assertEqual(self.start().wait(timeout=60), 1)
        self.assertIn("libcudnn.so.9: cannot open shared object file", self.read("summary.txt"))

    def test_kill_in_a_step_leaves_the_summary(self):
        self.program("gpu_smoke", 'echo "gpu_smoke: every check passed"\n')
        started = os.path.join(self.root, "tests_started")
        self.program("cuda_tests", f"touch {started}; sleep 60\n")
        run = self.start()
        deadline = time.monotonic() + 30
        while not os.path.exists(started) and time.monotonic() < deadline:
            time.sleep(0.1)
        os.killpg(run.pid, signal.SIGKILL)  # what the device tool does at its limit
        run.wait()
        summary = self.read("summary.txt")
        self.assertIn("smoke: ok after", summary)
        self.assertIn("gpu_smoke: every check passed", summary)
        self.assertIn("gpu tests: CUT SHORT", summary)
        self.assertIn("## steps that broke: gpu tests (cut short)", summary)

if __name__ == "__main__":
    unittest.main()
