#!/usr/bin/env python3
"""SAM 2.1 video tracking on CPU: this project's `sam track` against the official
SAM2VideoPredictor, same random weights, same frames, same thread count, in one run.

For each model size (full-size configs, seeded random weights as scripts/make_sam2_fixture.py
makes them, saved as an official checkpoint) and object count (one click each on frame 0):
  - ours:     sam track -c CKPT --model-type SIZE --video FRAMES --point 0,X,Y,K ... --format coco-rle
              (its "propagation:" line: frames per second after the first, prompted, frame);
  - official: SAM2VideoPredictor (fp32, CPU) built from the same config and checkpoint in a child
              process: init_state(FRAMES), add_new_points_or_box per object, propagate_in_video;
              frames per second the same way (from the first yielded frame to the last).
Synthetic frames: 1024x1024 JPEGs (a drifting smooth pattern with three discs). Each side runs in
its own process under /usr/bin/time for its peak RSS. Then:
  - memory per frame of history: the tiny model, one object, the same run on --frames and on
    --history-frames frames; (peak RSS difference) / (frame difference), each side;
  - a long video (--long frames, the fixture's 320x240 frames repeated, the fixture's small model
    tests/data/sam2_video, image size 256): peak RSS of `sam track --stream`, `sam track` (whole
    video) and, with --long-official, the official predictor.
`uptime` load averages are printed before and after each step (the machine may be shared).

Usage (the venv of scripts/make_sam2_fixture.py: pip install sam2):
  /work/venv-sam2/bin/python scripts/bench_video_vs_official.py --sam build/sam --threads 2 \\
      [--sizes tiny base_plus] [--objects 1 3] [--frames 4] [--history-frames 12] [--long 1200] [--long-official]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIZE = 1024


def uptime():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def points_for(k, w, h):
    """Object k's click (0-based) of n: the centres of the frames' discs."""
    centres = [(0.3, 0.4), (0.65, 0.35), (0.5, 0.7)]
    cx, cy = centres[k % 3]
    return [round(cx * w, 1), round(cy * h, 1)]


def make_frames(folder, n, size=SIZE):
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    for f in range(n):
        img = np.empty((size, size, 3), np.float32)
        for c in range(3):
            img[..., c] = 127.5 + 60 * np.sin(0.02 * (x - 8 * f) + 0.03 * y + 2.0 * c)
        for k, col in enumerate([(230, 40, 40), (40, 200, 60), (40, 80, 230)]):
            cx, cy = points_for(k, size, size)
            cx += 6 * f * (1 if k % 2 == 0 else -1)
            disc = (x - cx) ** 2 + (y - cy) ** 2 <= (0.12 * size) ** 2
            img[disc] = col
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(folder, f"{f:05d}.jpg"), quality=95)


def subset(folder, src, n):
    os.makedirs(folder, exist_ok=True)
    for f in range(n):
        os.symlink(os.path.join(src, f"{f:05d}.jpg"), os.path.join(folder, f"{f:05d}.jpg"))
    return folder


def timed_run(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (stdout + stderr, peak RSS in KiB, wall seconds)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M"] + cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    out = p.stdout + p.stderr
    if p.returncode != 0:
        sys.exit("failed: " + " ".join(cmd) + "\n" + out[-4000:])
    rss = int(re.search(r"maxrss_kb=([0-9]+)", out).group(1))
    return out, rss, wall


def fps_of(out):
    m = re.search(r"propagation: ([0-9]+) frames in ([0-9.]+) s after the first \(([0-9.]+) frames/s\)", out)
    if not m:
        sys.exit("no propagation line in:\n" + out[-4000:])
    return int(m.group(1)), float(m.group(2)), float(m.group(3))


def ours(a, ckpt, size, frames, objects, extra=(), model_args=None, stream=False):
    w = h = SIZE if model_args is None else None
    if model_args is None:
        model_args = ["--model-type", size]
    if w is None:
        w, h = 320, 240
    cmd = [a.sam, "track", "-c", ckpt, *model_args, "-t", str(a.threads), "--video", frames,
           "--format", "coco-rle", "--output", tempfile.mkdtemp(dir=a.tmp)]
    for k in range(objects):
        x, y = points_for(k, w, h)
        cmd += ["--point", f"0,{x},{y},{k + 1}"]
    if stream:
        cmd.append("--stream")
    out, rss, wall = timed_run(cmd + list(extra))
    n, s, fps = fps_of(out)
    return {"tracked_frames": n, "seconds": s, "fps": fps, "peak_rss_kib": rss, "wall_s": wall}


def official(a, ckpt, size, frames, objects, reduced=False):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--ckpt", ckpt, "--size", size, "--video", frames,
           "--objects", str(objects), "--threads", str(a.threads)] + (["--reduced"] if reduced else [])
    out, rss, wall = timed_run(cmd)
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if not m:
        sys.exit("no result from the official worker:\n" + out[-4000:])
    r = json.loads(m.group(1))
    r.update(peak_rss_kib=rss, wall_s=wall)
    return r


def worker(a):
    """The official side, in its own process: build, load, init_state, prompts, propagate."""
    import torch
    sys.path.insert(0, HERE)
    import make_sam2_fixture as fx
    from make_sam2_video_fixture import VIDEO
    torch.set_num_threads(a.threads)
    cfg = fx.FULL_CONFIGS["tiny"] if a.reduced else fx.FULL_CONFIGS[a.size]
    predictor = fx.build(cfg, (fx.REDUCED if a.reduced else []) + VIDEO)
    predictor.load_state_dict(torch.load(a.ckpt, map_location="cpu")["model"], strict=True)
    predictor.eval()
    with torch.inference_mode():
        state = predictor.init_state(a.video)
        w, h = state["video_width"], state["video_height"]
        for k in range(a.objects):
            predictor.add_new_points_or_box(state, frame_idx=0, obj_id=k + 1,
                                            points=np.array([points_for(k, w, h)], np.float32),
                                            labels=np.array([1], np.int32))
        n = 0
        t_first = t_last = None
        for _ in predictor.propagate_in_video(state):
            t_last = time.perf_counter()
            if n == 0:
                t_first = t_last
            n += 1
    s = t_last - t_first
    print("RESULT " + json.dumps({"tracked_frames": n - 1, "seconds": s, "fps": (n - 1) / s if n > 1 else 0.0,
                                  "torch": torch.__version__, "torch_threads": torch.get_num_threads()}))


def cpu_line():
    model = flags = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].strip()
    keep = [x for x in flags.split() if x.startswith(("avx", "fma", "amx")) or x in ("f16c", "vnni")]
    return model, " ".join(keep)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sam", default="build/sam")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--sizes", nargs="+", default=["tiny", "base_plus"])
    ap.add_argument("--objects", nargs="+", type=int, default=[1, 3])
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--history-frames", type=int, default=12, help="0: no memory-per-frame step")
    ap.add_argument("--long", type=int, default=1200, help="0: no long-video step")
    ap.add_argument("--long-official", action="store_true")
    # worker mode (the official side in a child process)
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--ckpt")
    ap.add_argument("--size")
    ap.add_argument("--video")
    ap.add_argument("--reduced", action="store_true")
    a = ap.parse_args()
    if a.worker:
        a.objects = a.objects[0] if isinstance(a.objects, list) else a.objects
        return worker(a)

    import torch
    sys.path.insert(0, HERE)
    import make_sam2_fixture as fx
    from make_sam2_video_fixture import VIDEO
    model_name, flags = cpu_line()
    print(f"CPU: {model_name}; flags: {flags}; {os.cpu_count()} cores; sam threads = torch threads = {a.threads}; "
          f"torch {torch.__version__}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        a.tmp = tmp
        n_all = max(a.frames, a.history_frames)
        all_frames = os.path.join(tmp, "frames_all")
        make_frames(all_frames, n_all)
        frames = subset(os.path.join(tmp, f"frames_{a.frames}"), all_frames, a.frames)
        for size in a.sizes:
            torch.manual_seed(fx.SEED)
            model = fx.randomise(fx.build(fx.FULL_CONFIGS[size], VIDEO), fx.SEED)
            ckpt = os.path.join(tmp, f"sam2.1_hiera_{size}_random.pt")
            torch.save({"model": model.state_dict()}, ckpt)
            del model
            for k in a.objects:
                load0 = uptime()
                o = ours(a, ckpt, size, frames, k)
                p = official(a, ckpt, size, frames, k)
                row = {"size": size, "objects": k, "frames": a.frames, "ours": o, "official": p,
                       "load_before": load0, "load_after": uptime()}
                results.append(row)
                print(f"{size:9s} {k} object(s), {a.frames} frames at {SIZE}: sam {o['fps']:.4f} frames/s "
                      f"({o['peak_rss_kib'] / 2**20:.2f} GiB), official {p['fps']:.4f} frames/s "
                      f"({p['peak_rss_kib'] / 2**20:.2f} GiB), ratio {o['fps'] / p['fps']:.2f}x; "
                      f"load {load0} -> {row['load_after']}", flush=True)
            if size == "tiny" and a.history_frames > a.frames:
                frames_h = subset(os.path.join(tmp, f"frames_{a.history_frames}"), all_frames, a.history_frames)
                load0 = uptime()
                o = ours(a, ckpt, size, frames_h, 1)
                p = official(a, ckpt, size, frames_h, 1)
                short = next(r for r in results if r["size"] == "tiny" and r["objects"] == 1)
                dn = a.history_frames - a.frames
                per_o = (o["peak_rss_kib"] - short["ours"]["peak_rss_kib"]) / dn
                per_p = (p["peak_rss_kib"] - short["official"]["peak_rss_kib"]) / dn
                print(f"memory per frame of history (tiny, 1 object, peak RSS {a.frames} -> {a.history_frames} frames "
                      f"at {SIZE}): sam {per_o / 1024:.2f} MiB ({short['ours']['peak_rss_kib']} -> "
                      f"{o['peak_rss_kib']} KiB, {o['fps']:.4f} frames/s), official {per_p / 1024:.2f} MiB "
                      f"({short['official']['peak_rss_kib']} -> {p['peak_rss_kib']} KiB, {p['fps']:.4f} frames/s); "
                      f"load {load0} -> {uptime()}", flush=True)
        if a.long > 0:
            long_dir = os.path.join(tmp, "long")
            os.makedirs(long_dir)
            src = os.path.join(ROOT, "tests", "data", "sam2_video", "frames")
            for f in range(a.long):
                os.symlink(os.path.join(src, f"{f % 8:05d}.jpg"), os.path.join(long_dir, f"{f:05d}.jpg"))
            ckpt = os.path.join(ROOT, "tests", "data", "sam2_video", "sam2_video.pt")
            margs = ["--config", os.path.join(ROOT, "tests", "data", "sam2", "config.json")]
            for stream in (True, False):
                load0 = uptime()
                o = ours(a, ckpt, None, long_dir, 3, model_args=margs, stream=stream)
                print(f"long video ({a.long} frames 320x240, fixture model, 3 objects): sam track"
                      f"{' --stream' if stream else ''}: peak RSS {o['peak_rss_kib']} KiB, {o['fps']:.2f} frames/s, "
                      f"wall {o['wall_s']:.1f} s; load {load0} -> {uptime()}", flush=True)
            if a.long_official:
                load0 = uptime()
                p = official(a, ckpt, "tiny", long_dir, 3, reduced=True)
                print(f"long video: official SAM2VideoPredictor: peak RSS {p['peak_rss_kib']} KiB, {p['fps']:.2f} "
                      f"frames/s, wall {p['wall_s']:.1f} s; load {load0} -> {uptime()}", flush=True)
    print("JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
