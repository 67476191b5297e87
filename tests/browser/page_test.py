"""The page of `sam serve` in a real browser: starts the server with the tiny model, opens an
image through the file picker, clicks a point, waits for the mask, and checks the pixels of a
screenshot: where the mask is, the overlay colour blended over the image; elsewhere, the
image unchanged. The page computes its masks itself from the decoder's low-res logits: every
candidate of the first click and of a refining click (mask_input) must equal, pixel for pixel,
the server's full-resolution mask for the same prompt (POST .../predict), with the page's
WebAssembly kernels and with their JavaScript form, and its COCO RLE the server's string; the
mask canvas, one pixel per display pixel, must hold the full-resolution pixels under them. Then
it times clicks, from the mouse button's release to the first frame after the mask is drawn
(Performance API marks), and prints median / p90 with the server's decoder time of the same
requests (Server-Timing). Writes the screenshot.
Loopback only; the server is always killed.

  .venv/bin/python tests/browser/page_test.py --sam build/sam --data tests/data \\
      --image assets/images/truck.jpg --screenshot out.png [--point 500,375]
      [--checkpoint vit_b.pth --config '' --checks exact] [--timing-clicks 20] [--web-dir DIR --checks none]

--checks exact keeps only the comparison with the full-resolution masks (the screenshot checks
assume the test model's large mask); --checks none only times clicks: with --web-dir it times
another copy of the page (e.g. an earlier version) against the same server.

Driver: tests/browser/harness.py (shared with annotate_test.py): Python Playwright from PyPI
(tests/browser/requirements.txt), which carries its own
driver and needs neither npm nor a browser download; it drives Debian's /usr/bin/chromium over
the DevTools protocol (checked with Debian 12's chromium 156). Chosen over Selenium with
chromium-driver because its calls are those of the JavaScript test this replaces (file input,
mouse buttons, screenshots, waiting on selectors), so the checks stay as they were.
"""
import argparse
import base64
import os
import re
import shutil
import tempfile

from playwright.sync_api import sync_playwright

from harness import INSTALL_TIMER, Server, browser, fail, percentile, report_timing, run_with_deadline

TIMEOUT_S = 150


# ---------------------------------------------------------------------------------------------
# The server, on a free port.

def start_server(args):
    """`sam serve` with the tiny model (or --checkpoint)."""
    cmd = [args.sam, "serve", "--checkpoint", args.checkpoint or os.path.join(args.data, "sam_tiny.pth")]
    config = os.path.join(args.data, "config.json") if args.config is None else args.config
    if config:
        cmd += ["--config", config]
    if args.web_dir:
        cmd += ["--web-dir", args.web_dir]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return Server(cmd)


# ---------------------------------------------------------------------------------------------
# The pixel checks, run inside the page: the screenshots are decoded by the browser itself.

LOAD_PNG = """
    const load = async (b64) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.width; c.height = img.height;
      const ctx = c.getContext('2d');
      ctx.drawImage(img, 0, 0);
      return ctx.getImageData(0, 0, c.width, c.height);
    };
"""

# Over the overlay canvas: pixels well inside the mask show the overlay colour blended over the
# image; pixels well outside are unchanged.
CHECK_OVERLAY = """async ({ before, after, click }) => {""" + LOAD_PNG + """
    const [a, b] = [await load(before), await load(after)];
    const app = window.samApp;
    const { width: w, height: h } = app.state.image;
    const mask = app.maskBits();
    const rect = document.getElementById('overlay-canvas').getBoundingClientRect();
    const s = w / rect.width;                   // image pixels per screen pixel
    const margin = Math.ceil(2 * s) + 1;        // away from edges, where scaling blends
    const alpha = app.MASK_ALPHA / 255;
    const region = (ix, iy) => {                // 1 inside, 0 outside, -1 near an edge
      let on = 0, n = 0;
      for (let y = iy - margin; y <= iy + margin; y++) {
        for (let x = ix - margin; x <= ix + margin; x++) {
          if (x < 0 || y < 0 || x >= w || y >= h) return -1;
          on += mask[y * w + x]; n++;
        }
      }
      return on === n ? 1 : on === 0 ? 0 : -1;
    };
    const stats = { inside: 0, insideOk: 0, outside: 0, outsideOk: 0, maskArea: 0, worstInside: 0 };
    for (let i = 0; i < mask.length; i++) stats.maskArea += mask[i];
    for (let sy = Math.ceil(rect.top); sy < rect.bottom - 1; sy += 3) {
      for (let sx = Math.ceil(rect.left); sx < rect.right - 1; sx += 3) {
        if (Math.hypot(sx - click.x, sy - click.y) < 16) continue;  // the point marker
        const r = region(Math.floor((sx + 0.5 - rect.left) * s), Math.floor((sy + 0.5 - rect.top) * s));
        if (r < 0) continue;
        const k = 4 * (sy * a.width + sx);
        let diff = 0;
        for (let ch = 0; ch < 3; ch++) {
          const want = r ? a.data[k + ch] * (1 - alpha) + app.MASK_RGB[ch] * alpha : a.data[k + ch];
          diff = Math.max(diff, Math.abs(b.data[k + ch] - want));
        }
        if (r) { stats.inside++; stats.insideOk += diff <= 12; stats.worstInside = Math.max(stats.worstInside, diff); }
        else { stats.outside++; stats.outsideOk += diff <= 4; }
      }
    }
    return stats;
}"""

# The share of pixels over the overlay canvas that two screenshots agree on (within 2 levels).
SAME_FRACTION = """async ({ x, y }) => {""" + LOAD_PNG + """
    const [a, b] = [(await load(x)).data, (await load(y)).data];
    const r = document.getElementById('overlay-canvas').getBoundingClientRect();
    let same = 0, n = 0;
    for (let sy = Math.ceil(r.top); sy < r.bottom - 1; sy += 2) {
      for (let sx = Math.ceil(r.left); sx < r.right - 1; sx += 2) {
        const k = 4 * (sy * 1280 + sx);
        n++;
        same += Math.max(Math.abs(a[k] - b[k]), Math.abs(a[k + 1] - b[k + 1]), Math.abs(a[k + 2] - b[k + 2])) <= 2;
      }
    }
    return same / n;
}"""


# Every candidate the page computed from the low-res logits against the server's full-resolution
# answer to the same prompt: identical pixels, identical COCO RLE strings.
COMPARE_FULL = """async () => {
    const app = window.samApp, st = app.state;
    const points = st.prompts.filter((p) => p.kind === 'point');
    const body = { points: points.map((p) => [p.x, p.y]), labels: points.map((p) => p.label),
                   multimask: st.result.masks.length > 1 };
    if (st.lastMaskInput) body.mask_input = st.lastMaskInput;
    const res = await fetch(`api/images/${st.image.id}/predict`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const full = await res.json();
    if (!res.ok) return { error: full.error };
    const g = st.result.geometry, out = [];
    // The WebAssembly kernels (what the page uses) and their JavaScript form.
    const kernels = app.upsamplerFor(g, g.width, g.height).k.wasm ? 'wasm' : 'js';
    for (const wasm of [true, false]) {
      app.kernelOptions.wasm = wasm;
      for (let k = 0; k < st.result.masks.length; k++) {
        const mine = app.upsampleMask(st.result.masks[k].low, g, new Uint8Array(g.width * g.height));
        const theirs = app.decodeRle(full.masks[k]);
        let differ = 0, area = 0;
        for (let i = 0; i < mine.length; i++) { differ += mine[i] !== theirs[i]; area += theirs[i]; }
        out.push({ kernels: wasm ? 'wasm' : 'js', differ, area,
                   rleSame: app.encodeRle(mine, g.height, g.width).counts === full.masks[k].counts,
                   scoreDiff: Math.abs(full.scores[k] - st.result.scores[k]) });
      }
    }
    app.kernelOptions.wasm = true;
    const want = app.decodeRle(full.masks[st.selected]);
    const shownSame = app.maskBits().every((v, i) => v === want[i]);
    // The mask canvas: one pixel per display pixel, each the full-resolution mask's pixel under
    // its centre.
    const shown = app.shownMask(), canvas = document.getElementById('mask-canvas');
    let displayDiffer = 0;
    for (let j = 0; j < shown.dh; j++) {
      const y = shown.dh === g.height ? j : Math.min(g.height - 1, Math.floor((j + 0.5) * g.height / shown.dh));
      for (let i = 0; i < shown.dw; i++) {
        const x = shown.dw === g.width ? i : Math.min(g.width - 1, Math.floor((i + 0.5) * g.width / shown.dw));
        displayDiffer += shown.mask[j * shown.dw + i] !== want[y * g.width + x];
      }
    }
    const rect = canvas.getBoundingClientRect();
    return { kernels, masks: out, shownSame, displayDiffer, display: [shown.dw, shown.dh], canvas: [canvas.width, canvas.height],
             css: [Math.round(rect.width), Math.round(rect.height)] };
}"""

def time_clicks(page, click, n):
    """n first clicks (Clear, then one positive point: 3 masks) and n refinements (a negative
    point with the shown mask as mask_input); each waits for its mask. Returns the lists."""
    page.evaluate(INSTALL_TIMER, "mouseup")  # the page asks on the release
    first, refine, page_timings = [], [], []
    for i in range(n):
        for kind in ("first", "refine"):
            page.evaluate("() => { window.__clicks = []; }")
            if kind == "first":
                page.keyboard.press("Escape")  # Clear
            count = int(page.get_attribute("body", "data-predictions"))
            dx = 3 * (i % 5)
            if kind == "first":
                page.mouse.click(click["x"] + dx, click["y"])
            else:
                page.mouse.click(click["x"] + 40 + dx, click["y"] + 30, button="right")
            page.wait_for_selector(f'body[data-predictions="{count + 1}"]', timeout=60_000)
            page.wait_for_function("() => window.__clicks.length > 0", timeout=10_000)
            t = page.evaluate("() => window.__clicks[0]")
            (first if kind == "first" else refine).append(t)
            last = page.evaluate("() => (window.samApp.state.timings || []).slice(-1)[0] || null")
            if last:
                page_timings.append(dict(last, kind=kind))
    return first, refine, page_timings


def b64(png):
    return base64.b64encode(png).decode("ascii")


# ---------------------------------------------------------------------------------------------

def check_page(page, args, point_x, point_y):
    errors = []
    page.on("pageerror", lambda e: errors.append(e.message))
    page.goto(args.url)
    page.wait_for_selector('body[data-state="idle"]')

    # Open the image: spinner, then the image.
    page.set_input_files("#file-input", args.image)
    page.wait_for_selector('body[data-state="ready"]', timeout=60_000)
    if not page.is_hidden("#busy"):
        fail("the spinner is still shown")
    before = page.screenshot()

    # Click a positive point at image pixel (point_x, point_y).
    box = page.locator("#overlay-canvas").bounding_box()
    size = page.evaluate("() => [window.samApp.state.image.width, window.samApp.state.image.height]")
    click = {"x": box["x"] + point_x * box["width"] / size[0],
             "y": box["y"] + point_y * box["height"] / size[1]}
    if args.checks == "none":
        return run_timing(page, args, click, errors)
    if args.checks == "exact":
        page.mouse.click(click["x"], click["y"])
        page.wait_for_selector('body[data-refreshed="1"]', timeout=120_000)
        check_full_resolution(page, "first click")
        handle = page.evaluate("() => window.samApp.currentMask().logits")
        page.mouse.click(click["x"] + 40, click["y"] + 30, button="right")
        page.wait_for_selector('body[data-refreshed="2"]', timeout=120_000)
        page.evaluate("(h) => { window.samApp.state.lastMaskInput = h; }", handle)
        check_full_resolution(page, "refinement")
        page.evaluate("() => { delete window.samApp.state.lastMaskInput; }")
        return run_timing(page, args, click, errors)
    page.mouse.click(click["x"], click["y"])
    page.wait_for_selector('body[data-refreshed="1"]', timeout=30_000)
    after = page.screenshot()
    with open(args.screenshot, "wb") as f:
        f.write(after)

    status = page.text_content("#status") or ""
    if re.search(r"error|could not", status, re.I):
        fail(f"the page reports: {status}")
    score = page.text_content("#score") or ""
    if not re.match(r"Score \d\.\d{3}", score):
        fail(f'no score shown: "{score}"')
    candidates = page.locator(".candidate").count()
    if candidates != 3:
        fail(f"{candidates} candidates shown, expected 3")
    prompt = page.evaluate("() => window.samApp.state.prompts[0]")
    if abs(prompt["x"] - point_x) > 2 or abs(prompt["y"] - point_y) > 2 or prompt["label"] != 1:
        fail(f"the click became {prompt}, expected a positive point at ({point_x:g}, {point_y:g})")

    stats = page.evaluate(CHECK_OVERLAY, {"before": b64(before), "after": b64(after), "click": click})
    print("overlay check:", stats, flush=True)
    if stats["maskArea"] == 0:
        fail("the mask is empty")
    if stats["inside"] < 50:
        fail(f"only {stats['inside']} screen pixels well inside the mask")
    if stats["insideOk"] < 0.95 * stats["inside"]:
        fail(f"overlay colour missing inside the mask ({stats['insideOk']}/{stats['inside']})")
    if stats["outside"] > 0 and stats["outsideOk"] < 0.95 * stats["outside"]:
        fail(f"image changed outside the mask ({stats['outsideOk']}/{stats['outside']} unchanged)")

    # What the page shows is the full-resolution mask: every candidate, pixel for pixel.
    check_full_resolution(page, "first click")

    # A negative point (right click) refines: a second prediction, one more prompt, with the
    # shown mask's logits as the mask input.
    handle = page.evaluate("() => window.samApp.currentMask().logits")
    page.mouse.click(click["x"] + 40, click["y"] + 30, button="right")
    page.wait_for_selector('body[data-refreshed="2"]', timeout=30_000)
    labels = page.evaluate("() => window.samApp.state.prompts.map((p) => p.label)")
    if labels != [1, 0]:
        fail(f"prompt labels {labels}, expected [1, 0]")
    page.evaluate("(h) => { window.samApp.state.lastMaskInput = h; }", handle)
    check_full_resolution(page, "refinement")
    page.evaluate("() => { delete window.samApp.state.lastMaskInput; }")
    # Undo returns to the first mask without a request.
    page.click("#undo")
    undone = page.evaluate("() => window.samApp.state.prompts.length")
    if undone != 1:
        fail(f"undo left {undone} prompts")

    check_odd_image(page, args.data)

    # Clear removes the overlay: the image as it was before the first click.
    page.click("#clear")
    cleared = page.screenshot()
    unchanged = page.evaluate(SAME_FRACTION, {"x": b64(before), "y": b64(cleared)})
    if unchanged < 0.99:
        fail(f"after Clear only {100 * unchanged:.1f}% of the image is as before")

    if errors:
        fail(f"page errors: {'; '.join(errors)}")
    if args.timing_clicks > 0:
        run_timing(page, args, click, errors)
    return stats


# Another image, of odd size and smaller than the display (301 x 173: its masks are downscaled
# from the 1024 x 592 frame), and the same turned upright, uploaded from the page: the page's
# upsampling of a click's answer, with both kernels, at full size and at half size (each pixel the
# one under it), against the server's full-resolution masks.
ODD_IMAGE = """async ({ png }) => {
    const app = window.samApp;
    const landscape = new Blob([Uint8Array.from(atob(png), (c) => c.charCodeAt(0))], { type: 'image/png' });
    // The same picture turned upright (173 x 301), so that the low-res columns are cropped too.
    const bitmap = await createImageBitmap(landscape);
    const c = document.createElement('canvas');
    c.width = bitmap.height; c.height = bitmap.width;
    const ctx = c.getContext('2d');
    ctx.translate(c.width, 0); ctx.rotate(Math.PI / 2); ctx.drawImage(bitmap, 0, 0);
    const portrait = await new Promise((resolve) => c.toBlob(resolve, 'image/png'));
    const post = (path, body, type) => fetch(path, { method: 'POST', headers: { 'Content-Type': type }, body });
    const results = [];
    for (const image of [landscape, portrait]) {
      const info = await (await post('api/images', image, 'application/octet-stream')).json();
      const prompt = JSON.stringify({ points: [[info.width / 2, info.height / 2], [20, 20]], labels: [1, 0], multimask: true });
      const click = app.parseClick(await (await post(`api/images/${info.id}/click`, prompt, 'application/json')).arrayBuffer());
      const full = await (await post(`api/images/${info.id}/predict`, prompt, 'application/json')).json();
      const g = click.geometry, W = g.width, H = g.height, out = [];
      for (const wasm of [true, false]) {
        app.kernelOptions.wasm = wasm;
        for (let k = 0; k < click.masks.length; k++) {
          const want = app.decodeRle(full.masks[k]);
          const mine = app.upsampleMask(click.masks[k].low, g, new Uint8Array(W * H));
          const dw = Math.round(W / 2), dh = Math.round(H / 2);
          const small = app.upsampleMask(click.masks[k].low, g, new Uint8Array(dw * dh), dw, dh);
          let differ = 0, smallDiffer = 0, area = 0;
          for (let i = 0; i < W * H; i++) { differ += mine[i] !== want[i]; area += want[i]; }
          for (let j = 0; j < dh; j++)
            for (let i = 0; i < dw; i++)
              smallDiffer += small[j * dw + i] !== want[Math.floor((j + 0.5) * H / dh) * W + Math.floor((i + 0.5) * W / dw)];
          out.push({ kernels: wasm ? 'wasm' : 'js', differ, smallDiffer, area });
        }
      }
      app.kernelOptions.wasm = true;
      results.push({ size: [W, H], rows: g.rows, cols: g.cols, masks: out });
    }
    return results;
}"""


def check_odd_image(page, data):
    with open(os.path.join(data, "images", "synthetic.png"), "rb") as f:
        png = b64(f.read())
    for result in page.evaluate(ODD_IMAGE, {"png": png}):
        print(f"odd-sized image: page against full resolution: {result}", flush=True)
        for m in result["masks"]:
            if m["differ"] or m["smallDiffer"]:
                fail(f"synthetic.png {result['size']} ({m['kernels']}): {m['differ']} pixels differ at full "
                     f"size, {m['smallDiffer']} at half size (area {m['area']})")


def check_full_resolution(page, what):
    result = page.evaluate(COMPARE_FULL)
    print(f"{what}: page against full resolution: {result}", flush=True)
    if "error" in result:
        fail(f"{what}: the full-resolution request failed: {result['error']}")
    if result["kernels"] != "wasm":
        fail(f"{what}: the page upsamples without its WebAssembly kernels")
    for k, m in enumerate(result["masks"]):
        if m["differ"] != 0:
            fail(f"{what}: candidate {k % 3} ({m['kernels']}): {m['differ']} pixels differ from the "
                 f"full-resolution mask (area {m['area']})")
        if not m["rleSame"]:
            fail(f"{what}: candidate {k}: the page's COCO RLE differs from the server's")
        if m["scoreDiff"] > 0:
            fail(f"{what}: candidate {k}: scores differ by {m['scoreDiff']}")
    if not result["shownSame"]:
        fail(f"{what}: the mask shown is not the selected candidate's")
    if result["displayDiffer"] != 0:
        fail(f"{what}: {result['displayDiffer']} display pixels differ from the full-resolution mask under them")
    if result["canvas"] != result["display"] or abs(result["css"][0] - result["display"][0]) > 1:
        fail(f"{what}: the mask canvas is {result['canvas']} for a display of {result['css']}")


def run_timing(page, args, click, errors):
    first, refine, page_timings = time_clicks(page, click, max(1, args.timing_clicks))
    if args.checks != "all":  # (else the first click's screenshot is kept)
        page.screenshot(path=args.screenshot)
    for name, rows in (("first click (1 point, 3 masks)", first), ("refinement (mask_input, 3 masks)", refine)):
        report_timing(f"{name}, release to frame", [t["frame"] for t in rows])
        for key in ("request", "wait", "transfer", "server", "decoder"):
            values = [t[key] for t in rows if t[key] is not None]
            if values:
                report_timing(f"{name}, {key}", values)
        frames, decoders = [t["frame"] for t in rows], [t["decoder"] for t in rows if t["decoder"] is not None]
        if decoders:
            print(f"timing: {name}: release to frame / decoder (medians) "
                  f"{percentile(frames, 0.5) / percentile(decoders, 0.5):.2f}", flush=True)
    for kind in ("first", "refine"):
        rows = [t for t in page_timings if t["kind"] == kind]
        if rows:
            parts = ", ".join(f"{key} {percentile([t[key] for t in rows if t.get(key) is not None], 0.5):.1f}"
                              for key in ("before", "decoder", "request", "parse", "upsample", "draw", "total") if rows[0].get(key) is not None)
            print(f"timing: {kind}: page's own medians (ms): {parts}", flush=True)
    if errors:
        fail(f"page errors: {'; '.join(errors)}")
    return {"inside": 0, "outside": 0}


def run(args, on_timeout):
    point_x, point_y = (float(v) for v in args.point.split(","))
    server = start_server(args)
    on_timeout.append(server.kill)
    profile = tempfile.mkdtemp(prefix="sam-browser-")
    try:
        args.url = server.wait_url()
        with sync_playwright() as p:
            context = browser(p, profile, 1280, 800)
            try:
                page = context.pages[0] if context.pages else context.new_page()
                stats = check_page(page, args, point_x, point_y)
            finally:
                context.close()
        print(f"PASS: mask overlay checked on {stats['inside']} + {stats['outside']} pixels; "
              f"screenshot {args.screenshot}")
    finally:
        server.kill()
        shutil.rmtree(profile, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("sam", "data", "image", "screenshot"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--point", default="500,375", help="image pixel to click, X,Y")
    parser.add_argument("--checkpoint", help="model for sam serve (default: the tiny test model in --data)")
    parser.add_argument("--config", help="its config (default: --data's config.json; '' for none)")
    parser.add_argument("--threads", type=int, default=0, help="sam serve --threads (default: its own)")
    parser.add_argument("--web-dir", help="serve the page from this directory (sam serve --web-dir)")
    parser.add_argument("--timing-clicks", type=int, default=5, help="clicks of each kind to time (0: none)")
    parser.add_argument("--checks", choices=("all", "exact", "none"), default="all",
                        help="all; exact: only against the full-resolution masks; none: only timing")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds before the whole test fails")
    args = parser.parse_args()

    # A hang anywhere (server, browser) fails the test instead of waiting for ctest's timeout.
    # The browser goes with Playwright's driver, which exits when this process does.
    on_timeout = []
    run_with_deadline(lambda: run(args, on_timeout), args.timeout, on_timeout)


if __name__ == "__main__":
    main()
