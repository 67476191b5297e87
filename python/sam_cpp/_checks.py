"""Argument checks shared by the predictor and the mask generator (ValueError, naming the argument)."""

import errno
import os

import numpy as np


def require_file(path, what):
    """FileNotFoundError (as open() raises it) when `path` is not an existing file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(errno.ENOENT, f"{what} not found", path)
    return path


def rgb_image(image, name="image"):
    """An (H, W, 3) uint8 array, C-contiguous (a copy only when the input is not)."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8 (H x W x 3 RGB), got {a.dtype}")
    if a.ndim != 3:
        raise ValueError(f"{name}: expected an H x W x 3 array, got shape {a.shape}")
    if a.shape[2] != 3:
        raise ValueError(f"{name}: expected 3 channels (H x W x 3), got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name}: empty image, shape {a.shape}")
    return np.ascontiguousarray(a)


def float_array(x, name, shape=None):
    """A C-contiguous float32 array of `x`; `shape` is a tuple with None for any size."""
    try:
        a = np.ascontiguousarray(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: not a numeric array ({e})") from None
    if shape is not None:
        if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
            want = " x ".join("N" if s is None else str(s) for s in shape)
            raise ValueError(f"{name}: expected shape {want}, got {a.shape}")
    return a


def label_array(x, name, shape):
    a = np.asarray(x)
    if a.dtype.kind not in "iub":
        if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            pass
        else:
            raise ValueError(f"{name}: expected integer labels in {{1, 0, -1}}, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.int32)
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        want = " x ".join("N" if s is None else str(s) for s in shape)
        raise ValueError(f"{name}: expected shape {want}, got {a.shape}")
    return a


# ---- the models' builders (SAM and SAM 2) ---------------------------------------------------------
PRECISIONS = ("f32", "bf16", "int8")


def threads_arg(threads):
    """Threads per computation: an integer >= 0 (0, or None, for every core)."""
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads: expected an integer >= 0 (0: every core), got {threads!r}")
    return threads


def precision_arg(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def check_device(device, package):
    """ValueError for any device but the CPU (None: the CPU); `package` names the official one for GPUs."""
    if device is None:
        return
    name = str(getattr(device, "type", device)).split(":")[0].lower()
    if name != "cpu":
        raise ValueError(
            f"sam_cpp computes on the CPU only; device {str(device)!r} is not supported "
            f"(use the official {package} package with torch for GPUs)"
        )


# ---- prompts (SamPredictor, SAM2ImagePredictor) ---------------------------------------------------
def point_prompt(point_coords, point_labels, check_points, labels_missing):
    """(points float32, labels int32) of a point prompt, or (None, None) without one.

    check_points: float_array's shape for the points, or a function checking the float32 array;
    the labels' shape is the points' without the last axis. labels_missing: the end of the
    message when point_coords comes without point_labels.
    """
    if point_coords is None:
        if point_labels is not None:
            raise ValueError("point_coords: must be supplied with point_labels")
        return None, None
    if point_labels is None:
        raise ValueError(f"point_labels: must be supplied {labels_missing}")
    if callable(check_points):
        points = float_array(point_coords, "point_coords")
        check_points(points)
    else:
        points = float_array(point_coords, "point_coords", check_points)
    return points, label_array(point_labels, "point_labels", points.shape[:-1])


def mask_prompt(mask_input, size, extra_shapes=()):
    """A (1, size, size) float32 low-res mask input from (1, size, size), (size, size) or one of
    extra_shapes; None stays None."""
    if mask_input is None:
        return None
    m = float_array(mask_input, "mask_input")
    if m.shape not in ((1, size, size), (size, size), *extra_shapes):
        raise ValueError(f"mask_input: expected shape 1 x {size} x {size}, got {m.shape}")
    return m.reshape(1, size, size)


# ---- the automatic mask generators (SAM and SAM 2) ------------------------------------------------
OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")

# The parameters both generators take, with the same meaning, in the options of the library.
AMG_PARAMETERS = (
    "points_per_batch",
    "pred_iou_thresh",
    "stability_score_thresh",
    "stability_score_offset",
    "box_nms_thresh",
    "crop_n_layers",
    "crop_nms_thresh",
    "crop_overlap_ratio",
    "crop_n_points_downscale_factor",
)
_AMG_INTEGERS = ("points_per_batch", "crop_n_layers", "crop_n_points_downscale_factor")


def int_arg(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer, got {v!r}")
    return int(v)


def amg_options(options, args):
    """Checks the parameters both generators take (AMG_PARAMETERS, points_per_side, point_grids,
    output_mode: the official names, read from `args`, the generator's arguments by name) and sets
    them in `options` (the library's AmgOptions or Sam2AmgOptions)."""
    points_per_side, point_grids, output_mode = args["points_per_side"], args["point_grids"], args["output_mode"]
    if (points_per_side is None) == (point_grids is None):
        raise ValueError("Exactly one of points_per_side or point_grid must be provided.")
    if output_mode not in OUTPUT_MODES:
        raise ValueError(f"output_mode: expected one of {', '.join(OUTPUT_MODES)}, got {output_mode!r}")
    options.points_per_side = 0 if points_per_side is None else int_arg(points_per_side, "points_per_side")
    for name in AMG_PARAMETERS:
        v = args[name]
        setattr(options, name, int_arg(v, name) if name in _AMG_INTEGERS else float(v))
    if point_grids is not None:
        grids = []
        for i, g in enumerate(point_grids):
            g = np.asarray(g, dtype=np.float64)
            if g.ndim != 2 or g.shape[1] != 2:
                raise ValueError(f"point_grids[{i}]: expected N x 2 (x, y in [0, 1]), got shape {g.shape}")
            grids.append([[float(x), float(y)] for x, y in g])
        options.point_grids = grids
    options.output_mode = output_mode
    return options
