"""sam_cpp: Segment Anything on the CPU without PyTorch, under the official package's names.

Change ``from segment_anything import ...`` to ``from sam_cpp import ...``; the model, predictor
and automatic mask generator take the same arguments and return the same numpy arrays and
records. SAM 2 is under the official sam2 module names in sam_cpp.sam2 (sam_cpp.sam2.build_sam,
.sam2_image_predictor, .automatic_mask_generator). See docs/PYTHON.md for the API tables and what
differs.
"""

from ._core import SamError, available_cores, precision_supported, read_image
from .automatic_mask_generator import SamAutomaticMaskGenerator
from .build_sam import (
    Sam,
    build_sam,
    build_sam_from_config,
    build_sam_vit_b,
    build_sam_vit_h,
    build_sam_vit_l,
    sam_model_registry,
)
from .predictor import SamPredictor

__version__ = "0.1.0"

__all__ = [
    "Sam",
    "SamAutomaticMaskGenerator",
    "SamError",
    "SamPredictor",
    "available_cores",
    "build_sam",
    "build_sam_from_config",
    "build_sam_vit_b",
    "build_sam_vit_h",
    "build_sam_vit_l",
    "precision_supported",
    "read_image",
    "sam_model_registry",
]
