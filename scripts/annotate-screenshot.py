#!/usr/bin/env python3
"""Makes docs/screenshot-annotate.png: `sam annotate` on assets/images/ with three objects
imported from a COCO file of rough hand-drawn polygons (the tiny test model's own masks mean
nothing), the third selected. Needs the venv of scripts/setup.sh (Playwright) and chromium.

  .venv/bin/python scripts/annotate-screenshot.py docs/screenshot-annotate.png
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from playwright.sync_api import sync_playwright

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO = {"images": [{"id": 1, "file_name": "dog.jpg", "width": 800, "height": 534}], "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "person"}, {"id": 3, "name": "bowl"}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [[0, 534, 0, 398, 85, 288, 160, 255, 205, 228, 240, 222, 300, 235, 360, 265, 400, 300, 425, 328, 400, 370, 385, 388, 330, 420, 305, 428, 325, 534]]}, {"id": 2, "image_id": 1, "category_id": 2, "iscrowd": 0, "segmentation": [[620, 0, 800, 0, 800, 130, 760, 200, 700, 300, 690, 360, 680, 420, 620, 430, 640, 360, 650, 300, 600, 340, 560, 360, 520, 370, 510, 330, 560, 290, 610, 240, 640, 150, 650, 60]]}, {"id": 3, "image_id": 1, "category_id": 3, "iscrowd": 0, "segmentation": [[490, 205, 560, 180, 640, 170, 660, 190, 650, 260, 600, 295, 560, 300, 500, 270]]}]}


def main():
    out = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="sam-annotate-shot-")
    images = os.path.join(tmp, "images")
    os.makedirs(images)
    for name in ("dog.jpg", "groceries.jpg", "truck.jpg"):
        shutil.copy(os.path.join(ROOT, "assets", "images", name), images)
    with open(os.path.join(tmp, "coco.json"), "w") as f:
        json.dump(COCO, f)
    data = os.path.join(ROOT, "tests", "data")
    proc = subprocess.Popen([os.path.join(ROOT, "build", "sam"), "annotate", "--checkpoint", data + "/sam_tiny.pth",
                             "--config", data + "/config.json", "--images", images, "--project", tmp + "/p.json",
                             "--labels", "dog,person,bowl", "--import-coco", tmp + "/coco.json", "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        log = ""
        for line in proc.stderr:
            log += line
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+/)", log)
            if m:
                break
        else:
            sys.exit("sam annotate did not start:\n" + log)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = b.new_page(viewport={"width": 1400, "height": 760}, device_scale_factor=1)
            page.goto(m.group(1))
            page.wait_for_selector('body[data-image="dog.jpg"]')
            page.locator("#objects li").nth(2).click(position={"x": 30, "y": 8})
            page.keyboard.press("3")
            page.fill("#opacity", "45")
            page.dispatch_event("#opacity", "input")
            time.sleep(0.5)
            page.screenshot(path=out)
            b.close()
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
