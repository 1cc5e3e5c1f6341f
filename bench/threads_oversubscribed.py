#!/usr/bin/env python3
"""More threads than the machine has: `convnet bench --threads N` against `--threads H`.

H is the number of CPUs this process may use (its affinity mask) and N a multiple of it (16 by
default). The work is then split N ways (the results are those of N threads) while the pool runs
on H threads, so the ratio should be close to 1; a pool that spun N threads on H CPUs was many
times slower. The two are run in turn, A B A B ..., and the figure is the median of the per-pair
ratios of training images/s (the machine is shared and noisy: one pair proves nothing).

usage: bench/threads_oversubscribed.py [--convnet build/convnet] [--threads 16] [--rounds 5]
                                       [--model lenet]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def bench(convnet, model, threads):
    out = subprocess.run(
        [convnet, "bench", "--model", model, "--threads", str(threads), "--json",
         "--windows", "5", "--window-seconds", "0.5"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--convnet", default="build/convnet")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model", default="lenet")
    args = ap.parse_args()
    hardware = len(os.sched_getaffinity(0))
    print(f"{args.model}: --threads {args.threads} against --threads {hardware} "
          f"(the CPUs this process may use), {args.rounds} alternating rounds")
    ratios = {"train": [], "infer": []}
    for r in range(args.rounds):
        base = bench(args.convnet, args.model, hardware)
        over = bench(args.convnet, args.model, args.threads)
        for kind in ratios:
            ratios[kind].append(over[f"{kind}_images_per_s"] / base[f"{kind}_images_per_s"])
        print(f"round {r + 1}: training {over['train_images_per_s']:.0f} vs "
              f"{base['train_images_per_s']:.0f} images/s, inference "
              f"{over['infer_images_per_s']:.0f} vs {base['infer_images_per_s']:.0f}")
    for kind, values in ratios.items():
        print(f"{kind}: --threads {args.threads} / --threads {hardware} = "
              f"{statistics.median(values):.2f} (median; range {min(values):.2f}-{max(values):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
