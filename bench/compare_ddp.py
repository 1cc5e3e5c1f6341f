#!/usr/bin/env python3
"""Data-parallel training on one host: `mpirun -np 2 convnet train --threads 1` against PyTorch's
DistributedDataParallel (Debian's python3-torch, gloo backend, 2 processes x 1 thread) on the same
networks and global batch, and against one convnet process with 2 threads (what going
distributed costs). Rounds alternate the three; each figure is the median over rounds of the
training images/s, and convnet's are given as ratios. A measuring tool, not a test.
Needs python3-torch and Open MPI: /usr/bin/python3 bench/compare_ddp.py
"""

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import time

SCRIPT = os.path.abspath(__file__)
REPO = os.path.dirname(os.path.dirname(SCRIPT))
DATA = "/usr/share/datasets/fashion-mnist"


def compare_pytorch():
    spec = importlib.util.spec_from_file_location(
        "compare_pytorch", os.path.join(REPO, "bench", "compare_pytorch.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_model(name, torch):
    """convnet's built-in models on Fashion-MNIST's 1x28x28 images, module for module."""
    nn = torch.nn
    if name == "vgg-small":
        def conv(i, o):
            return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU()]
        return nn.Sequential(
            *conv(1, 32), *conv(32, 32), nn.MaxPool2d(2),
            *conv(32, 64), *conv(64, 64), nn.MaxPool2d(2),
            *conv(64, 128), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(128 * 3 * 3, 256), nn.ReLU(), nn.Linear(256, 10))
    if name == "resnet-small":
        golden_spec = importlib.util.spec_from_file_location(
            "make_golden", os.path.join(REPO, "tools", "make_golden.py"))
        golden = importlib.util.module_from_spec(golden_spec)
        golden_spec.loader.exec_module(golden)
        return golden.ResNetSmall(cin=1)
    if name == "lenet":
        return compare_pytorch().build_torch_model("lenet", torch)
    raise SystemExit(f"compare_ddp: unknown model '{name}'")


def ddp_worker(args):
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}",
                            rank=args.rank, world_size=args.world)
    torch.manual_seed(args.seed)
    model = torch.nn.parallel.DistributedDataParallel(torch_model(args.model, torch))
    part = args.batch // args.world
    x = torch.rand(part, 1, 28, 28)
    labels = torch.randint(0, 10, (part,))
    sgd = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)

    def step():
        sgd.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        sgd.step()

    for _ in range(args.warmup):
        step()
    dist.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    dist.barrier()
    seconds = time.perf_counter() - start
    if args.rank == 0:
        print(json.dumps({"images_per_s": args.steps * part * args.world / seconds}))
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ddp(args, model, env):
    port = free_port()
    procs = [subprocess.Popen(
        [sys.executable, SCRIPT, "--ddp-worker", "--rank", str(r), "--world", "2", "--port",
         str(port), "--model", model, "--batch", str(args.batch), "--steps", str(args.steps),
         "--warmup", str(args.warmup), "--seed", str(args.seed)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    outs = [p.communicate() for p in procs]
    for p, (out, err) in zip(procs, outs):
        if p.returncode != 0:
            sys.exit(f"compare_ddp: the DDP worker failed (exit {p.returncode}):\n{err.strip()}")
    return json.loads([ln for ln in outs[0][0].splitlines() if ln.startswith("{")][-1])


def run_convnet(args, model, ranks, threads):
    # --train-limit: warm-up batches plus the timed ones, in one epoch; images/s is the epoch's.
    cmd = [args.convnet, "train", "--model", model, "--data", DATA, "--threads", str(threads),
           "--batch", str(args.batch), "--epochs", "1", "--schedule", "constant",
           "--train-limit", str(args.batch * args.steps), "--test-limit", "64", "--json",
           "--seed", str(args.seed)]
    if ranks > 1:
        launcher = [args.mpiexec, "-np", str(ranks), "--bind-to", "none"]
        if os.geteuid() == 0:
            launcher.append("--allow-run-as-root")
        cmd = launcher + cmd
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"compare_ddp: {' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--convnet", default=os.path.join(REPO, "build", "convnet"))
    p.add_argument("--mpiexec", default="mpiexec")
    p.add_argument("--models", default="lenet,vgg-small,resnet-small")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=64, help="the global batch (default: 64)")
    p.add_argument("--steps", type=int, default=60, help="timed steps per run (default: 60)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rank", type=int, help=argparse.SUPPRESS)
    p.add_argument("--world", type=int, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.ddp_worker:
        return ddp_worker(args)

    env = dict(os.environ)
    env.update(compare_pytorch().TUNED_ENV)
    print(f"load average before: {os.getloadavg()[0]:.2f}; global batch {args.batch}, "
          f"{args.rounds} alternating rounds, medians of images/s")
    print(f"{'model':<14}{'convnet 2x1':>12}{'convnet 1x2':>12}{'DDP 2x1':>10}"
          f"{'vs DDP':>9}{'2x1 / 1x2':>11}")
    for model in args.models.split(","):
        runs = {"np2": [], "one": [], "ddp": []}
        for _ in range(args.rounds):
            runs["np2"].append(run_convnet(args, model, 2, 1)["images_per_s"])
            runs["one"].append(run_convnet(args, model, 1, 2)["images_per_s"])
            runs["ddp"].append(run_ddp(args, model, env)["images_per_s"])
        m = {k: statistics.median(v) for k, v in runs.items()}
        print(f"{model:<14}{m['np2']:>12.0f}{m['one']:>12.0f}{m['ddp']:>10.0f}"
              f"{m['np2'] / m['ddp']:>9.2f}{m['np2'] / m['one']:>11.3f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
