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
