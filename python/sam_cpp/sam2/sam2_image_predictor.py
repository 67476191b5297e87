"""SAM2ImagePredictor: prompted segmentation of images, as sam2.sam2_image_predictor, on numpy."""

import numpy as np

from .. import _core
from .._checks import float_array, mask_prompt, point_prompt, rgb_image


class SAM2ImagePredictor:
    """Encodes an image (set_image) or several (set_image_batch), then decodes prompts against it.

    Arguments as the official class: mask_threshold (logit threshold of the binary masks),
    max_hole_area / max_sprinkle_area (fill holes and remove sprinkles up to that area in the
    low-res masks before upsampling; the official package does this with its GPU extension and
    skips it on CPU, so 0, the default, gives what it computes on CPU).

    Thread safety: predict / predict_batch / get_image_embedding may run on several threads at
    once; set_image, set_image_batch and reset_predictor must not overlap any other call on this
    predictor. Predictors on one model may run on separate threads.
    """

    def __init__(self, sam_model, mask_threshold=0.0, max_hole_area=0.0, max_sprinkle_area=0.0, **kwargs):
        if not hasattr(sam_model, "_core") or not isinstance(sam_model._core, _core.Sam2Model):
            raise TypeError(
                f"sam_model: expected a sam_cpp SAM 2 model (sam_cpp.sam2.build_sam.build_sam2), got {type(sam_model).__name__}"
            )
        self.model = sam_model
        self.mask_threshold = float(mask_threshold)
        self.max_hole_area = float(max_hole_area)
        self.max_sprinkle_area = float(max_sprinkle_area)
        if not np.isfinite(self.mask_threshold):
            raise ValueError(f"mask_threshold: expected a finite number, got {mask_threshold!r}")
        for name, v in (("max_hole_area", self.max_hole_area), ("max_sprinkle_area", self.max_sprinkle_area)):
            if not v >= 0:
                raise ValueError(f"{name}: expected an area >= 0, got {v!r}")
        if self.mask_threshold != 0.0 and (self.max_hole_area > 0 or self.max_sprinkle_area > 0):
            raise ValueError(
                "mask_threshold: hole and sprinkle removal (max_hole_area, max_sprinkle_area) is computed at "
                "the model's threshold 0 in sam_cpp; use mask_threshold=0.0 with them"
            )
        self._low = int(sam_model._core.low_res_size)
        self._predictors = []
        self._is_batch = False

    @classmethod
    def from_pretrained(cls, model_id, **kwargs):
        from .build_sam import build_sam2_hf

        return cls(build_sam2_hf(model_id, **kwargs), **kwargs)

    def _new_core(self):
        return _core.Sam2Predictor(self.model._core, self.max_hole_area, self.max_sprinkle_area)

    # ---- images ----------------------------------------------------------------------------
    def set_image(self, image):
        """Computes the features of an (H, W, 3) uint8 RGB image (numpy array or PIL image)."""
        self.reset_predictor()
        core = self._new_core()
        core.set_image(_image(image, "image"))
        self._predictors = [core]
        self._is_batch = False

    def set_image_batch(self, image_list):
        """Computes the features of a list of (H, W, 3) uint8 RGB images (for predict_batch)."""
        self.reset_predictor()
        if not isinstance(image_list, (list, tuple)):
            raise ValueError(f"image_list: expected a list of H x W x 3 images, got {type(image_list).__name__}")
        if len(image_list) == 0:
            raise ValueError("image_list: empty list")
        images = [_image(im, f"image_list[{i}]") for i, im in enumerate(image_list)]
        cores = []
        for im in images:
            core = self._new_core()
            core.set_image(im)
            cores.append(core)
        self._predictors = cores
        self._is_batch = True

    def reset_predictor(self):
        self._predictors = []
        self._is_batch = False

    @property
    def _is_image_set(self):
        return bool(self._predictors)

    @property
    def _orig_hw(self):
        """(H, W) of every image set, as the official attribute."""
        return [tuple(p.orig_hw()) for p in self._predictors]

    @property
    def _features(self):
        """{'image_embed': (B, C, G, G), 'high_res_feats': [(B, C/8, 4G, 4G), (B, C/4, 2G, 2G)]} as float32 arrays, or None."""
        if not self._predictors:
            return None
        feats = [p.features() for p in self._predictors]
        if len(feats) == 1:
            return {"image_embed": feats[0][0], "high_res_feats": [feats[0][1], feats[0][2]]}
        return {
            "image_embed": np.concatenate([f[0] for f in feats]),
            "high_res_feats": [np.concatenate([f[1] for f in feats]), np.concatenate([f[2] for f in feats])],
        }

    @property
    def device(self):
        return "cpu"

    def get_image_embedding(self):
        """The image embedding (1, C, 64, 64) float32 of the image set (a read-only view)."""
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) to generate an embedding.")
        return self._predictors[-1].features()[0]

    # ---- prompts ---------------------------------------------------------------------------
    def predict(
        self,
        point_coords=None,
        point_labels=None,
        box=None,
        mask_input=None,
        multimask_output=True,
        return_logits=False,
        normalize_coords=True,
    ):
        """Masks for the prompt on the image set with set_image.

        point_coords (N, 2) x, y in pixels (in [0, 1] with normalize_coords=False); point_labels
        (N,) 1 foreground / 0 background; box (4,) XYXY; mask_input (1, 256, 256) low-res logits
        of an earlier prediction. B prompts at once: point_coords (B, N, 2), point_labels (B, N),
        box (B, 4). Returns, as the official predictor, (masks (C, H, W) float32 0/1 or logits
        with return_logits, iou_predictions (C,) float32, low_res_masks (C, 256, 256) float32),
        with a leading B for B > 1 prompts.
        """
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        return self._predict_on(
            self._predictors[-1], point_coords, point_labels, box, mask_input, multimask_output, return_logits,
            normalize_coords,
        )

    def predict_batch(
        self,
        point_coords_batch=None,
        point_labels_batch=None,
        box_batch=None,
        mask_input_batch=None,
        multimask_output=True,
        return_logits=False,
        normalize_coords=True,
    ):
        """predict() on every image of set_image_batch, with the i-th prompt of each list: lists
        of masks, of iou_predictions and of low_res_masks."""
        if not self._is_batch:
            raise AssertionError("This function should only be used when in batched mode")
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image_batch(...) before mask prediction.")
        n = len(self._predictors)
        for name, lst in (
            ("point_coords_batch", point_coords_batch),
            ("point_labels_batch", point_labels_batch),
            ("box_batch", box_batch),
            ("mask_input_batch", mask_input_batch),
        ):
            if lst is not None and len(lst) != n:
                raise ValueError(f"{name}: {len(lst)} entries for {n} images")
        masks, ious, lows = [], [], []
        for i, core in enumerate(self._predictors):
            m, q, low = self._predict_on(
                core,
                None if point_coords_batch is None else point_coords_batch[i],
                None if point_labels_batch is None else point_labels_batch[i],
                None if box_batch is None else box_batch[i],
                None if mask_input_batch is None else mask_input_batch[i],
                multimask_output,
                return_logits,
                normalize_coords,
            )
            masks.append(m)
            ious.append(q)
            lows.append(low)
        return masks, ious, lows

    def _predict_on(self, core, point_coords, point_labels, box, mask_input, multimask_output, return_logits, normalize_coords):
        h, w = core.orig_hw()
        L = self._low
        points, labels = point_prompt(point_coords, point_labels, _check_points, "if point_coords is supplied")
        if points is not None and not normalize_coords:  # [0, 1] -> pixels; the library normalises by the image size
            points = np.ascontiguousarray(points * np.array([w, h], dtype=np.float32))
        boxes = None
        if box is not None:
            boxes = float_array(box, "box")
            if boxes.shape == (4,):
                boxes = boxes.reshape(1, 4)
            if boxes.ndim != 2 or boxes.shape[1] != 4:
                raise ValueError(f"box: expected shape 4 (or B x 4) XYXY, got {boxes.shape}")
            if not normalize_coords:
                boxes = np.ascontiguousarray(boxes * np.array([w, h, w, h], dtype=np.float32))
        m = mask_prompt(mask_input, L, ((1, 1, L, L),))

        # Prompts: one, or B (points B x N x 2 and/or boxes B x 4), each decoded on its own.
        batch = None
        if points is not None and points.ndim == 3:
            batch = points.shape[0]
        if boxes is not None and boxes.shape[0] > 1:
            if batch is not None and batch != boxes.shape[0]:
                raise ValueError(f"box: {boxes.shape[0]} boxes for {batch} point prompts")
            batch = boxes.shape[0]
        threshold = self.mask_threshold
        logits = bool(return_logits) or threshold != 0.0

        def one(b):
            pts = lab = None
            if points is not None:
                pts = points[b] if points.ndim == 3 else points
                lab = labels[b] if labels.ndim == 2 else labels
            bx = None if boxes is None else boxes[b if boxes.shape[0] > 1 else 0]
            masks, iou, low = core.predict(
                None if pts is None else np.ascontiguousarray(pts),
                None if lab is None else np.ascontiguousarray(lab),
                None if bx is None else np.ascontiguousarray(bx),
                m, bool(multimask_output), logits,
            )
            if return_logits:
                masks = np.asarray(masks)
            elif threshold != 0.0:
                masks = (np.asarray(masks) > threshold).astype(np.float32)
            else:
                masks = np.asarray(masks).astype(np.float32)
            return masks, iou, low

        if batch is None:
            return one(0)
        outs = [one(b) for b in range(batch)]
        # The official predictor squeezes the prompt axis only when it is 1.
        stacked = tuple(np.stack([o[k] for o in outs]) for k in range(3))
        if batch == 1:
            stacked = tuple(x[0] for x in stacked)
        return stacked


def _check_points(points):
    if points.ndim not in (2, 3) or points.shape[-1] != 2:
        raise ValueError(f"point_coords: expected shape N x 2 (or B x N x 2), got {points.shape}")


def _image(image, name):
    if not isinstance(image, np.ndarray) and hasattr(image, "convert"):  # a PIL image
        image = np.asarray(image.convert("RGB"))
    return rgb_image(image, name)
