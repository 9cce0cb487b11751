#!/usr/bin/env python3
"""Kill anywhere: ompq_train killed (SIGKILL) at random moments of every stage ends, once rerun
after each kill, with the outputs of an uninterrupted run.

Two small Fashion-MNIST experiments cover every stage: a QAT one (pretrain, search, qat, eval,
export, report) and a PTQ one from the QAT run's FP32 weights (search, ptq, eval, export, report).
Each runs once uninterrupted, which gives every stage's time window. The kills are then drawn from
a seed (printed; KILL_SEED=<seed> replays them): one at a random fraction of each of the seven
stages, the rest at random moments of the two runs' whole time (the start-up before the first
stage included). A kill waits for its stage's "[stage] starting" line in the rerun's output and
strikes that fraction of the stage's reference duration later; the stage it landed in is the last
one that started and did not finish. A resumed stage has less left to do than the reference's, so
a kill can land past its stage: it counts where it landed, unless its stage has no kill yet, it
passed the stage of the next planned kill, or the run ended first; then it is undone (the folder
put back as it was) and tried earlier in the stage.
After the last kill the same command runs to its end, and every output must equal the
uninterrupted run's: byte for byte, except for the wall time some record (outputs_equal.py).

  kill_anywhere.py OMPQ_TRAIN FASHION_MNIST_DIR WORK_DIR [KILLS]
"""
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from outputs_equal import compare_outputs

STAGES = ["pretrain", "search", "qat", "ptq", "eval", "export", "report"]
# The time from launch to the first stage (reading the data, checking the config and folder).
STARTUP = "startup"
STAGE_LINE = re.compile(rb"^\[(\w+)\] (starting|done in)")
def fail(message):
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


class Run:
    """One ompq_train process with its stderr read as it comes, line by line, timestamped."""

    def __init__(self, command, log_path):
        self.log = open(log_path, "wb")
        self.start = time.monotonic()
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        pending = b""
        while True:
            chunk = os.read(self.process.stderr.fileno(), 65536)
            if not chunk:
                break
            self.log.write(chunk)
            self.log.flush()
            pending += chunk
            *complete, pending = pending.split(b"\n")
            now = time.monotonic() - self.start
            for line in complete:
                # Progress bars rewrite their line with \r; the stage lines start after the last.
                self.lines.put((now, line.split(b"\r")[-1]))
        self.lines.put(None)

    def events(self, timeout=None):
        """(seconds since start, line) as they come; (None, None) at the end of the output, or
        when `timeout` seconds pass without a line."""
        try:
            item = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None, b""
        return item if item is not None else (None, None)

    def wait(self):
        code = self.process.wait()
        self.reader.join()  # the output to its end, into the log, before the log closes
        self.log.close()
        return code


def stage_windows(command, log_path):
    """Runs `command` to its end: {stage: (start, end)} in seconds from its launch (STARTUP: up to
    the first stage), and the total."""
    run = Run(command, log_path)
    windows, starts = {}, {}
    while True:
        t, line = run.events()
        if line is None:
            break
        m = STAGE_LINE.match(line)
        if m and m.group(2) == b"starting":
            starts[m.group(1).decode()] = t
            windows.setdefault(STARTUP, (0.0, t))
        elif m:
            name = m.group(1).decode()
            windows[name] = (starts[name], t)
    if run.wait() != 0:
        fail(f"the uninterrupted run failed: {' '.join(command)} (log {log_path})")
    return windows, time.monotonic() - run.start


def kill_during(command, stage, delay, log_path):
    """Runs `command`, SIGKILLs it `delay` seconds after `stage` starts (STARTUP: after launch).
    Returns where it was when killed: the stage, STARTUP, or "after <stage>" between stages; None
    when the run ended first."""
    run = Run(command, log_path)
    deadline = delay if stage == STARTUP else None
    running, finished = [], []
    while True:
        timeout = None if deadline is None else max(0.0, deadline - (time.monotonic() - run.start))
        t, line = run.events(timeout)
        if t is None and line is None:
            break  # the process closed its output: it ended before the moment
        if t is None:  # the moment came
            run.process.send_signal(signal.SIGKILL)
            break
        m = STAGE_LINE.match(line)
        if not m:
            continue
        name = m.group(1).decode()
        if m.group(2) == b"starting":
            running.append(name)
            if name == stage and deadline is None:
                deadline = t + delay
        elif name in running:
            running.remove(name)
            finished.append(name)
    code = run.wait()
    if code == 0:
        return None
    if code != -signal.SIGKILL:
        fail(f"the run failed on its own (exit {code}) before the kill: see {log_path}")
    if running:
        return running[-1]
    return f"after {finished[-1]}" if finished else STARTUP


def snapshot(folder):
    """Keeps a copy of `folder` (or that it does not exist) for restore()."""
    shutil.rmtree(folder + ".before", ignore_errors=True)
    if os.path.isdir(folder):
        shutil.copytree(folder, folder + ".before")


def restore(folder):
    shutil.rmtree(folder, ignore_errors=True)
    if os.path.isdir(folder + ".before"):
        shutil.copytree(folder + ".before", folder)


def draw_kills(rng, experiments, count):
    """[(experiment index, stage, fraction)]: one in each stage, the rest over the whole time."""
    kills = []
    for stage in STAGES:  # the start-up is in the draws over the whole time
        having = [i for i, e in enumerate(experiments) if stage in e["windows"]]
        kills.append((rng.choice(having), stage, rng.random()))
    timeline = [(i, s, w) for i, e in enumerate(experiments) for s, w in e["windows"].items()]
    total = sum(end - start for _, _, (start, end) in timeline)
    for _ in range(count - len(kills)):
        point = rng.random() * total
        for i, stage, (start, end) in timeline:
            if point < end - start:
                kills.append((i, stage, point / (end - start)))
                break
            point -= end - start
    return kills


def main():
    train, data_dir, work = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    seed = int(os.environ.get("KILL_SEED", random.SystemRandom().randrange(1 << 31)))
    print(f"kill_anywhere: seed {seed} (KILL_SEED={seed} replays these kills)", flush=True)
    rng = random.Random(seed)
    # One thread: the machine running the tests is often busy, and spinning OpenMP threads crawl.
    small = [f"--data_dir={data_dir}", "--threads=1", "--train_limit=256", "--test_limit=100",
             "--batch_size=32", "--eval_batch_size=50", "--log_interval=2",
             "--checkpoint_steps=2", "--search_images=8"]
    # The killed runs write where the uninterrupted ones did (which then move aside), so that the
    # paths the outputs record (config.pbtxt's output_dir, bits.pbtxt's weights) are the same.
    reference = os.path.join(work, "reference")
    os.makedirs(reference)
    experiments = [
        {"name": "qat", "args": small + ["--epochs=1", "--warmup_iterations=2", "--qat_epochs=2"]},
        {"name": "ptq", "args": small + [
            f"--weights={reference}/qat/fp32.safetensors", "--quant=ptq",
            "--budget_fraction=0.4", "--ptq_iters=10", "--calibration_images=32"]},
    ]
    for e in experiments:
        e["command"] = lambda out, e=e: [train, f"--output_dir={out}"] + e["args"]
        out = os.path.join(work, e["name"])
        log = os.path.join(work, f"reference_{e['name']}.log")
        e["windows"], e["seconds"] = stage_windows(e["command"](out), log)
        os.rename(out, os.path.join(reference, e["name"]))
        print(f"uninterrupted {e['name']} run: {e['seconds']:.1f} s; stages " + ", ".join(
            f"{s} {end - start:.2f} s" for s, (start, end) in e["windows"].items()), flush=True)

    kills = sorted(draw_kills(rng, experiments, count),
                   key=lambda k: (k[0], experiments[k[0]]["windows"][k[1]][0], k[2]))
    landed, attempts, undone = {}, 0, 0
    for index, e in enumerate(experiments):
        out = os.path.join(work, e["name"])
        order = list(e["windows"])  # the stages in pipeline order, the start-up first

        def position(where):
            after = where.startswith("after ")
            return order.index(where[len("after "):] if after else where) + (0.5 if after else 0)

        planned = [(stage, fraction) for i, stage, fraction in kills if i == index]
        for k, (stage, fraction) in enumerate(planned):
            next_stage = planned[k + 1][0] if k + 1 < len(planned) else None
            start, end = e["windows"][stage]
            for retry in range(4):
                delay = fraction * (end - start)
                attempts += 1
                log = os.path.join(work, f"kill{attempts}.log")
                snapshot(out)
                where = kill_during(e["command"](out), stage, delay, log)
                print(f"kill {attempts}: {e['name']} run, {fraction:.3f} of {stage} "
                      f"({delay:.3f} s of {end - start:.3f} s in) -> "
                      + (f"killed in {where}" if where else "the run ended first"), flush=True)
                if where == stage or (where is not None and stage in landed and (
                        next_stage is None or position(where) <= position(next_stage))):
                    break
                restore(out)
                undone += 1
                print(f"  past {stage}: undone, the folder put back", flush=True)
                fraction = fraction / 4 if retry < 2 else 0.0
            else:
                fail(f"no kill landed in {stage} of the {e['name']} run")
            landed[where] = landed.get(where, 0) + 1
        log = os.path.join(work, f"{e['name']}_final.log")
        final = Run(e["command"](out), log)
        while final.events()[1] is not None:
            pass
        if final.wait() != 0:
            fail(f"the rerun after the last kill failed: see {log}")
        try:
            compared = compare_outputs(os.path.join(reference, e["name"]), out)
        except AssertionError as error:
            fail(error)
        for name, how in compared:
            print(f"  {e['name']}/{name}: {how}", flush=True)
    missed = [s for s in STAGES if s not in landed]
    if missed:
        fail(f"no kill landed in {missed} (landed: {landed})")
    print(f"PASS: {sum(landed.values())} kills survived "
          f"({', '.join(f'{s} {n}' for s, n in landed.items())}; {undone} more undone), "
          f"every output equal to the uninterrupted run's", flush=True)


if __name__ == "__main__":
    main()
