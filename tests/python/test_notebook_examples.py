"""The official notebooks' predictor and automatic-mask-generator examples, run with only the
import changed (segment_anything -> sam_cpp) on the test model and the project's images.

The example code below follows the notebooks' calls step by step; what the notebooks draw with
matplotlib is replaced by checks of the arrays they would draw. The notebooks read images with
cv2 (BGR -> RGB); here sam_cpp.read_image gives the same RGB array (the mask generator's
image is subsampled 4x to keep the test fast). The notebooks' model type
and checkpoint are variables: they name the test model, registered under its own key (the
registry is a dict, as in segment_anything).
"""

import functools

import numpy as np
import pytest

import sam_cpp
from conftest import ASSETS, CHECKPOINT, CONFIG

from sam_cpp import SamAutomaticMaskGenerator, SamPredictor, sam_model_registry  # the one changed line


@pytest.fixture()
def test_model_key():
    sam_model_registry["sam_tiny"] = functools.partial(sam_cpp.build_sam_from_config, config=CONFIG)
    yield "sam_tiny"
    del sam_model_registry["sam_tiny"]


def predictor_example(image, sam_checkpoint, model_type, device):
    out = {}
    sam = sam_model_registry[model_type](checkpoint=sam_checkpoint)
    sam.to(device=device)
    predictor = SamPredictor(sam)
    predictor.set_image(image)

    # One foreground point, three candidate masks.
    input_point = np.array([[500, 375]])
    input_label = np.array([1])
    masks, scores, logits = predictor.predict(
        point_coords=input_point,
        point_labels=input_label,
        multimask_output=True,
    )
    out["first"] = (masks, scores, logits)

    # A second point, with the best earlier mask's logits as the mask input.
    input_point = np.array([[500, 375], [1125, 625]])
    input_label = np.array([1, 1])
    mask_input = logits[np.argmax(scores), :, :]
    masks, _, _ = predictor.predict(
        point_coords=input_point,
        point_labels=input_label,
        mask_input=mask_input[None, :, :],
        multimask_output=False,
    )
    out["two_points"] = masks

    # A background point instead.
    input_label = np.array([1, 0])
    masks, _, _ = predictor.predict(
        point_coords=input_point,
        point_labels=input_label,
        mask_input=mask_input[None, :, :],
        multimask_output=False,
    )
    out["pos_neg"] = masks

    # A box.
    input_box = np.array([425, 600, 700, 875])
    masks, _, _ = predictor.predict(
        point_coords=None,
        point_labels=None,
        box=input_box[None, :],
        multimask_output=False,
    )
    out["box"] = masks

    # A box and a background point.
    input_point = np.array([[575, 750]])
    input_label = np.array([0])
    masks, _, _ = predictor.predict(
        point_coords=input_point,
        point_labels=input_label,
        box=input_box,
        multimask_output=False,
    )
    out["box_point"] = masks

    # Several boxes in one batch: predict_torch's numpy counterpart, boxes in image pixels.
    input_boxes = np.array([
        [75, 275, 1725, 850],
        [425, 600, 700, 875],
        [1375, 550, 1650, 800],
        [1240, 675, 1400, 750],
    ])
    masks, _, _ = predictor.predict_batch(boxes=input_boxes, multimask_output=False)
    out["batch"] = masks
    out["embedding"] = predictor.get_image_embedding()
    return out


def show_anns_array(anns):
    # What the notebook's show_anns draws: masks by decreasing area, one colour each, as RGBA.
    if len(anns) == 0:
        return None
    sorted_anns = sorted(anns, key=(lambda x: x["area"]), reverse=True)
    h, w = sorted_anns[0]["segmentation"].shape
    img = np.ones((h, w, 4))
    img[:, :, 3] = 0
    rng = np.random.default_rng(0)
    for ann in sorted_anns:
        m = ann["segmentation"]
        img[m] = np.concatenate([rng.random(3), [0.35]])
    return img


def amg_example(image, sam_checkpoint, model_type, device):
    sam = sam_model_registry[model_type](checkpoint=sam_checkpoint)
    sam.to(device=device)

    mask_generator = SamAutomaticMaskGenerator(sam)
    masks = mask_generator.generate(image)

    mask_generator_2 = SamAutomaticMaskGenerator(
        model=sam,
        points_per_side=32,
        pred_iou_thresh=0.86,
        stability_score_thresh=0.92,
        crop_n_layers=1,
        crop_n_points_downscale_factor=2,
        min_mask_region_area=100,  # the notebook's post-processing of small regions
    )
    masks2 = mask_generator_2.generate(image)
    return masks, masks2


def test_predictor_notebook(test_model_key):
    image = sam_cpp.read_image(str(ASSETS / "truck.jpg"))
    h, w = image.shape[:2]
    out = predictor_example(image, str(CHECKPOINT), test_model_key, "cpu")
    masks, scores, logits = out["first"]
    assert masks.shape == (3, h, w) and masks.dtype == np.bool_
    assert scores.shape == (3,) and scores.dtype == np.float32
    assert logits.shape == (3, 256, 256) and logits.dtype == np.float32
    for k in ("two_points", "pos_neg", "box", "box_point"):
        assert out[k].shape == (1, h, w) and out[k].dtype == np.bool_
    assert out["batch"].shape == (4, 1, h, w)
    assert out["embedding"].shape == (1, 32, 64, 64)
    # The box alone and the first box of the batch are the same prompt.
    assert np.mean(out["box"][0] == out["batch"][1, 0]) > 0.999


def test_amg_notebook(test_model_key):
    # The image at a quarter of its size (less upsampling; the prompts, 32 x 32 and the crops, stay).
    image = np.ascontiguousarray(sam_cpp.read_image(str(ASSETS / "dog.jpg"))[::4, ::4])
    masks, masks2 = amg_example(image, str(CHECKPOINT), test_model_key, "cpu")
    for records in (masks, masks2):
        assert isinstance(records, list)
        for r in records:
            assert set(r) == {"segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score",
                              "crop_box"}
            assert r["segmentation"].shape == image.shape[:2]
            assert r["predicted_iou"] >= 0.86 and r["stability_score"] >= 0.92
    overlay = show_anns_array(masks + masks2)
    assert overlay is None or overlay.shape == (*image.shape[:2], 4)
