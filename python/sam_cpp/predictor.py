"""SamPredictor: prompted segmentation of one image, as segment_anything.SamPredictor, on numpy."""

import os

import numpy as np

from . import _core
from ._checks import float_array, mask_prompt, point_prompt, require_file, rgb_image
from .utils.transforms import ResizeLongestSide


class SamPredictor:
    """Encodes an image once (set_image), then decodes prompts (predict) against it.

    Thread safety: predict / predict_batch / get_image_embedding may run on several threads at
    once; set_image, set_embedding, load_embedding and reset_image change the image and must not
    overlap any other call on this predictor. Use one predictor per thread that sets images;
    they can all share one model.
    """

    def __init__(self, sam_model):
        if not hasattr(sam_model, "_core"):
            raise TypeError(f"sam_model: expected a sam_cpp model (sam_model_registry[...]), got {type(sam_model).__name__}")
        self.model = sam_model
        self.transform = ResizeLongestSide(sam_model.image_encoder.img_size)
        self._core = _core.Predictor(sam_model._core)
        self.reset_image()

    # ---- the image -------------------------------------------------------------------------
    def set_image(self, image, image_format="RGB"):
        """Computes the embedding of an (H, W, 3) uint8 image in 'RGB' or 'BGR' channel order."""
        if image_format not in ("RGB", "BGR"):
            raise ValueError(f"image_format: expected 'RGB' or 'BGR', got {image_format!r}")
        image = rgb_image(image)
        if image_format != self.model.image_format:
            image = np.ascontiguousarray(image[..., ::-1])
        self._core.set_image(image)

    def set_torch_image(self, transformed_image, original_image_size):
        raise NotImplementedError(
            "set_torch_image takes a torch tensor; sam_cpp resizes itself: use set_image(image) "
            "with the original (H, W, 3) uint8 image"
        )

    def set_embedding(self, embedding, original_size):
        """Uses a precomputed (1, C, 64, 64) float32 embedding of an image of original_size (H, W).

        For the decoder-only workflow of the official web demo: embeddings computed elsewhere
        (get_image_embedding, `sam embed`, or the official package) are prompted here.
        """
        e = float_array(embedding, "embedding")
        h, w = _size(original_size)
        self._core.set_embedding(e, h, w)

    def load_embedding(self, path, original_size=None):
        """Reads an embedding .npy; the size from original_size or "<path>.json" (save_embedding)."""
        path = require_file(path, "embedding file")
        h, w = (0, 0) if original_size is None else _size(original_size)
        self._core.load_embedding(path, h, w)

    def save_embedding(self, path):
        """Writes the embedding as float32 .npy and "<path>.json" with the original size (atomically)."""
        self._require_image()
        self._core.save_embedding(os.fspath(path))

    def reset_image(self):
        self._core.reset_image()

    @property
    def is_image_set(self):
        return self._core.is_image_set()

    @property
    def original_size(self):
        """(H, W) of the image set, or None."""
        if not self.is_image_set:
            return None
        g = self._core.geometry()
        return (g[0], g[1])

    @property
    def input_size(self):
        """(h, w) of the image after resizing its longest side to img_size, or None."""
        if not self.is_image_set:
            return None
        g = self._core.geometry()
        return (g[2], g[3])

    @property
    def features(self):
        """The image embedding (1, C, 64, 64) float32 (read-only view), or None."""
        return self._core.embedding() if self.is_image_set else None

    @property
    def device(self):
        return "cpu"

    def get_image_embedding(self):
        """The image embedding, (1, C, 64, 64) float32 (a read-only view of the predictor's own)."""
        self._require_image()
        return self._core.embedding()

    # ---- prompts ---------------------------------------------------------------------------
    def predict(
        self,
        point_coords=None,
        point_labels=None,
        box=None,
        mask_input=None,
        multimask_output=True,
        return_logits=False,
    ):
        """Masks for one prompt, in original image pixels.

        point_coords (N, 2) x, y; point_labels (N,) 1 foreground / 0 background; box (4,) XYXY;
        mask_input (1, 256, 256) low-res logits of an earlier prediction.
        Returns (masks (C, H, W) bool, or float32 logits with return_logits; iou_predictions
        (C,) float32; low_res_masks (C, 256, 256) float32), C = 3 with multimask_output else 1.
        """
        self._require_image()
        points, labels = point_prompt(point_coords, point_labels, (None, 2), "with point_coords")
        b = None
        if box is not None:
            b = float_array(box, "box")
            if b.shape not in ((4,), (1, 4)):
                raise ValueError(f"box: expected shape 4 (or 1 x 4) XYXY, got {b.shape}")
            b = b.reshape(4)
        m = mask_prompt(mask_input, 256)
        return self._core.predict(points, labels, b, m, bool(multimask_output), bool(return_logits))

    def predict_batch(
        self,
        point_coords=None,
        point_labels=None,
        boxes=None,
        mask_input=None,
        multimask_output=True,
        return_logits=False,
    ):
        """B prompts decoded in one batch: the numpy counterpart of the official predict_torch.

        Unlike predict_torch, coordinates are in original image pixels (no transform.apply_*):
        point_coords (B, N, 2), point_labels (B, N), boxes (B, 4) XYXY, mask_input
        (B, 1, 256, 256). Returns (masks (B, C, H, W) bool or float32 logits, iou_predictions
        (B, C) float32, low_res_masks (B, C, 256, 256) float32).
        """
        self._require_image()
        points, labels = point_prompt(point_coords, point_labels, (None, None, 2), "with point_coords")
        batch = None if points is None else points.shape[0]
        b = m = None
        if boxes is not None:
            b = float_array(boxes, "boxes", (None, 4))
            if batch is not None and b.shape[0] != batch:
                raise ValueError(f"boxes: {b.shape[0]} boxes for {batch} point prompts")
            batch = b.shape[0]
        if mask_input is not None:
            m = float_array(mask_input, "mask_input")
            if m.ndim != 4 or m.shape[1:] != (1, 256, 256):
                raise ValueError(f"mask_input: expected shape B x 1 x 256 x 256, got {m.shape}")
            if batch is not None and m.shape[0] != batch:
                raise ValueError(f"mask_input: {m.shape[0]} masks for {batch} prompts")
            batch = m.shape[0]
        if batch is None:
            raise ValueError("predict_batch: give point_coords, boxes or mask_input (they set the batch size)")
        return self._core.predict_batch(batch, points, labels, b, m, bool(multimask_output), bool(return_logits))

    def _require_image(self):
        if not self.is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")


def _size(original_size):
    try:
        h, w = (int(v) for v in original_size)
    except (TypeError, ValueError):
        raise ValueError(f"original_size: expected (H, W), got {original_size!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"original_size: expected positive (H, W), got {original_size!r}")
    return h, w
