#!/usr/bin/python3
"""Regression and reconstruction quality of convnet against PyTorch on the same network and recipe.

Two tasks, each trained by `convnet train` and by the same network in Debian's PyTorch 1.13 with
the same recipe, for several seeds; the medians are compared as a ratio (convnet / PyTorch, lower
is better for both figures):
  rotation     tools/make_rotation_set.py's set (Fashion-MNIST rotated by a uniform angle in
               [-45, 45] degrees, the target the angle): LeNet with one output, MSE on targets
               normalised by the training set's mean and stddev, Adam lr 1e-3, batch 64, 5
               epochs, the rate annealed by a cosine stepped per epoch (convnet train's default
               schedule). Figure: test MAE in degrees.
  autoencoder  models/autoencoder.txt on Fashion-MNIST reproducing its input: MSE, Adam lr 1e-3,
               batch 64, 3 epochs, the same schedule. Figure: test MSE per pixel.
Both sides read the same bytes (the rotation set is built once, seeded) and start from their own
default initialisations (convnet's are PyTorch's: Kaiming-uniform with a = sqrt(5)).
Usage: bench/compare_regression.py [--convnet build/convnet] [--seeds 3] [--threads 2]
       [--tasks rotation,autoencoder] [--work /tmp/convnet-regression]
Runs take about 2 minutes per seed on the 2-core benchmark machine."""
import argparse
import gzip
import json
import os
import statistics
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    rank, kind = data[3], data[2]
    dims = struct.unpack(f">{rank}I", data[4:4 + 4 * rank])
    dtype = np.dtype(">f4") if kind == 0x0D else np.uint8
    return np.frombuffer(data, dtype=dtype, offset=4 + 4 * rank).reshape(dims)


def find(folder, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise SystemExit(f"{folder}: missing {stem}")


def lenet(outputs):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, outputs))


def autoencoder():  # models/autoencoder.txt, layer for layer
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid())


def torch_run(task, data, seed, threads, epochs):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    xtr = torch.tensor(read_idx(find(data, "train-images-idx3-ubyte")), dtype=torch.float32)
    xte = torch.tensor(read_idx(find(data, "t10k-images-idx3-ubyte")), dtype=torch.float32)
    xtr, xte = xtr.unsqueeze(1) / 255, xte.unsqueeze(1) / 255
    if task == "rotation":
        ytr = torch.tensor(read_idx(find(data, "train-targets-idx2-float")).astype(np.float32))
        yte = torch.tensor(read_idx(find(data, "t10k-targets-idx2-float")).astype(np.float32))
        mean, std = ytr.mean(0), ytr.std(0, unbiased=False)
        ytr_n = (ytr - mean) / std
        model = lenet(ytr.shape[1])
    else:
        ytr_n, yte = xtr, xte
        model = autoencoder()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            F.mse_loss(model(xtr[b]), ytr_n[b]).backward()
            opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(xte[i:i + 1000]) for i in range(0, len(xte), 1000)])
    if task == "rotation":
        return (out * std + mean - yte).abs().mean().item()
    return ((out - yte) ** 2).mean().item()


def convnet_run(task, binary, data, seed, threads, epochs, work):
    log = os.path.join(work, f"{task}-{seed}.jsonl")
    if os.path.exists(log):
        os.remove(log)
    cmd = [binary, "train", "--data", data, "--optimizer", "adam", "--lr", "0.001",
           "--batch", "64", "--epochs", str(epochs), "--seed", str(seed),
           "--threads", str(threads), "--quiet", "--log", log]
    if task == "rotation":
        cmd += ["--model", "lenet", "--normalize-targets"]
    else:
        cmd += ["--model", os.path.join(ROOT, "models", "autoencoder.txt"), "--target", "input"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(log) as f:
        last = json.loads(f.read().splitlines()[-1])
    return last["test_mae"] if task == "rotation" else last["test_mse"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--convnet", default=os.path.join(ROOT, "build", "convnet"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tasks", default="rotation,autoencoder")
    ap.add_argument("--work", default="/tmp/convnet-regression")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    rotation = os.path.join(args.work, "rotation")
    tasks = args.tasks.split(",")
    if "rotation" in tasks and not os.path.exists(os.path.join(rotation, "t10k-targets-idx2-float")):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_rotation_set.py"),
                        "--out", rotation, "--data", DATA, "--seed", "1"], check=True)
    figures = {"rotation": "test MAE (degrees)", "autoencoder": "test MSE (per pixel)"}
    epochs = {"rotation": 5, "autoencoder": 3}
    for task in tasks:
        data = rotation if task == "rotation" else DATA
        ours, theirs = [], []
        for seed in range(1, args.seeds + 1):  # alternating, as the machine's load drifts
            t0 = time.time()
            ours.append(convnet_run(task, args.convnet, data, seed, args.threads, epochs[task],
                                    args.work))
            t1 = time.time()
            theirs.append(torch_run(task, data, seed, args.threads, epochs[task]))
            t2 = time.time()
            print(f"{task} seed {seed}: convnet {ours[-1]:.5g} ({t1 - t0:.0f} s), "
                  f"pytorch {theirs[-1]:.5g} ({t2 - t1:.0f} s)", flush=True)
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{task}: {figures[task]} median of {args.seeds} seeds: convnet {a:.5g}, "
              f"pytorch {b:.5g}, ratio {a / b:.3f} (target <= 1.10)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
