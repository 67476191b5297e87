"""SAM2AutomaticMaskGenerator: segment everything, as sam2.automatic_mask_generator."""

import numpy as np

from .. import _core
from ..automatic_mask_generator import _OUTPUT_MODES, _int
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
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("Exactly one of points_per_side or point_grid must be provided.")
        if output_mode not in _OUTPUT_MODES:
            raise ValueError(f"output_mode: expected one of {', '.join(_OUTPUT_MODES)}, got {output_mode!r}")
        self.predictor = SAM2ImagePredictor(model)  # checks the model
        o = _core.Sam2AmgOptions()
        o.points_per_side = 0 if points_per_side is None else _int(points_per_side, "points_per_side")
        o.points_per_batch = _int(points_per_batch, "points_per_batch")
        o.pred_iou_thresh = float(pred_iou_thresh)
        o.stability_score_thresh = float(stability_score_thresh)
        o.stability_score_offset = float(stability_score_offset)
        o.mask_threshold = float(mask_threshold)
        o.box_nms_thresh = float(box_nms_thresh)
        o.crop_n_layers = _int(crop_n_layers, "crop_n_layers")
        o.crop_nms_thresh = float(crop_nms_thresh)
        o.crop_overlap_ratio = float(crop_overlap_ratio)
        o.crop_n_points_downscale_factor = _int(crop_n_points_downscale_factor, "crop_n_points_downscale_factor")
        if point_grids is not None:
            grids = []
            for i, g in enumerate(point_grids):
                g = np.asarray(g, dtype=np.float64)
                if g.ndim != 2 or g.shape[1] != 2:
                    raise ValueError(f"point_grids[{i}]: expected N x 2 (x, y in [0, 1]), got shape {g.shape}")
                grids.append([[float(x), float(y)] for x, y in g])
            o.point_grids = grids
        o.min_mask_region_area = _area(min_mask_region_area, "min_mask_region_area")
        o.output_mode = output_mode
        o.use_m2m = _bool(use_m2m, "use_m2m")
        o.multimask_output = _bool(multimask_output, "multimask_output")
        o.fill_holes = _bool(fill_holes, "fill_holes")
        self._core = _core.Sam2MaskGenerator(model._core, o)  # checks the values' ranges (SamError)
        self.points_per_batch = o.points_per_batch
        self.pred_iou_thresh = o.pred_iou_thresh
        self.stability_score_thresh = o.stability_score_thresh
        self.stability_score_offset = o.stability_score_offset
        self.mask_threshold = o.mask_threshold
        self.box_nms_thresh = o.box_nms_thresh
        self.crop_n_layers = o.crop_n_layers
        self.crop_nms_thresh = o.crop_nms_thresh
        self.crop_overlap_ratio = o.crop_overlap_ratio
        self.crop_n_points_downscale_factor = o.crop_n_points_downscale_factor
        self.min_mask_region_area = o.min_mask_region_area
        self.output_mode = output_mode
        self.use_m2m = o.use_m2m
        self.multimask_output = o.multimask_output
        self.fill_holes = o.fill_holes

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
