#!/usr/bin/env python3
"""Image loading against torchvision: decode + RandomResizedCrop + flip of the same JPEG folder to
the same sample size, convnet's streamed set (build/bench_loading, the same code --stream runs)
against torchvision's ImageFolder + DataLoader (Debian's python3-torchvision: PIL decoding, one
worker process per --workers), alternating ROUNDS times; prints each run and the medians of
images/s per worker, and their ratio. A measuring tool, not a test.
    /usr/bin/python3 bench/compare_loading.py DIR [--size 64] [--workers 1] [--rounds 3]
        [--limit 4000] [--transform random-resized-crop+flip]
DIR: a folder of class sub-folders, e.g. build/make_image_set /tmp/jpegs 20000 0 -> /tmp/jpegs/train.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def torchvision_run(folder, size, workers, limit, transform):
    import torch
    import torchvision
    from torchvision import transforms as T
    steps = []
    if transform.startswith("random-resized-crop"):
        steps.append(T.RandomResizedCrop((size, size)))
    elif transform.startswith("center-crop"):
        resize = int(transform.split(":")[1].split("+")[0]) if ":" in transform else size
        steps += [T.Resize(resize), T.CenterCrop(size)]
    else:
        steps.append(T.Resize((size, size)))
    if transform.endswith("+flip"):
        steps.append(T.RandomHorizontalFlip())
    steps.append(T.ToTensor())
    data = torchvision.datasets.ImageFolder(folder, transform=T.Compose(steps))
    if limit and limit < len(data):
        data = torch.utils.data.Subset(data, range(limit))

    def one_thread(_):
        torch.set_num_threads(1)

    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=False, num_workers=workers,
                                         worker_init_fn=one_thread, persistent_workers=False)
    torch.set_num_threads(1)
    start = time.perf_counter()
    count = 0
    for x, _ in loader:
        count += x.shape[0]
    seconds = time.perf_counter() - start
    return count / seconds


def convnet_run(binary, folder, size, workers, limit, transform):
    out = subprocess.run([binary, folder, f"3x{size}x{size}", transform, str(workers), "64",
                          str(limit)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["images_per_s"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("folder")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--limit", type=int, default=4000)
    p.add_argument("--transform", default="random-resized-crop+flip")
    p.add_argument("--binary", default=os.path.join(REPO, "build", "bench_loading"))
    a = p.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}; {a.limit} images of {a.folder} to "
          f"3x{a.size}x{a.size}, {a.transform}, {a.workers} worker(s), {a.rounds} rounds")
    ours, theirs = [], []
    for r in range(a.rounds):
        ours.append(convnet_run(a.binary, a.folder, a.size, a.workers, a.limit, a.transform))
        theirs.append(torchvision_run(a.folder, a.size, a.workers, a.limit, a.transform))
        print(f"round {r + 1}: convnet {ours[-1]:.0f} images/s, torchvision {theirs[-1]:.0f}")
    mo, mt = statistics.median(ours), statistics.median(theirs)
    print(f"median images/s per worker: convnet {mo / a.workers:.0f}, torchvision "
          f"{mt / a.workers:.0f}, ratio {mo / mt:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
