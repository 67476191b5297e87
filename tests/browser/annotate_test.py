"""The page of `sam annotate` in a real browser: a project of 3 images, two objects with
different labels made by clicks on the first (undo, redo, one refined), the next image, propose (segment everything),
one proposal accepted with a label, COCO exported from the page; then the COCO file is checked
(images, categories, which label each object got, masks that decode). The page computes a
click's mask itself from the decoder's low-res logits (POST .../click): after a first click and
after a refining one (mask_input), the mask it holds, the layer it drew and the object it saves
must equal, pixel for pixel, the server's full-resolution mask for the same request (POST
.../predict). Then it times clicks with the Performance API, from the press of the mouse button
to the mask drawn and to the next frame, on the page as it is (click route) and on the page told
to use the full-resolution JSON route (`?route=predict`, as before), and the same requests
through HTTP without the browser: median / p90 with the server's decoder time of the same run.
Loopback only; the server is always killed. Driver: tests/browser/harness.py (Playwright from
PyPI, Debian's chromium).

  .venv/bin/python tests/browser/annotate_test.py --sam build/sam --data tests/data [--screenshot s.png]
      [--timing-clicks 3]
  # timing only, on one image with another model (no workflow):
  .venv/bin/python tests/browser/annotate_test.py --sam build/sam --data tests/data \\
      --image assets/images/truck.jpg --checkpoint /tmp/vit_b_random.pth --config '' --threads 2 \\
      --timing-clicks 20 --http-clicks 50 --timeout 1800
"""
import argparse
import http.client
import json
import os
import re
import shutil
import sys
import tempfile
import time
from urllib.parse import quote, urlparse

from playwright.sync_api import sync_playwright

from harness import (INSTALL_TIMER, Failure, Server, browser, fail, load_average, percentile, report_timing,
                     run_with_deadline)

TIMEOUT_S = 150
IMAGES = ["dog.jpg", "groceries.png", "truck.png"]


def start_server(args, images, project):
    checkpoint = args.checkpoint or os.path.join(args.data, "sam_tiny.pth")
    config = os.path.join(args.data, "config.json") if args.config is None else args.config
    cmd = [args.sam, "annotate", "--checkpoint", checkpoint, "--images", images, "--project", project,
           "--labels", "cat,dog"]
    if config:
        cmd += ["--config", config]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return Server(cmd)


def click_image(page, fx, fy, **kw):
    """Clicks at a fraction (fx, fy) of the displayed image."""
    box = page.locator("#canvas").bounding_box()
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"], **kw)


def wait_body(page, attr, value):
    page.wait_for_selector(f'body[data-{attr}="{value}"]', timeout=60_000)


# The object being made, against the full-resolution route: its request sent again to POST
# .../predict (same points, same mask_input handle). The page's full-resolution mask (the one it
# saves) and its COCO RLE must be the server's, pixel for pixel; the mask under the display (the
# draft layer, one pixel per display pixel) each the full-resolution pixel under its centre, in
# the array and in the canvas's pixels (but under the prompt markers drawn over it).
COMPARE_FULL = """async () => {
    const app = window.samAnnotate, st = app.state, d = st.draft;
    if (!d || !d.low || !d.shown) return { error: 'no click answer upsampled by the page' };
    const res = await fetch('/api/images/' + encodeURIComponent(st.name) + '/predict',
                            { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(d.request) });
    const full = await res.json();
    if (!res.ok) return { error: full.error };
    const [h, w] = full.segmentation.size, want = samMask.decodeRle(full.segmentation), mine = app.fullMask(d);
    let differ = 0, area = 0;
    for (let i = 0; i < want.length; i++) { differ += mine[i] !== want[i]; area += want[i]; }
    const s = d.shown, layer = document.getElementById('draft');
    const px = layer.getContext('2d').getImageData(0, 0, layer.width, layer.height).data;
    const sc = s.dw / w, rad = Math.max(3, w / 200) * sc + 2;
    const marked = (i, j) => d.points.some((p) => Math.hypot(i + 0.5 - p[0] * sc, j + 0.5 - p[1] * sc) <= rad);
    let shownDiffer = 0, drawnDiffer = 0, marker = 0;
    for (let j = 0; j < s.dh; j++) {
      const y = s.dh === h ? j : Math.min(h - 1, Math.floor((j + 0.5) * h / s.dh));
      for (let i = 0; i < s.dw; i++) {
        const x = s.dw === w ? i : Math.min(w - 1, Math.floor((i + 0.5) * w / s.dw)), v = want[y * w + x];
        shownDiffer += s.mask[j * s.dw + i] !== v;
        if (marked(i, j)) { marker++; continue; }
        drawnDiffer += (px[4 * (j * s.dw + i) + 3] > 0 ? 1 : 0) !== v;
      }
    }
    const rect = layer.getBoundingClientRect();
    return { size: [w, h], display: [s.dw, s.dh], expected: app.displaySize(), layer: [layer.width, layer.height],
             css: [rect.width, rect.height], differ, shownDiffer, drawnDiffer, marker, area, counts: full.segmentation.counts,
             rleSame: samMask.encodeRle(mine, h, w).counts === full.segmentation.counts,
             maskInput: d.request.mask_input || null, score: full.score, pageScore: d.score };
}"""


def check_full_resolution(page, what):
    r = page.evaluate(COMPARE_FULL)
    print(f"{what}: page against full resolution: " +
          json.dumps({k: v for k, v in r.items() if k != "counts"}), flush=True)
    if "error" in r:
        fail(f"{what}: {r['error']}")
    if r["differ"]:
        fail(f"{what}: {r['differ']} pixels of the page's full-resolution mask differ from the server's (area {r['area']})")
    if not r["rleSame"]:
        fail(f"{what}: the page's COCO RLE differs from the server's")
    if r["shownDiffer"] or r["drawnDiffer"]:
        fail(f"{what}: {r['shownDiffer']} display pixels of the mask and {r['drawnDiffer']} of the layer drawn differ "
             f"from the full-resolution pixels under them")
    (dw, dh), (cw, ch) = r["display"], r["css"]
    if r["layer"] != r["display"] or r["expected"] != r["display"] or abs(cw - dw) > 1 or abs(ch - dh) > 1:
        fail(f"{what}: draft layer {r['layer']} for a display of {r['expected']} ({cw:.1f} x {ch:.1f} CSS pixels), "
             f"mask computed at {r['display']}")
    if r["marker"] > 0.05 * dw * dh:
        fail(f"{what}: {r['marker']} of {dw * dh} display pixels left out under the markers")
    if r["score"] != r["pageScore"]:
        fail(f"{what}: score {r['pageScore']} against {r['score']}")
    return r


def annotate(page, url, screenshot):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    wait_body(page, "image", IMAGES[0])
    # Two objects by clicks: "cat" (key 1), then "dog" (key 2, with a negative click as well).
    page.keyboard.press("1")
    click_image(page, 0.3, 0.4)
    wait_body(page, "predictions", "1")
    first = check_full_resolution(page, "first click")
    page.keyboard.press("Enter")
    wait_body(page, "saves", "1")
    page.keyboard.press("2")
    click_image(page, 0.7, 0.6)
    wait_body(page, "predictions", "2")
    page.keyboard.down("Shift")  # a point off the object
    click_image(page, 0.9, 0.9)
    page.keyboard.up("Shift")
    wait_body(page, "predictions", "3")
    refined = check_full_resolution(page, "refinement")
    if not refined["maskInput"]:
        fail("the refining click sent no mask_input")
    page.keyboard.press("Enter")
    wait_body(page, "saves", "2")
    labels = page.evaluate("() => window.samAnnotate.state.record.objects.map((o) => o.label)")
    if labels != ["cat", "dog"]:
        fail(f"objects labelled {labels}, expected ['cat', 'dog']")
    # Saved as drawn: the full-resolution masks, as the server encodes them.
    saved = page.evaluate("() => window.samAnnotate.state.record.objects.map((o) => o.segmentation.counts)")
    if saved != [first["counts"], refined["counts"]]:
        fail("the objects saved are not the full-resolution masks of their clicks")
    points = page.evaluate("() => window.samAnnotate.state.record.objects[1].point_coords.length")
    if points != 2:
        fail(f"the second object kept {points} points, expected 2")
    status = page.get_attribute("#images li:nth-child(1)", "class") or ""
    if "status-in_progress" not in status:
        fail(f"the image list shows the first image as '{status}', expected in progress")
    if screenshot:
        page.screenshot(path=screenshot)
    # Undo and redo the second object.
    page.keyboard.press("Control+z")
    wait_body(page, "saves", "3")
    if page.evaluate("() => window.samAnnotate.state.record.objects.length") != 1:
        fail("undo did not remove the second object")
    page.keyboard.press("Control+Shift+Z")
    wait_body(page, "saves", "4")
    if page.evaluate("() => window.samAnnotate.state.record.objects.length") != 2:
        fail("redo did not bring the second object back")
    # Refine the first object: select it, f, one more click, Enter: same place, same id, 2 points.
    first_id = page.evaluate("() => window.samAnnotate.state.record.objects[0].id")
    page.locator("#objects li").nth(0).click(position={"x": 30, "y": 8})
    page.keyboard.press("f")
    click_image(page, 0.35, 0.45)
    wait_body(page, "predictions", "4")
    page.keyboard.press("Enter")
    wait_body(page, "saves", "5")
    objs = page.evaluate("() => window.samAnnotate.state.record.objects")
    if [o["label"] for o in objs] != ["cat", "dog"] or objs[0]["id"] != first_id or len(objs[0]["point_coords"]) != 2:
        fail(f"after refining: {[(o['id'], o['label'], len(o['point_coords'])) for o in objs]}")
    # The next image; propose with a small grid and no thresholds (the test model is random).
    page.keyboard.press("n")
    wait_body(page, "image", IMAGES[1])
    page.fill("#pps", "4")
    page.fill("#min-iou", "0")
    page.fill("#min-stability", "0")
    page.click("#propose")
    page.wait_for_selector("body[data-job]", timeout=120_000)
    if page.get_attribute("body", "data-job") != "done":
        fail("propose failed: " + (page.text_content("#job") or ""))
    proposals = page.evaluate("() => window.samAnnotate.state.record.proposals.length")
    if proposals < 1:
        fail("no proposals shown")
    # Accept the first proposal as "dog".
    page.keyboard.press("2")
    page.locator(".accept-proposal").first.click()
    wait_body(page, "saves", "6")
    rec = page.evaluate("() => window.samAnnotate.state.record")
    if [o["label"] for o in rec["objects"]] != ["dog"] or len(rec["proposals"]) != proposals - 1:
        fail(f"after accepting: {len(rec['objects'])} objects, {len(rec['proposals'])} proposals")
    # Export COCO from the page.
    page.click('button.export[data-format="coco"]')
    wait_body(page, "exported", "coco")
    if errors:
        fail("page errors: " + "; ".join(errors))
    return proposals


def check_coco(path):
    coco = json.load(open(path))
    names = [im["file_name"] for im in coco["images"]]
    if names != IMAGES:
        fail(f"COCO images {names}")
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    if sorted(cats.values()) != ["cat", "dog"]:
        fail(f"COCO categories {cats}")
    by_image = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(cats[a["category_id"]])
        if a["area"] <= 0 or not a["segmentation"]:
            fail(f"empty annotation {a['id']}")
    if by_image != {1: ["cat", "dog"], 2: ["dog"]}:
        fail(f"COCO labels per image {by_image}")
    return len(coco["annotations"])


# ---------------------------------------------------------------------------------------------
# Timing.

def fraction(text):
    x, y = (float(v) for v in text.split(","))
    return x, y


def time_page(page, url, route, n, point, negative):
    """n first clicks (Esc, then one positive point: 3 candidates decoded, the best drawn) and n
    refinements (a shift-click off the object with the drawn mask's logits as mask_input: 1
    candidate), on the page as it is (route "click") or told to use the full-resolution JSON
    route (route "predict"). Each waits for its mask. Returns {kind: [timer entries]}."""
    page.goto(url + ("?route=predict" if route == "predict" else ""))
    page.wait_for_selector("body[data-image]", timeout=60_000)
    page.evaluate(INSTALL_TIMER, "mousedown")  # the workspace asks on the press
    rows = {"first": [], "refine": []}
    for i in range(n):
        for kind in ("first", "refine"):
            page.evaluate("() => { window.__clicks = []; }")
            if kind == "first":
                page.keyboard.press("Escape")
            count = int(page.get_attribute("body", "data-predictions") or 0)
            dx = 0.002 * i  # a new point each time: no mask drawn before (the page keeps their layers)
            if kind == "first":
                click_image(page, point[0] + dx, point[1])
            else:
                page.keyboard.down("Shift")
                click_image(page, negative[0] + dx, negative[1])
                page.keyboard.up("Shift")
            wait_body(page, "predictions", count + 1)
            page.wait_for_function("() => window.__clicks.length > 0", timeout=10_000)
            t = page.evaluate("() => window.__clicks[0]")
            t["own"] = page.evaluate("() => window.samAnnotate.timings.slice(-1)[0] || null")
            rows[kind].append(t)
    return rows


def post(conn, path, body):
    t0 = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    res = conn.getresponse()
    data = res.read()
    ms = 1000 * (time.perf_counter() - t0)
    if res.status != 200:
        fail(f"{path}: HTTP {res.status}: {data[:300]!r}")
    phases = {k: float(v) for k, v in re.findall(r"(\w+);dur=([\d.]+)", res.getheader("Server-Timing") or "")}
    return data, ms, phases


def click_header(data):
    n = int.from_bytes(data[4:8], "little")
    return json.loads(data[8:8 + n])


def time_http(url, name, size, n, point, negative):
    """The same clicks without the browser, on one keep-alive connection, the four kinds
    interleaved (each sees the same load): the client's time from sending the request to having
    read the answer, and the server's phases (Server-Timing)."""
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    base = "/api/images/" + quote(name)
    w, h = size
    first = {"points": [[round(point[0] * w), round(point[1] * h)]], "labels": [1], "multimask": True}
    head = click_header(post(conn, base + "/click", first)[0])
    refine = {"points": first["points"] + [[round(negative[0] * w), round(negative[1] * h)]], "labels": [1, 0],
              "mask_input": head["logits"][head["best"]], "multimask": False}
    kinds = [("predict", "first", first), ("click", "first", first), ("predict", "refine", refine), ("click", "refine", refine)]
    for route, _, body in kinds:  # warm up each path once
        post(conn, f"{base}/{route}", body)
    rows = {(route, kind): [] for route, kind, _ in kinds}
    for _ in range(n):
        for route, kind, body in kinds:
            data, ms, phases = post(conn, f"{base}/{route}", body)
            rows[(route, kind)].append((ms, phases, len(data)))
    conn.close()
    return rows


KINDS = {"first": "first click: 1 point, multimask (the best of 3 sent)",
         "refine": "refinement: 2 points + mask_input, 1 mask"}


def report(http_rows, page_rows):
    """Medians and p90s; each ratio against the decoder's median of the same kind of click in the
    same run: of the same requests on the click route, of the click route's on the predict route
    (whose Server-Timing has no decoder phase: the decoder and the upsampling are one call)."""
    print(f"timing: load average {load_average()}", flush=True)
    decoder = {kind: percentile([r[1]["decoder"] for r in http_rows[("click", kind)]], 0.5) for kind in KINDS}
    for (route, kind), rows in http_rows.items():
        client = [r[0] for r in rows]
        phases = ", ".join(f"{k} {percentile([r[1][k] for r in rows], 0.5):.1f}" for k in rows[0][1])
        print(f"timing: HTTP {route}, {KINDS[kind]}: client median {percentile(client, 0.5):.1f} ms, "
              f"p90 {percentile(client, 0.9):.1f} ms (n={len(rows)}); server medians: {phases}; "
              f"{rows[0][2] / 1024:.1f} KiB; client / decoder (medians) {percentile(client, 0.5) / decoder[kind]:.2f}",
              flush=True)
    page_decoder = {kind: percentile([t["decoder"] for t in page_rows["click"][kind]], 0.5) for kind in KINDS}
    for route, by_kind in page_rows.items():
        for kind, rows in by_kind.items():
            name = f"page {route}, {KINDS[kind]}"
            report_timing(f"{name}, press to drawn", [t["drawn"] for t in rows])
            report_timing(f"{name}, press to frame", [t["frame"] for t in rows])
            for key in ("request", "wait", "transfer", "server", "decoder"):
                values = [t[key] for t in rows if t[key] is not None]
                if values:
                    report_timing(f"{name}, {key}", values)
            own = [t["own"] for t in rows if t["own"]]
            parts = ", ".join(f"{k} {percentile([o[k] for o in own if k in o], 0.5):.1f}"
                              for k in ("request", "parse", "upsample", "draw", "total") if own and k in own[0])
            frame = percentile([t["frame"] for t in rows], 0.5)
            print(f"timing: {name}: page's own medians (ms): {parts}; press to frame / decoder (medians; the "
                  f"decoder's of the page's click-route requests) {frame / page_decoder[kind]:.2f}", flush=True)
            if route == "click":  # the same click's own decoder time: the load's swings cancel
                ratios = [t["frame"] / t["decoder"] for t in rows]
                print(f"timing: {name}: press to frame / the same request's decoder: median {percentile(ratios, 0.5):.2f}, "
                      f"p90 {percentile(ratios, 0.9):.2f}; press to frame minus decoder: median "
                      f"{percentile([t['frame'] - t['decoder'] for t in rows], 0.5):.1f} ms", flush=True)


def run_timing(page, url, args, name, size):
    point, negative = fraction(args.point), fraction(args.negative)
    page_rows = {"predict": {"first": [], "refine": []}, "click": {"first": [], "refine": []}}
    block = 10  # the two pages alternate in blocks of clicks, each seeing the same load
    # (each block's clicks are the same on both pages: the i-th click of a block at the same point)
    done = 0
    while done < args.timing_clicks:
        k = min(block, args.timing_clicks - done)
        for route in ("predict", "click"):
            for kind, rows in time_page(page, url, route, k, point, negative).items():
                page_rows[route][kind] += rows
        done += k
    http_rows = time_http(url, name, size, args.http_clicks, point, negative)
    report(http_rows, page_rows)


def check_one_image(page, url, args):
    """--image: the first click and a refinement checked against full resolution, no workflow."""
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("body[data-image]", timeout=600_000)
    point, negative = fraction(args.point), fraction(args.negative)
    click_image(page, *point)
    wait_body(page, "predictions", "1")
    check_full_resolution(page, "first click")
    page.keyboard.down("Shift")
    click_image(page, *negative)
    page.keyboard.up("Shift")
    wait_body(page, "predictions", "2")
    check_full_resolution(page, "refinement")
    if errors:
        fail("page errors: " + "; ".join(errors))


def run(args, tmp, on_timeout):
    images = os.path.join(tmp, "images")
    os.makedirs(images)
    for path in [args.image] if args.image else [os.path.join(args.data, "images", n) for n in IMAGES]:
        shutil.copy(path, images)
    project = os.path.join(tmp, "project.json")
    server = start_server(args, images, project)
    on_timeout.append(server.kill)
    try:
        url = server.wait_url()
        with sync_playwright() as p:
            context = browser(p, os.path.join(tmp, "profile"), 1200, 900)
            try:
                page = context.pages[0] if context.pages else context.new_page()
                if args.image:
                    check_one_image(page, url, args)
                    proposals = None
                else:
                    proposals = annotate(page, url, args.screenshot)
                if args.timing_clicks > 0:
                    state = page.evaluate("() => [window.samAnnotate.state.name, window.samAnnotate.state.record.width, "
                                          "window.samAnnotate.state.record.height]")
                    run_timing(page, url, args, state[0], state[1:])
                if args.image and args.screenshot:
                    page.screenshot(path=args.screenshot)
            finally:
                context.close()
        if args.image:
            print("PASS: the page's masks are the full-resolution masks")
        else:
            n = check_coco(os.path.join(tmp, "project.export", "coco.json"))
            print(f"PASS: 2 objects by clicks, {proposals} proposals, 1 accepted; COCO export has {n} annotations; "
                  "the page's masks are the full-resolution masks")
    except Failure as e:
        print(f"FAIL: {e}\n--- server log ---\n{server.log[-3000:]}", file=sys.stderr)
        return 1
    finally:
        server.kill()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sam", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--screenshot")
    ap.add_argument("--image", help="only check and time clicks on this image (no workflow)")
    ap.add_argument("--checkpoint", help="model (default: the tiny test model in --data)")
    ap.add_argument("--config", help="its config (default: --data's config.json; '' for none)")
    ap.add_argument("--threads", type=int, default=0, help="sam annotate --threads (default: its own)")
    ap.add_argument("--point", default="0.28,0.31", help="where the first click goes, fractions of the image: X,Y")
    ap.add_argument("--negative", default="0.61,0.5", help="where the refining click goes (off the object)")
    ap.add_argument("--timing-clicks", type=int, default=3, help="clicks of each kind timed in the page, per route (0: none)")
    ap.add_argument("--http-clicks", type=int, default=5, help="clicks of each kind timed through HTTP, per route")
    ap.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds before the whole test fails")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sam-annotate-browser-")
    # A hang anywhere (server, browser) fails the test instead of waiting for ctest's timeout.
    on_timeout = [lambda: shutil.rmtree(tmp, ignore_errors=True)]
    try:
        return run_with_deadline(lambda: run(args, tmp, on_timeout), args.timeout, on_timeout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
