"""Shared fixtures of the sam_cpp tests: the sam-tiny test model and its reference outputs
(tests/data, copied from the fixture set; README there gives the tolerances used here)."""

import gzip
import json
import pathlib

import numpy as np
import pytest

import sam_cpp

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
