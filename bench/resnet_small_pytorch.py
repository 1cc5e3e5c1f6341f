#!/usr/bin/python3
"""The resnet-small acceptance recipe in PyTorch, for comparing accuracy with convnet:
Fashion-MNIST from Debian's dataset-fashion-mnist, Adam lr 1e-3, batch 128, 8 epochs, the same
network module for module (tools/make_golden.py's ResNetSmall), its convolutions Kaiming-normal
as convnet's resnet-small starts them (init "default" for PyTorch's own).
Prints the test accuracy after each epoch.
Usage: bench/resnet_small_pytorch.py [threads] [seed] [kaiming|default]
(needs python3-torch; about 20 minutes at 1 thread on the benchmark machine)."""
import gzip
import importlib.util
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist/"


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    torch.manual_seed(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "make_golden", os.path.join(here, "..", "tools", "make_golden.py"))
    golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(golden)
    xtr = torch.tensor(idx(DATA + "train-images-idx3-ubyte.gz"), dtype=torch.float32).unsqueeze(1) / 255
    ytr = torch.tensor(idx(DATA + "train-labels-idx1-ubyte.gz"), dtype=torch.long)
    xte = torch.tensor(idx(DATA + "t10k-images-idx3-ubyte.gz"), dtype=torch.float32).unsqueeze(1) / 255
    yte = torch.tensor(idx(DATA + "t10k-labels-idx1-ubyte.gz"), dtype=torch.long)
    model = golden.ResNetSmall().float()
    if (sys.argv[3] if len(sys.argv) > 3 else "kaiming") == "kaiming":
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, 9):
        model.train()
        perm = torch.randperm(len(xtr))
        start = time.time()
        for i in range(0, len(xtr), 128):
            batch = perm[i:i + 128]
            opt.zero_grad()
            F.cross_entropy(model(xtr[batch]), ytr[batch]).backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(xte), 1000):
                correct += (model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
        print(f"epoch {epoch}/8  test acc {100 * correct / len(xte):.2f}%  "
              f"{time.time() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
