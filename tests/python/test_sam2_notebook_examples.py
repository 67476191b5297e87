"""The official SAM 2 notebooks' image-predictor and automatic-mask-generator examples
(notebooks/image_predictor_example.ipynb, automatic_mask_generator_example.ipynb of the sam2
repository), run with only the imports changed (sam2 -> sam_cpp.sam2) on the SAM 2 test model
and the project's images.

The example code follows the notebooks' calls step by step; what they draw is replaced by
checks of the arrays they would draw. The notebooks read images with PIL (RGB); here
sam_cpp.read_image gives the RGB array. Their config name and checkpoint are variables: they
name the test model (its JSON config passed with config=, the one keyword added). The mask
generator example keeps every parameter but points_per_side (64 -> 16, for speed).
"""

import functools

import numpy as np

import sam_cpp
from conftest import ASSETS, DATA

# The changed lines: `from sam2.build_sam import build_sam2` and so on.
from sam_cpp.sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
from sam_cpp.sam2.build_sam import build_sam2 as official_signature_build_sam2
from sam_cpp.sam2.sam2_image_predictor import SAM2ImagePredictor

SAM2 = DATA / "sam2"
build_sam2 = functools.partial(official_signature_build_sam2, config=SAM2 / "config.json", threads=1)


def test_image_predictor_notebook():
    image = sam_cpp.read_image(str(ASSETS / "truck.jpg"))
    sam2_checkpoint = SAM2 / "sam2_reduced.pt"
    model_cfg = "configs/sam2.1/sam2.1_hiera_t.yaml"
    device = "cpu"
    sam2_model = build_sam2(model_cfg, sam2_checkpoint, device=device)
    predictor = SAM2ImagePredictor(sam2_model)
    predictor.set_image(image)

    # One point, three masks, sorted by score.
    input_point = np.array([[500, 375]])
    input_label = np.array([1])
    masks, scores, logits = predictor.predict(point_coords=input_point, point_labels=input_label, multimask_output=True)
    sorted_ind = np.argsort(scores)[::-1]
    masks, scores, logits = masks[sorted_ind], scores[sorted_ind], logits[sorted_ind]
    assert masks.shape == (3, 1200, 1800) and masks.dtype == np.float32
    assert set(np.unique(masks)) <= {0.0, 1.0}
    assert scores.shape == (3,) and np.all(np.diff(scores) <= 0)
    assert logits.shape == (3, 64, 64)  # the test model's low-res size (256 for the official ones)

    # A second point with the best mask as the mask input, one mask.
    input_point = np.array([[500, 375], [1125, 625]])
    input_label = np.array([1, 1])
    mask_input = logits[np.argmax(scores), :, :]
    masks, scores, _ = predictor.predict(
        point_coords=input_point, point_labels=input_label, mask_input=mask_input[None, :, :], multimask_output=False)
    assert masks.shape == (1, 1200, 1800) and scores.shape == (1,)

    # A box; a box and a background point.
    input_box = np.array([425, 600, 700, 875])
    masks, scores, _ = predictor.predict(point_coords=None, point_labels=None, box=input_box[None, :], multimask_output=False)
    assert masks.shape == (1, 1200, 1800)
    input_point = np.array([[575, 750]])
    input_label = np.array([0])
    masks, scores, logits = predictor.predict(
        point_coords=input_point, point_labels=input_label, box=input_box, multimask_output=False)
    assert masks.shape == (1, 1200, 1800)

    # Several boxes at once: a leading batch axis.
    input_boxes = np.array([[75, 275, 1725, 850], [425, 600, 700, 875], [1375, 550, 1650, 800], [1240, 675, 1400, 750]])
    masks, scores, _ = predictor.predict(point_coords=None, point_labels=None, box=input_boxes, multimask_output=False)
    assert masks.shape == (4, 1, 1200, 1800) and scores.shape == (4, 1)

    # A batch of images, with a point prompt each, then with boxes.
    image1, image2 = image, sam_cpp.read_image(str(ASSETS / "groceries.jpg"))
    img_batch = [image1, image2]
    predictor.set_image_batch(img_batch)
    pts_batch = [np.array([[[500, 375]], [[650, 750]]]), np.array([[[400, 300]], [[630, 300]]])]
    labels_batch = [np.array([[1], [1]]), np.array([[1], [1]])]
    masks_batch, scores_batch, _ = predictor.predict_batch(pts_batch, labels_batch, box_batch=None, multimask_output=True)
    assert [m.shape for m in masks_batch] == [(2, 3) + image1.shape[:2], (2, 3) + image2.shape[:2]]
    for masks, scores in zip(masks_batch, scores_batch):
        best = masks[range(len(masks)), np.argmax(scores, axis=-1)]
        assert best.shape[0] == 2
    box_batch = [np.array([[75, 275, 1725, 850], [425, 600, 700, 875]]), np.array([[450, 170, 520, 350], [350, 190, 450, 350]])]
    masks_batch, scores_batch, _ = predictor.predict_batch(None, None, box_batch=box_batch, multimask_output=False)
    assert [m.shape for m in masks_batch] == [(2, 1) + image1.shape[:2], (2, 1) + image2.shape[:2]]


def test_automatic_mask_generator_notebook():
    image = sam_cpp.read_image(str(ASSETS / "truck.jpg"))[::4, ::4]
    sam2 = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", SAM2 / "sam2_reduced.pt", device="cpu",
                      apply_postprocessing=True)
    mask_generator = SAM2AutomaticMaskGenerator(sam2)
    masks = mask_generator.generate(image)
    assert isinstance(masks, list)
    for m in masks:
        assert m["segmentation"].shape == image.shape[:2] and m["segmentation"].dtype == bool

    mask_generator_2 = SAM2AutomaticMaskGenerator(
        model=sam2,
        points_per_side=16,
        points_per_batch=128,
        pred_iou_thresh=0.7,
        stability_score_thresh=0.92,
        stability_score_offset=0.7,
        crop_n_layers=1,
        box_nms_thresh=0.7,
        crop_n_points_downscale_factor=2,
        min_mask_region_area=25.0,
        use_m2m=True,
    )
    masks2 = mask_generator_2.generate(image)
    assert isinstance(masks2, list)
    for m in masks2:
        assert set(m) == {"segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box"}
        assert m["predicted_iou"] > 0.7 and m["stability_score"] > 0.92
