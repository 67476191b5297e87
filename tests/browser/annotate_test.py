"""The page of `sam annotate` in a real browser: a project of 3 images, two objects with
different labels made by clicks on the first (undo, redo, one refined), the next image, propose (segment everything),
one proposal accepted with a label, COCO exported from the page; then the COCO file is checked
(images, categories, which label each object got, masks that decode). Loopback only; the server
is always killed. Same driver as page_test.py (Playwright from PyPI, Debian's chromium).

  .venv/bin/python tests/browser/annotate_test.py --sam build/sam --data tests/data [--screenshot s.png]
"""
import argparse
import json
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
IMAGES = ["dog.jpg", "groceries.png", "truck.png"]


class Failure(Exception):
    pass


def fail(message):
    raise Failure(message)


class Server:
    def __init__(self, sam, data, images, project):
        self.proc = subprocess.Popen(
            [sam, "annotate", "--checkpoint", os.path.join(data, "sam_tiny.pth"),
             "--config", os.path.join(data, "config.json"), "--images", images, "--project", project,
             "--labels", "cat,dog", "--host", "127.0.0.1", "--port", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = ""
        self.url = None
        self.ready = threading.Event()
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read_log(self):
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
            fail(f"sam annotate did not start:\n{self.log}")
        return self.url

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def click_image(page, fx, fy, **kw):
    """Clicks at a fraction (fx, fy) of the displayed image."""
    box = page.locator("#canvas").bounding_box()
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"], **kw)


def wait_body(page, attr, value):
    page.wait_for_selector(f'body[data-{attr}="{value}"]', timeout=60_000)


def annotate(page, url, screenshot):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    wait_body(page, "image", IMAGES[0])
    # Two objects by clicks: "cat" (key 1), then "dog" (key 2, with a negative click as well).
    page.keyboard.press("1")
    click_image(page, 0.3, 0.4)
    wait_body(page, "predictions", "1")
    page.keyboard.press("Enter")
    wait_body(page, "saves", "1")
    page.keyboard.press("2")
    click_image(page, 0.7, 0.6)
    wait_body(page, "predictions", "2")
    page.keyboard.down("Shift")  # a point off the object
    click_image(page, 0.9, 0.9)
    page.keyboard.up("Shift")
    wait_body(page, "predictions", "3")
    page.keyboard.press("Enter")
    wait_body(page, "saves", "2")
    labels = page.evaluate("() => window.samAnnotate.state.record.objects.map((o) => o.label)")
    if labels != ["cat", "dog"]:
        fail(f"objects labelled {labels}, expected ['cat', 'dog']")
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sam", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--screenshot")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sam-annotate-browser-")
    images = os.path.join(tmp, "images")
    os.makedirs(images)
    for name in IMAGES:
        shutil.copy(os.path.join(args.data, "images", name), images)
    project = os.path.join(tmp, "project.json")
    server = Server(args.sam, args.data, images, project)
    timer = threading.Timer(TIMEOUT_S, server.kill)
    timer.start()
    try:
        url = server.wait_url()
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                os.path.join(tmp, "profile"), executable_path=CHROMIUM, headless=True,
                viewport={"width": 1400, "height": 900}, device_scale_factor=1,
                args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            try:
                page = context.pages[0] if context.pages else context.new_page()
                proposals = annotate(page, url, args.screenshot)
            finally:
                context.close()
        n = check_coco(os.path.join(tmp, "project.export", "coco.json"))
        print(f"PASS: 2 objects by clicks, {proposals} proposals, 1 accepted; COCO export has {n} annotations")
        return 0
    except Failure as e:
        print(f"FAIL: {e}\n--- server log ---\n{server.log[-3000:]}", file=sys.stderr)
        return 1
    finally:
        timer.cancel()
        server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
