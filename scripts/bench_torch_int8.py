#!/usr/bin/python3
"""Integer inference speed: ompq's packed models (apps/ompq_bench BM_InferPacked) against PyTorch's
int8 inference of the same architectures and against ompq's own FP32 inference (BM_Infer).

For each model (resnet20 at 32 px with 10 classes; resnet18, resnet50 and mobilenet_v2 at 224 px
with 1000 classes) ompq_bench runs first (BM_Infer and both BM_InferPacked bit configs: the
default QAT experiment's LP bits at 75% and the PTQ projection bits at 37.5% of the 8-bit size),
then PyTorch in this process, so both see the same machine load. PyTorch's side is eager-mode
static quantization (torch.ao.quantization): torchvision's quantizable model (for resnet20 the
twin of ompq's, scripts/torchvision_to_safetensors.py, with torchvision's quantizable blocks),
conv+BN+ReLU fused, the engine's default qconfig (W8A8: per-channel int8 weights, uint8
activations), calibrated on two random batches, converted, run on channels_last input without
grad. Both sides: random weights, one untimed warm-up step, then --iterations timed steps
(ompq_bench's default counts when not given), --threads threads (OMP_NUM_THREADS for ompq).
The engine is 'onednn' where this PyTorch has it (Debian's 1.13 has onednn and qnnpack, no
fbgemm), else 'fbgemm'.

  /usr/bin/python3 scripts/bench_torch_int8.py [--bench build/apps/ompq_bench] [--batch 32]
      [--models resnet18,...] [--iterations N] [--threads 2]

Prints one row per model: images/s of ompq FP32, ompq packed (qat, ptq) and PyTorch int8, and the
ratios packed/FP32 and packed/PyTorch int8 (> 1: ompq's packed model is faster).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
from torch.ao import quantization as tq
from torchvision.models import quantization as tvq
from torchvision.models.quantization.resnet import QuantizableBasicBlock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_to_safetensors import CifarResNet  # noqa: E402  (the twin of ompq's resnet20)

# (model, resolution, classes), in ompq_bench's registration order.
MODELS = [("resnet20", 32, 10), ("resnet18", 224, 1000), ("resnet50", 224, 1000),
          ("mobilenet_v2", 224, 1000)]
MODES = ("qat", "ptq")


class QuantizableCifarResNet(CifarResNet):
    """ResNet-20 with torchvision's quantizable blocks (their residual add is a FloatFunctional)
    and quant/dequant stubs around the network."""

    def __init__(self, num_classes):
        super().__init__(num_classes=num_classes)
        for stage in (self.layer1, self.layer2, self.layer3):
            for i, block in enumerate(stage):
                q = QuantizableBasicBlock(block.conv1.in_channels, block.conv1.out_channels,
                                          block.stride, block.downsample)
                q.load_state_dict(block.state_dict())
                stage[i] = q
        self.quant = tq.QuantStub()
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        return self.dequant(super().forward(self.quant(x)))

    def fuse_model(self):
        tq.fuse_modules(self, [["conv1", "bn1", "relu"]], inplace=True)
        for stage in (self.layer1, self.layer2, self.layer3):
            for block in stage:
                block.fuse_model()


def quantizable_model(name, classes):
    if name == "resnet20":
        return QuantizableCifarResNet(classes)
    return getattr(tvq, name)(weights=None, quantize=False, num_classes=classes)


def torch_int8_images_per_second(name, batch, resolution, classes, iterations, engine):
    torch.manual_seed(0)
    torch.backends.quantized.engine = engine
    model = quantizable_model(name, classes).eval()
    model.fuse_model()
    model.qconfig = tq.get_default_qconfig(engine)
    tq.prepare(model, inplace=True)
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, resolution, resolution))
    tq.convert(model, inplace=True)
    x = torch.randn(batch, 3, resolution, resolution).contiguous(memory_format=torch.channels_last)

    def step():
        with torch.no_grad():
            model(x)

    step()  # untimed warm-up, as in ompq_bench
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return batch * iterations / (time.perf_counter() - start)


def ompq_images_per_second(bench, name, batch, resolution, iterations, threads):
    """{'fp32': img/s, 'qat': img/s, 'ptq': img/s} from one ompq_bench run."""
    case = f"{name}/{batch}/{resolution}"
    command = [bench, f"--batch={batch}",
               f"--benchmark_filter=^(BM_Infer/{case}/|BM_InferPacked/{case}/(qat|ptq)/)",
               "--benchmark_format=json"]
    if iterations:
        command.append(f"--model_iterations={iterations}")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    result = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    rates = {}
    for b in json.loads(result.stdout)["benchmarks"]:
        if b.get("error_occurred"):
            raise RuntimeError(f"{b['name']}: {b.get('error_message')}")
        parts = b["name"].split("/")
        key = parts[4] if parts[0] == "BM_InferPacked" else "fp32"
        rates[key] = b["items_per_second"]
    if sorted(rates) != sorted(("fp32",) + MODES):
        raise RuntimeError(f"{' '.join(command)} ran {sorted(rates)}, expected fp32, qat and ptq")
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--bench", default=os.path.join(root, "build", "apps", "ompq_bench"))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--models", default=",".join(m for m, _, _ in MODELS))
    parser.add_argument("--iterations", type=int, default=0,
                        help="timed steps per case (0: ompq_bench's defaults, 40 at 32 px, 5 at 224)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    wanted = args.models.split(",")
    unknown = sorted(set(wanted) - {m for m, _, _ in MODELS})
    if unknown:
        parser.error(f"--models: unknown {', '.join(unknown)} (expected some of "
                     f"{', '.join(m for m, _, _ in MODELS)})")
    if not os.access(args.bench, os.X_OK):
        parser.error(f"--bench {args.bench} is not an executable (build ompq_bench first)")
    engines = torch.backends.quantized.supported_engines
    engine = "onednn" if "onednn" in engines else "fbgemm"
    if engine not in engines:
        sys.exit(f"this PyTorch ({torch.__version__}) has neither the onednn nor the fbgemm "
                 f"quantized engine (it has {', '.join(engines)})")
    torch.set_num_threads(args.threads)
    print(f"PyTorch {torch.__version__}, engine {engine}, {args.threads} threads, batch {args.batch}")
    header = (f"{'model':<14}{'ompq fp32':>10}{'packed qat':>11}{'packed ptq':>11}"
              f"{'torch int8':>11}{'qat/fp32':>9}{'ptq/fp32':>9}{'qat/torch':>10}{'ptq/torch':>10}")
    print(header)
    for name, resolution, classes in MODELS:
        if name not in wanted:
            continue
        iterations = args.iterations or (40 if resolution <= 32 else 5)
        ours = ompq_images_per_second(args.bench, name, args.batch, resolution, args.iterations,
                                      args.threads)
        theirs = torch_int8_images_per_second(name, args.batch, resolution, classes, iterations,
                                              engine)
        print(f"{name:<14}{ours['fp32']:>10.1f}{ours['qat']:>11.1f}{ours['ptq']:>11.1f}"
              f"{theirs:>11.1f}{ours['qat'] / ours['fp32']:>9.2f}{ours['ptq'] / ours['fp32']:>9.2f}"
              f"{ours['qat'] / theirs:>10.2f}{ours['ptq'] / theirs:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
