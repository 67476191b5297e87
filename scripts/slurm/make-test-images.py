#!/usr/bin/env python3
"""Writes N small PNG images (64x48, a few coloured rectangles on a gradient, seeded) for the
Slurm test: make-test-images.py N FOLDER. Standard library only."""
import random
import struct
import sys
import zlib
from pathlib import Path


def png(width, height, rgb):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb[y * width * 3:(y + 1) * width * 3]) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def image(rng, width=64, height=48):
    pixels = [0] * (width * height * 3)
    for y in range(height):
        for x in range(width):
            i = (y * width + x) * 3
            pixels[i:i + 3] = [x * 4 % 256, y * 5 % 256, 128]
    for _ in range(rng.randint(2, 5)):
        x0, y0 = rng.randrange(width - 8), rng.randrange(height - 8)
        x1, y1 = rng.randint(x0 + 4, width), rng.randint(y0 + 4, height)
        colour = [rng.randrange(256) for _ in range(3)]
        for y in range(y0, y1):
            for x in range(x0, x1):
                i = (y * width + x) * 3
                pixels[i:i + 3] = colour
    return png(width, height, pixels)


def main():
    n, folder = int(sys.argv[1]), Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(14)
    for k in range(n):
        (folder / f"img_{k:03d}.png").write_bytes(image(rng))


if __name__ == "__main__":
    main()
