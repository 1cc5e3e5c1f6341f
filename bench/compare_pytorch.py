#!/usr/bin/env python3
"""Compare `convnet bench` with PyTorch (Debian's python3-torch) on the same built-in networks,
measured the same way, in one invocation, and print convnet's throughput as a ratio of PyTorch's.
It is a measuring tool, not a test: nothing here is run by the build or by ctest.
Needs only the standard library and python3-torch: /usr/bin/python3 bench/compare_pytorch.py
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

SCRIPT = os.path.abspath(__file__)
REPO = os.path.dirname(os.path.dirname(SCRIPT))

# One sample's shape for each built-in model (convnet bench's defaults for --input).
INPUTS = {"lenet": (1, 28, 28), "vgg-small": (3, 32, 32), "resnet-small": (3, 32, 32)}

# Out of the box this PyTorch spends much of a small step in malloc/free of fresh mmap'd blocks
# and in OpenBLAS's own thread pool fighting ATen's; these two settings remove both costs, and
# the comparison is only fair against the peer at its best.
TUNED_ENV = {
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824",
    "OPENBLAS_NUM_THREADS": "1",
}

LOAD_LIMIT = 0.5


# ---------------------------------------------------------------------------------------------
# Worker: runs inside a subprocess with the environment of one PyTorch variant.


def build_torch_model(name, torch):
    nn = torch.nn
    if name == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10))
    if name == "vgg-small":
        def conv(i, o):
            return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU()]
        return nn.Sequential(
            *conv(3, 32), *conv(32, 32), nn.MaxPool2d(2),
            *conv(32, 64), *conv(64, 64), nn.MaxPool2d(2),
            *conv(64, 128), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(128 * 4 * 4, 256), nn.ReLU(),
            nn.Linear(256, 10))
    if name == "resnet-small":
        return resnet_small(torch)
    raise SystemExit(f"compare_pytorch: unknown model '{name}' (known: {', '.join(INPUTS)})")


def resnet_small(torch):
    """convnet's resnet-small (src/model/zoo.cpp), module for module: the definition the golden
    fixtures are made with (tools/make_golden.py), so both comparisons use one network."""
    spec = importlib.util.spec_from_file_location(
        "make_golden", os.path.join(REPO, "tools", "make_golden.py"))
    golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(golden)
    return golden.ResNetSmall(cin=3)


def flops_per_image(model, sample, torch):
    """Counts multiply-adds as 2 FLOPs per Conv2d/Linear, the way convnet's layers do, so the
    parent can check that both sides built the same network."""
    per_layer = []

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            oc, oh, ow = output.shape[1:]
            per_layer.append(2 * oc * oh * ow * (module.in_channels // module.groups) * kh * kw)
        else:
            per_layer.append(2 * module.in_features * module.out_features)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, *sample))
    for h in handles:
        h.remove()
    forward = sum(per_layer)
    # Training = forward + input gradient + weight gradient, less the first layer's input
    # gradient, which nothing needs (convnet's Sequential::train_flops).
    return forward, 3 * forward - per_layer[0]


def time_windows(step, batch, warmup, windows, window_s):
    """The same schedule as convnet bench: warm-up steps size a window in whole steps, then each
    window's images/s is recorded."""
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    per_step = max((time.perf_counter() - start) / max(warmup, 1), 1e-6)
    steps = max(1, int(window_s / per_step))
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * batch / (time.perf_counter() - start))
    return rates


def worker(args):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    sample = INPUTS[args.model]
    model = build_torch_model(args.model, torch)
    forward_flops, train_flops = flops_per_image(model, sample, torch)
    x = torch.rand(args.batch, *sample)
    labels = torch.randint(0, 10, (args.batch,))
    sgd = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)

    # --precision bf16: PyTorch's CPU mixed precision, autocast to bfloat16 around the forward pass
    # and the loss (the backward pass follows the forward's types), as its documentation shows.
    bf16 = args.precision == "bf16"

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    def train_step():
        sgd.zero_grad()
        with autocast():
            loss = F.cross_entropy(model(x), labels)
        loss.backward()
        sgd.step()

    def infer_step():
        with torch.no_grad(), autocast():
            model(x)

    model.train()
    train = time_windows(train_step, args.batch, args.warmup, args.windows, args.window_seconds)
    model.eval()
    infer = time_windows(infer_step, args.batch, args.warmup, args.windows, args.window_seconds)
    print(json.dumps({
        "model": args.model, "threads": torch.get_num_threads(), "batch": args.batch,
        "torch_version": torch.__version__, "precision": args.precision,
        "train_images_per_s": statistics.median(train),
        "infer_images_per_s": statistics.median(infer),
        "train_flops_per_image": train_flops, "forward_flops_per_image": forward_flops,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "train_windows": train, "infer_windows": infer,
    }))


# ---------------------------------------------------------------------------------------------
# Driver.


def variant_env(variant):
    env = dict(os.environ)
    if variant == "tuned":
        env.update(TUNED_ENV)
    else:
        # "default" means out of the box, so drop the tuning even if the caller exported it.
        for key in TUNED_ENV:
            env.pop(key, None)
    return env


def run_json(cmd, env, what):
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"compare_pytorch: {what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                 f"{proc.stderr.strip()}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        sys.exit(f"compare_pytorch: {what} printed no JSON: {' '.join(cmd)}\n{proc.stdout}")
    return json.loads(lines[-1])


def run_convnet(args, model, threads, binary=None, precision=None):
    cmd = [binary or args.convnet, "bench", "--model", model, "--threads", str(threads),
           "--batch", str(args.batch), "--json", "--windows", str(args.windows),
           "--window-seconds", str(args.window_seconds), "--warmup", str(args.warmup),
           "--seed", str(args.seed)]
    precision = precision or args.precision
    if precision != "fp32":  # (so that a --baseline older than the flag runs in fp32)
        cmd += ["--precision", precision]
    return run_json(cmd, dict(os.environ), "convnet bench")


def run_torch(args, model, threads, variant):
    cmd = [sys.executable, SCRIPT, "--worker", "--model", model, "--threads", str(threads),
           "--batch", str(args.batch), "--windows", str(args.windows),
           "--window-seconds", str(args.window_seconds), "--warmup", str(args.warmup),
           "--seed", str(args.seed), "--precision", args.precision]
    return run_json(cmd, variant_env(variant), f"PyTorch worker ({variant})")


def machine_info(args):
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    probe = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__)"],
        env=variant_env("tuned"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if probe.returncode != 0:
        sys.exit("compare_pytorch: cannot import torch; install it with "
                 "`apt-get install python3-torch`\n" + probe.stderr.strip())
    commit = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_version": probe.stdout.strip(),
        "python": platform.python_version(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "convnet": os.path.abspath(args.convnet),
        "commit": commit.stdout.strip() if commit.returncode == 0 else "unknown",
        "load_1min": os.getloadavg()[0],
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")},
    }


def check_load(log):
    load = os.getloadavg()[0]
    if load > LOAD_LIMIT:
        bar = "!" * 78
        print(f"{bar}\nWARNING: 1-minute load average is {load:.2f} (> {LOAD_LIMIT}) before "
              f"starting.\nSomething else is using the cores: these figures are NOT valid "
              f"benchmark results.\n{bar}", file=log)
    return load


def ratio(a, b):
    return a / b if a and b else None


def fmt(v, spec):
    return format(v, spec) if v is not None else "-"


def summarise(args, runs):
    """Median across rounds of each side's per-round median, per model, threads and workload."""
    rows, best, rss = [], [], []
    for model in args.models:
        for threads in args.threads:
            r = runs[model][threads]
            rss.append({
                "model": model, "threads": threads,
                "convnet_peak_rss_mb": max(x["peak_rss_mb"] for x in r["convnet"]),
                **{f"torch_{v}_peak_rss_mb": max(x["peak_rss_mb"] for x in r[v])
                   for v in args.variants},
            })
            for workload in ("train", "infer"):
                key = f"{workload}_images_per_s"
                row = {"model": model, "workload": workload, "threads": threads,
                       "convnet": statistics.median(x[key] for x in r["convnet"])}
                for v in args.variants:
                    row[f"torch_{v}"] = statistics.median(x[key] for x in r[v])
                row["ratio"] = ratio(row["convnet"], row["torch_tuned"])
                if "baseline" in r:
                    row["baseline"] = statistics.median(x[key] for x in r["baseline"])
                    row["baseline_ratio"] = ratio(row["baseline"], row["torch_tuned"])
                    row["new_over_baseline"] = ratio(row["convnet"], row["baseline"])
                row["rounds"] = {side: [x[key] for x in r[side]] for side in r}
                rows.append(row)
    top = max(args.threads)
    for model in args.models:
        for workload in ("train", "infer"):
            mine = {row["threads"]: row for row in rows
                    if row["model"] == model and row["workload"] == workload}
            torch_best = max(row["torch_tuned"] for row in mine.values())
            entry = {"model": model, "workload": workload, "convnet_threads": top,
                     "convnet": mine[top]["convnet"], "torch_best": torch_best,
                     "torch_best_threads": max(mine, key=lambda t: mine[t]["torch_tuned"]),
                     "ratio": ratio(mine[top]["convnet"], torch_best)}
            if "baseline" in mine[top]:
                entry["baseline"] = mine[top]["baseline"]
                entry["baseline_ratio"] = ratio(mine[top]["baseline"], torch_best)
            if 1 in mine and 2 in mine:
                entry["convnet_scaling_1_to_2"] = ratio(mine[2]["convnet"], mine[1]["convnet"])
                entry["torch_scaling_1_to_2"] = ratio(mine[2]["torch_tuned"],
                                                      mine[1]["torch_tuned"])
            best.append(entry)
    return rows, best, rss


def print_report(args, info, rows, best, rss):
    print(f"machine   {info['cpu']}, {info['cores']} cores")
    print(f"date      {info['date']}")
    print(f"torch     {info['torch_version']} (tuned: {', '.join(f'{k}={v}' for k, v in TUNED_ENV.items())})")
    print(f"convnet   {info['convnet']} at {info['commit']}")
    print(f"precision {args.precision}" + (" (PyTorch under torch.autocast('cpu', dtype=torch.bfloat16))"
                                          if args.precision == "bf16" else ""))
    if args.baseline_fp32:
        print("baseline  the same convnet binary in fp32 (new/base: bf16 over fp32)")
    elif args.baseline:
        print(f"baseline  {os.path.abspath(args.baseline)}")
    print(f"settings  batch {args.batch}, {args.rounds} rounds x {args.windows} windows of "
          f"{args.window_seconds} s, warm-up {args.warmup}; load before start "
          f"{info['load_1min']:.2f}")
    if info["load_1min"] > LOAD_LIMIT:
        print(f"WARNING   load was above {LOAD_LIMIT} at start: the cores were shared, so these "
              "figures are not valid")
    print()
    extra = "".join(f" {'PyTorch ' + v:>16}" for v in args.variants if v != "tuned")
    base = args.baseline is not None
    print(f"{'model':<10} {'workload':<8} {'threads':>7} {'convnet img/s':>14} "
          f"{'PyTorch tuned':>14}{extra} {'ours/PyTorch':>13}"
          + (f" {'baseline img/s':>15} {'base/PyTorch':>13} {'new/base':>9}" if base else ""))
    for row in rows:
        extra = "".join(f" {row[f'torch_{v}']:>16.1f}" for v in args.variants if v != "tuned")
        print(f"{row['model']:<10} {row['workload']:<8} {row['threads']:>7} "
              f"{row['convnet']:>14.1f} {row['torch_tuned']:>14.1f}{extra} "
              f"{fmt(row['ratio'], '.2f'):>13}"
              + (f" {row['baseline']:>15.1f} {fmt(row['baseline_ratio'], '.2f'):>13} "
                 f"{fmt(row['new_over_baseline'], '.3f'):>9}" if base else ""))
    print()
    top = max(args.threads)
    print(f"ours at {top} thread{'s' if top > 1 else ''} / PyTorch tuned's best "
          f"(max over threads {', '.join(map(str, args.threads))}); 1->2 thread scaling")
    print(f"{'model':<10} {'workload':<8} {'convnet':>10} {'PyTorch best':>13} {'ratio':>6} "
          f"{'ours 1->2':>10} {'PyTorch 1->2':>13}"
          + (f" {'baseline':>10} {'ratio':>6}" if base else ""))
    for e in best:
        print(f"{e['model']:<10} {e['workload']:<8} {e['convnet']:>10.1f} "
              f"{e['torch_best']:>9.1f} @{e['torch_best_threads']:<2} {fmt(e['ratio'], '.2f'):>6} "
              f"{fmt(e.get('convnet_scaling_1_to_2'), '.2f'):>10} "
              f"{fmt(e.get('torch_scaling_1_to_2'), '.2f'):>13}"
              + (f" {e['baseline']:>10.1f} {fmt(e['baseline_ratio'], '.2f'):>6}" if base else ""))
    print()
    print("peak resident memory, MB (max over rounds; each process measured on its own)")
    extra = "".join(f" {'PyTorch ' + v:>16}" for v in args.variants)
    print(f"{'model':<10} {'threads':>7} {'convnet bench':>14}{extra}")
    for r in rss:
        extra = "".join(f" {r[f'torch_{v}_peak_rss_mb']:>16.1f}" for v in args.variants)
        print(f"{r['model']:<10} {r['threads']:>7} {r['convnet_peak_rss_mb']:>14.1f}{extra}")


def parse_args(argv):
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        description="Compare convnet bench with PyTorch on the built-in models: images/s of a "
                    "training step and of inference, and convnet's figure as a ratio of "
                    "PyTorch's (tuned: malloc thresholds raised, OpenBLAS single-threaded).")
    p.add_argument("--convnet", default=os.path.join(REPO, "build", "convnet"),
                   help="the convnet binary (default: <repo>/build/convnet)")
    p.add_argument("--baseline", metavar="PATH",
                   help="a second convnet binary (an older build) run in every round beside "
                        "--convnet, alternating, and reported as its own ratio and as "
                        "new/baseline: a refactor's speed checked against the peer in one run")
    p.add_argument("--models", default="lenet,vgg-small,resnet-small",
                   help="comma-separated (default: %(default)s)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="alternating convnet/PyTorch rounds (default: 3)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--windows", type=int, default=7, help="timed windows per run; median (default: 7)")
    p.add_argument("--window-seconds", type=float, default=0.5)
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before timing (default: 5)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--untuned", action="store_true",
                   help="also run PyTorch out of the box (no GLIBC_TUNABLES, OPENBLAS_NUM_THREADS)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="fp32, or bf16 on both sides: convnet --precision bf16 against PyTorch "
                        "under CPU autocast; without --baseline, convnet in fp32 becomes the "
                        "baseline (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print all results as one JSON object")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)  # the worker's one model
    args = p.parse_args(argv)
    if args.worker:
        args.threads = int(args.threads)
        return args
    args.models = [m for m in args.models.split(",") if m]
    for m in args.models:
        if m not in INPUTS:
            p.error(f"unknown model '{m}' (known: {', '.join(INPUTS)})")
    try:
        args.threads = sorted({int(t) for t in args.threads.split(",") if t})
    except ValueError:
        p.error("--threads takes comma-separated integers")
    if not args.threads or min(args.threads) < 1:
        p.error("--threads needs at least one count, each >= 1")
    if args.rounds < 1 or args.windows < 1 or args.batch < 1 or args.warmup < 0:
        p.error("--rounds, --windows and --batch must be >= 1, --warmup >= 0")
    args.variants = ["tuned", "default"] if args.untuned else ["tuned"]
    return args


def main(argv):
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    if not os.access(args.convnet, os.X_OK):
        sys.exit(f"compare_pytorch: {args.convnet} not found or not executable; build first "
                 "(cmake -B build -G Ninja && cmake --build build) or pass --convnet PATH")
    check_load(sys.stderr)
    info = machine_info(args)
    log = sys.stderr
    # bf16 without a --baseline: the same binary in fp32 is the baseline, so that the report gives
    # bf16 over our own fp32 beside both ratios to PyTorch, measured in the same rounds.
    args.baseline_fp32 = args.precision == "bf16" and not args.baseline
    if args.baseline_fp32:
        args.baseline = args.convnet
    if args.baseline and not os.access(args.baseline, os.X_OK):
        sys.exit(f"compare_pytorch: --baseline {args.baseline} not found or not executable")
    sides = ["convnet"] + (["baseline"] if args.baseline else [])
    runs = {m: {t: {**{s: [] for s in sides}, **{v: [] for v in args.variants}}
                for t in args.threads} for m in args.models}
    for model in args.models:
        for threads in args.threads:
            for rnd in range(args.rounds):
                # Alternate the sides within each round so slow drift of the host lands on both.
                # With a baseline, which of the two binaries goes first alternates too.
                order = sides if rnd % 2 == 0 else sides[::-1]
                line = f"{model} threads {threads} round {rnd + 1}/{args.rounds}:"
                for side in order:
                    result = run_convnet(args, model, threads,
                                         args.baseline if side == "baseline" else None,
                                         "fp32" if side == "baseline" and args.baseline_fp32
                                         else None)
                    runs[model][threads][side].append(result)
                    line += f" {side} {result['train_images_per_s']:.0f}/" \
                            f"{result['infer_images_per_s']:.0f},"
                ours = runs[model][threads]["convnet"][-1]
                for v in args.variants:
                    theirs = run_torch(args, model, threads, v)
                    if theirs["train_flops_per_image"] != ours["train_flops_per_image"]:
                        sys.exit(f"compare_pytorch: {model}: PyTorch's network has "
                                 f"{theirs['train_flops_per_image']} training FLOPs per image, "
                                 f"convnet's {ours['train_flops_per_image']}: not the same network")
                    runs[model][threads][v].append(theirs)
                    line += f" PyTorch {v} {theirs['train_images_per_s']:.0f}/" \
                            f"{theirs['infer_images_per_s']:.0f}"
                print(line + " (train/infer images/s)", file=log, flush=True)
    rows, best, rss = summarise(args, runs)
    if args.json:
        print(json.dumps({
            "machine": info,
            "settings": {k: getattr(args, k) for k in
                         ("models", "threads", "rounds", "batch", "windows", "window_seconds",
                          "warmup", "seed", "variants", "baseline", "precision",
                          "baseline_fp32")},
            "tuned_env": TUNED_ENV, "results": rows, "best": best, "peak_rss": rss,
            "runs": runs,
        }, indent=1))
    else:
        print_report(args, info, rows, best, rss)


if __name__ == "__main__":
    main(sys.argv[1:])
