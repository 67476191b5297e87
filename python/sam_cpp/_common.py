"""What the SAM and SAM 2 layers share: the model handle's torch look-alikes and execution
settings, and the loading of a checkpoint into the library (build_sam, build_sam2)."""

import os

from ._checks import check_device, precision_arg, require_file, threads_arg


class ModelHandle:
    """The base of sam_cpp.Sam and sam_cpp.sam2.build_sam.SAM2Base: an immutable handle on a
    library model (``_core``: _core.Model or _core.Sam2Model) with the torch.nn.Module calls the
    official examples make. Subclasses set ``_official_package`` (named in the device error)."""

    training = False
    _official_package = None

    def __init__(self, core):
        self._core = core

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
        check_device(device, self._official_package)
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
    def checkpoint(self):
        return self._core.checkpoint_path

    def parameter_count(self):
        return self._core.parameter_count

    def with_execution(self, threads=None, precision=None):
        """A handle on the same weights computing with other settings (None: keep this one's)."""
        t = self.threads if threads is None else threads_arg(threads)
        p = self.precision if precision is None else precision_arg(precision)
        return type(self)(self._core.with_execution(t, p))


def load_core(load, checkpoint, checkpoint_arg, model_type, config, threads, precision, check=None):
    """The library model of a checkpoint: `load` is _core.Model.load or _core.Sam2Model.load,
    checkpoint_arg the argument's name in errors; check(core, path), if given, may reject the
    loaded model before threads/precision are applied."""
    path = require_file(checkpoint, checkpoint_arg)
    config_path = "" if config is None else require_file(config, "config")
    t, p = threads_arg(threads), precision_arg(precision)
    core = load(path, model_type, os.fspath(config_path))
    if check is not None:
        check(core, path)
    if t != 0 or p != "f32":
        core = core.with_execution(t, p)
    return core
