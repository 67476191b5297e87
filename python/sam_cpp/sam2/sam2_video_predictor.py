"""SAM2VideoPredictor: tracking objects through a video, as sam2.sam2_video_predictor, on numpy.

Made by :func:`sam_cpp.sam2.build_sam.build_sam2_video_predictor`. The methods take the
official arguments and return what the official ones return, with numpy arrays where the
official package returns torch tensors: ``video_res_masks`` is a float32 array of mask logits,
(objects, 1, video height, video width), objects in ``obj_ids`` order (-1024 where an object is
absent from the frame).
"""

import os
import queue
import threading

import numpy as np

from .. import _core
from .._checks import check_device, float_array, label_array, precision_arg, threads_arg


class InferenceState:
    """One video's frames, prompts and tracking results (what ``init_state`` returns).

    The official state is a dict; this one answers the keys examples read (``num_frames``,
    ``video_height``, ``video_width``, ``obj_ids``) as a read-only mapping. It belongs to the
    predictor that made it and must be used from one thread at a time; states of one predictor
    may be used on different threads at once.
    """

    _KEYS = ("num_frames", "video_height", "video_width", "obj_ids")

    def __init__(self, owner, core):
        self._owner = owner
        self._core = core
        self._propagating = False

    @property
    def num_frames(self):
        return self._core.num_frames

    @property
    def video_height(self):
        return self._core.video_height

    @property
    def video_width(self):
        return self._core.video_width

    @property
    def obj_ids(self):
        return list(self._core.obj_ids)

    def __getitem__(self, key):
        if key not in self._KEYS:
            raise KeyError(f"{key!r}: sam_cpp's inference state has the keys {', '.join(self._KEYS)}")
        return getattr(self, key)

    def __contains__(self, key):
        return key in self._KEYS

    def keys(self):
        return list(self._KEYS)

    def __repr__(self):
        return (
            f"sam_cpp.sam2.InferenceState(num_frames={self.num_frames}, video_height={self.video_height}, "
            f"video_width={self.video_width}, obj_ids={self.obj_ids})"
        )


def _int(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer, got {v!r}")
    return int(v)


class SAM2VideoPredictor:
    """A loaded SAM 2 model with its video weights and the official video predictor's methods.

    The model is an immutable handle on shared weights; each ``init_state`` makes an independent
    inference state. Thread safety: calls on one inference state must not overlap (a
    ``propagate_in_video`` generator holds its state until it is exhausted or closed); different
    states, of one predictor or of several, may be used on different threads at once (the library
    runs with the GIL released).
    """

    training = False

    def __init__(self, core, fill_hole_area=0):
        self._core = core
        self.fill_hole_area = int(fill_hole_area)
        self.image_size = int(core.image_size)

    # ---- the model handle (torch.nn.Module look-alikes, execution settings) ------------------
    def eval(self):
        return self

    def to(self, device=None, dtype=None, non_blocking=False):
        """Returns self for the CPU; any other device raises ValueError."""
        check_device(device, "sam2")
        if dtype is not None and "float32" not in str(dtype):
            raise ValueError(f"sam_cpp computes in float32; dtype {dtype} is not supported (see precision=)")
        return self

    @property
    def device(self):
        return "cpu"

    @property
    def model_type(self):
        return self._core.model_type

    @property
    def version(self):
        return self._core.version

    @property
    def checkpoint(self):
        return self._core.checkpoint_path

    @property
    def threads(self):
        """Threads per computation (0: every core this process may run on)."""
        return self._core.threads

    @property
    def precision(self):
        return self._core.precision

    @property
    def num_maskmem(self):
        return self._core.num_maskmem

    def with_execution(self, threads=None, precision=None):
        """A predictor on the same weights computing with other settings (None: keep this one's)."""
        t = self.threads if threads is None else threads_arg(threads)
        p = self.precision if precision is None else precision_arg(precision)
        return type(self)(self._core.with_execution(t, p), self.fill_hole_area)

    def __repr__(self):
        return (
            f"sam_cpp.sam2.SAM2VideoPredictor(model_type={self.model_type!r}, version={self.version!r}, "
            f"checkpoint={self.checkpoint!r}, threads={self.threads}, precision={self.precision!r})"
        )

    @classmethod
    def from_pretrained(cls, model_id, **kwargs):
        from .build_sam import build_sam2_video_predictor_hf

        return build_sam2_video_predictor_hf(model_id, **kwargs)

    # ---- the official methods ---------------------------------------------------------------
    def init_state(self, video_path, offload_video_to_cpu=False, offload_state_to_cpu=False, async_loading_frames=False):
        """Reads a folder of JPEG frames (<index>.jpg, ordered by index) into a new state.

        The offload and async flags choose where the official package keeps frames and state and
        when it decodes them; here everything is in CPU memory and the frames are decoded at
        once, which gives the same results, so they are accepted and have no effect.
        """
        path = os.fspath(video_path)
        if not os.path.isdir(path):
            if os.path.exists(path):
                raise ValueError(
                    f"video_path: {path!r} is not a folder; sam_cpp's video predictor reads folders of JPEG "
                    "frames (<index>.jpg), e.g. made by ffmpeg -i video.mp4 -q:v 2 -start_number 0 folder/'%05d.jpg'"
                )
            raise FileNotFoundError(2, "video_path not found", path)
        core = _core.Sam2VideoPredictor(self._core, self.fill_hole_area)
        core.init_state(path)
        return InferenceState(self, core)

    def _state(self, inference_state):
        if not isinstance(inference_state, InferenceState):
            raise TypeError(
                f"inference_state: expected the state init_state returned, got {type(inference_state).__name__}"
            )
        if inference_state._owner is not self:
            raise ValueError("inference_state: made by another predictor's init_state; use that predictor")
        if inference_state._propagating:
            raise RuntimeError(
                "inference_state: a propagate_in_video generator is running on it; exhaust or close() it first"
            )
        return inference_state._core

    def _frame_idx(self, core, frame_idx):
        f = _int(frame_idx, "frame_idx")
        if not 0 <= f < core.num_frames:
            raise IndexError(f"frame_idx: {f} is out of range, the video has {core.num_frames} frames (0..{core.num_frames - 1})")
        return f

    def add_new_points_or_box(
        self,
        inference_state,
        frame_idx,
        obj_id,
        points=None,
        labels=None,
        clear_old_points=True,
        normalize_coords=True,
        box=None,
    ):
        """Clicks (labels 1 foreground, 0 background) and/or a box for an object on a frame.

        points: (N, 2) or (1, N, 2) x, y; labels: (N,) or (1, N); box: x0, y0, x1, y1. In video
        pixels with normalize_coords=True, else relative to the frame (0..1). A new obj_id adds an
        object. Returns (frame_idx, obj_ids, video_res_masks).
        """
        core = self._state(inference_state)
        f = self._frame_idx(core, frame_idx)
        obj = _int(obj_id, "obj_id")
        if (points is None) != (labels is None):
            raise ValueError("points and labels must be provided together")
        if points is None and box is None:
            raise ValueError("at least one of points or box must be provided as input")
        if box is not None and not clear_old_points:
            raise ValueError(
                "box: a box must be the first prompt of a frame; use clear_old_points=True with a box"
            )
        pts = lab = b = None
        if points is not None:
            pts = float_array(points, "points")
            if pts.ndim == 3 and pts.shape[0] == 1:
                pts = pts[0]
            if pts.ndim != 2 or pts.shape[1] != 2:
                raise ValueError(f"points: expected shape N x 2 (or 1 x N x 2), got {np.shape(points)}")
            lab = np.asarray(labels)
            if lab.ndim == 2 and lab.shape[0] == 1:
                lab = lab[0]
            lab = label_array(lab, "labels", (pts.shape[0],))
            if not np.all(np.isfinite(pts)):
                raise ValueError("points: coordinates must be finite")
        if box is not None:
            b = float_array(box, "box")
            if b.size != 4:
                raise ValueError(f"box: expected 4 values x0, y0, x1, y1, got shape {b.shape}")
            b = np.ascontiguousarray(b.reshape(4))
            if not np.all(np.isfinite(b)):
                raise ValueError("box: coordinates must be finite")
        if not normalize_coords:
            scale = np.array([core.video_width, core.video_height], dtype=np.float32)
            if pts is not None:
                pts = np.ascontiguousarray(pts * scale)
            if b is not None:
                b = np.ascontiguousarray(b * np.tile(scale, 2))
        frame, obj_ids, masks, _, _ = core.add_new_points_or_box(f, obj, pts, lab, b, bool(clear_old_points))
        return frame, obj_ids, masks

    def add_new_points(self, *args, **kwargs):
        """The official deprecated name of add_new_points_or_box."""
        return self.add_new_points_or_box(*args, **kwargs)

    def add_new_mask(self, inference_state, frame_idx, obj_id, mask):
        """A mask prompt: an (H, W) array of any size, nonzero (True) inside the object.

        Returns (frame_idx, obj_ids, video_res_masks).
        """
        core = self._state(inference_state)
        f = self._frame_idx(core, frame_idx)
        obj = _int(obj_id, "obj_id")
        m = np.asarray(mask)
        if m.ndim != 2:
            raise ValueError(f"mask: expected a 2-D (H, W) mask, got shape {m.shape}")
        if m.shape[0] == 0 or m.shape[1] == 0:
            raise ValueError(f"mask: empty mask, shape {m.shape}")
        m = np.ascontiguousarray(m != 0, dtype=np.uint8)
        frame, obj_ids, masks, _, _ = core.add_new_mask(f, obj, m)
        return frame, obj_ids, masks

    def propagate_in_video(self, inference_state, start_frame_idx=None, max_frame_num_to_track=None, reverse=False):
        """Tracks every object; a generator of (frame_idx, obj_ids, video_res_masks) per frame.

        start_frame_idx: default the first frame with prompts; max_frame_num_to_track: default
        the whole video; reverse: towards frame 0. Frames are computed as the generator is
        advanced: stopping early (break, close()) leaves later frames untracked, as the official
        generator does.
        """
        core = self._state(inference_state)
        start = None if start_frame_idx is None else self._frame_idx(core, start_frame_idx)
        limit = None
        if max_frame_num_to_track is not None:
            limit = _int(max_frame_num_to_track, "max_frame_num_to_track")
            if limit < 0:
                raise ValueError(f"max_frame_num_to_track: expected a count >= 0, got {limit}")
        if not core.obj_ids:
            raise RuntimeError("No input points or masks are provided for any object; please add inputs first.")
        return self._propagate(inference_state, core, start, limit, bool(reverse))

    def _propagate(self, state, core, start, limit, reverse):
        # The library calls back once per frame; the tracking runs on a worker thread that waits
        # after each frame until the consumer asks for the next one.
        frames = queue.Queue(maxsize=1)
        go_on = queue.Queue(maxsize=1)
        done = object()

        def on_frame(frame):
            frames.put(frame)
            return go_on.get()

        def work():
            try:
                core.propagate_in_video(on_frame, start, limit, reverse)
                frames.put(done)
            except BaseException as e:  # handed to the consumer
                frames.put(e)

        if state._propagating:
            raise RuntimeError("inference_state: another propagate_in_video generator is running on it; exhaust or close() it first")
        state._propagating = True
        worker = threading.Thread(target=work, name="sam_cpp propagate_in_video", daemon=True)
        worker.start()
        finished = False
        try:
            while True:
                item = frames.get()
                if item is done:
                    finished = True
                    return
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                frame, obj_ids, masks, _, _ = item
                yield frame, obj_ids, masks
                go_on.put(True)
        finally:
            if not finished:
                go_on.put(False)  # the library stops after this frame
                while frames.get() is not done:
                    pass
            worker.join()
            state._propagating = False

    def remove_object(self, inference_state, obj_id, strict=False, need_output=True):
        """Removes an object; returns (obj_ids, updated_frames), updated_frames a list of
        (frame_idx, video_res_masks) of the frames the object had prompts on (empty with
        need_output=False). An unknown obj_id does nothing, or raises RuntimeError with strict."""
        core = self._state(inference_state)
        obj = _int(obj_id, "obj_id")
        if obj not in core.obj_ids:
            if strict:
                raise RuntimeError(f"Cannot remove object id {obj} as it doesn't exist. All existing object ids: {list(core.obj_ids)}.")
            return list(core.obj_ids), []
        updated = core.remove_object(obj, False)
        frames = [(f[0], f[2]) for f in updated] if need_output else []
        return list(core.obj_ids), frames

    def reset_state(self, inference_state):
        """Forgets every object, prompt and tracking result (the frames stay)."""
        self._state(inference_state).reset_state()
