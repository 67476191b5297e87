"""ResizeLongestSide on numpy: the coordinate part of segment_anything.utils.transforms.

The model resizes images itself (set_image); these map prompts from original pixels to the
resized frame, as the official transform does, for code that computes with them.
"""

import numpy as np


class ResizeLongestSide:
    def __init__(self, target_length):
        self.target_length = int(target_length)

    @staticmethod
    def get_preprocess_shape(oldh, oldw, long_side_length):
        """(h, w) with the longest side scaled to long_side_length, rounded half up."""
        scale = long_side_length * 1.0 / max(oldh, oldw)
        return int(oldh * scale + 0.5), int(oldw * scale + 0.5)

    def apply_coords(self, coords, original_size):
        """(..., 2) x, y in original pixels -> the resized image's pixels (float)."""
        old_h, old_w = original_size
        new_h, new_w = self.get_preprocess_shape(old_h, old_w, self.target_length)
        out = np.array(coords, dtype=float, copy=True)
        out[..., 0] = out[..., 0] * (new_w / old_w)
        out[..., 1] = out[..., 1] * (new_h / old_h)
        return out

    def apply_boxes(self, boxes, original_size):
        """(..., 4) XYXY boxes in original pixels -> (N, 4) in the resized image's pixels."""
        corners = self.apply_coords(np.asarray(boxes).reshape(-1, 2, 2), original_size)
        return corners.reshape(-1, 4)

    def apply_image(self, image):
        raise NotImplementedError("sam_cpp resizes inside set_image(); pass the original image there")
