#!/usr/bin/python3
"""The peer of `ompq_train`: the same network, data shaping and recipe in PyTorch, so that accuracy
and time can be compared side by side on one machine. --model fashion_cnn (default) or a model of
torchvision_to_safetensors.build_model (e.g. resnet20); images are padded to 32 px and replicated to
3 channels for those, as ompq_train does for a [3, 32, 32] model.

    /usr/bin/python3 scripts/fashion_cnn_torch.py [--model resnet20] [--small_input] [--epochs 2]
        [--threads 2]
"""
import argparse
import gzip
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(root, split, mean, std):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(f"{root}/{prefix}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(f"{root}/{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    x = (x - mean) / std
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


def pad_to_32_rgb(x, mean, std):
    """[N,1,28,28] normalized -> [N,3,32,32], padded with black (pixel 0) before normalization."""
    x = F.pad(x, (2, 2, 2, 2), value=(0.0 - mean) / std)
    return x.expand(-1, 3, -1, -1).contiguous()


class FashionCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(torch.flatten(x, 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data_dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--model", default="fashion_cnn")
    p.add_argument("--small_input", action="store_true",
                   help="the 32 px variant of resnet18/34/50 or mobilenet_v2 (ompq_train --small_input)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--warmup_iterations", type=int, default=200)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight_decay", type=float, default=5e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train_limit", type=int, default=0, help="use only the first N training images")
    p.add_argument("--test_limit", type=int, default=0, help="use only the first N test images")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr = load(a.data_dir, "train", 0.2860, 0.3530)
    xte, yte = load(a.data_dir, "test", 0.2860, 0.3530)
    if a.train_limit:
        xtr, ytr = xtr[:a.train_limit], ytr[:a.train_limit]
    if a.test_limit:
        xte, yte = xte[:a.test_limit], yte[:a.test_limit]
    if a.model == "fashion_cnn":
        model = FashionCNN()
    else:
        import os
        import sys
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from torchvision_to_safetensors import build_model
        model = build_model(a.model, num_classes=10, small_input=a.small_input)
        xtr, xte = pad_to_32_rgb(xtr, 0.2860, 0.3530), pad_to_32_rgb(xte, 0.2860, 0.3530)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum,
                          weight_decay=a.weight_decay, nesterov=True)
    steps_per_epoch = len(xtr) // a.batch_size
    total = steps_per_epoch * a.epochs
    warm = a.warmup_iterations

    def lr_factor(t):  # linear warm-up from 0, then cosine to 0: ompq_train's schedule
        if t < warm:
            return t / warm
        return 0.5 * (1 + math.cos(math.pi * (t - warm) / (total - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    start = time.time()
    for epoch in range(a.epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for s in range(steps_per_epoch):
            idx = perm[s * a.batch_size:(s + 1) * a.batch_size]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        train_time = time.time() - start
        model.eval()
        with torch.no_grad():
            correct = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
                          for i in range(0, len(xte), 1000))
        print(f"epoch {epoch + 1}: loss {loss.item():.4f} test top-1 {100.0 * correct / len(xte):.2f}% "
              f"train time {train_time:.1f}s ({(epoch + 1) * steps_per_epoch * a.batch_size / train_time:.0f} img/s)")


if __name__ == "__main__":
    main()
