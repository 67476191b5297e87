"""SamAutomaticMaskGenerator: segment everything, as segment_anything.SamAutomaticMaskGenerator."""

import numpy as np

from . import _core
from ._checks import rgb_image
from .predictor import SamPredictor

_OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")


class SamAutomaticMaskGenerator:
    """Prompts the model with a grid of points (and crops), filters and de-duplicates the masks.

    Every parameter of the official class, with the same defaults and meaning; the work runs
    in the C++ library with the GIL released. coco_rle needs no pycocotools.

    Thread safety: one generate() at a time per generator; to segment images on several
    threads, give each its own generator (they can share one model).
    """

    def __init__(
        self,
        model,
        points_per_side=32,
        points_per_batch=64,
        pred_iou_thresh=0.88,
        stability_score_thresh=0.95,
        stability_score_offset=1.0,
        box_nms_thresh=0.7,
        crop_n_layers=0,
        crop_nms_thresh=0.7,
        crop_overlap_ratio=512 / 1500,
        crop_n_points_downscale_factor=1,
        point_grids=None,
        min_mask_region_area=0,
        output_mode="binary_mask",
    ):
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("Exactly one of points_per_side or point_grid must be provided.")
        if output_mode not in _OUTPUT_MODES:
            raise ValueError(f"output_mode: expected one of {', '.join(_OUTPUT_MODES)}, got {output_mode!r}")
        o = _core.AmgOptions()
        o.points_per_side = 0 if points_per_side is None else _int(points_per_side, "points_per_side")
        o.points_per_batch = _int(points_per_batch, "points_per_batch")
        o.pred_iou_thresh = float(pred_iou_thresh)
        o.stability_score_thresh = float(stability_score_thresh)
        o.stability_score_offset = float(stability_score_offset)
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
        o.min_mask_region_area = _int(min_mask_region_area, "min_mask_region_area")
        o.output_mode = output_mode
        self.predictor = SamPredictor(model)
        self._core = _core.MaskGenerator(model._core, o)  # checks the values' ranges (SamError)
        self.points_per_batch = o.points_per_batch
        self.pred_iou_thresh = o.pred_iou_thresh
        self.stability_score_thresh = o.stability_score_thresh
        self.stability_score_offset = o.stability_score_offset
        self.box_nms_thresh = o.box_nms_thresh
        self.crop_n_layers = o.crop_n_layers
        self.crop_nms_thresh = o.crop_nms_thresh
        self.crop_overlap_ratio = o.crop_overlap_ratio
        self.crop_n_points_downscale_factor = o.crop_n_points_downscale_factor
        self.min_mask_region_area = o.min_mask_region_area
        self.output_mode = output_mode

    def generate(self, image):
        """Masks for an (H, W, 3) uint8 RGB image: a list of records (dicts) with segmentation,
        area, bbox (XYWH), predicted_iou, point_coords, stability_score and crop_box, in the
        official order. segmentation is an (H, W) bool array ('binary_mask'), or
        {'size': [H, W], 'counts': [...]} ('uncompressed_rle') or {'size', 'counts': str} ('coco_rle').
        """
        image = rgb_image(image)
        return self._core.generate(image, None)

    def last_timings(self):
        """Where the last generate() spent its time (seconds) and how many prompts/masks it decoded."""
        return self._core.last_timings()


def _int(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer, got {v!r}")
    return int(v)
