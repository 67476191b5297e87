"""SamAutomaticMaskGenerator: segment everything, as segment_anything.SamAutomaticMaskGenerator."""

from . import _core
from ._checks import AMG_PARAMETERS, amg_options, int_arg, rgb_image
from .predictor import SamPredictor


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
        o = amg_options(_core.AmgOptions(), locals())  # the parameters both generators take, checked
        o.min_mask_region_area = int_arg(min_mask_region_area, "min_mask_region_area")
        self.predictor = SamPredictor(model)
        self._core = _core.MaskGenerator(model._core, o)  # checks the values' ranges (SamError)
        for name in (*AMG_PARAMETERS, "min_mask_region_area", "output_mode"):
            setattr(self, name, getattr(o, name))

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
