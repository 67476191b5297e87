"""The model and the registry: ``sam_model_registry["vit_b"](checkpoint=path)`` as in segment_anything.

The official builders make a torch module; here they load the checkpoint into the C++ library
(no conversion, fp32/fp16/bf16 storages) and return a :class:`Sam` handle. Extra keywords:
``threads`` (default: every core this process may use) and ``precision`` ('f32' default, 'bf16',
'int8'; see docs/PYTHON.md), and ``config`` (a JSON config for non-standard sizes).
"""

import os

from . import _core
from ._checks import require_file

_PRECISIONS = ("f32", "bf16", "int8")


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


class Sam:
    """A loaded SAM model: an immutable handle on shared weights.

    Any number of threads may use one Sam at once (each with its own SamPredictor or
    SamAutomaticMaskGenerator); the model runs with the GIL released. ``with_execution`` gives
    another handle on the same weights (nothing copied) with other threads/precision.
    """

    image_format = "RGB"
    training = False

    def __init__(self, core):
        self._core = core
        self.image_encoder = ImageEncoderInfo(core)
        self.mask_threshold = float(core.mask_threshold)
        self.pixel_mean = list(core.pixel_mean)
        self.pixel_std = list(core.pixel_std)

    # torch.nn.Module look-alikes the official examples call.
    def eval(self):
        return self

    def train(self, mode=True):
        if mode:
            raise ValueError("sam_cpp runs inference only: train(True) is not supported")
        return self

    def requires_grad_(self, requires_grad=True):
        return self

    def to(self, device=None, dtype=None, non_blocking=False):
        """Returns self for the CPU; any other device raises ValueError (sam_cpp computes on the CPU only)."""
        if device is not None:
            name = str(getattr(device, "type", device)).split(":")[0].lower()
            if name != "cpu":
                raise ValueError(
                    f"sam_cpp computes on the CPU only; device {str(device)!r} is not supported "
                    "(use the official segment_anything package with torch for GPUs)"
                )
        if dtype is not None and "float32" not in str(dtype):
            raise ValueError(f"sam_cpp computes in float32; dtype {dtype} is not supported (see precision=)")
        return self

    def cpu(self):
        return self

    def cuda(self, device=None):
        return self.to("cuda")

    @property
    def device(self):
        return "cpu"

    @property
    def threads(self):
        """Threads per computation (0: every core this process may run on)."""
        return self._core.threads

    @property
    def precision(self):
        """The encoder blocks' arithmetic in effect: 'f32' | 'bf16' | 'int8'."""
        return self._core.precision

    @property
    def model_type(self):
        return self._core.model_type

    @property
    def checkpoint(self):
        return self._core.checkpoint_path

    @property
    def checkpoint_dtype(self):
        return self._core.checkpoint_dtype

    def parameter_count(self):
        return self._core.parameter_count

    def with_execution(self, threads=None, precision=None):
        """A handle on the same weights computing with other settings (None: keep this one's)."""
        t = self.threads if threads is None else _threads(threads)
        p = self.precision if precision is None else _precision(precision)
        return Sam(self._core.with_execution(t, p))

    def __repr__(self):
        return (
            f"sam_cpp.Sam(model_type={self.model_type!r}, checkpoint={self.checkpoint!r}, "
            f"threads={self.threads}, precision={self.precision!r})"
        )


def _threads(threads):
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads: expected an integer >= 0 (0: every core), got {threads!r}")
    return threads


def _precision(precision):
    if precision not in _PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(_PRECISIONS)}, got {precision!r}")
    return precision


def build_sam(checkpoint=None, *, model_type="auto", config=None, threads=None, precision="f32"):
    """Loads an official SAM checkpoint (.pth) into a :class:`Sam`.

    model_type: 'vit_b' | 'vit_l' | 'vit_h', or 'auto' to read it off the checkpoint's shapes.
    config: a JSON config file (tests/data/config.json format) for non-standard sizes.
    """
    if checkpoint is None:
        raise ValueError(
            "checkpoint: sam_cpp loads trained weights only; pass checkpoint=<path to an official .pth>"
        )
    path = require_file(checkpoint, "checkpoint")
    config_path = "" if config is None else require_file(config, "config")
    t, p = _threads(threads), _precision(precision)
    core = _core.Model.load(path, model_type, os.fspath(config_path))
    if t != 0 or p != "f32":
        core = core.with_execution(t, p)
    return Sam(core)


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
