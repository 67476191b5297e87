"""SAM2AutomaticMaskGenerator: segment everything, as sam2.automatic_mask_generator."""

import numpy as np

from .. import _core
from .._checks import AMG_PARAMETERS, amg_options
from .sam2_image_predictor import SAM2ImagePredictor, _image


class SAM2AutomaticMaskGenerator:
    """Prompts the model with a grid of points (and crops), filters and de-duplicates the masks.

    Every parameter of the official class, with the same defaults and meaning; the work runs in
    the C++ library with the GIL released. coco_rle needs no pycocotools.

    min_mask_region_area: the official generator hands it to its predictor as max_hole_area and
    max_sprinkle_area, which its GPU extension computes and its CPU path skips (with a warning).
    fill_holes (an extra keyword) chooses: False (the default) computes what the official
    package computes on CPU, True what it computes with its GPU extension.

    Thread safety: one generate() at a time per generator; generators on one model may run on
    separate threads.
    """

    def __init__(
        self,
        model,
        points_per_side=32,
        points_per_batch=64,
        pred_iou_thresh=0.8,
        stability_score_thresh=0.95,
        stability_score_offset=1.0,
        mask_threshold=0.0,
        box_nms_thresh=0.7,
        crop_n_layers=0,
        crop_nms_thresh=0.7,
        crop_overlap_ratio=512 / 1500,
        crop_n_points_downscale_factor=1,
        point_grids=None,
        min_mask_region_area=0,
        output_mode="binary_mask",
        use_m2m=False,
        multimask_output=True,
        *,
        fill_holes=False,
        **kwargs,
    ):
        if kwargs:
            raise TypeError(f"SAM2AutomaticMaskGenerator: unexpected keyword arguments {sorted(kwargs)}")
        o = amg_options(_core.Sam2AmgOptions(), locals())  # the parameters both generators take, checked
        self.predictor = SAM2ImagePredictor(model)  # checks the model
        o.mask_threshold = float(mask_threshold)
        o.min_mask_region_area = _area(min_mask_region_area, "min_mask_region_area")
        o.use_m2m = _bool(use_m2m, "use_m2m")
        o.multimask_output = _bool(multimask_output, "multimask_output")
        o.fill_holes = _bool(fill_holes, "fill_holes")
        self._core = _core.Sam2MaskGenerator(model._core, o)  # checks the values' ranges (SamError)
        for name in (*AMG_PARAMETERS, "mask_threshold", "min_mask_region_area", "output_mode", "use_m2m",
                     "multimask_output", "fill_holes"):
            setattr(self, name, getattr(o, name))

    @classmethod
    def from_pretrained(cls, model_id, **kwargs):
        from .build_sam import build_sam2_hf

        return cls(build_sam2_hf(model_id, **kwargs), **kwargs)

    def generate(self, image):
        """Masks for an (H, W, 3) uint8 RGB image: a list of records (dicts) with segmentation,
        area, bbox (XYWH), predicted_iou, point_coords, stability_score and crop_box, in the
        official order. segmentation is an (H, W) bool array ('binary_mask'), or
        {'size': [H, W], 'counts': [...]} ('uncompressed_rle') or {'size', 'counts': str} ('coco_rle').
        """
        return self._core.generate(_image(image, "image"))


def _area(v, name):
    """An area in pixels: the official examples pass floats (25.0); areas are whole pixels, so a
    region of area a passes `a <= v` exactly when it passes `a <= floor(v)`."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
        raise ValueError(f"{name}: expected a number of pixels, got {v!r}")
    if v < 0:
        raise ValueError(f"{name}: expected an area >= 0, got {v!r}")
    return int(np.floor(v))


def _bool(v, name):
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{name}: expected True or False, got {v!r}")
    return bool(v)
