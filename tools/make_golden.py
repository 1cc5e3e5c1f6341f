#!/usr/bin/python3
# Generates convnet's golden fixtures (tests/golden/fixtures/*.bin): PyTorch float64 reference
# values for the layers, losses and optimizers, plus a LeNet end-to-end case. Not part of the
# build or the tests: run it by hand with Debian's python3-torch 1.13 and commit the output.
# Usage: tools/make_golden.py [--out DIR]. Reader: tests/support/golden_io.hpp.
import argparse
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MAGIC = b"CNVGOLD\0"
VERSION = 1
SEED = 1337


class Fixture:
    """Ordered list of named float64 tensors, written in the format golden_io.hpp reads."""

    def __init__(self, name):
        self.name = name
        self.tensors = []  # (name, np.ndarray float64); order is the file order
        self.names = set()

    def add(self, name, value):
        if name in self.names:
            raise ValueError(f"{self.name}: duplicate tensor {name}")
        name.encode("ascii")  # the reader treats names as ASCII
        if isinstance(value, torch.Tensor):
            arr = value.detach().to(torch.float64).contiguous().numpy()
        else:
            arr = np.asarray(value, dtype=np.float64)
        self.names.add(name)
        # np.array, not np.ascontiguousarray: the latter turns rank-0 scalars into shape [1].
        self.tensors.append((name, np.array(arr, dtype=np.float64, order="C", copy=True)))

    def add_pair(self, name, pair):
        self.add(name, [float(pair[0]), float(pair[1])])

    def write(self, out_dir):
        parts = [MAGIC, struct.pack("<II", VERSION, len(self.tensors))]
        for name, arr in self.tensors:
            raw = name.encode("ascii")
            parts.append(struct.pack("<I", len(raw)))
            parts.append(raw)
            parts.append(struct.pack("<I", arr.ndim))
            parts.append(struct.pack(f"<{arr.ndim}q", *arr.shape))
            # Explicit little-endian so the bytes do not depend on the host.
            parts.append(arr.astype("<f8").tobytes(order="C"))
        path = os.path.join(out_dir, self.name)
        with open(path, "wb") as f:
            f.write(b"".join(parts))
        return path


def begin():
    # Reseeding per fixture keeps each file reproducible on its own: adding or reordering
    # fixtures does not change the others.
    torch.manual_seed(SEED)


def upstream(y):
    # Random upstream gradient: with all-ones, a transposed or permuted backward would still pass.
    return torch.randn_like(y)


def backward_with(y, g, *inputs):
    """Gradients of sum(y * g) with respect to inputs."""
    return torch.autograd.grad((y * g).sum(), inputs)


# ---------------------------------------------------------------------------------------------
# Layers

def conv2d_fixture(fname, n, ic, ih, iw, oc, kh, kw, stride, pad, dilation, bias, groups=1):
    begin()
    fx = Fixture(fname)
    x = torch.randn(n, ic, ih, iw, requires_grad=True)
    w = torch.randn(oc, ic // groups, kh, kw, requires_grad=True)
    b = torch.randn(oc, requires_grad=True) if bias else None
    y = F.conv2d(x, w, b, stride=stride, padding=pad, dilation=dilation, groups=groups)
    if groups != 1:
        fx.add("groups", float(groups))
    g = upstream(y)
    grads = backward_with(y, g, *([x, w, b] if bias else [x, w]))
    fx.add("x", x)
    fx.add("w", w)
    if bias:
        fx.add("b", b)
    fx.add_pair("stride", stride)
    fx.add_pair("pad", pad)
    fx.add_pair("dilation", dilation)
    fx.add("g", g)
    fx.add("y", y)
    fx.add("dx", grads[0])
    fx.add("dw", grads[1])
    if bias:
        fx.add("db", grads[2])
    return fx


def conv_transpose2d_fixture(fname, n, ic, ih, iw, oc, kh, kw, stride, pad, output_padding,
                             dilation, groups, bias):
    begin()
    fx = Fixture(fname)
    x = torch.randn(n, ic, ih, iw, requires_grad=True)
    w = torch.randn(ic, oc // groups, kh, kw, requires_grad=True)
    b = torch.randn(oc, requires_grad=True) if bias else None
    y = F.conv_transpose2d(x, w, b, stride=stride, padding=pad, output_padding=output_padding,
                           groups=groups, dilation=dilation)
    g = upstream(y)
    grads = backward_with(y, g, *([x, w, b] if bias else [x, w]))
    fx.add("x", x)
    fx.add("w", w)
    if bias:
        fx.add("b", b)
    fx.add_pair("stride", stride)
    fx.add_pair("pad", pad)
    fx.add_pair("output_padding", output_padding)
    fx.add_pair("dilation", dilation)
    fx.add("groups", float(groups))
    fx.add("g", g)
    fx.add("y", y)
    fx.add("dx", grads[0])
    fx.add("dw", grads[1])
    if bias:
        fx.add("db", grads[2])
    return fx


def pool_fixture(fname, kind, shape, kernel, stride, pad):
    begin()
    fx = Fixture(fname)
    # randn is continuous, so max-pool windows have no ties and the argmax is unambiguous.
    x = torch.randn(*shape, requires_grad=True)
    if kind == "max":
        y = F.max_pool2d(x, kernel, stride, pad)
    else:
        y = F.avg_pool2d(x, kernel, stride, pad, ceil_mode=False, count_include_pad=True)
    g = upstream(y)
    (dx,) = backward_with(y, g, x)
    fx.add("x", x)
    fx.add_pair("kernel", (kernel, kernel))
    fx.add_pair("stride", (stride, stride))
    fx.add_pair("pad", (pad, pad))
    if kind == "avg":
        fx.add("count_include_pad", 1.0)
    fx.add("g", g)
    fx.add("y", y)
    fx.add("dx", dx)
    return fx


def linear_fixture():
    begin()
    fx = Fixture("linear.bin")
    x = torch.randn(3, 7, requires_grad=True)
    w = torch.randn(5, 7, requires_grad=True)
    b = torch.randn(5, requires_grad=True)
    y = F.linear(x, w, b)  # x w^T + b
    g = upstream(y)
    dx, dw, db = backward_with(y, g, x, w, b)
    for name, t in (("x", x), ("w", w), ("b", b), ("g", g), ("y", y),
                    ("dx", dx), ("dw", dw), ("db", db)):
        fx.add(name, t)
    return fx


def activations_fixture():
    begin()
    fx = Fixture("activations.bin")
    x = torch.randn(2, 3, 4, 5) * 3
    # ReLU's derivative at 0 is a convention; keep every input clearly off the kink.
    tiny = x.abs() < 1e-3
    x = torch.where(tiny, torch.where(x < 0, -1e-2, 1e-2), x)
    assert (x.abs() > 1e-3).all()
    x.requires_grad_(True)
    fx.add("x", x)
    fx.add("leaky_relu.negative_slope", 0.01)
    fns = (
        ("relu", torch.relu),
        ("leaky_relu", lambda t: F.leaky_relu(t, negative_slope=0.01)),
        ("sigmoid", torch.sigmoid),
        ("tanh", torch.tanh),
    )
    for name, fn in fns:
        y = fn(x)
        g = upstream(y)
        (dx,) = backward_with(y, g, x)
        fx.add(f"{name}.g", g)
        fx.add(f"{name}.y", y)
        fx.add(f"{name}.dx", dx)

    sx = torch.randn(4, 10, requires_grad=True)
    sy = torch.softmax(sx, dim=1)
    sg = upstream(sy)
    (sdx,) = backward_with(sy, sg, sx)
    fx.add("softmax.dim", 1.0)
    fx.add("softmax.x", sx)
    fx.add("softmax.g", sg)
    fx.add("softmax.y", sy)
    fx.add("softmax.dx", sdx)
    return fx


def more_activations_fixture():
    begin()
    fx = Fixture("gelu_silu_elu.bin")
    x = torch.randn(2, 3, 4, 5) * 3
    # ELU with alpha != 1 has a kink at 0; keep every input clearly off it.
    tiny = x.abs() < 1e-3
    x = torch.where(tiny, torch.where(x < 0, -1e-2, 1e-2), x)
    x.requires_grad_(True)
    fx.add("x", x)
    fx.add("elu.alpha", 1.0)
    fx.add("elu_a07.alpha", 0.7)
    fns = (
        ("gelu", lambda t: F.gelu(t, approximate="none")),
        ("silu", F.silu),
        ("elu", lambda t: F.elu(t, alpha=1.0)),
        ("elu_a07", lambda t: F.elu(t, alpha=0.7)),
    )
    for name, fn in fns:
        y = fn(x)
        g = upstream(y)
        (dx,) = backward_with(y, g, x)
        fx.add(f"{name}.g", g)
        fx.add(f"{name}.y", y)
        fx.add(f"{name}.dx", dx)
    return fx


def global_avgpool_fixture():
    begin()
    fx = Fixture("global_avgpool2d.bin")
    x = torch.randn(2, 3, 5, 4, requires_grad=True)
    y = F.adaptive_avg_pool2d(x, 1)  # (N, C, 1, 1)
    g = upstream(y)
    (dx,) = backward_with(y, g, x)
    for name, t in (("x", x), ("g", g), ("y", y), ("dx", dx)):
        fx.add(name, t)
    return fx


def batchnorm_fixture(fname, module, shape):
    """Training step, a second training step (running statistics only), then evaluation, from
    random affine parameters and random (non-default) running statistics. Channel c of x has
    mean c - 1 and scale 1 + c/2, so a statistic taken over the wrong axis shows."""
    begin()
    fx = Fixture(fname)
    c = shape[1]
    bn = module
    with torch.no_grad():
        bn.weight.copy_(torch.randn(c) * 0.5 + 1)
        bn.bias.copy_(torch.randn(c))
        bn.running_mean.copy_(torch.randn(c))
        bn.running_var.copy_(torch.rand(c) + 0.5)
    view = [1, c] + [1] * (len(shape) - 2)
    offsets = torch.arange(c, dtype=torch.float64).view(view)

    def batch():
        return (torch.randn(*shape) * (1 + offsets / 2) + offsets - 1).requires_grad_(True)

    fx.add("eps", bn.eps)
    fx.add("momentum", bn.momentum)
    fx.add("weight", bn.weight)
    fx.add("bias", bn.bias)
    fx.add("running_mean0", bn.running_mean)
    fx.add("running_var0", bn.running_var)

    bn.train()
    x = batch()
    y = bn(x)
    g = upstream(y)
    dx, dw, db = backward_with(y, g, x, bn.weight, bn.bias)
    for name, t in (("x", x), ("train.g", g), ("train.y", y), ("train.dx", dx),
                    ("train.dweight", dw), ("train.dbias", db),
                    ("train.running_mean", bn.running_mean), ("train.running_var", bn.running_var)):
        fx.add(name, t)

    x2 = batch()
    bn(x2)
    fx.add("x2", x2)
    fx.add("train2.running_mean", bn.running_mean)
    fx.add("train2.running_var", bn.running_var)

    bn.eval()
    saved = (bn.running_mean.clone(), bn.running_var.clone())
    y = bn(x)
    g = upstream(y)
    dx, dw, db = backward_with(y, g, x, bn.weight, bn.bias)
    for name, t in (("eval.g", g), ("eval.y", y), ("eval.dx", dx), ("eval.dweight", dw),
                    ("eval.dbias", db)):
        fx.add(name, t)
    # Evaluation leaves the running statistics alone.
    assert torch.equal(bn.running_mean, saved[0]) and torch.equal(bn.running_var, saved[1])
    return fx


# ---------------------------------------------------------------------------------------------
# Losses

def cross_entropy_fixture():
    begin()
    fx = Fixture("cross_entropy.bin")
    for prefix, scale in (("", 4.0), ("big.", 1000.0)):
        logits = (torch.randn(5, 10) * scale).requires_grad_(True)
        labels = torch.randint(0, 10, (5,))
        loss = F.cross_entropy(logits, labels, reduction="mean")
        (dlogits,) = torch.autograd.grad(loss, (logits,))
        assert torch.isfinite(loss) and torch.isfinite(dlogits).all()
        fx.add(prefix + "logits", logits)
        fx.add(prefix + "labels", labels.to(torch.float64))
        fx.add(prefix + "loss", loss)
        fx.add(prefix + "dlogits", dlogits)
    return fx


def mse_fixture():
    begin()
    fx = Fixture("mse.bin")
    pred = torch.randn(4, 3, requires_grad=True)
    target = torch.randn(4, 3)
    loss = F.mse_loss(pred, target, reduction="mean")  # mean over all 12 elements
    (dpred,) = torch.autograd.grad(loss, (pred,))
    fx.add("pred", pred)
    fx.add("target", target)
    fx.add("loss", loss)
    fx.add("dpred", dpred)
    return fx


def regression_losses_fixture():
    # MSE, L1 and Huber (two deltas) under both reductions, on targets some of which the
    # prediction hits exactly (L1's gradient is 0 there) and errors on both sides of each delta;
    # and MSE on one-hot targets made from labels (a classifier trained by MSE).
    begin()
    fx = Fixture("regression_losses.bin")
    pred = torch.randn(4, 3) * 2
    target = torch.randn(4, 3)
    target[1, 2] = pred[1, 2]
    fx.add("pred", pred)
    fx.add("target", target)
    losses = {"mse": lambda p, t, r: F.mse_loss(p, t, reduction=r),
              "l1": lambda p, t, r: F.l1_loss(p, t, reduction=r),
              "huber1": lambda p, t, r: F.huber_loss(p, t, reduction=r, delta=1.0),
              "huber0.3": lambda p, t, r: F.huber_loss(p, t, reduction=r, delta=0.3)}
    for name, fn in losses.items():
        for reduction in ("mean", "sum"):
            p = pred.clone().requires_grad_(True)
            loss = fn(p, target, reduction)
            (dpred,) = torch.autograd.grad(loss, (p,))
            fx.add(f"{name}.{reduction}.loss", loss)
            fx.add(f"{name}.{reduction}.dpred", dpred)
    logits = torch.randn(5, 4, requires_grad=True)
    labels = torch.randint(0, 4, (5,))
    loss = F.mse_loss(logits, F.one_hot(labels, 4).to(logits.dtype))
    (dlogits,) = torch.autograd.grad(loss, (logits,))
    fx.add("onehot.logits", logits)
    fx.add("onehot.labels", labels.to(torch.float64))
    fx.add("onehot.loss", loss)
    fx.add("onehot.dlogits", dlogits)
    return fx


# ---------------------------------------------------------------------------------------------
# Optimizers

OPTIM_STEPS = 5
OPTIM_SIZE = 10

# (config, optimizer type, hyperparameters). foreach=False pins torch's single-tensor code path,
# whose operation order the NumPy restatement below (and the C++ optimizers) follow.
OPTIM_CONFIGS = (
    ("sgd", "sgd", dict(lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0)),
    ("sgd_momentum", "sgd",
     dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0)),
    ("sgd_dampening", "sgd",
     dict(lr=0.1, momentum=0.9, dampening=0.3, nesterov=False, weight_decay=0.0)),
    ("sgd_nesterov_wd", "sgd",
     dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.01)),
    ("adam", "adam", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)),
    ("adam_wd_amsgrad_off", "adam",
     dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("adamw", "adamw", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)),
    ("rmsprop", "rmsprop",
     dict(lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0)),
    ("rmsprop_centered_momentum_wd", "rmsprop",
     dict(lr=0.01, alpha=0.9, eps=1e-6, momentum=0.9, centered=True, weight_decay=0.01)),
)


def make_torch_optimizer(kind, params, hp):
    if kind == "sgd":
        return torch.optim.SGD(params, foreach=False, **hp)
    if kind == "adam":
        return torch.optim.Adam(params, amsgrad=False, foreach=False, **hp)
    if kind == "adamw":
        return torch.optim.AdamW(params, amsgrad=False, foreach=False, **hp)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, foreach=False, **hp)
    raise ValueError(kind)


def restate_optimizer(kind, hp, p0, grads):
    """The update rules written out in NumPy, as the C++ side implements them. Checked against
    torch so a torch upgrade that changes the rules is caught when fixtures are regenerated."""
    p = p0.copy()
    out = []
    buf = None
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    gavg = np.zeros_like(p)
    for k, grad in enumerate(grads):
        t = k + 1
        if kind == "sgd":
            d = grad + hp["weight_decay"] * p
            if hp["momentum"] != 0:
                # First step seeds the buffer with the gradient itself: no dampening.
                buf = d.copy() if buf is None else hp["momentum"] * buf + (1 - hp["dampening"]) * d
                d = d + hp["momentum"] * buf if hp["nesterov"] else buf
            p = p - hp["lr"] * d
        elif kind in ("adam", "adamw"):
            b1, b2 = hp["betas"]
            if kind == "adamw":
                p = p * (1 - hp["lr"] * hp["weight_decay"])
                d = grad
            else:
                d = grad + hp["weight_decay"] * p
            m = b1 * m + (1 - b1) * d
            v = b2 * v + (1 - b2) * d * d
            denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + hp["eps"]
            p = p - (hp["lr"] / (1 - b1 ** t)) * m / denom
        elif kind == "rmsprop":
            a = hp["alpha"]
            d = grad + hp["weight_decay"] * p
            v = a * v + (1 - a) * d * d
            if hp["centered"]:
                gavg = a * gavg + (1 - a) * d
                avg = np.sqrt(v - gavg * gavg) + hp["eps"]
            else:
                avg = np.sqrt(v) + hp["eps"]
            if hp["momentum"] > 0:
                buf = np.zeros_like(p) if buf is None else buf
                buf = hp["momentum"] * buf + d / avg
                p = p - hp["lr"] * buf
            else:
                p = p - hp["lr"] * d / avg
        out.append(p.copy())
    return np.stack(out)


def store_hyperparameters(fx, prefix, kind, hp):
    fx.add(prefix + "lr", hp["lr"])
    fx.add(prefix + "weight_decay", hp["weight_decay"])
    if kind == "sgd":
        fx.add(prefix + "momentum", hp["momentum"])
        fx.add(prefix + "dampening", hp["dampening"])
        fx.add(prefix + "nesterov", 1.0 if hp["nesterov"] else 0.0)
    elif kind in ("adam", "adamw"):
        fx.add(prefix + "beta1", hp["betas"][0])
        fx.add(prefix + "beta2", hp["betas"][1])
        fx.add(prefix + "eps", hp["eps"])
        fx.add(prefix + "amsgrad", 0.0)
        # Adam adds weight_decay * p to the gradient; AdamW scales p by (1 - lr * wd) instead.
        fx.add(prefix + "decoupled_weight_decay", 1.0 if kind == "adamw" else 0.0)
    elif kind == "rmsprop":
        fx.add(prefix + "alpha", hp["alpha"])
        fx.add(prefix + "eps", hp["eps"])
        fx.add(prefix + "momentum", hp["momentum"])
        fx.add(prefix + "centered", 1.0 if hp["centered"] else 0.0)


def optim_fixture():
    begin()
    fx = Fixture("optim.bin")
    for config, kind, hp in OPTIM_CONFIGS:
        prefix = config + "."
        p0 = torch.randn(OPTIM_SIZE)
        grads = torch.randn(OPTIM_STEPS, OPTIM_SIZE)
        p = p0.clone().requires_grad_(True)
        opt = make_torch_optimizer(kind, [p], hp)
        params = []
        for k in range(OPTIM_STEPS):
            opt.zero_grad()
            p.grad = grads[k].clone()
            opt.step()
            params.append(p.detach().clone())
        params = torch.stack(params)
        ref = restate_optimizer(kind, hp, p0.numpy(), grads.numpy())
        err = np.abs(ref - params.numpy()).max()
        if err > 1e-12:
            raise AssertionError(f"optim {config}: torch differs from the restated rule by {err}")
        fx.add(prefix + "p0", p0)
        fx.add(prefix + "grads", grads)
        fx.add(prefix + "params", params)
        store_hyperparameters(fx, prefix, kind, hp)
    return fx


# ---------------------------------------------------------------------------------------------
# LeNet end to end

def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),  # 0
        nn.ReLU(),                      # 1
        nn.MaxPool2d(2),                # 2
        nn.Conv2d(6, 16, 5),            # 3
        nn.ReLU(),                      # 4
        nn.MaxPool2d(2),                # 5
        nn.Flatten(),                   # 6
        nn.Linear(400, 120),            # 7
        nn.ReLU(),                      # 8
        nn.Linear(120, 84),             # 9
        nn.ReLU(),                      # 10
        nn.Linear(84, 10),              # 11
    )


def lenet_params(model):
    # named_parameters() yields "7.weight" etc.; the file uses "layer7.weight".
    return [("layer" + name, p) for name, p in model.named_parameters()]


def lenet_fixture():
    begin()
    fx = Fixture("lenet.bin")
    model = lenet()  # default PyTorch init, drawn from the seeded generator
    x = torch.rand(2, 1, 28, 28)
    labels = torch.randint(0, 10, (2,))
    fx.add("x", x)
    fx.add("labels", labels.to(torch.float64))
    for name, p in lenet_params(model):
        fx.add(name, p)
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    fx.add("logits", logits)
    fx.add("loss", loss)
    for name, p in lenet_params(model):
        fx.add(name + ".grad", p.grad)

    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, foreach=False)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        step_loss = F.cross_entropy(model(x), labels)
        step_loss.backward()
        opt.step()
        losses.append(step_loss.item())
    # The first training step starts from the stored parameters, so it sees the stored loss.
    assert losses[0] == loss.item()
    fx.add("sgd.lr", 0.05)
    fx.add("sgd.momentum", 0.9)
    fx.add("sgd.losses", losses)
    for name, p in lenet_params(model):
        fx.add("sgd." + name, p)
    return fx


# ---------------------------------------------------------------------------------------------
# resnet-small end to end: a graph with BatchNorm, residual Adds and strided projections

class ConvBn(nn.Module):
    def __init__(self, cin, cout, kernel, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class BasicBlock(nn.Module):
    """Module names match convnet's node names: stage2.0.conv1, stage2.0.shortcut.bn, ..."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = ConvBn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class ResNetSmall(nn.Module):
    def __init__(self, cin=1, classes=10, width=32):
        super().__init__()
        w = width
        self.stem = ConvBn(cin, w, 3, 1)
        self.stage1 = nn.Sequential(BasicBlock(w, w, 1), BasicBlock(w, w, 1))
        self.stage2 = nn.Sequential(BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 2 * w, 1))
        self.stage3 = nn.Sequential(BasicBlock(2 * w, 4 * w, 2), BasicBlock(4 * w, 4 * w, 1))
        self.fc = nn.Linear(4 * w, classes)

    def forward(self, x):
        x = self.stage3(self.stage2(self.stage1(torch.relu(self.stem(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def concat_graph_fixture():
    """A small graph with a channel concatenation and a node read twice:
    a = conv3x3(x); b = tanh(conv1x1(x)); y = conv1x1(cat(a, b, a)), every gradient."""
    begin()
    fx = Fixture("concat_graph.bin")
    x = torch.randn(2, 3, 5, 4, requires_grad=True)
    wa = torch.randn(4, 3, 3, 3, requires_grad=True)
    ba = torch.randn(4, requires_grad=True)
    wb = torch.randn(2, 3, 1, 1, requires_grad=True)
    bb = torch.randn(2, requires_grad=True)
    wy = torch.randn(3, 10, 1, 1, requires_grad=True)
    by = torch.randn(3, requires_grad=True)
    a = F.conv2d(x, wa, ba, padding=1)
    b = torch.tanh(F.conv2d(x, wb, bb))
    y = F.conv2d(torch.cat([a, b, a], dim=1), wy, by)
    g = upstream(y)
    grads = backward_with(y, g, x, wa, ba, wb, bb, wy, by)
    for name, t in [("x", x), ("a.weight", wa), ("a.bias", ba), ("b.weight", wb), ("b.bias", bb),
                    ("y.weight", wy), ("y.bias", by), ("g", g), ("y", y)]:
        fx.add(name, t)
    for name, d in zip(["dx", "a.weight.grad", "a.bias.grad", "b.weight.grad", "b.bias.grad",
                        "y.weight.grad", "y.bias.grad"], grads):
        fx.add(name, d)
    return fx


def resnet_fixture():
    begin()
    fx = Fixture("resnet_small.bin")
    model = ResNetSmall(width=16)  # the built-in is 32; 16 keeps the file small
    # Non-trivial BatchNorm affine parameters, so their gradients are not all alike.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    x = torch.randn(4, 1, 12, 12)
    labels = torch.randint(0, 10, (4,))
    fx.add("x", x)
    fx.add("labels", labels.to(torch.float64))
    for name, p in model.named_parameters():
        fx.add(name, p)
    model.train()
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    fx.add("logits", logits)
    fx.add("loss", loss)
    for name, p in model.named_parameters():
        fx.add(name + ".grad", p.grad)
    for name, b in model.named_buffers():
        if "running" in name:
            fx.add("after1." + name, b)

    # Two more Adam steps from the stored state (the first forward above already moved the
    # running statistics once, as convnet's first train_step will), then evaluation.
    opt = torch.optim.Adam(model.parameters(), lr=0.01, foreach=False)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        step_loss = F.cross_entropy(model(x), labels)
        step_loss.backward()
        opt.step()
        losses.append(step_loss.item())
    fx.add("adam.lr", 0.01)
    fx.add("adam.losses", losses)
    # The final weights are checked through eval_logits, which depend on every one of them
    # (storing them all would double the file).
    for name, b in model.named_buffers():
        if "running" in name:
            fx.add("adam." + name, b)
    model.eval()
    with torch.no_grad():
        fx.add("eval_logits", model(x))
    return fx


# ---------------------------------------------------------------------------------------------

def lr_schedule_fixture():
    """Learning rates of torch.optim.lr_scheduler: per epoch (what the optimizer holds while the
    epoch trains, after `epoch` scheduler steps), or per step for OneCycleLR. Each case stores
    its settings beside the rates, so the test builds the same schedule."""
    from torch.optim import lr_scheduler as S
    fx = Fixture("lr_schedules.bin")

    def run(name, lr0, count, make, settings):
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr0)
        sched = make(opt)
        rates = []
        for _ in range(count):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        fx.add(name + ".lr0", np.array(lr0))
        for key, value in settings.items():
            fx.add(name + "." + key, np.array(value, dtype=np.float64))
        fx.add(name + ".rates", np.array(rates))

    run("step", 0.1, 10, lambda o: S.StepLR(o, step_size=3, gamma=0.5),
        {"step_size": 3, "gamma": 0.5})
    run("multistep", 0.1, 10, lambda o: S.MultiStepLR(o, milestones=[2, 5, 8], gamma=0.1),
        {"milestones": [2, 5, 8], "gamma": 0.1})
    run("exponential", 0.05, 10, lambda o: S.ExponentialLR(o, gamma=0.8), {"gamma": 0.8})
    run("cosine", 0.1, 14, lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
        {"t_max": 10, "min_lr": 0.001})
    run("cosine_run", 0.001, 8, lambda o: S.CosineAnnealingLR(o, T_max=8), {"t_max": 8})
    run("onecycle", 0.01, 3 * 7,
        lambda o: S.OneCycleLR(o, max_lr=0.01, epochs=3, steps_per_epoch=7, pct_start=0.3,
                               div_factor=25.0, final_div_factor=1e4, cycle_momentum=False),
        {"epochs": 3, "steps_per_epoch": 7, "pct_start": 0.3, "div_factor": 25.0,
         "final_div_factor": 1e4})
    run("warmup_cosine", 0.1, 10,
        lambda o: S.ChainedScheduler([S.LinearLR(o, start_factor=0.25, total_iters=3),
                                      S.CosineAnnealingLR(o, T_max=10)]),
        {"warmup_epochs": 3, "warmup_start": 0.25, "t_max": 10})
    run("warmup_step", 0.1, 8,
        lambda o: S.ChainedScheduler([S.LinearLR(o, start_factor=1.0 / 3, total_iters=2),
                                      S.StepLR(o, step_size=3, gamma=0.5)]),
        {"warmup_epochs": 2, "warmup_start": 1.0 / 3, "step_size": 3, "gamma": 0.5})
    return fx


def all_fixtures():
    yield conv2d_fixture("conv2d_basic.bin", 2, 3, 7, 6, 4, 3, 3, (1, 1), (1, 1), (1, 1), True)
    yield conv2d_fixture("conv2d_stride_pad_nonsquare.bin",
                         1, 2, 9, 8, 3, 3, 2, (2, 3), (2, 1), (1, 1), True)
    yield conv2d_fixture("conv2d_dilation_nobias.bin",
                         3, 2, 8, 8, 2, 3, 3, (1, 1), (1, 0), (2, 1), False)
    yield pool_fixture("maxpool2d_k2s2.bin", "max", (2, 3, 6, 6), 2, 2, 0)
    yield pool_fixture("maxpool2d_k3s2p1.bin", "max", (1, 2, 7, 7), 3, 2, 1)
    yield pool_fixture("avgpool2d_k2s2.bin", "avg", (2, 3, 6, 6), 2, 2, 0)
    yield pool_fixture("avgpool2d_k3s2p1.bin", "avg", (1, 2, 7, 7), 3, 2, 1)
    yield linear_fixture()
    yield activations_fixture()
    yield more_activations_fixture()
    yield global_avgpool_fixture()
    yield batchnorm_fixture("batchnorm2d.bin", nn.BatchNorm2d(3), (4, 3, 5, 6))
    yield batchnorm_fixture("batchnorm1d.bin", nn.BatchNorm1d(5, eps=1e-3, momentum=0.2), (6, 5))
    yield batchnorm_fixture("batchnorm1d_ncl.bin", nn.BatchNorm1d(2), (3, 2, 4))
    yield cross_entropy_fixture()
    yield mse_fixture()
    yield regression_losses_fixture()
    yield optim_fixture()
    yield lenet_fixture()
    yield conv2d_fixture("conv2d_groups2.bin", 2, 4, 6, 5, 6, 3, 3, (1, 1), (1, 1), (1, 1), True,
                         groups=2)
    yield conv2d_fixture("conv2d_depthwise_mult2.bin", 2, 3, 7, 7, 6, 3, 3, (2, 2), (1, 1), (1, 1),
                         True, groups=3)
    yield conv_transpose2d_fixture("conv_transpose2d_s2_op1.bin", 2, 3, 4, 5, 2, 3, 3, (2, 2),
                                   (1, 1), (1, 1), (1, 1), 1, True)
    yield conv_transpose2d_fixture("conv_transpose2d_groups_dilation.bin", 1, 4, 3, 4, 6, 3, 2,
                                   (1, 2), (0, 1), (0, 1), (2, 1), 2, False)
    yield resnet_fixture()
    yield concat_graph_fixture()
    yield lr_schedule_fixture()


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description="Generate convnet's golden test fixtures.")
    parser.add_argument("--out", default=os.path.join(root, "tests", "golden", "fixtures"))
    parser.add_argument("--only", nargs="*", default=None,
                        help="write only these files (e.g. lr_schedules.bin)")
    args = parser.parse_args()

    torch.set_default_dtype(torch.float64)
    # One thread: CPU reductions may split differently with more, which would change the
    # last bits and make regenerated files differ.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    os.makedirs(args.out, exist_ok=True)
    total = 0
    for fx in all_fixtures():
        if args.only is not None and fx.name not in args.only:
            continue
        path = fx.write(args.out)
        size = os.path.getsize(path)
        total += size
        print(f"{fx.name:36s} {len(fx.tensors):4d} tensors {size:9d} bytes")
    print(f"total {total} bytes in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
