#!/usr/bin/env python3
"""`sam export` checked by the reference COCO tools: builds a project of masks (parts, holes,
thin lines, diagonal contacts), exports it, loads the COCO file with pycocotools and decodes every
segmentation back: RLE exactly, polygons with IoU >= 0.98 (the traced outlines are exact, so
they must give IoU 1.0 here); checks YOLO-seg lines and SA-1B records too. Then `sam track
--format coco-rle` on the SAM 2 video fixture: every line of masks.jsonl decoded by pycocotools
equals the PNG mask `sam track` writes for the same frame and object, with pycocotools' area and box.

  test_export_pycocotools.py --sam build/sam
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO


def write_png(path, h, w):
    raw = b"".join(b"\x00" + bytes([90, 120, 150]) * w for _ in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def disc(h, w, cx, cy, r):
    y, x = np.mgrid[0:h, 0:w]
    return ((x - cx) ** 2 + (y - cy) ** 2 <= r * r).astype(np.uint8)


def masks_for(h, w, rng):
    out = []
    for _ in range(6):
        m = np.zeros((h, w), np.uint8)
        for _ in range(rng.integers(1, 4)):  # one to three parts
            m |= disc(h, w, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, 15))
        out.append(m)
    ring = disc(h, w, w / 2, h / 2, 20) & (1 - disc(h, w, w / 2, h / 2, 8))  # a hole: RLE
    out.append(ring)
    line = np.zeros((h, w), np.uint8)
    line[h // 3, 5:w - 5] = 1  # one pixel thick
    for i in range(10):
        line[10 + i, 10 + i] = 1  # a staircase of pixels touching by corners
    out.append(line)
    return out


def rle_of(m):
    r = mask_utils.encode(np.asfortranarray(m))
    return {"size": [int(s) for s in r["size"]], "counts": r["counts"].decode()}


def read_png_gray(path):
    """An 8-bit, non-interlaced grey PNG (what `sam track` writes) as a (h, w) array."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour == 0 and interlace == 0, (path, depth, colour, interlace)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    out = np.zeros((h, w), np.int32)
    prev = np.zeros(w, np.int32)
    for y in range(h):
        f, row = raw[y * (w + 1)], np.frombuffer(raw, np.uint8, w, y * (w + 1) + 1).astype(np.int32)
        if f in (0, 2):  # none, up: no dependency within the row
            cur = (row + (prev if f == 2 else 0)) & 255
            out[y], prev = cur, cur
            continue
        cur = np.zeros(w, np.int32)
        for x in range(w):
            a = cur[x - 1] if x else 0
            b, c = prev[x], (prev[x - 1] if x else 0)
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (row[x] + pred) & 255
        out[y], prev = cur, cur
    return out.astype(np.uint8)


def check_track(sam, tmp, failures):
    """sam track --format coco-rle against --format png, through pycocotools."""
    data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    common = [sam, "track", "-c", os.path.join(data, "sam2_video", "sam2_video.pt"), "--config",
              os.path.join(data, "sam2", "config.json"), "--threads", "1", "--video",
              os.path.join(data, "sam2_video", "frames"), "--point", "0,160,120,1", "--box", "0,200,60,280,180,2"]
    png, rle = os.path.join(tmp, "track_png"), os.path.join(tmp, "track_rle")
    subprocess.run(common + ["--output", png], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(common + ["--format", "coco-rle", "--output", rle], check=True, stdout=subprocess.DEVNULL)
    lines = [json.loads(line) for line in open(os.path.join(rle, "masks.jsonl"))]
    if [ln["frame"] for ln in lines] != list(range(8)):
        failures.append(f"track: frames {[ln['frame'] for ln in lines]}")
    checked = nonempty = 0
    for ln in lines:
        for ob in ln["objects"]:
            seg = {"size": ob["segmentation"]["size"], "counts": ob["segmentation"]["counts"].encode()}
            got = mask_utils.decode(seg)
            want = (read_png_gray(os.path.join(png, str(ob["obj_id"]), f"{ln['frame']:05d}.png")) > 127).astype(np.uint8)
            checked += 1
            nonempty += int(want.sum() > 0)
            if not np.array_equal(got, want):
                failures.append(f"track frame {ln['frame']} object {ob['obj_id']}: RLE differs from the PNG")
            if ob["area"] != int(mask_utils.area(seg)) or ob["area"] != int(want.sum()):
                failures.append(f"track frame {ln['frame']} object {ob['obj_id']}: area {ob['area']}")
            if [float(v) for v in ob["bbox"]] != [float(v) for v in mask_utils.toBbox(seg)]:
                failures.append(f"track frame {ln['frame']} object {ob['obj_id']}: bbox {ob['bbox']}")
    if checked != 16 or nonempty == 0:
        failures.append(f"track: {checked} masks checked ({nonempty} not empty), expected 16")
    print(f"track coco-rle: {checked} masks decoded by pycocotools, {nonempty} not empty")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sam", required=True)
    args = ap.parse_args()
    rng = np.random.default_rng(3)
    labels = ["cat", "dog", "line"]
    with tempfile.TemporaryDirectory() as tmp:
        images = os.path.join(tmp, "images")
        os.makedirs(images)
        base = os.path.join(tmp, "p")
        os.makedirs(base + ".images")
        truth = {}
        for k, (h, w) in enumerate([(60, 80), (75, 50)]):
            name = f"img{k}.png"
            write_png(os.path.join(images, name), h, w)
            masks = masks_for(h, w, rng)
            truth[name] = masks
            objects = [{"id": 100 * k + i + 1, "label": labels[i % 2] if i < 6 else ("dog" if i == 6 else "line"),
                        "segmentation": rle_of(m), "source": "clicks"} for i, m in enumerate(masks)]
            with open(os.path.join(base + ".images", name + ".json"), "w") as f:
                json.dump({"sam_annotate_image": 1, "image": name, "width": w, "height": h, "status": "done",
                           "version": 1, "objects": objects, "proposals": []}, f)
        with open(base + ".json", "w") as f:
            json.dump({"sam_annotate_project": 1, "images_dir": images, "labels": labels, "labels_version": 0,
                       "current": ""}, f)

        failures = []
        for rle_only in (False, True):
            out = os.path.join(tmp, f"coco{int(rle_only)}.json")
            cmd = [args.sam, "export", "--project", base + ".json", "--format", "coco", "-o", out]
            subprocess.run(cmd + (["--rle"] if rle_only else []), check=True)
            coco = COCO(out)
            assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == labels
            polygons = rles = 0
            for img in coco.loadImgs(coco.getImgIds()):
                anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
                masks = truth[img["file_name"]]
                assert len(anns) == len(masks), (img, len(anns))
                for ann, m in zip(anns, masks):
                    got = coco.annToMask(ann)
                    if isinstance(ann["segmentation"], list):
                        polygons += 1
                        inter, union = np.logical_and(got, m).sum(), np.logical_or(got, m).sum()
                        iou = inter / union
                        if iou < 0.98:
                            failures.append(f"{img['file_name']} ann {ann['id']}: polygon IoU {iou:.4f}")
                        elif iou != 1.0:
                            print(f"note: {img['file_name']} ann {ann['id']}: polygon IoU {iou:.4f}")
                    else:
                        rles += 1
                        if not np.array_equal(got, m):
                            failures.append(f"{img['file_name']} ann {ann['id']}: RLE differs")
                    if ann["area"] != int(m.sum()):
                        failures.append(f"ann {ann['id']}: area {ann['area']} != {int(m.sum())}")
                    if list(ann["bbox"]) != [float(v) for v in mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m)))]:
                        failures.append(f"ann {ann['id']}: bbox {ann['bbox']}")
            print(f"coco rle_only={rle_only}: {polygons} polygon and {rles} RLE annotations decoded")
            if rle_only and polygons:
                failures.append("--rle wrote polygons")
            if not rle_only and (rles != 2 or polygons == 0):  # the two rings, and only they, as RLE
                failures.append(f"expected RLE for the 2 masks with holes only, got {rles}")

        yolo = os.path.join(tmp, "yolo")
        subprocess.run([args.sam, "export", "--project", base + ".json", "-f", "yolo", "-o", yolo], check=True)
        for name, masks in truth.items():
            lines = open(os.path.join(yolo, "labels", name[:-4] + ".txt")).read().splitlines()
            assert len(lines) == len(masks), name
            for line in lines:
                parts = line.split()
                cls, coords = int(parts[0]), [float(v) for v in parts[1:]]
                assert 0 <= cls < len(labels) and len(coords) >= 6 and len(coords) % 2 == 0, line
                assert all(0.0 <= v <= 1.0 for v in coords), line

        sa1b = os.path.join(tmp, "sa1b")
        subprocess.run([args.sam, "export", "--project", base + ".json", "-f", "sa1b", "-o", sa1b], check=True)
        for name, masks in truth.items():
            rec = json.load(open(os.path.join(sa1b, name[:-4] + ".json")))
            assert set(rec["image"]) == {"image_id", "width", "height", "file_name"}, rec["image"]
            assert len(rec["annotations"]) == len(masks)
            for a, m in zip(rec["annotations"], masks):
                assert set(a) == {"id", "segmentation", "bbox", "area", "predicted_iou", "stability_score",
                                  "crop_box", "point_coords"}, set(a)
                seg = {"size": a["segmentation"]["size"], "counts": a["segmentation"]["counts"].encode()}
                if not np.array_equal(mask_utils.decode(seg), m):
                    failures.append(f"sa1b {name} ann {a['id']}: RLE differs")
        check_track(args.sam, tmp, failures)
        for f in failures:
            print("FAIL:", f)
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
