#!/usr/bin/python3
"""convnet train's accuracy recipes in PyTorch, for comparing accuracy on the same network:
Fashion-MNIST from Debian's dataset-fashion-mnist, the network module for module as
tools/make_golden.py builds it, and the recipe of the README's Results:
  lenet         SGD lr 0.05 momentum 0.9, batch 64, 5 epochs (the command's defaults)
  resnet-small  Adam lr 1e-3, batch 128, 8 epochs, convolutions Kaiming-normal (fan_in) as
                convnet's resnet-small starts them ("default" init: PyTorch's own)
The rate follows the command's default schedule, CosineAnnealingLR over the run stepped once per
epoch ("constant": none). Prints the test accuracy after each epoch.
Usage: bench/accuracy_pytorch.py MODEL [--threads N] [--seed S] [--schedule cosine|constant]
       [--init kaiming|default] [--width 32]
(needs python3-torch; resnet-small takes about 20 minutes at 1 thread on the benchmark machine,
lenet about a minute)."""
import argparse
import gzip
import importlib.util
import os
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist/"
RECIPES = {  # optimizer, lr, batch, epochs
    "lenet": ("sgd", 0.05, 64, 5),
    "resnet-small": ("adam", 1e-3, 128, 8),
}


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=sorted(RECIPES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--schedule", choices=["cosine", "constant"], default="cosine")
    ap.add_argument("--init", choices=["kaiming", "default"], default="kaiming")
    ap.add_argument("--width", type=int, default=32, help="resnet-small's first stage channels")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "make_golden", os.path.join(here, "..", "tools", "make_golden.py"))
    golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(golden)
    xtr = torch.tensor(idx(DATA + "train-images-idx3-ubyte.gz"), dtype=torch.float32).unsqueeze(1) / 255
    ytr = torch.tensor(idx(DATA + "train-labels-idx1-ubyte.gz"), dtype=torch.long)
    xte = torch.tensor(idx(DATA + "t10k-images-idx3-ubyte.gz"), dtype=torch.float32).unsqueeze(1) / 255
    yte = torch.tensor(idx(DATA + "t10k-labels-idx1-ubyte.gz"), dtype=torch.long)
    optimizer, lr, batch, epochs = RECIPES[args.model]
    if args.model == "lenet":
        model = golden.lenet().float()
    else:
        model = golden.ResNetSmall(width=args.width).float()
        if args.init == "kaiming":
            for m in model.modules():
                if isinstance(m, torch.nn.Conv2d):
                    torch.nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs) \
        if args.schedule == "cosine" else None
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(len(xtr))
        start = time.time()
        for i in range(0, len(xtr), batch):
            b = perm[i:i + batch]
            opt.zero_grad()
            F.cross_entropy(model(xtr[b]), ytr[b]).backward()
            opt.step()
        if sched:
            sched.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(xte), 1000):
                correct += (model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
        print(f"epoch {epoch}/{epochs}  test acc {100 * correct / len(xte):.2f}%  "
              f"{time.time() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
