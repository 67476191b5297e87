"""SAM 2 / SAM 2.1 for images and videos under the official ``sam2`` package's names.

Change ``from sam2.build_sam import build_sam2`` to ``from sam_cpp.sam2.build_sam import
build_sam2`` (and so for ``build_sam2_video_predictor``, ``sam2.sam2_image_predictor``,
``sam2.sam2_video_predictor`` and ``sam2.automatic_mask_generator``); the builders, the
predictors and the generator take the same arguments and return numpy arrays where the official
ones return torch tensors. See docs/PYTHON.md ("SAM 2", "SAM 2 video").
"""
