"""The page of `sam serve` in a real browser: starts the server with the tiny model, opens an
image through the file picker, clicks a point, waits for the mask, and checks the pixels of a
screenshot: where the mask is, the overlay colour blended over the image; elsewhere, the
image unchanged. Writes the screenshot. Loopback only; the server is always killed.

  .venv/bin/python tests/browser/page_test.py --sam build/sam --data tests/data \\
      --image assets/images/truck.jpg --screenshot out.png [--point 500,375]

Driver: Python Playwright from PyPI (tests/browser/requirements.txt), which carries its own
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
import subprocess
import sys
import tempfile
import threading

from playwright.sync_api import sync_playwright

TIMEOUT_S = 150
CHROMIUM = "/usr/bin/chromium"


class Failure(Exception):
    pass


def fail(message):
    raise Failure(message)


# ---------------------------------------------------------------------------------------------
# The server, on a free port.

class Server:
    """`sam serve` with the tiny model; `url` once it says where it listens."""

    def __init__(self, sam, data):
        self.proc = subprocess.Popen(
            [sam, "serve", "--checkpoint", os.path.join(data, "sam_tiny.pth"),
             "--config", os.path.join(data, "config.json"), "--host", "127.0.0.1", "--port", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = ""
        self.url = None
        self.ready = threading.Event()
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read_log(self):
        # Keeps reading to the end, so that the server never blocks on a full pipe.
        for line in self.proc.stderr:
            self.log += line
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+/)", self.log)
            if m and not self.url:
                self.url = m.group(1)
                self.ready.set()
        self.ready.set()

    def wait_url(self):
        self.ready.wait(TIMEOUT_S)
        if not self.url:
            try:
                code = self.proc.wait(5)
            except subprocess.TimeoutExpired:
                fail(f"sam serve did not say where it listens:\n{self.log}")
            fail(f"sam serve exited ({code}):\n{self.log}")
        return self.url

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


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
    const m = app.currentMask();
    const [h, w] = m.size;
    const mask = app.decodeRle(m);
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
    page.mouse.click(click["x"], click["y"])
    page.wait_for_selector('body[data-predictions="1"]', timeout=30_000)
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

    # A negative point (right click) refines: a second prediction, one more prompt.
    page.mouse.click(click["x"] + 40, click["y"] + 30, button="right")
    page.wait_for_selector('body[data-predictions="2"]', timeout=30_000)
    labels = page.evaluate("() => window.samApp.state.prompts.map((p) => p.label)")
    if labels != [1, 0]:
        fail(f"prompt labels {labels}, expected [1, 0]")
    # Undo returns to the first mask without a request.
    page.click("#undo")
    undone = page.evaluate("() => window.samApp.state.prompts.length")
    if undone != 1:
        fail(f"undo left {undone} prompts")

    # Clear removes the overlay: the image as it was before the first click.
    page.click("#clear")
    cleared = page.screenshot()
    unchanged = page.evaluate(SAME_FRACTION, {"x": b64(before), "y": b64(cleared)})
    if unchanged < 0.99:
        fail(f"after Clear only {100 * unchanged:.1f}% of the image is as before")

    if errors:
        fail(f"page errors: {'; '.join(errors)}")
    return stats


def run(args, on_timeout):
    point_x, point_y = (float(v) for v in args.point.split(","))
    server = Server(args.sam, args.data)
    on_timeout.append(server.kill)
    profile = tempfile.mkdtemp(prefix="sam-browser-")
    try:
        args.url = server.wait_url()
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True,
                viewport={"width": 1280, "height": 800}, device_scale_factor=1,
                args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update",
                      "--disable-sync"])
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
    args = parser.parse_args()

    # A hang anywhere (server, browser) fails the test instead of waiting for ctest's timeout.
    # The browser goes with Playwright's driver, which exits when this process does.
    on_timeout = []
    def watchdog():
        print(f"FAIL: timed out after {TIMEOUT_S} s", file=sys.stderr, flush=True)
        for cleanup in on_timeout:
            cleanup()
        os._exit(1)
    timer = threading.Timer(TIMEOUT_S, watchdog)
    timer.daemon = True
    timer.start()
    try:
        run(args, on_timeout)
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        timer.cancel()


if __name__ == "__main__":
    main()
