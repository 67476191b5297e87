"""SamPredictor through the Python API against every predictor case of the sam-tiny fixture
(tests/data/predict), at the fixture's tolerances; the embedding of every fixture image."""

import numpy as np
import pytest

import sam_cpp
from conftest import (
    DATA,
    EMBEDDING_REL_TOL,
    IOU_TOL,
    LOGIT_TOL,
    LOW_RES_MAX_TOL,
    LOW_RES_TOL,
    LOW_RES_WITHIN_FRACTION,
    MIN_MASK_IOU,
    image_of,
    mask_iou,
    read_json,
)

SINGLE_CASES = ["point_multimask", "points_pos_neg", "box", "box_and_point", "point_with_mask_input", "dog_point",
                "synthetic_box"]


def find_case(manifest, name):
    return next(c for c in manifest["predict"] if c["name"] == name)


def predictor_with_fixture_embedding(sam, manifest, image):
    # The decoder is checked on the reference's own embedding (as tests/test_predictor.cpp does).
    info = manifest["images"][image]
    p = sam_cpp.SamPredictor(sam)
    p.set_embedding(np.load(DATA / info["embedding"]), (info["height"], info["width"]))
    return p


def mask_input_from(case_name):
    """The low-res logits of a case's best mask, (1, 256, 256), as the notebook feeds them back."""
    d = DATA / "predict" / case_name
    low, iou = np.load(d / "low_res.npy"), np.load(d / "iou.npy")
    return low[int(np.argmax(iou))][None, :, :]


def prompt_kwargs(prompt):
    kw = {"multimask_output": prompt["multimask_output"]}
    if "point_coords" in prompt:
        kw["point_coords"] = np.array(prompt["point_coords"])
        kw["point_labels"] = np.array(prompt["point_labels"])
    if "box" in prompt:
        kw["box"] = np.array(prompt["box"])
    if "mask_input" in prompt:
        kw["mask_input"] = mask_input_from(prompt["mask_input"])
    return kw


def check_outputs(name, masks, iou, low_res):
    d = DATA / "predict" / name
    info = read_json(d / "prompt.json")
    n = info["num_masks"]
    ref_iou, ref_low = np.load(d / "iou.npy").reshape(n), np.load(d / "low_res.npy")
    assert iou.dtype == np.float32 and iou.shape == (n,)
    assert low_res.dtype == np.float32 and low_res.shape == (n, 256, 256)
    assert masks.dtype == np.bool_ and masks.shape[0] == n
    assert np.max(np.abs(iou - ref_iou)) <= IOU_TOL, name
    err = np.abs(low_res - ref_low.reshape(low_res.shape))
    assert np.mean(err <= LOW_RES_TOL) >= LOW_RES_WITHIN_FRACTION, name
    assert err.max() <= LOW_RES_MAX_TOL, name
    for i, png in enumerate(info["mask_pngs"]):
        assert mask_iou(masks[i], d / png) >= MIN_MASK_IOU, f"{name} mask {i}"


def check_logit_samples(name, logits):
    info = read_json(DATA / "predict" / name / "prompt.json")
    samples = info.get("logit_samples_row_col_values", [])
    assert samples, name
    for s in samples:
        r, c, want = s[0], s[1], np.array(s[2:], dtype=np.float32)
        assert np.max(np.abs(logits[:, r, c] - want)) <= LOGIT_TOL, f"{name} at ({r}, {c})"


@pytest.mark.parametrize("name", SINGLE_CASES)
def test_predict_case_matches_reference(tiny_sam, manifest, name):
    case = find_case(manifest, name)
    p = predictor_with_fixture_embedding(tiny_sam, manifest, case["image"])
    kw = prompt_kwargs(case["prompt"])
    masks, iou, low_res = p.predict(**kw)
    info = manifest["images"][case["image"]]
    assert masks.shape[1:] == (info["height"], info["width"])
    check_outputs(name, masks, iou, low_res)

    logits, iou2, _ = p.predict(**kw, return_logits=True)
    assert logits.dtype == np.float32 and logits.shape == masks.shape
    np.testing.assert_array_equal(iou, iou2)
    np.testing.assert_array_equal(logits > tiny_sam.mask_threshold, masks)
    check_logit_samples(name, logits)


def test_every_fixture_case_is_covered(manifest):
    assert {c["name"] for c in manifest["predict"]} == set(SINGLE_CASES) | {"batched_boxes"}


def test_batched_boxes_match_reference(tiny_sam, manifest):
    case = find_case(manifest, "batched_boxes")
    p = predictor_with_fixture_embedding(tiny_sam, manifest, case["image"])
    boxes = np.array(case["prompt"]["boxes"])
    masks, iou, low_res = p.predict_batch(boxes=boxes, multimask_output=False)
    assert masks.shape == (4, 1, 1200, 1800) and iou.shape == (4, 1) and low_res.shape == (4, 1, 256, 256)
    check_outputs("batched_boxes", masks[:, 0], iou[:, 0], low_res[:, 0])
    # Each box of the batch decodes as it would alone.
    for i, box in enumerate(boxes):
        _, one_iou, one_low = p.predict(box=box, multimask_output=False)
        assert abs(one_iou[0] - iou[i, 0]) <= 1e-4
        assert np.max(np.abs(one_low[0] - low_res[i, 0])) <= LOW_RES_MAX_TOL


def test_batched_points_match_single_prompts(tiny_sam, manifest):
    p = predictor_with_fixture_embedding(tiny_sam, manifest, "dog")
    pts = np.array([[[100, 80], [300, 200]], [[400, 250], [700, 500]], [[50, 500], [600, 100]]], dtype=np.float32)
    labels = np.array([[1, 0], [1, 1], [0, 1]])
    masks, iou, low = p.predict_batch(point_coords=pts, point_labels=labels, multimask_output=True)
    assert masks.shape == (3, 3, 534, 800) and iou.shape == (3, 3)
    for i in range(3):
        m1, i1, l1 = p.predict(pts[i], labels[i])
        np.testing.assert_allclose(i1, iou[i], atol=1e-4)
        assert np.max(np.abs(l1 - low[i])) <= LOW_RES_MAX_TOL


@pytest.mark.parametrize("image", ["truck", "dog", "groceries", "synthetic"])
def test_set_image_embedding_matches_reference(tiny_sam, manifest, image):
    info = manifest["images"][image]
    p = sam_cpp.SamPredictor(tiny_sam)
    p.set_image(image_of(image))
    assert p.is_image_set
    assert p.original_size == (info["height"], info["width"])
    assert p.input_size == tuple(info["input_size"])
    emb = p.get_image_embedding()
    ref = np.load(DATA / info["embedding"])
    assert emb.dtype == np.float32 and emb.shape == ref.shape == (1, 32, 64, 64)
    assert np.max(np.abs(emb - ref)) <= EMBEDDING_REL_TOL * np.max(np.abs(ref))
    np.testing.assert_array_equal(p.features, emb)


def test_set_image_then_predict_end_to_end(tiny_sam, manifest):
    # From pixels: encoder and decoder together, against the reference's masks and scores.
    case = find_case(manifest, "point_multimask")
    p = sam_cpp.SamPredictor(tiny_sam)
    p.set_image(image_of(case["image"]))
    masks, iou, _ = p.predict(**prompt_kwargs(case["prompt"]))
    ref_iou = np.load(DATA / "predict" / "point_multimask" / "iou.npy")
    assert np.max(np.abs(iou - ref_iou)) <= IOU_TOL
    for i in range(3):
        assert mask_iou(masks[i], DATA / "predict" / "point_multimask" / f"mask_{i}.png") >= MIN_MASK_IOU


def test_bgr_input_is_flipped(tiny_sam):
    rgb = image_of("synthetic")
    a, b = sam_cpp.SamPredictor(tiny_sam), sam_cpp.SamPredictor(tiny_sam)
    a.set_image(rgb)
    b.set_image(np.ascontiguousarray(rgb[..., ::-1]), image_format="BGR")
    np.testing.assert_array_equal(a.get_image_embedding(), b.get_image_embedding())


def test_non_contiguous_and_integer_inputs(tiny_sam, manifest):
    # A strided view and int64 prompts are accepted, as numpy inputs to the official predictor are.
    p = sam_cpp.SamPredictor(tiny_sam)
    big = np.zeros((346, 602, 3), dtype=np.uint8)
    big[::2, ::2] = image_of("synthetic")
    p.set_image(big[::2, ::2])
    q = sam_cpp.SamPredictor(tiny_sam)
    q.set_image(image_of("synthetic"))
    np.testing.assert_array_equal(p.get_image_embedding(), q.get_image_embedding())
    m1, s1, _ = p.predict(np.array([[20, 30]]), np.array([1]))
    m2, s2, _ = p.predict(np.array([[20.0, 30.0]], dtype=np.float32), np.array([1], dtype=np.int32))
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(s1, s2)


def test_embedding_file_round_trip(tiny_sam, manifest, tmp_path):
    # Decoder-only use: an embedding saved by one predictor, loaded by another.
    p = predictor_with_fixture_embedding(tiny_sam, manifest, "dog")
    path = tmp_path / "dog.npy"
    p.save_embedding(path)
    q = sam_cpp.SamPredictor(tiny_sam)
    q.load_embedding(path)
    assert q.original_size == (534, 800)
    np.testing.assert_array_equal(q.get_image_embedding(), p.get_image_embedding())
    r = sam_cpp.SamPredictor(tiny_sam)
    r.load_embedding(DATA / "embedding_dog.npy", original_size=(534, 800))  # a bare .npy
    a, b = q.predict(np.array([[400, 250]]), np.array([1])), r.predict(np.array([[400, 250]]), np.array([1]))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_reset_image(tiny_sam, manifest):
    p = predictor_with_fixture_embedding(tiny_sam, manifest, "synthetic")
    assert p.is_image_set and p.features is not None
    p.reset_image()
    assert not p.is_image_set and p.original_size is None and p.features is None


def test_embedding_view_is_read_only(tiny_sam, manifest):
    p = predictor_with_fixture_embedding(tiny_sam, manifest, "synthetic")
    e = p.get_image_embedding()
    with pytest.raises(ValueError):
        e[0, 0, 0, 0] = 1.0
