#!/usr/bin/env python3
"""Golden outputs of the official SAM 2 package for tests/data/sam2/.

Builds SAM 2.1 models from the package's own configs (hydra), replaces every tensor of the
state dict with seeded random values, saves the checkpoint in the official format
(torch.save({"model": state_dict}), a torch zip pickle) and writes what the official code
computes from it: Hiera stages, neck levels, the predictor's features, predictor cases and
segment-everything records.

Two models:
  sam2_reduced.pt  the sam2.1_hiera_t config with small widths and image_size 256 (most tests);
  keys_<size>.json the key -> shape list of each full-size config (tiny, small, base_plus,
                   large; SAM 2.1 and 2.0), for the loader's shape tests (no weights: the
                   full-size checkpoints are 150-900 MB).

Environment (outside the repository):
  python3 -m venv /work/venv-sam2
  /work/venv-sam2/bin/pip install --no-deps torch torchvision
  /work/venv-sam2/bin/pip install nvidia-nccl-cu13 nvidia-cusparselt-cu13 nvidia-nvshmem-cu13 \
      "cuda-toolkit[cufile]"   # the PyPI torch wheel links these even on CPU
  /work/venv-sam2/bin/pip install filelock typing-extensions sympy networkx jinja2 fsspec \
      numpy pillow hydra-core iopath tqdm setuptools
  SAM2_BUILD_CUDA=0 /work/venv-sam2/bin/pip install --no-deps --no-build-isolation sam2==1.1.0
Run from the repository root:
  /work/venv-sam2/bin/python scripts/make_sam2_fixture.py tests/data/sam2
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from hydra.utils import instantiate

import sam2  # noqa: F401  (initialises hydra on the package's configs)
from sam2.sam2_image_predictor import SAM2ImagePredictor
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

SEED = 1234
IMAGE_SIZE = 256  # reduced model input side (the official models use 1024)

# build_sam's post-processing overrides (dynamic multimask via stability).
POSTPROCESSING = [
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
]

# The sam2.1_hiera_t config with small widths. Hiera: embed 12, 1 head (more in later stages),
# stages [1, 1, 3, 1]
# (every stage change pools queries; stage 3 has windowed and global blocks; at image size 256
# the stage grids are 64, 32, 16, 8, so windows of 14 and 7 pad 16 -> 28 and 8 -> 14).
REDUCED = [
    f"model.image_size={IMAGE_SIZE}",
    "model.image_encoder.trunk.embed_dim=12",
    "model.image_encoder.trunk.num_heads=1",
    "model.image_encoder.trunk.stages=[1,1,3,1]",
    "model.image_encoder.trunk.global_att_blocks=[3]",
    "model.image_encoder.neck.d_model=32",
    "model.image_encoder.neck.backbone_channel_list=[96,48,24,12]",
    "model.image_encoder.neck.position_encoding.num_pos_feats=32",
    "model.memory_attention.d_model=32",
    "model.memory_attention.num_layers=1",
    "model.memory_attention.layer.d_model=32",
    "model.memory_attention.layer.dim_feedforward=32",
    "model.memory_attention.layer.self_attention.embedding_dim=32",
    "model.memory_attention.layer.self_attention.feat_sizes=[16,16]",
    "model.memory_attention.layer.cross_attention.embedding_dim=32",
    "model.memory_attention.layer.cross_attention.kv_in_dim=16",
    "model.memory_attention.layer.cross_attention.feat_sizes=[16,16]",
    "model.memory_encoder.out_dim=16",
    "++model.memory_encoder.in_dim=32",
    "model.memory_encoder.position_encoding.num_pos_feats=16",
    "++model.memory_encoder.mask_downsampler.embed_dim=32",
    "++model.memory_encoder.mask_downsampler.stride=4",
    "model.memory_encoder.fuser.layer.dim=32",
    "model.memory_encoder.fuser.num_layers=1",
]

FULL_CONFIGS = {
    "tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "large": "configs/sam2.1/sam2.1_hiera_l.yaml",
    "tiny_2.0": "configs/sam2/sam2_hiera_t.yaml",
    "large_2.0": "configs/sam2/sam2_hiera_l.yaml",
}


def build(config, overrides):
    cfg = compose(config_name=config, overrides=overrides + POSTPROCESSING)
    OmegaConf.resolve(cfg)
    model = instantiate(cfg.model, _recursive_=True)
    return model.eval()


def randomise(model, seed):
    """Every tensor of the state dict random, in a way that keeps activations O(1)."""
    g = torch.Generator().manual_seed(seed)
    sd = model.state_dict()
    new = {}
    embeddings = ("_token.", "mask_tokens.", "point_embeddings.", "not_a_point_embed.", "no_mask_embed.")
    for key, t in sd.items():
        if not t.is_floating_point():
            new[key] = t
            continue
        shape = t.shape
        if key.endswith(".bias"):
            v = 0.1 * torch.randn(shape, generator=g)
        elif not key.endswith(".weight") or any(e in key for e in embeddings):
            # parameters and buffers that are not layers: positional tables, tokens, embeddings
            v = 0.5 * torch.randn(shape, generator=g)
        elif t.dim() == 1:  # norm scales
            v = 1.0 + 0.2 * torch.randn(shape, generator=g)
        else:  # linear and conv weights, U(-a, a) with unit variance through the layer
            fan_in = t[0].numel()
            a = (3.0 / max(fan_in, 1)) ** 0.5
            v = (torch.rand(shape, generator=g) * 2 - 1) * a
        new[key] = v.to(t.dtype)
    model.load_state_dict(new, strict=True)
    return model


def save_npy(out, name, array):
    path = os.path.join(out, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, np.ascontiguousarray(np.asarray(array, dtype=np.float32)))


def key_shapes(model):
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


def image_cases(model, out, images):
    """Preprocessed input, trunk stages, neck levels and the predictor's features per image."""
    manifest = {}
    trunk = model.image_encoder.trunk
    for name, img in images.items():
        pred = SAM2ImagePredictor(model)
        # The predictor hard-codes the 1024-model's feature sizes; the model itself handles any
        # image_size. Same computation, sizes of this model.
        s = model.image_size // 4
        pred._bb_feat_sizes = [(s, s), (s // 2, s // 2), (s // 4, s // 4)]
        x = pred._transforms(np.array(img))[None]
        if name == "truck":  # a downscale (antialiased); the others are checked through their features
            save_npy(out, f"input_{name}.npy", x)
        with torch.no_grad():
            stages = trunk(x)
            if name != "truck":
                stages = []
            for i, f in enumerate(stages):
                save_npy(out, f"trunk_stage{i}_{name}.npy", f)
            feats, pos = model.image_encoder.neck(stages) if stages else ([], [])
            for i, (f, p) in enumerate(zip(feats, pos)):
                save_npy(out, f"neck_level{i}_{name}.npy", f)
                if i > 0:  # level 0 is the same formula on a larger grid
                    save_npy(out, f"neck_pos{i}_{name}.npy", p)
            pred.set_image(np.array(img))
            save_npy(out, f"image_embed_{name}.npy", pred._features["image_embed"])
            for i, f in enumerate(pred._features["high_res_feats"]):
                save_npy(out, f"high_res_feat{i}_{name}.npy", f)
        manifest[name] = {"height": img.height, "width": img.width}
    return manifest


def predictor_cases(model, out, image):
    pred = SAM2ImagePredictor(model)
    s = model.image_size // 4
    pred._bb_feat_sizes = [(s, s), (s // 2, s // 2), (s // 4, s // 4)]
    pred.set_image(np.array(image))
    h, w = image.height, image.width
    rng = np.random.default_rng(SEED)
    cases = {
        "point_multimask": dict(point_coords=[[0.55 * w, 0.45 * h]], point_labels=[1], multimask_output=True),
        "point_single": dict(point_coords=[[0.30 * w, 0.60 * h]], point_labels=[1], multimask_output=False),
        "box": dict(box=[0.1 * w, 0.2 * h, 0.7 * w, 0.9 * h], multimask_output=False),
        "points_box": dict(point_coords=[[0.4 * w, 0.5 * h], [0.8 * w, 0.3 * h]], point_labels=[1, 0],
                           box=[0.2 * w, 0.1 * h, 0.9 * w, 0.8 * h], multimask_output=True),
        "points_single": dict(point_coords=[[0.2 * w, 0.2 * h], [0.6 * w, 0.7 * h], [0.5 * w, 0.1 * h]],
                              point_labels=[1, 1, 0], multimask_output=False),
    }
    manifest = {}
    results = {}
    for name, c in cases.items():
        kwargs = {k: (np.array(v, dtype=np.float32) if k in ("point_coords", "box") else
                      np.array(v, dtype=np.int32) if k == "point_labels" else v) for k, v in c.items()}
        masks, iou, low = pred.predict(return_logits=True, **kwargs)
        results[name] = low
        store(out, name, masks, iou, low, rng)
        manifest[name] = c
    # Mask input: the previous best low-res logits fed back with a new point.
    low = results["point_multimask"]
    best = int(np.argmax(pred.predict(point_coords=np.array(cases["point_multimask"]["point_coords"], np.float32),
                                      point_labels=np.array([1], np.int32), return_logits=True)[1]))
    mask_in = low[best:best + 1]
    save_npy(out, "predict/mask_input/mask_in.npy", mask_in)
    c = dict(point_coords=[[0.55 * w, 0.45 * h], [0.25 * w, 0.25 * h]], point_labels=[1, 0], multimask_output=False)
    masks, iou, low2 = pred.predict(point_coords=np.array(c["point_coords"], np.float32),
                                    point_labels=np.array(c["point_labels"], np.int32), mask_input=mask_in,
                                    multimask_output=False, return_logits=True)
    store(out, "mask_input", masks, iou, low2, rng)
    manifest["mask_input"] = dict(c, mask_input="mask_in.npy")
    return manifest


def store(out, name, masks, iou, low, rng):
    """IoU, low-res logits, and 300 sampled full-resolution logits [row, col, v_mask0, ...]."""
    save_npy(out, f"predict/{name}/iou.npy", iou)
    save_npy(out, f"predict/{name}/low_res.npy", low)
    n, h, w = masks.shape
    rows = rng.integers(0, h, 300)
    cols = rng.integers(0, w, 300)
    samples = [[int(r), int(c)] + [float(masks[m, r, c]) for m in range(n)] for r, c in zip(rows, cols)]
    with open(os.path.join(out, f"predict/{name}/samples.json"), "w") as f:
        json.dump({"num_masks": n, "height": h, "width": w, "samples": samples}, f)


def amg_cases(model, out, images):
    cases = {
        # the smallest image: a random model's masks are noisy, so their RLEs are long
        "synthetic_grid5": dict(image="synthetic", points_per_side=5, pred_iou_thresh=0.55,
                                stability_score_thresh=0.25, stability_score_offset=0.2, box_nms_thresh=1.0),
        "synthetic_m2m": dict(image="synthetic", points_per_side=4, pred_iou_thresh=0.6, stability_score_thresh=0.15,
                              stability_score_offset=0.2, use_m2m=True, box_nms_thresh=1.0),
        "synthetic_single_crops": dict(image="synthetic", points_per_side=4, pred_iou_thresh=0.5,
                                       stability_score_thresh=0.05, stability_score_offset=0.2,
                                       multimask_output=False, crop_n_layers=1, box_nms_thresh=0.9),
        "synthetic_nms": dict(image="synthetic", points_per_side=8, pred_iou_thresh=0.45,
                              stability_score_thresh=0.2, stability_score_offset=0.2, box_nms_thresh=0.7),
    }
    manifest = {}
    for name, c in cases.items():
        params = {k: v for k, v in c.items() if k != "image"}
        gen = SAM2AutomaticMaskGenerator(model, output_mode="coco_rle", **params)
        s = model.image_size // 4
        gen.predictor._bb_feat_sizes = [(s, s), (s // 2, s // 2), (s // 4, s // 4)]
        records = gen.generate(np.array(images[c["image"]]))
        for r in records:
            r["segmentation"]["counts"] = r["segmentation"]["counts"]
        path = os.path.join(out, "amg", name + ".json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"params": c, "records": records}, f)
        manifest[name] = {"params": c, "records": len(records)}
        print(name, len(records), "records", file=sys.stderr)
    return manifest


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/sam2"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(SEED)
    here = os.path.dirname(os.path.abspath(__file__))
    img_dir = os.path.join(here, "..", "tests", "data", "images")
    images = {n: Image.open(os.path.join(img_dir, n + ".png")).convert("RGB") for n in ("truck", "dog", "synthetic")}

    # Key lists of the full-size configs.
    for size, config in FULL_CONFIGS.items():
        m = build(config, [])
        with open(os.path.join(out, f"keys_{size}.json"), "w") as f:
            json.dump(key_shapes(m), f)
        del m

    model = randomise(build("configs/sam2.1/sam2.1_hiera_t.yaml", REDUCED), SEED)
    torch.save({"model": model.state_dict()}, os.path.join(out, "sam2_reduced.pt"))
    torch.set_num_threads(1)
    manifest = {
        "config": "configs/sam2.1/sam2.1_hiera_t.yaml",
        "overrides": REDUCED,
        "postprocessing": POSTPROCESSING,
        "seed": SEED,
        "torch": torch.__version__,
        "sam2": "1.1.0",
        "images": image_cases(model, out, images),
        "predict": predictor_cases(model, out, images["truck"]),
        "amg": amg_cases(model, out, images),
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
