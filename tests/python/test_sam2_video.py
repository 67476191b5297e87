"""sam_cpp.sam2 video tracking (build_sam2_video_predictor, SAM2VideoPredictor) against the official
package's outputs (tests/data/sam2_video, made by scripts/make_sam2_video_fixture.py; its README
describes the session).

The fixture holds the reference's low-res (64 x 64) logits; the official methods return them
resized to the video (bilinear, align_corners=False), so the expected video_res_masks are the
fixture's arrays resized here the same way. Tolerances are the C++ tests'
(tests/test_sam2_video.cpp): mask logits within 2e-4 (magnitude ~4, -1024 where an object is
absent), plus the float32 rounding of the resize on the -1024 values.
"""

import json
import pathlib
import shutil
import threading

import numpy as np
import pytest

import sam_cpp
from sam_cpp.sam2.build_sam import build_sam2_video_predictor
from sam_cpp.sam2.sam2_video_predictor import InferenceState, SAM2VideoPredictor

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
VIDEO = DATA / "sam2_video"
FRAMES = VIDEO / "frames"
CONFIG_JSON = DATA / "sam2" / "config.json"
OFFICIAL_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
H, W = 240, 320

LOGIT_TOL = 2e-4
RESIZE_RTOL = 1e-6  # float32 interpolation of values up to 1024 in magnitude


@pytest.fixture(scope="module")
def predictor():
    # One thread: the model is tiny and a team of threads costs more than it saves.
    return build_sam2_video_predictor(OFFICIAL_CONFIG, VIDEO / "sam2_video.pt", config=CONFIG_JSON, threads=1)


@pytest.fixture(scope="module")
def manifest():
    return json.loads((VIDEO / "manifest.json").read_text())


def resize_bilinear(x, h, w):
    """(..., h0, w0) -> (..., h, w) as torch's interpolate(mode='bilinear', align_corners=False)."""
    x = np.asarray(x, dtype=np.float64)

    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, ly = axis(x.shape[-2], h)
    x0, x1, lx = axis(x.shape[-1], w)
    rows = x[..., y0, :] * (1 - ly)[:, None] + x[..., y1, :] * ly[:, None]
    return rows[..., x0] * (1 - lx) + rows[..., x1] * lx


def assert_masks(got, low_res_ref, what):
    """got: (objects, 1, H, W) float32 video_res_masks; low_res_ref: (objects, 64, 64)."""
    assert got.dtype == np.float32, what
    assert got.shape == (low_res_ref.shape[0], 1, H, W), what
    want = resize_bilinear(low_res_ref, H, W)[:, None]
    err = np.abs(got - want) - RESIZE_RTOL * np.abs(want)
    assert err.max() <= LOGIT_TOL, f"{what}: largest logit difference {np.abs(got - want).max():.3g}"
    # Presence per object (-1024 where the reference finds the object absent) agrees exactly.
    np.testing.assert_array_equal(got.max(axis=(1, 2, 3)) > -1000, want.max(axis=(1, 2, 3)) > -1000, what)


def mask_of_rect(r):
    m = np.zeros((H, W), dtype=bool)
    m[r[1] : r[3], r[0] : r[2]] = True
    return m


def add_prompt(p, state, pr):
    if "mask_rect" in pr:
        return p.add_new_mask(state, pr["frame"], pr["obj_id"], mask_of_rect(pr["mask_rect"]))
    return p.add_new_points_or_box(
        state,
        frame_idx=pr["frame"],
        obj_id=pr["obj_id"],
        points=pr.get("points"),
        labels=pr.get("labels"),
        clear_old_points=pr.get("clear_old_points", True),
        box=pr.get("box"),
    )


def run_session(p, manifest):
    """The fixture's session: (the six add results, the five passes' frames in visiting order)."""
    prompts = manifest["prompts"]
    state = p.init_state(str(FRAMES))
    adds, passes = [], []

    def run(**kw):
        passes.append(list(p.propagate_in_video(state, **kw)))

    adds += [add_prompt(p, state, prompts[0]), add_prompt(p, state, prompts[1])]
    run()
    adds.append(add_prompt(p, state, prompts[2]))
    run(start_frame_idx=4)
    run(start_frame_idx=4, reverse=True)
    adds += [add_prompt(p, state, prompts[3]), add_prompt(p, state, prompts[4])]
    run(start_frame_idx=5)
    adds.append(add_prompt(p, state, prompts[5]))
    run(start_frame_idx=2, max_frame_num_to_track=3)
    return state, adds, passes


@pytest.fixture(scope="module")
def session(predictor, manifest):
    return run_session(predictor, manifest)


def test_add_prompts_match_reference(session, manifest):
    _, adds, _ = session
    assert len(adds) == 6
    for k, (frame, obj_ids, masks) in enumerate(adds):
        assert frame == manifest["prompts"][k]["frame"]
        assert_masks(masks, np.load(VIDEO / f"add{k}.npy"), f"add {k}")
    assert adds[2][1] == [1, 2, 3]
    assert adds[5][1] == [1, 2, 3, 4]


def test_propagation_matches_reference_per_frame_and_object(session, manifest):
    _, _, passes = session
    assert len(passes) == 5
    visible = absent = 0
    for i, frames in enumerate(passes):
        name = f"pass{i}"
        ref = np.load(VIDEO / f"{name}_masks.npy")  # (visited frames, objects, 64, 64)
        order = manifest["passes"][name]["order"]
        assert [f for f, _, _ in frames] == order, name
        for row, (frame, obj_ids, masks) in enumerate(frames):
            assert len(obj_ids) == ref.shape[1], name
            assert_masks(masks, ref[row], f"{name} frame {frame}")
            present = ref[row].max(axis=(1, 2)) > -1000
            visible += int(present.sum())
            absent += int((~present).sum())
    # The session exercises both sides of the object-score head.
    assert visible > 3 and absent > 3


def test_inference_state_reads_as_the_official_dict(session):
    state, _, _ = session
    assert isinstance(state, InferenceState)
    assert (state["num_frames"], state["video_height"], state["video_width"]) == (8, H, W)
    assert state["obj_ids"] == [1, 2, 3, 4]
    with pytest.raises(KeyError, match="images"):
        state["images"]


def test_remove_object_and_reset_state(predictor, manifest):
    state, _, _ = run_session(predictor, manifest)
    add0, add1 = np.load(VIDEO / "add0.npy"), np.load(VIDEO / "add1.npy")
    pass2 = np.load(VIDEO / "pass2_masks.npy")  # frames 4, 3, 2, 1, 0: frame 0 is row 4
    obj_ids, updated = predictor.remove_object(state, 2)
    assert obj_ids == [1, 3, 4] and state["obj_ids"] == [1, 3, 4]
    assert [f for f, _ in updated] == [0]  # object 2's prompts were on frame 0
    masks = updated[0][1]
    assert masks.shape == (3, 1, H, W)
    assert_masks(masks[:1], add1[:1], "object 1 on frame 0")  # its conditioning output
    assert_masks(masks[1:2], pass2[4, 2:3], "object 3 on frame 0")  # reverse-tracked
    assert predictor.remove_object(state, 42) == ([1, 3, 4], [])
    with pytest.raises(RuntimeError, match="42"):
        predictor.remove_object(state, 42, strict=True)
    predictor.reset_state(state)
    assert state["obj_ids"] == []
    with pytest.raises(RuntimeError, match="add inputs"):
        predictor.propagate_in_video(state)
    # After a reset the same prompt gives the same first masks; coordinates relative to the
    # frame (normalize_coords=False) give the same as pixels.
    pr = manifest["prompts"][0]
    rel = np.asarray(pr["points"], dtype=np.float32) / np.array([W, H], dtype=np.float32)
    frame, obj_ids, masks = predictor.add_new_points_or_box(state, 0, 1, rel, pr["labels"], normalize_coords=False)
    assert (frame, obj_ids) == (0, [1])
    assert_masks(masks, add0, "after reset, normalize_coords=False")


def test_generator_stops_early_and_guards_its_state(predictor, manifest):
    state = predictor.init_state(FRAMES)
    predictor.add_new_points_or_box(state, 0, 1, points=[[150, 120]], labels=[1])
    gen = predictor.propagate_in_video(state)
    frame, _, _ = next(gen)
    assert frame == 0
    with pytest.raises(RuntimeError, match="propagate_in_video"):
        predictor.add_new_points_or_box(state, 0, 1, points=[[10, 10]], labels=[1])
    gen.close()  # frames 1..7 stay untracked
    # The state is free again (max_frame_num_to_track counts the frames after the start).
    assert [f for f, _, _ in predictor.propagate_in_video(state, 0, 2)] == [0, 1, 2]
    for f, _, _ in predictor.propagate_in_video(state, start_frame_idx=3, max_frame_num_to_track=1):
        break  # a break in a for loop closes the generator too
    assert [f for f, _, _ in predictor.propagate_in_video(state, 1, 1, reverse=True)] == [1, 0]


def test_states_on_one_predictor_run_on_threads(predictor, manifest, session):
    _, want_adds, want_passes = session
    results = [None, None]
    errors = []

    def worker(i):
        try:
            results[i] = run_session(predictor, manifest)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for _, adds, passes in results:
        for (f, o, m), (wf, wo, wm) in zip(adds, want_adds):
            assert (f, o) == (wf, wo)
            np.testing.assert_array_equal(m, wm)
        for got, want in zip(passes, want_passes):
            assert [x[0] for x in got] == [x[0] for x in want]
            for (_, _, m), (_, _, wm) in zip(got, want):
                np.testing.assert_array_equal(m, wm)


# ---- bad input: clear Python exceptions naming the argument ----------------------------------
def test_bad_prompts_raise_clear_errors(predictor):
    state = predictor.init_state(FRAMES)
    with pytest.raises(IndexError, match="frame_idx: 8 is out of range"):
        predictor.add_new_points_or_box(state, 8, 1, points=[[1, 1]], labels=[1])
    with pytest.raises(IndexError, match="frame_idx"):
        predictor.add_new_mask(state, -1, 1, np.ones((H, W), bool))
    with pytest.raises(ValueError, match="points: expected shape N x 2"):
        predictor.add_new_points_or_box(state, 0, 1, points=[[1, 1, 1]], labels=[1])
    with pytest.raises(ValueError, match="labels: expected shape 2"):
        predictor.add_new_points_or_box(state, 0, 1, points=[[1, 1], [2, 2]], labels=[1])
    with pytest.raises(ValueError, match="points: not a numeric array"):
        predictor.add_new_points_or_box(state, 0, 1, points=[["a", "b"]], labels=[1])
    with pytest.raises(ValueError, match="together"):
        predictor.add_new_points_or_box(state, 0, 1, points=[[1, 1]])
    with pytest.raises(ValueError, match="at least one of points or box"):
        predictor.add_new_points_or_box(state, 0, 1)
    with pytest.raises(ValueError, match="clear_old_points"):
        predictor.add_new_points_or_box(state, 0, 1, box=[0, 0, 10, 10], clear_old_points=False)
    with pytest.raises(ValueError, match="box: expected 4 values"):
        predictor.add_new_points_or_box(state, 0, 1, box=[0, 0, 10])
    with pytest.raises(ValueError, match="obj_id"):
        predictor.add_new_points_or_box(state, 0, "one", points=[[1, 1]], labels=[1])
    with pytest.raises(ValueError, match="mask: expected a 2-D"):
        predictor.add_new_mask(state, 0, 1, np.ones((1, H, W), bool))
    with pytest.raises(RuntimeError, match="add inputs"):
        predictor.propagate_in_video(state)
    predictor.add_new_points_or_box(state, 0, 1, points=[[1, 1]], labels=[1])
    with pytest.raises(IndexError, match="frame_idx: 99 is out of range"):
        predictor.propagate_in_video(state, start_frame_idx=99)
    with pytest.raises(ValueError, match="max_frame_num_to_track"):
        predictor.propagate_in_video(state, max_frame_num_to_track=-1)
    with pytest.raises(TypeError, match="inference_state"):
        predictor.add_new_points_or_box({"num_frames": 8}, 0, 1, points=[[1, 1]], labels=[1])


def test_bad_videos_and_builds_raise_clear_errors(predictor, tmp_path):
    with pytest.raises(FileNotFoundError, match="video_path"):
        predictor.init_state(tmp_path / "no_such_folder")
    with pytest.raises(ValueError, match="not a folder"):
        predictor.init_state(FRAMES / "00000.jpg")
    shutil.copy(FRAMES / "00000.jpg", tmp_path / "first.jpg")
    with pytest.raises(sam_cpp.SamError, match="first.jpg"):
        predictor.init_state(tmp_path)
    ckpt = VIDEO / "sam2_video.pt"
    with pytest.raises(ValueError, match="CPU only"):
        build_sam2_video_predictor(OFFICIAL_CONFIG, ckpt, device="cuda", config=CONFIG_JSON)
    with pytest.raises(ValueError, match="vos_optimized"):
        build_sam2_video_predictor(OFFICIAL_CONFIG, ckpt, vos_optimized=True, config=CONFIG_JSON)
    with pytest.raises(ValueError, match="config_file"):
        build_sam2_video_predictor("sam2.1_hiera_x.yaml", ckpt, config=CONFIG_JSON)
    with pytest.raises(FileNotFoundError, match="ckpt_path"):
        build_sam2_video_predictor(OFFICIAL_CONFIG, tmp_path / "missing.pt", config=CONFIG_JSON)
    with pytest.raises(sam_cpp.SamError, match="config.json"):  # not a checkpoint
        build_sam2_video_predictor(OFFICIAL_CONFIG, CONFIG_JSON, config=CONFIG_JSON)
    other = build_sam2_video_predictor(OFFICIAL_CONFIG, ckpt, config=CONFIG_JSON, threads=1)
    assert isinstance(other, SAM2VideoPredictor)
    state = other.init_state(FRAMES)
    with pytest.raises(ValueError, match="another predictor"):
        predictor.reset_state(state)
