"""``build_sam2(config_file, ckpt_path)`` as in sam2.build_sam, loading into the C++ library.

The official builder composes a hydra config and makes a torch module; here the checkpoint (the
official ``sam2.1_hiera_*.pt`` / ``sam2_hiera_*.pt``, weights under "model") is loaded directly
and its model type is read off its shapes. ``config_file`` is the official config name
(``configs/sam2.1/sam2.1_hiera_t.yaml``, ``sam2_hiera_l.yaml``, ...): it is checked against the
checkpoint, so that a wrong pairing fails here rather than computing with other sizes. Extra
keywords: ``threads`` (default: every core this process may use), ``precision`` ('f32' default,
'bf16', 'int8') and ``config`` (a JSON config for non-standard sizes, e.g. the test model).
"""

import os
import re

from .. import _core
from .._checks import check_device
from .._common import ModelHandle, load_core

# Official config names -> (model_type, version).
_SIZES = {"t": "tiny", "s": "small", "b+": "base_plus", "l": "large"}
_CONFIG_NAME = re.compile(r"^(sam2\.1|sam2)_hiera_(t|s|b\+|l)\.yaml$")


def _parse_config_name(config_file):
    name = os.path.basename(os.fspath(config_file))
    m = _CONFIG_NAME.match(name)
    if m is None:
        raise ValueError(
            f"config_file: {config_file!r} is not an official SAM 2 image config "
            "(configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml or configs/sam2/sam2_hiera_{t,s,b+,l}.yaml)"
        )
    return _SIZES[m.group(2)], ("2.1" if m.group(1) == "sam2.1" else "2.0")

def _config_check(config_file, config):
    """The check load_core runs on the loaded model: the official config name, when given without
    a JSON config, must name the checkpoint's model type and version."""
    want = None if config_file is None else _parse_config_name(config_file)

    def check(core, path):
        if want is not None and config is None and (core.model_type, core.version) != want:
            model_type, version = want
            raise ValueError(
                f"config_file: {os.fspath(config_file)!r} is SAM {version} {model_type}, but {path} holds "
                f"SAM {core.version} {core.model_type}"
            )

    return check



class SAM2Base(ModelHandle):
    """A loaded SAM 2 image model: an immutable handle on shared weights.

    Any number of threads may use one model at once (each with its own SAM2ImagePredictor or
    SAM2AutomaticMaskGenerator); the model runs with the GIL released. ``with_execution`` gives
    another handle on the same weights (nothing copied) with other threads/precision.
    """

    _official_package = "sam2"

    def __init__(self, core):
        super().__init__(core)
        self.image_size = int(core.image_size)

    @property
    def model_type(self):
        """'tiny' | 'small' | 'base_plus' | 'large' (or 'custom' for a JSON config)."""
        return self._core.model_type

    @property
    def version(self):
        """'2.1' or '2.0'."""
        return self._core.version

    def __repr__(self):
        return (
            f"sam_cpp.sam2.SAM2Base(model_type={self.model_type!r}, version={self.version!r}, "
            f"checkpoint={self.checkpoint!r}, threads={self.threads}, precision={self.precision!r})"
        )


def build_sam2(
    config_file=None,
    ckpt_path=None,
    device="cpu",
    mode="eval",
    hydra_overrides_extra=(),
    apply_postprocessing=True,
    *,
    config=None,
    threads=None,
    precision="f32",
    **kwargs,
):
    """Loads an official SAM 2 / 2.1 checkpoint into a :class:`SAM2Base`.

    config_file: the official config name the checkpoint belongs to, checked against the
    checkpoint (its model type and version); may be None to take the checkpoint as it is.
    config: a JSON config file (tests/data/sam2/config.json format) for non-standard sizes;
    then config_file, if given, must still be an official name but is not compared with the
    checkpoint (its sizes are the JSON config's).
    """
    if ckpt_path is None:
        raise ValueError("ckpt_path: sam_cpp loads trained weights only; pass ckpt_path=<path to an official .pt>")
    check_device(device, "sam2")
    if mode != "eval":
        raise ValueError(f"mode: sam_cpp runs inference only (mode='eval'), got {mode!r}")
    if hydra_overrides_extra:
        raise ValueError(
            "hydra_overrides_extra: sam_cpp builds the image model from the checkpoint and takes no hydra "
            f"overrides, got {list(hydra_overrides_extra)!r}"
        )
    if not apply_postprocessing:
        raise ValueError(
            "apply_postprocessing: sam_cpp always applies build_sam2's image post-processing "
            "(the dynamic multimask fallback by stability); apply_postprocessing=False is not supported"
        )
    if kwargs:
        raise TypeError(f"build_sam2: unexpected keyword arguments {sorted(kwargs)}")
    check = _config_check(config_file, config)
    return SAM2Base(load_core(_core.Sam2Model.load, ckpt_path, "ckpt_path", "auto", config, threads, precision, check))


def build_sam2_hf(model_id, **kwargs):
    raise ValueError(
        "build_sam2_hf downloads from the Hugging Face hub; sam_cpp loads local files only: download the "
        f"checkpoint of {model_id!r} and call build_sam2(config_file, ckpt_path)"
    )


def build_sam2_video_predictor(
    config_file=None,
    ckpt_path=None,
    device="cpu",
    mode="eval",
    hydra_overrides_extra=(),
    apply_postprocessing=True,
    vos_optimized=False,
    *,
    config=None,
    threads=None,
    precision="f32",
    fill_hole_area=0,
    **kwargs,
):
    """Loads an official SAM 2 / 2.1 checkpoint with its video weights into a
    :class:`~sam_cpp.sam2.sam2_video_predictor.SAM2VideoPredictor`.

    Arguments as :func:`build_sam2`. The post-processing apply_postprocessing=True selects
    (dynamic multimask fallback, binarized click masks for the memory) is always applied.
    fill_hole_area: the official builder sets 8, and its package fills the holes with its GPU
    extension and skips it on CPU; 0 (the default) computes what it computes on CPU, 8 what it
    computes on GPU. vos_optimized (torch.compile of the official VOS predictor) is not supported.
    """
    from .sam2_video_predictor import SAM2VideoPredictor

    if ckpt_path is None:
        raise ValueError("ckpt_path: sam_cpp loads trained weights only; pass ckpt_path=<path to an official .pt>")
    check_device(device, "sam2")
    if mode != "eval":
        raise ValueError(f"mode: sam_cpp runs inference only (mode='eval'), got {mode!r}")
    if hydra_overrides_extra:
        raise ValueError(
            "hydra_overrides_extra: sam_cpp builds the video model from the checkpoint and takes no hydra "
            f"overrides, got {list(hydra_overrides_extra)!r}"
        )
    if not apply_postprocessing:
        raise ValueError(
            "apply_postprocessing: sam_cpp always applies build_sam2_video_predictor's post-processing "
            "(dynamic multimask fallback, binarized click masks for the memory); apply_postprocessing=False "
            "is not supported"
        )
    if vos_optimized:
        raise ValueError(
            "vos_optimized: the official VOS-optimized predictor (torch.compile) is not supported; use "
            "vos_optimized=False"
        )
    if isinstance(fill_hole_area, bool) or not isinstance(fill_hole_area, int) or fill_hole_area < 0:
        raise ValueError(f"fill_hole_area: expected an area >= 0 in low-res pixels, got {fill_hole_area!r}")
    if kwargs:
        raise TypeError(f"build_sam2_video_predictor: unexpected keyword arguments {sorted(kwargs)}")
    check = _config_check(config_file, config)
    core = load_core(_core.Sam2VideoModel.load, ckpt_path, "ckpt_path", "auto", config, threads, precision, check)
    return SAM2VideoPredictor(core, fill_hole_area)


def build_sam2_video_predictor_hf(model_id, **kwargs):
    raise ValueError(
        "build_sam2_video_predictor_hf downloads from the Hugging Face hub; sam_cpp loads local files only: "
        f"download the checkpoint of {model_id!r} and call build_sam2_video_predictor(config_file, ckpt_path)"
    )
