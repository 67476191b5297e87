"""Shared fixtures of the sam_cpp tests: the sam-tiny test model and its reference outputs
(tests/data, copied from the fixture set; README there gives the tolerances used here)."""

import gzip
import json
import pathlib

import numpy as np
import pytest

import sam_cpp
from sam_cpp.utils.amg import coco_decode_rle, rle_to_mask

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
ASSETS = pathlib.Path(__file__).resolve().parents[2] / "assets" / "images"
CHECKPOINT = DATA / "sam_tiny.pth"
CONFIG = DATA / "config.json"

# Fixture tolerances (tests/data README, as tests/test_predictor.cpp applies them).
IOU_TOL = 1e-3
LOW_RES_TOL = 1e-2
LOW_RES_WITHIN_FRACTION = 0.99  # the random model is ill-conditioned at a few pixels
LOW_RES_MAX_TOL = 0.1
LOGIT_TOL = 1e-2
MIN_MASK_IOU = 0.99
EMBEDDING_REL_TOL = 1e-4


def read_json(path):
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def manifest():
    return read_json(DATA / "manifest.json")


@pytest.fixture(scope="session")
def tiny_sam():
    return sam_cpp.build_sam_from_config(CHECKPOINT, config=CONFIG)


def image_of(name):
    """The fixture's RGB image `name` (truck, dog, groceries, synthetic) as (H, W, 3) uint8."""
    return sam_cpp.read_image(str(DATA / "images" / f"{name}.png"))


def mask_iou(mask, png):
    ref = sam_cpp.read_image(str(png))[..., 0] > 127
    assert ref.shape == mask.shape, png
    union = np.logical_or(mask, ref).sum()
    return 1.0 if union == 0 else np.logical_and(mask, ref).sum() / union


# ---- segment-everything records (SamAutomaticMaskGenerator, SAM2AutomaticMaskGenerator) ----------
RECORD_KEYS = {"segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box"}


def record_mask(seg):
    """An (H, W) bool mask from a record's COCO RLE segmentation."""
    return rle_to_mask(coco_decode_rle(seg))


def match_records(ours, refs, digits):
    """The fixtures' matching rule for segment-everything records (COCO RLE segmentations): each
    reference record is matched, one to one, to one of ours with the same point (to `digits`
    decimals) and crop box and a mask IoU >= 0.98; of several, the closest in predicted_iou.
    Returns the (ours, reference) pairs matched; the tests check their fields and counts."""

    def key(rec):
        x, y = rec["point_coords"][0]
        return (f"{x:.{digits}f}", f"{y:.{digits}f}", tuple(int(v) for v in rec["crop_box"]))

    by_key = {}
    for i, r in enumerate(ours):
        by_key.setdefault(key(r), []).append(i)
    masks = {}
    used, pairs = set(), []
    for a in refs:
        candidates = [i for i in by_key.get(key(a), []) if i not in used]
        if not candidates:
            continue
        want = record_mask(a["segmentation"])
        best = None
        for i in candidates:
            if i not in masks:
                masks[i] = record_mask(ours[i]["segmentation"])
            union = np.logical_or(masks[i], want).sum()
            if union == 0 or np.logical_and(masks[i], want).sum() / union < 0.98:
                continue
            if best is None or abs(ours[i]["predicted_iou"] - a["predicted_iou"]) < abs(
                ours[best]["predicted_iou"] - a["predicted_iou"]
            ):
                best = i
        if best is not None:
            used.add(best)
            pairs.append((ours[best], a))
    return pairs
