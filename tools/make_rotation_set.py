#!/usr/bin/python3
# Builds a regression set from Fashion-MNIST, nothing downloaded: every image rotated about its
# centre by a random angle drawn uniformly from [-45, 45] degrees (counter-clockwise positive,
# bilinear interpolation, black outside the image), the target being the angle in degrees.
# Writes MNIST-format files that `convnet train --data OUT` reads as a regression set:
#   OUT/{train,t10k}-images-idx3-ubyte      the rotated images
#   OUT/{train,t10k}-targets-idx2-float     N x 1 angles (IDX type 0x0D, big-endian float32)
#   OUT/{train,t10k}-labels-idx1-ubyte      the original classes (kept for analysis)
# The same --seed gives the same bytes on any machine (NumPy's PCG64, float64 arithmetic).
# Usage: tools/make_rotation_set.py --out DIR [--data /usr/share/datasets/fashion-mnist]
#        [--seed 1] [--train-limit N] [--test-limit N] [--max-angle 45]
import argparse
import gzip
import os
import struct
import sys

import numpy as np


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise SystemExit(f"{path}: not an IDX file of unsigned bytes")
    rank = data[3]
    dims = struct.unpack(f">{rank}I", data[4:4 + 4 * rank])
    values = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank)
    if values.size != int(np.prod(dims)):
        raise SystemExit(f"{path}: {values.size} values for dims {dims}")
    return values.reshape(dims)


def find(folder, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise SystemExit(f"{folder}: missing {stem} (or {stem}.gz); on Debian: "
                     "apt-get install dataset-fashion-mnist")


def rotate(images, angles_deg):
    """Each image (N x H x W bytes) rotated counter-clockwise by its angle, bilinear."""
    n, h, w = images.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty_like(images)
    for i in range(n):
        t = np.deg2rad(angles_deg[i])
        c, s = np.cos(t), np.sin(t)
        # Output pixel p samples the source at R(-t) (p - centre) + centre; image rows grow
        # downwards, so a counter-clockwise turn on screen flips the sign of the sine.
        dx, dy = xs - cx, ys - cy
        sx = c * dx - s * dy + cx
        sy = s * dx + c * dy + cy
        x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
        fx, fy = sx - x0, sy - y0
        src = images[i].astype(np.float64)
        acc = np.zeros((h, w))
        for oy, wy in ((0, 1 - fy), (1, fy)):
            for ox, wx in ((0, 1 - fx), (1, fx)):
                yy, xx = y0 + oy, x0 + ox
                inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
                acc += np.where(inside, src[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0) * wy * wx
        out[i] = np.clip(np.rint(acc), 0, 255).astype(np.uint8)
    return out


def write_idx(path, array, type_code):
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape)
    body = array.astype(">f4").tobytes() if type_code == 0x0D else array.astype(np.uint8).tobytes()
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "xb") as f:  # a fresh name of this process's own, then one rename
        f.write(header + body)
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--train-limit", type=int, default=0)
    parser.add_argument("--test-limit", type=int, default=0)
    parser.add_argument("--max-angle", type=float, default=45.0)
    args = parser.parse_args()
    if not (0 < args.max_angle <= 180):
        raise SystemExit(f"--max-angle: expected degrees in (0, 180], got {args.max_angle}")
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.Generator(np.random.PCG64(args.seed))
    for split, limit in (("train", args.train_limit), ("t10k", args.test_limit)):
        images = read_idx(find(args.data, f"{split}-images-idx3-ubyte"))
        labels = read_idx(find(args.data, f"{split}-labels-idx1-ubyte"))
        if limit > 0:
            images, labels = images[:limit], labels[:limit]
        angles = rng.uniform(-args.max_angle, args.max_angle, size=images.shape[0])
        write_idx(os.path.join(args.out, f"{split}-images-idx3-ubyte"), rotate(images, angles), 0x08)
        write_idx(os.path.join(args.out, f"{split}-targets-idx2-float"),
                  angles.astype(np.float32).reshape(-1, 1), 0x0D)
        write_idx(os.path.join(args.out, f"{split}-labels-idx1-ubyte"), labels, 0x08)
        print(f"{split}: {images.shape[0]} images rotated by angles in "
              f"[{angles.min():.1f}, {angles.max():.1f}] degrees")
    return 0


if __name__ == "__main__":
    sys.exit(main())
