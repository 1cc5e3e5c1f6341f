#!/usr/bin/env python3
"""Checkpoints open in PyTorch: for each model, read the convnet checkpoint's safetensors with a
few lines of Python (no safetensors package needed), check its CRC-32s with zlib as
docs/model-spec.md defines them, build the same network in PyTorch from the spec in its metadata,
load the tensors by name (they must match PyTorch's module names) and compare evaluation-mode
logits with convnet's within 1e-4.
Usage: test_checkpoint_torch.py path/to/checkpoint_logits MODEL_DIR
Exits 0 with a SKIP message when torch is not importable."""
import json
import os
import struct
import subprocess
import sys
import tempfile
import warnings
import zlib

try:
    import torch
    from torch import nn
except ImportError:
    print("SKIP: torch is not installed for", sys.executable, "(Debian: apt install python3-torch)")
    sys.exit(0)


def read_safetensors(path):
    """Returns (tensors by name, metadata)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    dtypes = {"F32": torch.float32, "F64": torch.float64}
    tensors = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(body[begin:end]), dtype=dtypes[t["dtype"]]) \
            .reshape(t["shape"]).clone()
    return tensors, meta


def checksum_errors(path):
    """The checksums of a convnet.checkpoint/2 file that do not hold, as text (empty: all hold).
    "crc32": the file's first 8 + N bytes with that value read as 00000000; "crc32.<tensor>":
    the tensor's data bytes; each as 8 lowercase hex digits of zlib.crc32."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    crc = lambda b: "%08x" % zlib.crc32(b)
    entry = b'"crc32":"%s"' % meta.get("crc32", "").encode()
    errors = []
    if meta.get("format") != "convnet.checkpoint/2" or data[:8 + n].count(entry) != 1:
        return [f"format {meta.get('format')}, header entry {entry!r}"]
    if crc(data[:8 + n].replace(entry, b'"crc32":"00000000"')) != meta["crc32"]:
        errors.append("header")
    for name, t in header.items():
        begin, end = t["data_offsets"]
        if crc(data[8 + n + begin:8 + n + end]) != meta.get("crc32." + name):
            errors.append(name)
    extra = [k for k in meta if k.startswith("crc32.") and k[6:] not in header]
    return errors + extra


def pair(opts, name, default):
    square = int(opts.get(name, default))
    h, w = int(opts.get(name + "_h", 0)), int(opts.get(name + "_w", 0))
    return (h or square, w or square)


def make_layer(kind, o):
    """The PyTorch module for one spec line (lazy modules infer their input sizes)."""
    b = o.get("bias", "true") == "true"
    if kind == "conv2d":
        return nn.LazyConv2d(int(o["out_channels"]), pair(o, "kernel", 0), pair(o, "stride", 1),
                             pair(o, "pad", 0), pair(o, "dilation", 1), int(o.get("groups", 1)), b)
    if kind in ("maxpool2d", "avgpool2d"):
        k = pair(o, "kernel", 0)
        s = pair(o, "stride", 0)
        s = (s[0] or k[0], s[1] or k[1])
        if kind == "maxpool2d":
            return nn.MaxPool2d(k, s, pair(o, "pad", 0))
        return nn.AvgPool2d(k, s, pair(o, "pad", 0), count_include_pad=o.get("count_pad", "true") == "true")
    if kind == "linear":
        return nn.LazyLinear(int(o["out_features"]), b)
    if kind in ("batchnorm1d", "batchnorm2d"):
        cls = nn.LazyBatchNorm2d if kind == "batchnorm2d" else nn.LazyBatchNorm1d
        return cls(float(o.get("eps", 1e-5)), float(o.get("momentum", 0.1)), o.get("affine", "true") == "true")
    simple = {"relu": nn.ReLU, "flatten": nn.Flatten, "gelu": nn.GELU, "silu": nn.SiLU,
              "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    if kind in simple:
        return simple[kind]()
    if kind == "global_avgpool2d":
        return nn.AdaptiveAvgPool2d(1)
    if kind == "leaky_relu":
        return nn.LeakyReLU(float(o.get("slope", 0.01)))
    if kind == "elu":
        return nn.ELU(float(o.get("alpha", 1.0)))
    if kind == "dropout":
        return nn.Dropout(float(o.get("p", 0.5)))
    raise SystemExit("test_checkpoint_torch.py: no PyTorch mapping for layer " + kind)


class Graph(nn.Module):
    """Nodes as nested modules (stage1.0.conv1 -> self.stage1[0].conv1 by attribute path)."""

    def __init__(self, input_name, nodes, output):
        super().__init__()
        self.input_name, self.nodes, self.output = input_name, nodes, output
        for name, kind, _, o in nodes:
            if kind not in ("add", "concat"):
                parent = self
                parts = name.split(".")
                for p in parts[:-1]:
                    if not hasattr(parent, p):
                        parent.add_module(p, nn.Module())
                    parent = getattr(parent, p)
                parent.add_module(parts[-1], make_layer(kind, o))

    def forward(self, x):
        values = {self.input_name: x}
        by_name = {n[0]: n for n in self.nodes}

        def value(name):
            if name not in values:
                _, kind, inputs, _ = by_name[name]
                xs = [value(i) for i in inputs]
                if kind == "add":
                    values[name] = sum(xs[1:], xs[0])
                elif kind == "concat":
                    values[name] = torch.cat(xs, 1)
                else:
                    values[name] = self.get_submodule(name)(xs[0])
            return values[name]

        return value(self.output)


def build(spec):
    lines = [l.split("#")[0].split() for l in spec.splitlines()]
    lines = [l for l in lines if l]
    if lines[0][1] == "sequential":
        return nn.Sequential(*[make_layer(l[1], dict(t.split("=", 1) for t in l[2:])) for l in lines[1:]])
    input_name = dict(t.split("=", 1) for t in lines[0][2:]).get("input", "input")
    nodes, output = [], None
    for l in lines[1:]:
        if l[0] == "output":
            output = l[1]
            continue
        o = dict(t.split("=", 1) for t in l[3:])
        nodes.append((l[1], l[2], o.pop("in").split(","), o))
    return Graph(input_name, nodes, output or nodes[-1][0])


def check(helper, model, tmp):
    ckpt, io = os.path.join(tmp, "model.safetensors"), os.path.join(tmp, "io.safetensors")
    subprocess.run([helper, model, ckpt, io], check=True)
    tensors, meta = read_safetensors(ckpt)
    bad = checksum_errors(ckpt)
    if bad:
        print(f"FAIL: {model}: checksums that do not hold by zlib.crc32: {bad}")
        return False
    io_tensors, _ = read_safetensors(io)
    net = build(meta["spec"])
    net(io_tensors["input"][:2])  # materialise the lazy modules
    state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not missing and not unexpected, f"{model}: missing {missing}, unexpected {unexpected}"
    net.eval()
    with torch.no_grad():
        logits = net(io_tensors["input"])
    err = (logits - io_tensors["logits"]).abs().max().item()
    # Two float32 computations of a deep network (different kernels, summation orders, and
    # BatchNorm folded into the convolutions on our side) agree to rounding: a relative error
    # of about 16 float ulps of the largest logit (three Adam steps at lr 0.01 make logits of
    # up to ~150 in resnet-small, where 1e-4 is 7e-7 of them).
    scale = max(1.0, io_tensors["logits"].abs().max().item())
    ok = err <= 2e-6 * scale
    print(f"{'ok' if ok else 'FAIL'}: {model}: the header's and {len(tensors)} tensors' checksums "
          f"hold, {len(state)} tensors loaded by name, max |logit difference| {err:.2e} "
          f"(largest logit {scale:.3g})")
    return ok


def main():
    warnings.filterwarnings("ignore", message="Lazy modules")
    helper, model_dir = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        spec = os.path.join(tmp, "every.txt")
        with open(spec, "w") as f:  # BatchNorm1d, Dropout, activations with options, Concat
            f.write("model graph input=x\n"
                    "node a conv2d in=x out_channels=4 kernel=3 pad=1 init=kaiming_normal\n"
                    "node b conv2d in=x out_channels=4 kernel_h=3 kernel_w=1 pad_h=1 groups=1\n"
                    "node cat concat in=a,b\nnode act leaky_relu in=cat slope=0.2\n"
                    "node pool avgpool2d in=act kernel=2 count_pad=false pad=1\n"
                    "node flat flatten in=pool\nnode drop dropout in=flat p=0.3\n"
                    "node fc1 linear in=drop out_features=16\nnode bn batchnorm1d in=fc1\n"
                    "node elu elu in=bn alpha=0.5\nnode fc2 linear in=elu out_features=10\n")
        results = [check(helper, m, tmp) for m in
                   [os.path.join(model_dir, "lenet.txt"), "resnet-small", spec]]
    sys.exit(0 if all(results) else 1)


main()
