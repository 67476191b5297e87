#!/usr/bin/env python3
"""Per-click latency of `sam serve` through HTTP, and where it goes.

Starts `sam serve` on a free loopback port, uploads one image (encoded once), then times
clicks on one keep-alive connection, the kinds interleaved so that every kind sees the same
load:

  predict, first click   POST .../predict {1 point, multimask}: 3 full-resolution COCO RLE masks in JSON
  click, first click     POST .../click, same prompt: the decoder's low-res logits, binary
  predict, refinement    POST .../predict {2 points, mask_input, multimask false}: 1 mask
  click, refinement      POST .../click, same prompt

For each it prints the median and p90 of the time the client waited (request sent to answer
read) and of each phase the server reports in its Server-Timing header (decoder, upsample, rle,
json; decoder, encode; total), the answer's size, and the ratio of the client's median to the
decoder's median in the same run.

  python3 bench/click_latency.py --sam build/sam --checkpoint /tmp/vit_b_random.pth \\
      --image assets/images/truck.jpg --clicks 50 [--threads 2] [--config ...]

Standard library only.
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time


def percentile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))]


class Server:
    def __init__(self, args):
        cmd = [args.sam, "serve", "--checkpoint", args.checkpoint, "--host", "127.0.0.1", "--port", "0"]
        if args.config:
            cmd += ["--config", args.config]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.port = None
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:  # read to the end: the server logs every request
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
            if m and not self.port:
                self.port = int(m.group(1))
                self.ready.set()
        self.ready.set()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def post(conn, path, body, content_type):
    t0 = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Content-Type": content_type})
    res = conn.getresponse()
    data = res.read()
    ms = 1000 * (time.perf_counter() - t0)
    if res.status != 200:
        sys.exit(f"{path}: HTTP {res.status}: {data[:300]!r}")
    phases = {k: float(v) for k, v in re.findall(r"(\w+);dur=([\d.]+)", res.getheader("Server-Timing") or "")}
    return data, ms, phases


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sam", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--config")
    p.add_argument("--image", required=True)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--clicks", type=int, default=50)
    p.add_argument("--point", default="500,375")
    p.add_argument("--negative", default="1100,600")
    args = p.parse_args()

    server = Server(args)
    try:
        server.ready.wait(300)
        if not server.port:
            sys.exit("sam serve did not start")
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
        with open(args.image, "rb") as f:
            data, ms, _ = post(conn, "/api/images", f.read(), "application/octet-stream")
        up = json.loads(data)
        print(f"upload + encode: {ms / 1000:.1f} s ({up['width']}x{up['height']})", flush=True)
        base = f"/api/images/{up['id']}"
        px, py = (float(v) for v in args.point.split(","))
        nx, ny = (float(v) for v in args.negative.split(","))
        first = {"points": [[px, py]], "labels": [1], "multimask": True}
        handle = json.loads(post(conn, base + "/predict", json.dumps(first), "application/json")[0])["logits"]

        def refine():
            return json.dumps({"points": [[px, py], [nx, ny]], "labels": [1, 0], "mask_input": handle,
                               "multimask": False})

        kinds = [("predict, first click", "/predict", lambda: json.dumps(first)),
                 ("click, first click", "/click", lambda: json.dumps(first)),
                 ("predict, refinement", "/predict", refine),
                 ("click, refinement", "/click", refine)]
        for _, route, body in kinds:  # warm up each path once
            post(conn, base + route, body(), "application/json")
        results = {name: [] for name, _, _ in kinds}
        for _ in range(args.clicks):
            for name, route, body in kinds:
                data, ms, phases = post(conn, base + route, body(), "application/json")
                results[name].append((ms, phases, len(data)))

        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
        print(f"{args.clicks} clicks of each kind, interleaved; load average after: {load}")
        for name, rows in results.items():
            client = [r[0] for r in rows]
            dec = [r[1]["decoder"] for r in rows]
            keys = [k for k in rows[0][1] if k != "decoder"]
            parts = ", ".join(f"{k} {percentile([r[1][k] for r in rows], 0.5):.1f}" for k in keys)
            print(f"{name}: client median {percentile(client, 0.5):.1f} ms, p90 {percentile(client, 0.9):.1f} ms; "
                  f"decoder median {percentile(dec, 0.5):.1f} ms, p90 {percentile(dec, 0.9):.1f} ms; {parts}; "
                  f"{rows[0][2] / 1024:.0f} KiB; client / decoder (medians) "
                  f"{percentile(client, 0.5) / percentile(dec, 0.5):.2f}", flush=True)
    finally:
        server.kill()


if __name__ == "__main__":
    main()
