#!/usr/bin/env python3
"""close_tensors.py A B TOLERANCE: every tensor of safetensors file A within TOLERANCE of B's,
relative (|a - b| <= TOLERANCE * max(|a|, |b|, 1e-3)); prints the worst and exits 1 if any is not.
Standard library only (float32 tensors)."""
import json
import struct
import sys


def tensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {t['dtype']}, not F32")
        begin, end = t["data_offsets"]
        out[name] = struct.unpack(f"<{(end - begin) // 4}f", body[begin:end])
    return out


a, b, tolerance = tensors(sys.argv[1]), tensors(sys.argv[2]), float(sys.argv[3])
if a.keys() != b.keys():
    sys.exit(f"the files hold other tensors: {sorted(a.keys() ^ b.keys())}")
worst, where, identical = 0.0, "", True
for name in a:
    for i, (x, y) in enumerate(zip(a[name], b[name])):
        identical &= x == y
        error = abs(x - y) / max(abs(x), abs(y), 1e-3)
        if error > worst:
            worst, where = error, f"{name}[{i}]: {x} against {y}"
print(f"{len(a)} tensors, largest relative difference {worst:.3g}"
      + (f" at {where}" if where else "") + (" (identical)" if identical else ""))
sys.exit(0 if worst <= tolerance else 1)
