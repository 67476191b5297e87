"""The model and the registry: ``sam_model_registry["vit_b"](checkpoint=path)`` as in segment_anything.

The official builders make a torch module; here they load the checkpoint into the C++ library
(no conversion, fp32/fp16/bf16 storages) and return a :class:`Sam` handle. Extra keywords:
``threads`` (default: every core this process may use) and ``precision`` ('f32' default, 'bf16',
'int8'; see docs/PYTHON.md), and ``config`` (a JSON config for non-standard sizes).
"""

from . import _core
from ._common import ModelHandle, load_core


class ImageEncoderInfo:
    """What the official ``sam.image_encoder`` exposes without the torch module: sizes."""

    def __init__(self, core):
        self.img_size = core.img_size
        self.patch_size = core.patch_size
        self.embed_dim = core.encoder_embed_dim
        self.depth = core.encoder_depth
        self.out_chans = core.out_chans

    def __repr__(self):
        return f"ImageEncoderInfo(img_size={self.img_size}, embed_dim={self.embed_dim}, depth={self.depth})"


class Sam(ModelHandle):
    """A loaded SAM model: an immutable handle on shared weights.

    Any number of threads may use one Sam at once (each with its own SamPredictor or
    SamAutomaticMaskGenerator); the model runs with the GIL released. ``with_execution`` gives
    another handle on the same weights (nothing copied) with other threads/precision.
    """

    image_format = "RGB"
    _official_package = "segment_anything"

    def __init__(self, core):
        super().__init__(core)
        self.image_encoder = ImageEncoderInfo(core)
        self.mask_threshold = float(core.mask_threshold)
        self.pixel_mean = list(core.pixel_mean)
        self.pixel_std = list(core.pixel_std)

    @property
    def model_type(self):
        return self._core.model_type

    @property
    def checkpoint_dtype(self):
        return self._core.checkpoint_dtype

    def __repr__(self):
        return (
            f"sam_cpp.Sam(model_type={self.model_type!r}, checkpoint={self.checkpoint!r}, "
            f"threads={self.threads}, precision={self.precision!r})"
        )


def build_sam(checkpoint=None, *, model_type="auto", config=None, threads=None, precision="f32"):
    """Loads an official SAM checkpoint (.pth) into a :class:`Sam`.

    model_type: 'vit_b' | 'vit_l' | 'vit_h', or 'auto' to read it off the checkpoint's shapes.
    config: a JSON config file (tests/data/config.json format) for non-standard sizes.
    """
    if checkpoint is None:
        raise ValueError(
            "checkpoint: sam_cpp loads trained weights only; pass checkpoint=<path to an official .pth>"
        )
    return Sam(load_core(_core.Model.load, checkpoint, "checkpoint", model_type, config, threads, precision))


def build_sam_vit_h(checkpoint=None, *, config=None, threads=None, precision="f32"):
    return build_sam(checkpoint, model_type="vit_h", config=config, threads=threads, precision=precision)


def build_sam_vit_l(checkpoint=None, *, config=None, threads=None, precision="f32"):
    return build_sam(checkpoint, model_type="vit_l", config=config, threads=threads, precision=precision)


def build_sam_vit_b(checkpoint=None, *, config=None, threads=None, precision="f32"):
    return build_sam(checkpoint, model_type="vit_b", config=config, threads=threads, precision=precision)


def build_sam_from_config(checkpoint=None, *, config, threads=None, precision="f32"):
    """A checkpoint of non-standard sizes described by a JSON config (e.g. the test model)."""
    return build_sam(checkpoint, config=config, threads=threads, precision=precision)


build_sam_auto = build_sam

# The official keys ("default" is ViT-H, as there), plus "auto" (type read off the checkpoint).
sam_model_registry = {
    "default": build_sam_vit_h,
    "vit_h": build_sam_vit_h,
    "vit_l": build_sam_vit_l,
    "vit_b": build_sam_vit_b,
    "auto": build_sam,
}
