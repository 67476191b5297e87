"""Side-by-side anchors for docs/BENCHMARKS.md: SAM's image encoder and one click under the
official PyTorch code (fp32, and bf16 autocast where the CPU has bf16), under ONNX Runtime (the
official model exported to ONNX: fp32, and its dynamic int8 quantisation) and under sam_cpp
(f32, bf16, int8), on the same checkpoint, image and thread count, in one run.

    build/sam make-random-checkpoint --model-type vit_b --output /tmp/random_vit_b.pth
    python python/tools/bench_anchors.py --checkpoint /tmp/random_vit_b.pth \\
        --image /path/to/truck.jpg --threads 2 --repeats 3

Every variant runs once per round, in the same order each round, and the table gives the
minimum and median over the rounds. "encoder" is the image encoder on the preprocessed
1024x1024 input for PyTorch and ONNX Runtime, and `set_image` (resize and normalisation
included, a few milliseconds) for sam_cpp. "click" is one point with three masks, upsampled
to the image's size, from a set image: `SamPredictor.predict` for PyTorch and sam_cpp, the
official ONNX decoder export (`SamOnnxModel`, the one the official web demo runs) for ONNX
Runtime. The error column is the embedding's relative L2 distance to the fp32 PyTorch one.

Needs, in one environment: torch, segment_anything, onnx, onnxruntime (and onnxscript for
torch's newer exporter) and sam_cpp (`pip install .`).
"""

import argparse
import os
import statistics
import tempfile
import time
import warnings

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.utils.onnx import SamOnnxModel

import sam_cpp


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def rel_l2(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def export(module, args, path, input_names, output_names, dynamic_axes=None):
    """torch.onnx.export with the TorchScript exporter where this torch has it, else the newer one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, args, path, opset_version=17, input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=True,
                              dynamo=False)
        except TypeError:  # a torch without the dynamo= keyword
            torch.onnx.export(module, args, path, opset_version=17, input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=True)


def session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--model-type", default="vit_b")
    ap.add_argument("--image", required=True)
    ap.add_argument("--threads", type=int, default=sam_cpp.available_cores())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clicks", type=int, default=10, help="clicks timed per variant per round")
    ap.add_argument("--workdir", help="where the ONNX files go (default: a temporary folder)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    flags = cpu_flags()
    has_bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
    image = sam_cpp.read_image(args.image)
    h, w = image.shape[:2]
    print(f"model {args.model_type}, image {args.image} {w}x{h}, {args.threads} threads, torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}, sam_cpp {sam_cpp.__version__}")
    print("cpu flags:", " ".join(sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "avx_vnni", "fma")))))

    official = sam_model_registry[args.model_type](checkpoint=args.checkpoint).eval()
    predictor = SamPredictor(official)
    x = official.preprocess(torch.as_tensor(predictor.transform.apply_image(image)).permute(2, 0, 1)[None].float())
    point = np.array([[w // 2, h // 2]], dtype=np.float32)
    label = np.array([1], dtype=np.float32)

    workdir = args.workdir or tempfile.mkdtemp(prefix="sam-anchors-")
    os.makedirs(workdir, exist_ok=True)
    enc_path, enc8_path, dec_path = (os.path.join(workdir, n) for n in ("encoder.onnx", "encoder_int8.onnx",
                                                                       "decoder.onnx"))
    with torch.inference_mode():
        reference = official.image_encoder(x).numpy()
    print("exporting the encoder and decoder to ONNX ...", flush=True)
    export(official.image_encoder, (x,), enc_path, ["image"], ["embedding"])
    quantize_dynamic(enc_path, enc8_path, weight_type=QuantType.QInt8)
    onnx_decoder = SamOnnxModel(official, return_single_mask=False)
    embed_dim, embed_size = official.prompt_encoder.embed_dim, official.prompt_encoder.image_embedding_size
    dummy = {
        "image_embeddings": torch.randn(1, embed_dim, *embed_size, dtype=torch.float),
        "point_coords": torch.randint(low=0, high=1024, size=(1, 5, 2), dtype=torch.float),
        "point_labels": torch.randint(low=0, high=4, size=(1, 5), dtype=torch.float),
        "mask_input": torch.randn(1, 1, 4 * embed_size[0], 4 * embed_size[1], dtype=torch.float),
        "has_mask_input": torch.tensor([1], dtype=torch.float),
        "orig_im_size": torch.tensor([1500, 2250], dtype=torch.float),
    }
    export(onnx_decoder, tuple(dummy.values()), dec_path, list(dummy.keys()), ["masks", "iou_predictions",
                                                                               "low_res_masks"],
           dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}})

    ort_enc, ort_enc8, ort_dec = session(enc_path, args.threads), session(enc8_path, args.threads), session(
        dec_path, args.threads)
    ours = {p: sam_cpp.sam_model_registry[args.model_type](checkpoint=args.checkpoint, threads=args.threads,
                                                           precision=p)
            for p in ("f32", "bf16", "int8") if sam_cpp.precision_supported(p)}

    # The ONNX decoder's inputs for one point: the official demo adds a padding point (label -1).
    coords = predictor.transform.apply_coords(point, (h, w))
    dec_inputs = {
        "point_coords": np.concatenate([coords, np.zeros((1, 2), np.float32)])[None].astype(np.float32),
        "point_labels": np.array([[1, -1]], dtype=np.float32),
        "mask_input": np.zeros((1, 1, 256, 256), dtype=np.float32),
        "has_mask_input": np.zeros(1, dtype=np.float32),
        "orig_im_size": np.array([h, w], dtype=np.float32),
    }

    encoders = {"PyTorch fp32": lambda: official.image_encoder(x).numpy()}
    if has_bf16:
        def torch_bf16():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return official.image_encoder(x).float().numpy()
        encoders["PyTorch bf16 autocast"] = torch_bf16
    encoders["ONNX Runtime fp32"] = lambda: ort_enc.run(None, {"image": x.numpy()})[0]
    encoders["ONNX Runtime dynamic int8"] = lambda: ort_enc8.run(None, {"image": x.numpy()})[0]
    sam_predictors = {p: sam_cpp.SamPredictor(m) for p, m in ours.items()}
    for p, sp in sam_predictors.items():
        encoders[f"sam_cpp {p}"] = (lambda sp=sp: (sp.set_image(image), sp.get_image_embedding())[1])

    times = {k: [] for k in encoders}
    errors = {}
    click_times = {"PyTorch fp32": [], "ONNX Runtime fp32": [], "sam_cpp f32": []}
    with torch.inference_mode():
        predictor.set_image(image)
        torch_embedding = predictor.get_image_embedding().numpy()
        for r in range(args.repeats):
            for name, fn in encoders.items():
                t, emb = timed(fn)
                times[name].append(t)
                errors[name] = rel_l2(emb, reference)
                print(f"round {r + 1}: {name} encoder {t:.3f} s", flush=True)
            for _ in range(args.clicks):
                click_times["PyTorch fp32"].append(timed(lambda: predictor.predict(
                    point_coords=point, point_labels=label.astype(np.int64), multimask_output=True))[0])
                click_times["ONNX Runtime fp32"].append(timed(lambda: ort_dec.run(
                    None, {"image_embeddings": torch_embedding, **dec_inputs}))[0])
                click_times["sam_cpp f32"].append(timed(lambda: sam_predictors["f32"].predict(
                    point_coords=point, point_labels=label.astype(np.int64), multimask_output=True))[0])

    base = statistics.median(times["PyTorch fp32"])
    print()
    print(f"| encoder ({args.model_type}, {args.threads} threads) | min | median | vs PyTorch fp32 (median) "
          "| embedding rel-L2 vs PyTorch fp32 |")
    print("|---|---|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {min(t):.3f} s | {statistics.median(t):.3f} s | {base / statistics.median(t):.2f}x "
              f"| {errors[name]:.2e} |")
    base = statistics.median(click_times["PyTorch fp32"])
    print()
    print("| one click (1 point, 3 masks at image size) | min | median | vs PyTorch fp32 (median) |")
    print("|---|---|---|---|")
    for name, t in click_times.items():
        print(f"| {name} | {1e3 * min(t):.1f} ms | {1e3 * statistics.median(t):.1f} ms "
              f"| {base / statistics.median(t):.2f}x |")


if __name__ == "__main__":
    main()
