"""SAM 2 / SAM 2.1 for images under the official ``sam2`` package's names.

Change ``from sam2.build_sam import build_sam2`` to ``from sam_cpp.sam2.build_sam import
build_sam2`` (and so for ``sam2.sam2_image_predictor`` and ``sam2.automatic_mask_generator``);
the builder, the predictor and the generator take the same arguments and return the same
numpy arrays and records. See docs/PYTHON.md ("SAM 2").
"""
