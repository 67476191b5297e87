#!/usr/bin/env python3
"""Golden outputs of the official SAM 2 video predictor for tests/data/sam2_video/.

Uses the random-weight reduced model of make_sam2_fixture.py (tests/data/sam2/sam2_reduced.pt:
the sam2.1_hiera_t config with small widths, image size 256) with the object-score head's last layer
rescaled (below; saved as sam2_video.pt), built as build_sam2_video_predictor
builds it (SAM2VideoPredictor with its post-processing overrides), on 8 JPEG frames made from
tests/data/images/truck.png (a window panning over the image, 320x240). The session:

  1. init_state(frames/)
  2. add_new_points_or_box(frame 0, obj 1, one click)
  3. add_new_points_or_box(frame 0, obj 2, a box)
  4. propagate_in_video()                      forward from frame 0       -> pass0
  5. add_new_points_or_box(frame 4, obj 3, a click and a negative click)
  6. propagate_in_video(start 4)               frames 4..7                -> pass1
  7. propagate_in_video(start 4, reverse)      frames 4..0                -> pass2
  8. add_new_points_or_box(frame 6, obj 1, one more click, clear_old_points=False): a correction
     on a tracked frame (the previous mask logits are the mask input; not a conditioning frame)
  9. add_new_points_or_box(frame 0, obj 2, one more click, clear_old_points=False): a correction
     on a conditioning frame after tracking (stored apart, then dropped by the next propagation,
     as the official code does)
 10. propagate_in_video(start 5)               frames 5..7                -> pass3
 11. add_new_mask(frame 2, obj 4, a rectangle of the 320x240 frame)
 12. propagate_in_video(start 2, max_frame_num_to_track 3)   frames 2..5  -> pass4

(In fp32 on CPU the official code cannot track a frame whose memory bank has no object pointer,
e.g. object 3 on frames 0..3 going forward or on frame 7 going backward: it concatenates the
bf16 memories alone and hands them to fp32 layers, "mat1 and mat2 must have the same dtype". The
passes above avoid such frames.)

Each propagate pass writes <pass>_masks.npy (visited frames, objects, 64, 64), in visiting order
(manifest.json: passes.<pass>.order): the low-res mask logits of every object as yielded
(pred_masks, -1024 where the object-score head says the object is absent), and <pass>_scores.npy
(visited frames, objects): the object score logits. Each add call writes add<k>.npy
(objects, 64, 64): the consolidated low-res logits of that frame. Stage tensors of one call each:
memory encoder inputs and output, memory attention inputs and output, object pointers.

The same session is then rerun with 1e-6 noise on the preprocessed frames; the largest change of
each pass's logits goes to manifest.json ("noise_sensitivity").

Run from the repository root (environment as for make_sam2_fixture.py):
  /work/venv-sam2/bin/python scripts/make_sam2_video_fixture.py tests/data/sam2_video
"""
import json
import os
import sys
import warnings

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_sam2_fixture import REDUCED, POSTPROCESSING, SEED, build  # noqa: E402

# build_sam2_video_predictor's overrides (besides POSTPROCESSING, which it shares with build_sam).
VIDEO = [
    "++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor",
    "++model.binarize_mask_from_pts_for_mem_enc=true",
    "++model.fill_hole_area=8",
]

SCORE_LAYER = "sam_mask_decoder.pred_obj_score_head.layers.2"
SCORE_SHIFT = float(os.environ.get("SCORE_SHIFT", "0.34"))
SCORE_SCALE = float(os.environ.get("SCORE_SCALE", "10"))
NUM_FRAMES = 8
FRAME_W, FRAME_H = 320, 240

PROMPTS = [
    dict(frame=0, obj_id=1, points=[[150.0, 120.0]], labels=[1]),
    dict(frame=0, obj_id=2, box=[200.0, 60.0, 300.0, 200.0]),
    dict(frame=4, obj_id=3, points=[[80.0, 180.0], [120.0, 150.0]], labels=[1, 0]),
    dict(frame=6, obj_id=1, points=[[100.0, 100.0]], labels=[1], clear_old_points=False),
    dict(frame=0, obj_id=2, points=[[250.0, 150.0]], labels=[0], clear_old_points=False),
    dict(frame=2, obj_id=4, mask_rect=[40, 60, 160, 200]),  # x0, y0, x1, y1 (exclusive)
]


def save_npy(out, name, array):
    if isinstance(array, torch.Tensor):
        array = array.detach().float().cpu().numpy()
    np.save(os.path.join(out, name), np.ascontiguousarray(np.asarray(array, dtype=np.float32)))


def make_frames(src, frames_dir):
    os.makedirs(frames_dir, exist_ok=True)
    img = Image.open(src).convert("RGB")
    w, h = 960, 720
    for i in range(NUM_FRAMES):
        x, y = 60 * i, 20 * i
        crop = img.crop((x, y, x + w, y + h)).resize((FRAME_W, FRAME_H), Image.LANCZOS)
        crop.save(os.path.join(frames_dir, f"{i:05d}.jpg"), quality=90)


def add(predictor, state, p):
    kw = {}
    if "points" in p:
        kw["points"] = np.array(p["points"], np.float32)
        kw["labels"] = np.array(p["labels"], np.int32)
    if "box" in p:
        kw["box"] = np.array(p["box"], np.float32)
    if "clear_old_points" in p:
        kw["clear_old_points"] = p["clear_old_points"]
    obj_idx = state["obj_id_to_idx"].get(p["obj_id"])
    is_cond = obj_idx is None or p["frame"] not in state["frames_tracked_per_obj"][obj_idx]
    if "mask_rect" in p:
        x0, y0, x1, y1 = p["mask_rect"]
        mask = np.zeros((FRAME_H, FRAME_W), bool)
        mask[y0:y1, x0:x1] = True
        predictor.add_new_mask(state, frame_idx=p["frame"], obj_id=p["obj_id"], mask=mask)
    else:
        predictor.add_new_points_or_box(state, frame_idx=p["frame"], obj_id=p["obj_id"], **kw)
    # the consolidated low-res logits of this frame (what the returned video-res masks are resized from)
    cons = predictor._consolidate_temp_output_across_obj(state, p["frame"], is_cond=is_cond,
                                                        consolidate_at_video_res=False)
    return cons["pred_masks"][:, 0].clone()


def propagate(predictor, state, **kw):
    objs = len(state["obj_ids"])
    masks, scores, order = [], [], []
    for frame_idx, obj_ids, _ in predictor.propagate_in_video(state, **kw):
        order.append(frame_idx)
        m, sc = np.zeros((objs, 64, 64), np.float32), np.zeros(objs, np.float32)
        for k in range(objs):
            d = state["output_dict_per_obj"][k]
            out = d["cond_frame_outputs"].get(frame_idx) or d["non_cond_frame_outputs"][frame_idx]
            m[k] = out["pred_masks"][0, 0].float().numpy()
            sc[k] = out["object_score_logits"].reshape(-1)[0].item()
        masks.append(m)
        scores.append(sc)
    # in visiting order: (visited frames, objects, 64, 64) and (visited frames, objects)
    return order, np.stack(masks), np.stack(scores)


def session(predictor, frames_dir, noise=None, hooks=None):
    state = predictor.init_state(frames_dir)
    if noise is not None:
        g = torch.Generator().manual_seed(SEED + 1)
        state["images"] = state["images"].clone() + noise * torch.randn(state["images"].shape, generator=g)
        state["cached_features"] = {}
    result = {"state": state}
    result["add0"] = add(predictor, state, PROMPTS[0])
    result["add1"] = add(predictor, state, PROMPTS[1])
    result["pass0"] = propagate(predictor, state)
    result["add2"] = add(predictor, state, PROMPTS[2])
    if hooks is not None:
        hooks["armed"] = True
    result["pass1"] = propagate(predictor, state, start_frame_idx=4)
    if hooks is not None:
        hooks["armed"] = False
    result["pass2"] = propagate(predictor, state, start_frame_idx=4, reverse=True)
    result["add3"] = add(predictor, state, PROMPTS[3])
    result["add4"] = add(predictor, state, PROMPTS[4])
    result["pass3"] = propagate(predictor, state, start_frame_idx=5)
    result["add5"] = add(predictor, state, PROMPTS[5])
    result["pass4"] = propagate(predictor, state, start_frame_idx=2, max_frame_num_to_track=3)
    return result


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/sam2_video"
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.join(here, "..")
    os.makedirs(out, exist_ok=True)
    frames_dir = os.path.join(out, "frames")
    make_frames(os.path.join(root, "tests", "data", "images", "truck.png"), frames_dir)

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    predictor = build("configs/sam2.1/sam2.1_hiera_t.yaml", REDUCED + VIDEO)
    ckpt = torch.load(os.path.join(root, "tests", "data", "sam2", "sam2_reduced.pt"), map_location="cpu")
    # The random model's object-score head says "absent" on every frame (logits -0.45 to -0.1),
    # which would leave every mask at -1024: its last layer becomes SCORE_SCALE * (layer +
    # SCORE_SHIFT) so that objects appear and disappear. Saved as this fixture's own checkpoint.
    sd = dict(ckpt["model"])
    sd[SCORE_LAYER + ".weight"] = sd[SCORE_LAYER + ".weight"] * SCORE_SCALE
    sd[SCORE_LAYER + ".bias"] = (sd[SCORE_LAYER + ".bias"] + SCORE_SHIFT) * SCORE_SCALE
    torch.save({"model": sd}, os.path.join(out, "sam2_video.pt"))
    predictor.load_state_dict(sd, strict=True)
    predictor.eval()
    assert predictor.fill_hole_area == 8 and predictor.binarize_mask_from_pts_for_mem_enc

    # Stage tensors: the memory encoder call of frame 5 / object 1 (index 0) in pass 1 (a tracked
    # frame: sigmoid mask), and the memory attention call of frame 7 / object 1 (full bank).
    hooks = {"armed": False, "calls": []}
    captured = {}

    def on_mem_attn(module, args, kwargs, output):
        if hooks["armed"]:
            hooks["calls"].append(("attn", {k: (v.clone() if torch.is_tensor(v) else v) for k, v in kwargs.items()},
                                   output.clone()))

    def on_mem_enc(module, args, kwargs, output):
        if hooks["armed"]:
            # cloned: the caller adds no_obj_embed_spatial to the output in place
            hooks["calls"].append(("enc", ([a.clone() for a in args], kwargs),
                                   {"vision_features": output["vision_features"].clone(),
                                    "vision_pos_enc": [p.clone() for p in output["vision_pos_enc"]]}))

    predictor.memory_attention.register_forward_hook(on_mem_attn, with_kwargs=True)
    predictor.memory_encoder.register_forward_hook(on_mem_enc, with_kwargs=True)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref = session(predictor, frames_dir, hooks=hooks)
    fill_holes_skipped = any("Skipping the post-processing" in str(w.message) for w in caught)

    # pass 1 processes frames 4..7, objects 0..2 per frame; calls in that order (object 3,
    # index 2, is conditioned on frame 4: no call there).
    state = ref["state"]
    attn_calls = [c for c in hooks["calls"] if c[0] == "attn"]
    enc_calls = [c for c in hooks["calls"] if c[0] == "enc"]
    attn_index = {}
    enc_index = {}
    i = 0
    for f in range(4, NUM_FRAMES):
        for k in range(3):
            if f in state["output_dict_per_obj"][k]["cond_frame_outputs"]:
                continue
            attn_index[(f, k)] = i
            enc_index[(f, k)] = i + 1  # after the preflight's encoding of object 3's frame 4
            i += 1
    assert len(attn_calls) == i and len(enc_calls) == i + 1, (len(attn_calls), len(enc_calls), i)
    _, kw, o = attn_calls[attn_index[(7, 0)]]
    captured["attn_curr"] = kw["curr"][0]            # (HW, 1, C)
    captured["attn_curr_pos"] = kw["curr_pos"][0]    # (HW, 1, C)
    captured["attn_memory"] = kw["memory"]           # (M, 1, mem_dim)
    captured["attn_memory_pos"] = kw["memory_pos"]   # (M, 1, mem_dim)
    captured["attn_out"] = o                         # (HW, 1, C)
    num_ptr = int(kw["num_obj_ptr_tokens"])
    (args, kw), o = enc_calls[enc_index[(5, 0)]][1:]
    pix_feat, masks = args[0], args[1]
    captured["enc_pix_feat"] = pix_feat              # (1, C, 16, 16)
    captured["enc_mask"] = masks                     # (1, 1, 256, 256): scaled sigmoid
    captured["enc_out"] = o["vision_features"]       # (1, mem_dim, 16, 16) before no_obj_embed_spatial
    captured["enc_pos"] = o["vision_pos_enc"][0]     # (1, mem_dim, 16, 16)

    for name, t in captured.items():
        save_npy(out, name + ".npy", t)
    # What the session keeps of frame 5 / object 1 after pass 1 (bf16 features, pointer).
    o5 = state["output_dict_per_obj"][0]["non_cond_frame_outputs"][5]
    save_npy(out, "maskmem_features_f5_o0.npy", o5["maskmem_features"].float())
    ptrs = np.zeros((NUM_FRAMES, 3, predictor.hidden_dim), np.float32)
    for k in range(3):
        d = state["output_dict_per_obj"][k]
        for f in range(NUM_FRAMES):
            o = d["cond_frame_outputs"].get(f) or d["non_cond_frame_outputs"].get(f)
            ptrs[f, k] = o["obj_ptr"][0].float().numpy()
    save_npy(out, "obj_ptrs_final.npy", ptrs)

    manifest = {
        "checkpoint": "sam2_video.pt: tests/data/sam2/sam2_reduced.pt, %s -> %g x (it + %g)" % (
            SCORE_LAYER, SCORE_SCALE, SCORE_SHIFT),
        "config": "configs/sam2.1/sam2.1_hiera_t.yaml",
        "overrides": REDUCED + VIDEO + POSTPROCESSING,
        "torch": torch.__version__,
        "sam2": "1.1.0",
        "frames": {"count": NUM_FRAMES, "width": FRAME_W, "height": FRAME_H},
        "prompts": PROMPTS,
        "fill_holes_skipped_on_cpu": fill_holes_skipped,
        "maskmem_dtype": str(o5["maskmem_features"].dtype),
        "attn_call": {"pass": 1, "frame": 7, "object_index": 0, "num_obj_ptr_tokens": num_ptr,
                      "memory_tokens": int(captured["attn_memory"].shape[0])},
        "enc_call": {"pass": 1, "frame": 5, "object_index": 0},
        "passes": {},
    }
    for k in range(len(PROMPTS)):
        save_npy(out, f"add{k}.npy", ref[f"add{k}"])
    for p in ("pass0", "pass1", "pass2", "pass3", "pass4"):
        order, masks, scores = ref[p]
        save_npy(out, f"{p}_masks.npy", masks)
        save_npy(out, f"{p}_scores.npy", scores)
        manifest["passes"][p] = {"order": order}

    # The reference's own sensitivity: the same session with 1e-6 noise on the frames.
    noisy = session(predictor, frames_dir, noise=1e-6)
    sens = {}
    for p in ("pass0", "pass1", "pass2", "pass3", "pass4"):
        a, b = ref[p][1], noisy[p][1]
        sens[p] = {
            "max_abs_logit_change": float(np.nanmax(np.abs(a - b))),
            "max_abs_score_change": float(np.nanmax(np.abs(ref[p][2] - noisy[p][2]))),
            "sign_flips": int(np.nansum((a > 0) != (b > 0))),
        }
    manifest["noise_sensitivity"] = {"noise_std": 1e-6, **sens}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(manifest["noise_sensitivity"], indent=1))
    print("fill holes skipped:", fill_holes_skipped, "maskmem dtype:", manifest["maskmem_dtype"])
    for p in ("pass0", "pass1", "pass2", "pass3", "pass4"):
        print(p, "scores", np.round(ref[p][2], 2).tolist())
        print(p, "min |score|", np.nanmin(np.abs(ref[p][2])))


if __name__ == "__main__":
    main()
