"""Bad input raises the right Python exception with the library's message, never a crash."""

import threading

import numpy as np
import pytest

import sam_cpp
from conftest import CHECKPOINT, CONFIG, DATA, image_of


@pytest.fixture()
def predictor(tiny_sam):
    p = sam_cpp.SamPredictor(tiny_sam)
    p.set_embedding(np.load(DATA / "embedding_synthetic.npy"), (173, 301))
    return p


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((8, 8, 3), dtype=np.float32), "dtype uint8"),
        (np.zeros((8, 8), dtype=np.uint8), "H x W x 3"),
        (np.zeros((8, 8, 4), dtype=np.uint8), "3 channels"),
        (np.zeros((0, 8, 3), dtype=np.uint8), "empty"),
    ],
)
def test_bad_images(tiny_sam, image, match):
    p = sam_cpp.SamPredictor(tiny_sam)
    with pytest.raises(ValueError, match=match):
        p.set_image(image)
    with pytest.raises(ValueError, match=match):
        sam_cpp.SamAutomaticMaskGenerator(tiny_sam).generate(image)


def test_bad_image_format(tiny_sam):
    with pytest.raises(ValueError, match="image_format"):
        sam_cpp.SamPredictor(tiny_sam).set_image(image_of("synthetic"), image_format="RGBA")


def test_unset_image(tiny_sam):
    p = sam_cpp.SamPredictor(tiny_sam)
    with pytest.raises(RuntimeError, match="set_image"):
        p.predict(np.array([[1, 1]]), np.array([1]))
    with pytest.raises(RuntimeError, match="set_image"):
        p.get_image_embedding()
    with pytest.raises(RuntimeError, match="set_image"):
        p.predict_batch(boxes=np.array([[0, 0, 5, 5]]))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError):
        sam_cpp.sam_model_registry["vit_b"](checkpoint=str(tmp_path / "nothing.pth"))
    with pytest.raises(FileNotFoundError):
        sam_cpp.build_sam_from_config(CHECKPOINT, config=tmp_path / "nothing.json")


def test_bad_checkpoints(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(sam_cpp.SamError, match="junk.pth"):
        sam_cpp.sam_model_registry["vit_b"](checkpoint=junk)
    # The tiny checkpoint is not a ViT-B: the message names the file and the key at fault.
    with pytest.raises(ValueError, match="sam_tiny.pth"):
        sam_cpp.sam_model_registry["vit_b"](checkpoint=CHECKPOINT)
    with pytest.raises(ValueError, match="checkpoint"):
        sam_cpp.sam_model_registry["vit_b"]()
    assert issubclass(sam_cpp.SamError, ValueError)


def test_bad_execution_settings():
    with pytest.raises(ValueError, match="precision"):
        sam_cpp.build_sam_from_config(CHECKPOINT, config=CONFIG, precision="fp8")
    with pytest.raises(ValueError, match="threads"):
        sam_cpp.build_sam_from_config(CHECKPOINT, config=CONFIG, threads=-2)


def test_gpu_device_is_refused(tiny_sam):
    assert tiny_sam.to("cpu") is tiny_sam and tiny_sam.to(device="cpu") is tiny_sam and tiny_sam.cpu() is tiny_sam
    with pytest.raises(ValueError, match="CPU only"):
        tiny_sam.to(device="cuda")
    with pytest.raises(ValueError, match="CPU only"):
        tiny_sam.cuda()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(point_coords=np.array([[1, 2, 3]]), point_labels=np.array([1])), "point_coords"),
        (dict(point_coords=np.array([[1, 2]]), point_labels=None), "point_labels"),
        (dict(point_coords=None, point_labels=np.array([1])), "point_coords"),
        (dict(point_coords=np.array([[1, 2]]), point_labels=np.array([1, 1])), "point_labels"),
        (dict(point_coords=np.array([[1, 2]]), point_labels=np.array([2])), "point_labels"),
        (dict(point_coords=np.array([[np.nan, 2]]), point_labels=np.array([1])), "point_coords"),
        (dict(point_coords=np.array([["a", "b"]]), point_labels=np.array([1])), "point_coords"),
        (dict(box=np.array([10, 10, 5, 5])), "box"),
        (dict(box=np.array([1, 2, 3])), "box"),
        (dict(mask_input=np.zeros((1, 64, 64), dtype=np.float32)), "mask_input"),
    ],
)
def test_bad_prompts(predictor, kwargs, match):
    with pytest.raises(ValueError, match=match):
        predictor.predict(**kwargs)


def test_bad_batches(predictor):
    with pytest.raises(ValueError, match="boxes"):
        predictor.predict_batch(boxes=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="boxes"):
        predictor.predict_batch(point_coords=np.zeros((2, 1, 2)), point_labels=np.ones((2, 1)), boxes=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="predict_batch"):
        predictor.predict_batch()


def test_bad_embeddings(tiny_sam, tmp_path):
    p = sam_cpp.SamPredictor(tiny_sam)
    with pytest.raises(ValueError, match="embedding"):
        p.set_embedding(np.zeros((1, 8, 64, 64), dtype=np.float32), (100, 100))
    with pytest.raises(ValueError, match="original_size"):
        p.set_embedding(np.zeros((1, 32, 64, 64), dtype=np.float32), (0, 100))
    with pytest.raises(FileNotFoundError):
        p.load_embedding(tmp_path / "none.npy", (10, 10))
    bare = tmp_path / "bare.npy"
    np.save(bare, np.zeros((1, 32, 64, 64), dtype=np.float32))
    with pytest.raises(ValueError, match="json"):
        p.load_embedding(bare)  # no size given, no bare.npy.json beside it
    assert not p.is_image_set


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(output_mode="png"), "output_mode"),
        (dict(points_per_side=None), "points_per_side"),
        (dict(point_grids=[np.zeros((4, 2))]), "points_per_side"),
        (dict(points_per_batch=0), "points_per_batch"),
        (dict(points_per_side=1.5), "points_per_side"),
        (dict(point_grids=[np.zeros((4, 3))], points_per_side=None), "point_grids"),
    ],
)
def test_bad_generator_options(tiny_sam, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sam_cpp.SamAutomaticMaskGenerator(tiny_sam, **kwargs)


def test_bad_rles():
    from sam_cpp.utils.amg import coco_decode_rle, rle_to_mask

    with pytest.raises(ValueError, match="counts"):
        rle_to_mask({"size": [2, 2], "counts": [1, 1]})  # sums to 2, not 4
    with pytest.raises(ValueError):
        coco_decode_rle({"size": [2, 2], "counts": "~~~"})
    with pytest.raises(ValueError, match="size"):
        rle_to_mask({"counts": [4]})


def test_missing_image_file(tmp_path):
    with pytest.raises(ValueError, match="nothing.png"):
        sam_cpp.read_image(str(tmp_path / "nothing.png"))


def test_threads_share_one_model(tiny_sam, manifest):
    # One model, one predictor per thread, computing at once (the GIL is released): the same
    # results as one after the other.
    images = ["synthetic", "dog", "synthetic", "dog"]
    point = np.array([[100, 100]])

    def run(name):
        p = sam_cpp.SamPredictor(tiny_sam)
        p.set_image(image_of(name))
        return p.predict(point, np.array([1]))

    expected = {n: run(n) for n in set(images)}
    results = [None] * len(images)

    def worker(i):
        results[i] = run(images[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, got in zip(images, results):
        for a, b in zip(got, expected[name]):
            np.testing.assert_array_equal(a, b)
