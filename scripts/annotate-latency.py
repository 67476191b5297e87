#!/usr/bin/env python3
"""Time from "next image" to the first click answered in `sam annotate`, with the next image's
embedding prefetched and without (--prefetch 0): GET /api/images/{next} then POST .../click
(the binary low-res answer), as the page does when the annotator moves on and clicks. Each figure is the median of --runs
moves over a folder of copies of one image (distinct bytes, so no embedding is shared).

  scripts/annotate-latency.py --sam build/sam --checkpoint vit_b.pth --image assets/images/truck.jpg
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request


def call(url, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=600) as r:
        body = r.read()
        return json.loads(body) if r.headers.get_content_type() == "application/json" else body


def start(args, images, project, prefetch):
    proc = subprocess.Popen([args.sam, "annotate", "--checkpoint", args.checkpoint, "--images", images,
                             "--project", project, "--labels", "object", "--port", "0",
                             "--prefetch", str(prefetch)] + (["--threads", str(args.threads)] if args.threads else []) +
                            (["--config", args.config] if args.config else []),
                            stderr=subprocess.PIPE, text=True)
    log = ""
    for line in proc.stderr:
        log += line
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+/)", log)
        if m:
            return proc, m.group(1)
    raise RuntimeError(log)


def measure(args, prefetch):
    tmp = tempfile.mkdtemp(prefix="sam-annotate-latency-")
    images = os.path.join(tmp, "images")
    os.makedirs(images)
    ext = os.path.splitext(args.image)[1]
    for i in range(args.runs + 1):
        data = open(args.image, "rb").read()
        # Distinct bytes (a trailing comment after the image data) so every image has its own hash.
        open(os.path.join(images, f"{i:03d}{ext}"), "wb").write(data + f"sam{i}".encode())
    proc, url = start(args, images, os.path.join(tmp, "p.json"), prefetch)
    try:
        names = [im["name"] for im in call(url + "api/project")["images"]]
        first = call(url + "api/images/" + names[0])
        w, h = first["width"], first["height"]
        click = {"points": [[w // 2, h // 2]], "labels": [1]}
        call(url + "api/images/" + names[0] + "/click", "POST", click)
        times, sources = [], []
        for name in names[1:]:
            time.sleep(args.think)  # the annotator working on the current image
            t0 = time.perf_counter()
            ready = call(url + "api/images/" + name)["embedding_ready"]
            call(url + "api/images/" + name + "/click", "POST", click)
            times.append(time.perf_counter() - t0)
            sources.append("in memory" if ready else "encoded on demand")
        return statistics.median(times), sources
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sam", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--config", help="JSON config of a non-standard model (tests/data/config.json for the test model)")
    ap.add_argument("--image", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--think", type=float, default=15.0, help="seconds on each image before moving on")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    cold, cold_src = measure(args, 0)
    warm, warm_src = measure(args, 2)
    print(f"not prefetched: {cold * 1000:.0f} ms (embedding: {', '.join(cold_src)})")
    print(f"prefetched:     {warm * 1000:.0f} ms (embedding: {', '.join(warm_src)})")
    print(f"ratio: {cold / warm:.1f}x; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
