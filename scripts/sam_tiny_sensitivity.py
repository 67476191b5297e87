#!/usr/bin/env python3
"""How far the reference's own outputs move when its input moves by one float ulp.

Runs the official `segment_anything` predictor on the sam-tiny fixture (its checkpoint, image
embeddings and predict cases) twice: as the fixture was made, and with the image embedding
multiplied by (1 + 2^-23 * noise), noise uniform in [-1, 1] (about one float ulp). For each case
it prints how far the low-res logits and the fixture's sampled full-resolution logits move,
max and the fraction within 1e-2: the part of a parity test's tolerance that no summation
order can avoid.

    python scripts/sam_tiny_sensitivity.py ../shared/fixtures/sam-tiny [case ...] [--seeds N]

Needs torch and segment-anything (pip install torch segment-anything).
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import torch
from segment_anything.predictor import SamPredictor

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "python"))
from official_tiny import official_tiny_model  # noqa: E402


def mask_input_from(fixture, case_name):
    d = fixture / "predict" / case_name
    low, iou = np.load(d / "low_res.npy"), np.load(d / "iou.npy")
    return low.reshape(-1, *low.shape[-2:])[int(np.argmax(iou.reshape(-1)))][None]


def run_case(predictor, fixture, case, images, embedding):
    info = images[case["image"]]
    predictor.reset_image()
    predictor.features = torch.from_numpy(embedding)
    predictor.original_size = (info["height"], info["width"])
    predictor.input_size = tuple(info["input_size"])
    predictor.is_image_set = True
    p = case["prompt"]
    kwargs = dict(multimask_output=p["multimask_output"], return_logits=True)
    if "point_coords" in p:
        kwargs["point_coords"] = np.array(p["point_coords"], dtype=np.float32)
        kwargs["point_labels"] = np.array(p["point_labels"])
    if "box" in p:
        kwargs["box"] = np.array(p["box"], dtype=np.float32)
    if "mask_input" in p:
        kwargs["mask_input"] = mask_input_from(fixture, p["mask_input"])
    with torch.no_grad():
        logits, _, low = predictor.predict(**kwargs)
    return logits, low


def samples(case_dir, logits):
    prompt = json.loads((case_dir / "prompt.json").read_text())
    rows = prompt.get("logit_samples_row_col_values", [])
    return np.array([logits[i - 2, int(s[0]), int(s[1])] for s in rows for i in range(2, len(s))])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fixture", type=pathlib.Path)
    ap.add_argument("cases", nargs="*")
    ap.add_argument("--seeds", type=int, default=5)
    a = ap.parse_args()
    manifest = json.loads((a.fixture / "manifest.json").read_text())
    predictor = SamPredictor(official_tiny_model(a.fixture / "config.json", a.fixture / "sam_tiny.pth"))
    cases = [c for c in manifest["predict"] if not a.cases or c["name"] in a.cases and "boxes" not in c["prompt"]]
    for case in cases:
        if "boxes" in case["prompt"]:
            continue
        emb = np.load(a.fixture / manifest["images"][case["image"]]["embedding"])
        logits, low = run_case(predictor, a.fixture, case, manifest["images"], emb)
        ref_low = np.load(a.fixture / "predict" / case["name"] / "low_res.npy").reshape(low.shape)
        base_s = samples(a.fixture / "predict" / case["name"], logits)
        prompt = json.loads((a.fixture / "predict" / case["name"] / "prompt.json").read_text())
        ref_s = np.array([v for s in prompt.get("logit_samples_row_col_values", []) for v in s[2:]])
        print(f"{case['name']}: this torch against the fixture, same input: low-res max diff"
              f" {np.abs(low - ref_low).max():.3g}, sampled full-res max diff"
              f" {np.abs(base_s - ref_s).max() if ref_s.size else 0:.3g}")
        for seed in range(a.seeds):
            rng = np.random.default_rng(seed)
            noisy = (emb * (1 + 2.0**-23 * rng.uniform(-1, 1, emb.shape))).astype(np.float32)
            l2, low2 = run_case(predictor, a.fixture, case, manifest["images"], noisy)
            d_low, d_s = np.abs(low2 - low), np.abs(samples(a.fixture / "predict" / case["name"], l2) - base_s)
            print(f"  seed {seed}: low-res moves max {d_low.max():.3g}, {100 * np.mean(d_low <= 1e-2):.3f}% within 1e-2;"
                  f" sampled full-res max {d_s.max() if d_s.size else 0:.3g},"
                  f" {100 * np.mean(d_s <= 1e-2) if d_s.size else 100:.1f}% within 1e-2")


if __name__ == "__main__":
    main()
