"""SamAutomaticMaskGenerator through the Python API against every segment-everything case of the
sam-tiny fixture (tests/data/amg), by the fixture's matching rule: >= 99% of the reference records
matched one-to-one by a record with mask IoU >= 0.98, equal point_coords and crop_box; <= 1% of
ours unmatched."""

import numpy as np
import pytest

import sam_cpp
from conftest import DATA, RECORD_KEYS, image_of, match_records, read_json
from sam_cpp.utils.amg import area_from_rle, coco_encode_rle, rle_to_mask

AMG_CASES = ["groceries_grid12.json.gz", "groceries_default_nms.json", "dog_crops.json", "groceries_min_region.json",
             "truck_seed_settings.json"]


@pytest.mark.parametrize("file", AMG_CASES)
def test_generate_matches_reference(tiny_sam, file):
    ref = read_json(DATA / "amg" / file)
    gen = sam_cpp.SamAutomaticMaskGenerator(tiny_sam, output_mode="coco_rle", **ref["params"])
    ours = gen.generate(image_of(ref["image"]))
    assert isinstance(ours, list)
    for r in ours:
        assert set(r) == RECORD_KEYS
        assert isinstance(r["segmentation"]["counts"], str)
        assert isinstance(r["area"], int) and isinstance(r["predicted_iou"], float)
        assert all(isinstance(v, int) for v in r["bbox"] + r["crop_box"])
    pairs = match_records(ours, ref["annotations"], digits=4)
    for o, a in pairs:
        assert abs(o["area"] - a["area"]) <= 0.02 * a["area"] + 1
    matched = len(pairs)
    worst = max((abs(o["predicted_iou"] - a["predicted_iou"]) for o, a in pairs), default=0.0)
    n_ref = len(ref["annotations"])
    assert n_ref == ref["num_masks"]
    assert matched >= 0.99 * n_ref, f"{file}: matched {matched} of {n_ref}"
    assert len(ours) - matched <= 0.01 * len(ours), f"{file}: {len(ours) - matched} of {len(ours)} unmatched"
    assert worst <= 1e-3


def test_every_fixture_case_is_covered(manifest):
    names = {c["file"].split("/")[-1] for c in manifest["amg"]}
    assert names == {f.removesuffix(".gz") for f in AMG_CASES}


def test_output_modes_agree(tiny_sam):
    params = dict(points_per_side=6, pred_iou_thresh=0.0, stability_score_thresh=0.5)
    image = image_of("synthetic")
    binary = sam_cpp.SamAutomaticMaskGenerator(tiny_sam, **params).generate(image)
    unc = sam_cpp.SamAutomaticMaskGenerator(tiny_sam, output_mode="uncompressed_rle", **params).generate(image)
    coco = sam_cpp.SamAutomaticMaskGenerator(tiny_sam, output_mode="coco_rle", **params).generate(image)
    assert len(binary) == len(unc) == len(coco) > 0
    for b, u, c in zip(binary, unc, coco):
        seg = b["segmentation"]
        assert seg.dtype == np.bool_ and seg.shape == image.shape[:2]
        assert u["segmentation"]["size"] == [image.shape[0], image.shape[1]]
        np.testing.assert_array_equal(rle_to_mask(u["segmentation"]), seg)
        assert coco_encode_rle(u["segmentation"]) == c["segmentation"]
        assert b["area"] == int(seg.sum()) == area_from_rle(u["segmentation"])
        for k in RECORD_KEYS - {"segmentation"}:
            assert b[k] == u[k] == c[k]


def test_point_grids_instead_of_points_per_side(tiny_sam):
    from sam_cpp.utils.amg import build_point_grid

    image = image_of("synthetic")
    params = dict(pred_iou_thresh=0.0, stability_score_thresh=0.5)
    a = sam_cpp.SamAutomaticMaskGenerator(tiny_sam, points_per_side=5, **params).generate(image)
    b = sam_cpp.SamAutomaticMaskGenerator(tiny_sam, points_per_side=None, point_grids=[build_point_grid(5)],
                                          **params).generate(image)
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["segmentation"], y["segmentation"])


def test_nothing_surviving_is_an_empty_list(tiny_sam):
    gen = sam_cpp.SamAutomaticMaskGenerator(tiny_sam, points_per_side=4, pred_iou_thresh=1e9)
    assert gen.generate(image_of("synthetic")) == []
