#!/usr/bin/python3
"""Writes tests/data/fashion_cnn_steps.safetensors: the FashionCnn of scripts/fashion_cnn_torch.py
trained for a few SGD steps in PyTorch on a fixed batch of real Fashion-MNIST images, recording
the initial weights, the batch, the loss of every step and the final weights. The C++ test replays
the same steps and must land on the same numbers: it checks the whole training step (forward,
every backward rule, SGD with Nesterov momentum and weight decay) against the peer at once.

    /usr/bin/python3 scripts/make_fashion_cnn_golden.py
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fashion_cnn_torch import FashionCNN, load  # noqa: E402
from torchvision_to_safetensors import write_safetensors  # noqa: E402

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data",
                                    "fashion_cnn_steps.safetensors"))
STEPS, BATCH, LR, MOMENTUM, WEIGHT_DECAY = 4, 16, 0.01, 0.9, 5e-4


def main():
    torch.manual_seed(0)
    x, y = load("/usr/share/datasets/fashion-mnist", "train", 0.2860, 0.3530)
    x, y = x[:BATCH].clone(), y[:BATCH].clone()
    model = FashionCNN()
    tensors = {"input": x, "labels": y}
    tensors.update({"initial." + k: v.clone() for k, v in model.state_dict().items()})
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
                          nesterov=True)
    losses = []
    for _ in range(STEPS):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    tensors["losses"] = torch.tensor(losses, dtype=torch.float32)
    tensors.update({"final." + k: v.clone() for k, v in model.state_dict().items()})
    write_safetensors(OUT, tensors, {"steps": STEPS, "lr": LR, "momentum": MOMENTUM,
                                     "weight_decay": WEIGHT_DECAY, "nesterov": 1})
    print(f"wrote {OUT}: losses {losses}")


if __name__ == "__main__":
    main()
