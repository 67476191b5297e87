"""Mask and RLE helpers of segment_anything.utils.amg, on numpy (RLE work in the C++ library).

RLE dicts are the official ones: uncompressed {'size': [h, w], 'counts': [ints]} with
column-major runs starting with zeros; COCO-compressed {'size': [h, w], 'counts': str}.
"""

import numpy as np

from .. import _core


def mask_to_rle_pytorch(tensor):
    """(B, H, W) masks (numpy bool/uint8; a torch tensor is read through numpy) -> B uncompressed RLEs."""
    masks = _masks(tensor)
    return [_core.rle_encode(np.ascontiguousarray(m)) for m in masks]


mask_to_rle = mask_to_rle_pytorch


def rle_to_mask(rle):
    """Uncompressed RLE -> (H, W) bool mask."""
    h, w = _hw(rle)
    return _core.rle_decode(h, w, _counts(rle))


def area_from_rle(rle):
    """Number of set pixels of an uncompressed RLE."""
    h, w = _hw(rle)
    return int(_core.rle_area(h, w, _counts(rle)))


def coco_encode_rle(uncompressed_rle):
    """Uncompressed RLE -> COCO RLE {'size': [h, w], 'counts': str}, without pycocotools."""
    h, w = _hw(uncompressed_rle)
    return {"size": [h, w], "counts": _core.rle_to_coco_string(h, w, _counts(uncompressed_rle))}


def coco_decode_rle(coco_rle):
    """COCO RLE {'size', 'counts': str or bytes} -> uncompressed RLE (not in the official module)."""
    h, w = _hw(coco_rle)
    counts = coco_rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [h, w], "counts": list(_core.rle_from_coco_string(counts, h, w))}


def box_xyxy_to_xywh(box_xyxy):
    """XYXY -> XYWH (w = x1 - x0) for one box or an (..., 4) array."""
    b = np.array(box_xyxy, copy=True)
    b[..., 2] = b[..., 2] - b[..., 0]
    b[..., 3] = b[..., 3] - b[..., 1]
    return b


def batched_mask_to_box(masks):
    """(..., H, W) masks -> (..., 4) XYXY boxes with inclusive max; [0, 0, 0, 0] for empty masks."""
    m = np.asarray(masks).astype(bool)
    if m.size == 0:
        return np.zeros((*m.shape[:-2], 4), dtype=np.int64)
    h, w = m.shape[-2:]
    rows, cols = m.any(axis=-1), m.any(axis=-2)
    cols_idx, rows_idx = np.arange(w), np.arange(h)
    x0 = np.where(cols, cols_idx, w).min(axis=-1)
    x1 = np.where(cols, cols_idx, -1).max(axis=-1)
    y0 = np.where(rows, rows_idx, h).min(axis=-1)
    y1 = np.where(rows, rows_idx, -1).max(axis=-1)
    out = np.stack([x0, y0, x1, y1], axis=-1).astype(np.int64)
    out[~cols.any(axis=-1)] = 0
    return out


def calculate_stability_score(masks, mask_threshold, threshold_offset):
    """IoU of the masks thresholded at mask_threshold +/- threshold_offset, per mask (..., H, W) -> (...)."""
    m = np.asarray(masks)
    inter = (m > (mask_threshold + threshold_offset)).sum(axis=(-1, -2), dtype=np.int64)
    union = (m > (mask_threshold - threshold_offset)).sum(axis=(-1, -2), dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (inter / union).astype(np.float32)


def build_point_grid(n_per_side):
    """(n*n, 2) points in [0, 1]: cell centres of an n x n grid, x varying fastest."""
    offset = 1.0 / (2 * n_per_side)
    side = np.linspace(offset, 1.0 - offset, n_per_side)
    xs = np.tile(side[None, :], (n_per_side, 1))
    ys = np.tile(side[:, None], (1, n_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def build_all_layer_point_grids(n_per_side, n_layers, scale_per_layer):
    """One grid per crop layer, layer i with n_per_side / scale_per_layer**i points per side."""
    return [build_point_grid(int(n_per_side / (scale_per_layer**i))) for i in range(n_layers + 1)]


def generate_crop_boxes(im_size, n_layers, overlap_ratio):
    """Crop boxes (XYXY) of every layer and their layer indices, as the generator crops."""
    im_h, im_w = im_size
    short_side = min(im_h, im_w)
    boxes, layers = [[0, 0, im_w, im_h]], [0]
    for layer in range(1, n_layers + 1):
        per_side = 2**layer
        overlap = int(overlap_ratio * short_side * (2 / per_side))
        crop_w = int(np.ceil((overlap * (per_side - 1) + im_w) / per_side))
        crop_h = int(np.ceil((overlap * (per_side - 1) + im_h) / per_side))
        x0s = [int((crop_w - overlap) * i) for i in range(per_side)]
        y0s = [int((crop_h - overlap) * i) for i in range(per_side)]
        for x0 in x0s:
            for y0 in y0s:
                boxes.append([x0, y0, min(x0 + crop_w, im_w), min(y0 + crop_h, im_h)])
                layers.append(layer)
    return boxes, layers


def _masks(tensor):
    if hasattr(tensor, "detach"):  # a torch tensor
        tensor = tensor.detach().cpu().numpy()
    m = np.asarray(tensor)
    if m.ndim != 3:
        raise ValueError(f"masks: expected B x H x W, got shape {m.shape}")
    return m.astype(np.uint8, copy=False) if m.dtype != np.uint8 else m


def _hw(rle):
    try:
        h, w = (int(v) for v in rle["size"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("rle: expected a dict with 'size': [h, w]") from None
    return h, w


def _counts(rle):
    try:
        return [int(c) for c in rle["counts"]]
    except (KeyError, TypeError, ValueError):
        raise ValueError("rle: expected 'counts' as a list of run lengths") from None
