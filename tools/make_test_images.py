#!/usr/bin/python3
"""Writes the small image folders the data tests read (tests/data/images*), deterministically.

Three classes of 12x10 (width x height) pictures drawn from a seeded generator: "disc" (a bright
disc), "bar" (a vertical bar) and "stripes" (horizontal stripes), as RGB PNG; plus one grey PGM and
one JPEG, a text file the loader must skip, and a folder of broken files for the error tests.
PNG and PGM are written with the standard library only; the JPEG needs Pillow (python3-pil), and
is left out with a message where it is missing. Run from the repository root:
    /usr/bin/python3 tools/make_test_images.py
"""
import os
import random
import struct
import zlib

ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "data")
W, H = 12, 10


def png_bytes(pixels, channels):
    """pixels: rows of (r, g, b) or grey values."""
    color_type = 2 if channels == 3 else 0
    raw = b""
    for row in pixels:
        raw += b"\x00"  # filter: none
        for p in row:
            raw += bytes(p) if channels == 3 else bytes([p])

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", len(pixels[0]), len(pixels), 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def draw(kind, rng):
    rows = []
    cx, cy = rng.randint(4, 7), rng.randint(3, 6)
    for y in range(H):
        row = []
        for x in range(W):
            if kind == "disc":
                on = (x - cx) ** 2 + (y - cy) ** 2 <= 9
            elif kind == "bar":
                on = abs(x - cx) <= 1
            else:
                on = (y + cy) % 4 < 2
            base = 200 if on else 30
            row.append(tuple(max(0, min(255, base + rng.randint(-20, 20) + 10 * c)) for c in range(3)))
        rows.append(row)
    return rows


def main():
    rng = random.Random(7)
    folder = os.path.join(ROOT, "images")
    for kind in ("bar", "disc", "stripes"):
        os.makedirs(os.path.join(folder, kind), exist_ok=True)
        for i in range(4):
            with open(os.path.join(folder, kind, f"{kind}_{i}.png"), "wb") as f:
                f.write(png_bytes(draw(kind, rng), 3))
    # A grey PGM (P5) in "bar": value 17 everywhere except a known pixel.
    grey = [[17] * W for _ in range(H)]
    grey[2][3] = 250
    with open(os.path.join(folder, "bar", "bar_grey.pgm"), "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (W, H) + bytes(v for row in grey for v in row))
    with open(os.path.join(folder, "disc", "README.txt"), "w") as f:
        f.write("not an image: the loader skips files without an image extension\n")
    try:
        from PIL import Image
        img = Image.new("RGB", (W, H))
        img.putdata([p for row in draw("stripes", rng) for p in row])
        img.save(os.path.join(folder, "stripes", "stripes_jpeg.jpg"), quality=95)
    except ImportError:
        print("python3-pil missing: no JPEG written")

    bad = os.path.join(ROOT, "images_bad", "broken")
    os.makedirs(bad, exist_ok=True)
    good = png_bytes(draw("disc", rng), 3)
    with open(os.path.join(bad, "truncated.png"), "wb") as f:
        f.write(good[: len(good) // 2])
    empty = os.path.join(ROOT, "images_empty_class", "nothing")
    os.makedirs(os.path.join(ROOT, "images_empty_class", "something"), exist_ok=True)
    os.makedirs(empty, exist_ok=True)
    with open(os.path.join(ROOT, "images_empty_class", "something", "a.png"), "wb") as f:
        f.write(png_bytes(draw("bar", rng), 3))
    with open(os.path.join(empty, ".keep"), "w") as f:
        f.write("")


if __name__ == "__main__":
    main()
