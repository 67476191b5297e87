"""Same-run timing of sam_cpp against the official segment_anything package on the CPU.

Both load the same checkpoint and image, use the same number of threads, and run the same calls
alternately (official, ours, official, ours, ...); the median of each is printed with the ratio.

    python python/tools/bench_vs_official.py --checkpoint random_vit_b.pth --model-type vit_b \
        --image assets/images/truck.jpg --threads 2 --repeats 3

Needs sam_cpp, segment_anything and torch in one environment (docs/PYTHON.md). Speed does not
depend on the weights' values: a random checkpoint of the real size (`sam make-random-checkpoint
--model-type vit_b`) gives the real model's timings.
"""

import argparse
import statistics
import time

import numpy as np
import torch
from segment_anything import SamAutomaticMaskGenerator as OfficialAmg
from segment_anything import SamPredictor as OfficialPredictor
from segment_anything import sam_model_registry as official_registry

import sam_cpp


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--model-type", default="vit_b")
    ap.add_argument("--image", required=True)
    ap.add_argument("--threads", type=int, default=sam_cpp.available_cores())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--points-per-side", type=int, default=32, help="generate()'s grid (official default 32)")
    ap.add_argument("--amg-repeats", type=int, default=1)
    ap.add_argument("--only", choices=["predict", "generate"], help="time one of the two only")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    image = sam_cpp.read_image(args.image)
    theirs = official_registry[args.model_type](checkpoint=args.checkpoint).eval()
    ours = sam_cpp.sam_model_registry[args.model_type](checkpoint=args.checkpoint, threads=args.threads)
    point, label = np.array([[image.shape[1] // 2, image.shape[0] // 2]]), np.array([1])
    print(f"model {args.model_type}, image {args.image} {image.shape[1]}x{image.shape[0]}, {args.threads} threads, "
          f"torch {torch.__version__}")

    def predictor_run(predictor):
        def run():
            predictor.set_image(image)
            predictor.predict(point_coords=point, point_labels=label, multimask_output=True)
        return run

    if args.only != "generate":
        pa, pb = OfficialPredictor(theirs), sam_cpp.SamPredictor(ours)
        times = {"official": [], "sam_cpp": []}
        with torch.inference_mode():
            for _ in range(args.repeats):
                times["official"].append(timed(predictor_run(pa)))
                times["sam_cpp"].append(timed(predictor_run(pb)))
        report("set_image + predict", times)
    if args.only == "predict":
        return

    amg_kw = dict(points_per_side=args.points_per_side)
    ga, gb = OfficialAmg(theirs, **amg_kw), sam_cpp.SamAutomaticMaskGenerator(ours, **amg_kw)
    times = {"official": [], "sam_cpp": []}
    with torch.inference_mode():
        for _ in range(args.amg_repeats):
            times["official"].append(timed(lambda: ga.generate(image)))
            times["sam_cpp"].append(timed(lambda: gb.generate(image)))
    report(f"generate (points_per_side={args.points_per_side})", times)


def report(what, times):
    a, b = statistics.median(times["official"]), statistics.median(times["sam_cpp"])
    print(f"{what}: official {a:.2f} s, sam_cpp {b:.2f} s (median of {len(times['official'])}): "
          f"sam_cpp {a / b:.2f}x faster")


if __name__ == "__main__":
    main()
