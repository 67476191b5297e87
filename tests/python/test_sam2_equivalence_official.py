"""sam_cpp.sam2 against the official sam2 package (with torch), side by side on the SAM 2 test
model (tests/data/sam2): the same calls under the same names, every output compared. Runs when
sam2, torch and hydra are importable, e.g. in a venv made as docs/PYTHON.md says; skipped
otherwise."""

import numpy as np
import pytest

from conftest import DATA, image_of, read_json, record_mask
from sam_cpp.sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
from sam_cpp.sam2.build_sam import build_sam2
from sam_cpp.sam2.sam2_image_predictor import SAM2ImagePredictor

torch = pytest.importorskip("torch", reason="the official sam2 package needs torch (docs/PYTHON.md: equivalence test)")
pytest.importorskip("hydra", reason="the official sam2 package needs hydra-core (docs/PYTHON.md)")
official_build = pytest.importorskip("sam2.build_sam", reason="the official sam2 package is not installed (docs/PYTHON.md)")
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator as OfficialGenerator  # noqa: E402
from sam2.sam2_image_predictor import SAM2ImagePredictor as OfficialPredictor  # noqa: E402

SAM2 = DATA / "sam2"
CHECKPOINT = SAM2 / "sam2_reduced.pt"
# The fixture's tolerances (tests/data/sam2/README.md).
IOU_TOL, LOGIT_TOL, FEATURE_REL = 1e-5, 1e-4, 1e-4


def official_predictor(model):
    """The official predictor hard-codes the 1024 model's feature sizes; the test model (image
    size 256) has smaller ones. Same computation, this model's sizes (as the fixture script)."""
    p = OfficialPredictor(model)
    s = model.image_size // 4
    p._bb_feat_sizes = [(s, s), (s // 2, s // 2), (s // 4, s // 4)]
    return p


@pytest.fixture(scope="module")
def models():
    m = read_json(SAM2 / "manifest.json")
    torch.manual_seed(0)
    torch.set_num_threads(2)
    official = official_build.build_sam2(m["config"], str(CHECKPOINT), device="cpu", hydra_overrides_extra=list(m["overrides"]))
    ours = build_sam2(m["config"], CHECKPOINT, config=SAM2 / "config.json")
    return official, ours


PROMPTS = {
    "point": dict(point_coords=np.array([[400.0, 260.0]]), point_labels=np.array([1]), multimask_output=True),
    "point_single": dict(point_coords=np.array([[200.0, 300.0]]), point_labels=np.array([1]), multimask_output=False),
    "box_points": dict(point_coords=np.array([[300.0, 200.0], [600.0, 100.0]]), point_labels=np.array([1, 0]),
                       box=np.array([100.0, 50.0, 700.0, 480.0]), multimask_output=True),
    "normalized": dict(point_coords=np.array([[0.5, 0.5]]), point_labels=np.array([1]), multimask_output=True,
                       normalize_coords=False),
}


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_predictor_side_by_side(models, name):
    official, ours = models
    image = image_of("dog")
    a, b = official_predictor(official), SAM2ImagePredictor(ours)
    with torch.no_grad():
        a.set_image(image)
    b.set_image(image)
    for key in ("image_embed",):
        want = a._features[key].numpy()
        np.testing.assert_allclose(b._features[key], want, atol=FEATURE_REL * np.abs(want).max(), rtol=0)
    assert a._orig_hw == [tuple(x) for x in b._orig_hw]
    args = PROMPTS[name]
    with torch.no_grad():
        ma, ia, la = a.predict(**args, return_logits=True)
        mask_a = a.predict(**args)[0]
    mb, ib, lb = b.predict(**args, return_logits=True)
    mask_b = b.predict(**args)[0]
    assert mb.shape == ma.shape and mb.dtype == ma.dtype
    assert mask_b.shape == mask_a.shape and mask_b.dtype == mask_a.dtype  # float32 0/1, as official
    np.testing.assert_allclose(ib, ia, atol=IOU_TOL, rtol=0)
    np.testing.assert_allclose(lb, la, atol=LOGIT_TOL, rtol=0)
    np.testing.assert_allclose(mb, ma, atol=LOGIT_TOL, rtol=0)
    sure = np.abs(ma) > LOGIT_TOL
    np.testing.assert_array_equal(mask_b[sure], mask_a[sure])
    # The best mask's logits back as the mask input: the refinement loop of the official notebook.
    best = int(np.argmax(ia))
    refine = dict(point_coords=args["point_coords"], point_labels=args["point_labels"], multimask_output=False,
                  normalize_coords=args.get("normalize_coords", True))
    with torch.no_grad():
        ra = a.predict(**refine, mask_input=la[best:best + 1], return_logits=True)
    rb = b.predict(**refine, mask_input=lb[best:best + 1], return_logits=True)
    np.testing.assert_allclose(rb[1], ra[1], atol=IOU_TOL * 10, rtol=0)
    np.testing.assert_allclose(rb[2], ra[2], atol=LOGIT_TOL * 10, rtol=0)


def test_batch_side_by_side(models):
    official, ours = models
    images = [image_of("truck"), image_of("synthetic")]
    a, b = official_predictor(official), SAM2ImagePredictor(ours)
    with torch.no_grad():
        a.set_image_batch(images)
    b.set_image_batch(images)
    pts = [np.array([[900.0, 600.0]]), np.array([[150.0, 80.0]])]
    labels = [np.array([1]), np.array([1])]
    with torch.no_grad():
        ra = a.predict_batch(pts, labels, multimask_output=True, return_logits=True)
    rb = b.predict_batch(pts, labels, multimask_output=True, return_logits=True)
    for i in range(2):
        np.testing.assert_allclose(rb[1][i], ra[1][i], atol=IOU_TOL, rtol=0)
        np.testing.assert_allclose(rb[2][i], ra[2][i], atol=LOGIT_TOL, rtol=0)


def test_generator_side_by_side(models):
    official, ours = models
    image = image_of("dog")
    params = dict(points_per_side=6, pred_iou_thresh=0.5, stability_score_thresh=0.2, stability_score_offset=0.2,
                  use_m2m=True, output_mode="coco_rle")
    gen = OfficialGenerator(official, **params)
    s = official.image_size // 4
    gen.predictor._bb_feat_sizes = [(s, s), (s // 2, s // 2), (s // 4, s // 4)]  # as official_predictor
    with torch.no_grad():
        want = gen.generate(image)
    got = SAM2AutomaticMaskGenerator(ours, **params).generate(image)
    assert len(want) > 0
    # One-to-one by point and crop box (the fixture's rule).
    def key(r):
        return (round(r["point_coords"][0][0], 3), round(r["point_coords"][0][1], 3), tuple(int(v) for v in r["crop_box"]))
    ours_by_key = {}
    for r in got:
        ours_by_key.setdefault(key(r), []).append(r)
    matched = 0
    for r in want:
        for o in ours_by_key.get(key(r), []):
            ma, mb = record_mask(r["segmentation"]), record_mask(o["segmentation"])
            union = np.logical_or(ma, mb).sum()
            if union and np.logical_and(ma, mb).sum() / union >= 0.98:
                assert o["predicted_iou"] == pytest.approx(r["predicted_iou"], abs=1e-4)
                matched += 1
                break
    assert matched >= 0.99 * len(want)
    assert len(got) - matched <= 0.01 * len(got) + 1e-9
