#!/usr/bin/env python3
"""SAM 2.1 on CPU: this project's `sam` against the official package, same weights, same input,
same thread count, in one run.

Builds the full-size model of the given config with seeded random weights (the fixture
script's randomisation), saves it as an official checkpoint in a temporary folder, then times
  - image encoding: the official SAM2ImagePredictor.set_image against `sam embed` (both include
    preprocessing; `sam embed` prints its encode time apart from loading and decoding the file);
  - one click (one point, multimask, masks at the image size): predictor.predict against
    `sam predict --embedding` (decode + upsample);
  - optionally segment-everything with default settings: SAM2AutomaticMaskGenerator.generate
    against `sam amg`;
and prints the minimum over the repetitions, the ratios, and each side's peak RSS.

Usage (the venv of scripts/make_sam2_fixture.py):
  /work/venv-sam2/bin/python scripts/bench_sam2_vs_official.py --size tiny --threads 2 \
      --image assets/images/truck.jpg --sam build/sam [--amg] [--reps 3]
"""
import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_sam2_fixture as fx  # noqa: E402
from sam2.sam2_image_predictor import SAM2ImagePredictor  # noqa: E402
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator  # noqa: E402

CONFIGS = {k: v for k, v in fx.FULL_CONFIGS.items() if "2.0" not in k}


SAM_MAX_RSS_KB = [0]


def run_sam(args, pattern):
    """Runs the CLI (under /usr/bin/time for its own peak RSS: a forked child's ru_maxrss would
    count the Python parent's pages) and returns the number its stderr reports."""
    p = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M"] + args, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("sam failed: " + " ".join(args) + "\n" + p.stderr)
    m = re.search(pattern, p.stderr)
    r = re.search(r"maxrss_kb=([0-9]+)", p.stderr)
    if not m or not r:
        sys.exit("no timing in: " + p.stderr)
    SAM_MAX_RSS_KB[0] = max(SAM_MAX_RSS_KB[0], int(r.group(1)))
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="tiny", choices=sorted(CONFIGS))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--image", default="assets/images/truck.jpg")
    ap.add_argument("--sam", default="build/sam")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--amg", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    model = fx.randomise(fx.build(CONFIGS[a.size], []), fx.SEED)
    img = np.array(Image.open(a.image).convert("RGB"))
    h, w = img.shape[:2]
    point = [w * 0.5, h * 0.5]
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, f"sam2.1_hiera_{a.size}_random.pt")
        torch.save({"model": model.state_dict()}, ckpt)
        common = ["-c", ckpt, "--model-type", a.size, "-t", str(a.threads)]

        pred = SAM2ImagePredictor(model)
        with torch.no_grad():
            pred.set_image(img)  # warm-up
            enc_py = min(timed(lambda: pred.set_image(img)) for _ in range(a.reps))
            pred.predict(point_coords=np.array([point], np.float32), point_labels=np.array([1]))
            click_py = min(timed(lambda: pred.predict(point_coords=np.array([point], np.float32),
                                                      point_labels=np.array([1]), multimask_output=True))
                           for _ in range(max(a.reps, 5)))
        emb = os.path.join(tmp, "emb.npy")
        enc_cpp = min(run_sam([a.sam, "embed", *common, "-i", a.image, "-o", emb], r"encode ([0-9.]+) ms") / 1e3
                      for _ in range(a.reps))
        out = os.path.join(tmp, "pred")
        click_cpp = min(run_sam([a.sam, "predict", *common, "-i", a.image, "--embedding", emb, "--point",
                                 f"{point[0]},{point[1]}", "--multimask", "-o", out],
                                r"decode \+ upsample ([0-9.]+) ms") / 1e3 for _ in range(max(a.reps, 5)))
        rows = [("encoder (set_image / sam embed)", enc_py, enc_cpp),
                ("one click (predict, multimask)", click_py, click_cpp)]
        if a.amg:
            gen = SAM2AutomaticMaskGenerator(model)
            t0 = time.perf_counter()
            with torch.no_grad():
                n_py = len(gen.generate(img))
            amg_py = time.perf_counter() - t0
            amg_cpp = run_sam([a.sam, "amg", *common, "-i", a.image, "-o", os.path.join(tmp, "amg"),
                               "--convert-to-rle"], r"masks in ([0-9.]+) s")
            rows.append((f"segment everything (defaults; official kept {n_py})", amg_py, amg_cpp))
        rss_py = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        rss_cpp = SAM_MAX_RSS_KB[0] / 2**20

    print(f"SAM 2.1 hiera {a.size}, random weights (seed {fx.SEED}), {a.image} ({w}x{h}), {a.threads} threads, "
          f"torch {torch.__version__}")
    print(f"{'':52s} {'official':>10s} {'sam':>10s} {'speed-up':>9s}")
    for name, py, cpp in rows:
        print(f"{name:52s} {py:9.3f}s {cpp:9.3f}s {py / cpp:8.2f}x")
    print(f"peak RSS: official (this process, model built in Python) {rss_py:.2f} GiB, sam (largest run) "
          f"{rss_cpp:.2f} GiB")


def timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
