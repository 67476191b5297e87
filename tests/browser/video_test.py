"""The video page of `sam serve` (web/video.html) in a real browser: starts the server with the
SAM 2 video fixture model, opens a video through the file picker (an MJPEG AVI written here from
the fixture's 8 JPEG frames), clicks an object on frame 0, adds a second object (a click and a
shift + click negative point) on frame 3, propagates (the progress bar must reach the end), then
scrubs the slider; on every frame visited the mask canvas (one canvas pixel per video pixel)
must hold, pixel for pixel, every object's colour where the server's mask of that frame
(GET .../frames/N/masks, COCO RLE) has it, later objects over earlier, and nothing elsewhere.
The frame canvas must show the frame. Writes a screenshot. Loopback only; the server is always
killed.

  .venv/bin/python tests/browser/video_test.py --sam build/sam --data tests/data --screenshot out.png

Driver: tests/browser/harness.py (Python Playwright driving Debian's /usr/bin/chromium).
"""
import argparse
import os
import shutil
import struct
import tempfile

from playwright.sync_api import sync_playwright

from harness import Server, browser, fail, run_with_deadline

TIMEOUT_S = 170


def write_mjpeg_avi(path, jpegs, width, height, fps=25):
    """An AVI of JPEG frames (MJPG), as FFmpeg's avi demuxer reads it: hdrl (avih, strl with strh
    and a BITMAPINFOHEADER strf), movi with one 00dc chunk per frame, idx1 (offsets from movi)."""
    def chunk(fourcc, data):
        return fourcc + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    def lst(kind, data):
        return b"LIST" + struct.pack("<I", len(data) + 4) + kind + data

    n, biggest = len(jpegs), max(len(j) for j in jpegs)
    avih = struct.pack("<14I", 1_000_000 // fps, biggest * fps, 0, 0x10, n, 0, 1, biggest, width, height, 0, 0, 0, 0)
    strh = (b"vids" + b"MJPG" + struct.pack("<IHHIIIIIIiI", 0, 0, 0, 0, 1, fps, 0, n, biggest, -1, 0)
            + struct.pack("<4h", 0, 0, width, height))
    strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0)
    hdrl = lst(b"hdrl", chunk(b"avih", avih) + lst(b"strl", chunk(b"strh", strh) + chunk(b"strf", strf)))
    movi, index, offset = b"", b"", 4  # offsets from the 'movi' fourcc
    for j in jpegs:
        c = chunk(b"00dc", j)
        index += b"00dc" + struct.pack("<III", 0x10, offset, len(j))
        movi += c
        offset += len(c)
    body = b"AVI " + hdrl + lst(b"movi", movi) + chunk(b"idx1", index)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


# The mask canvas against the server's masks of the frame shown: every pixel the colour of the
# last object whose mask holds it (opaque), else transparent.
CHECK_FRAME = """async (frame) => {
    const v = window.samVideo, st = v.state;
    const res = await fetch(`api/videos/${st.video.id}/frames/${frame}/masks`);
    const body = await res.json();
    if (!res.ok) return { error: body.error };
    const { width: w, height: h } = st.video;
    const want = new Uint8ClampedArray(4 * w * h);
    const areas = {};
    for (const m of body.masks) {
      const bits = v.decodeRle(m), [r, g, b] = v.colourOf(m.obj_id);
      let area = 0;
      for (let i = 0; i < bits.length; i++) {
        if (!bits[i]) continue;
        area++;
        want[4 * i] = r; want[4 * i + 1] = g; want[4 * i + 2] = b; want[4 * i + 3] = 255;
      }
      areas[m.obj_id] = area;
    }
    const canvas = document.getElementById('mask-canvas');
    const got = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let differ = 0;
    for (let i = 0; i < want.length; i++) differ += got[i] !== want[i];
    // The frame canvas shows a picture (not blank).
    const fc = document.getElementById('frame-canvas');
    const px = fc.getContext('2d').getImageData(0, 0, fc.width, fc.height).data;
    let lo = 255, hi = 0;
    for (let i = 0; i < px.length; i += 4 * 97) { lo = Math.min(lo, px[i]); hi = Math.max(hi, px[i]); }
    return { tracked: body.tracked, objects: body.masks.map((m) => m.obj_id), areas, differ,
             canvas: [canvas.width, canvas.height], size: [w, h], frameRange: hi - lo,
             shown: Number(document.body.dataset.frame) };
}"""


def check_frame(page, frame, what, want_objects):
    r = page.evaluate(CHECK_FRAME, frame)
    if "error" in r:
        fail(f"{what}: {r['error']}")
    if r["shown"] != frame:
        fail(f"{what}: the page shows frame {r['shown']}, not {frame}")
    if r["canvas"] != r["size"]:
        fail(f"{what}: the mask canvas is {r['canvas']}, the video {r['size']}")
    if sorted(r["objects"]) != sorted(want_objects):
        fail(f"{what}: the server has objects {r['objects']}, expected {want_objects}")
    if r["differ"]:
        fail(f"{what}: {r['differ']} mask canvas values differ from the server's masks (areas {r['areas']})")
    if r["frameRange"] < 20:
        fail(f"{what}: the frame canvas looks blank")
    print(f"frame {frame} ({what}): objects {r['objects']}, mask areas {r['areas']}, canvas identical", flush=True)
    return r


def wait_draw(page, count, frame):
    page.wait_for_function(
        "([n, f]) => Number(document.body.dataset.draws || 0) > n && document.body.dataset.frame === String(f)",
        arg=[count, frame], timeout=60_000)


def draws(page):
    return int(page.evaluate("() => Number(document.body.dataset.draws || 0)"))


def click_video(page, x, y, modifiers=()):
    """A click at video pixel (x, y) of the overlay canvas."""
    overlay = page.locator("#overlay-canvas")
    box = overlay.bounding_box()
    w, h = page.evaluate("() => [window.samVideo.state.video.width, window.samVideo.state.video.height]")
    overlay.click(position={"x": (x + 0.5) * box["width"] / w, "y": (y + 0.5) * box["height"] / h},
                  modifiers=list(modifiers))


def scrub(page, frame):
    n = draws(page)
    page.locator("#frame-slider").evaluate(
        "(el, f) => { el.value = String(f); el.dispatchEvent(new Event('input', { bubbles: true })); }", frame)
    wait_draw(page, n, frame)


def check_page(page, args, video):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(args.url + "video.html")
    page.wait_for_selector('body[data-state="idle"]')
    # The image page links here.
    page.goto(args.url)
    page.click('a[href="video.html"]')
    page.wait_for_selector('body[data-state="idle"]')

    n = draws(page)
    page.set_input_files("#file-input", video)
    wait_draw(page, n, 0)
    page.wait_for_selector('body[data-state="ready"]', timeout=60_000)
    info = page.evaluate("() => window.samVideo.state.video")
    if (info["frames"], info["width"], info["height"]) != (8, 320, 240):
        fail(f"the page opened {info}, expected 8 frames of 320x240")

    # Object 1: a click on frame 0.
    n = draws(page)
    click_video(page, 160, 120)
    wait_draw(page, n, 0)
    r = check_frame(page, 0, "object 1 clicked", [1])
    if not r["areas"].get("1"):
        fail("object 1's mask on frame 0 is empty")

    # Object 2 on frame 3: a click, then a shift + click negative point.
    page.click("#new-object")
    scrub(page, 3)
    for x, y, mods in ((240, 120, ()), (20, 20, ("Shift",))):
        n = draws(page)
        click_video(page, x, y, mods)
        wait_draw(page, n, 3)
    labels = page.evaluate("() => window.samVideo.state.points.get('3:2').map((p) => p.label)")
    if labels != [1, 0]:
        fail(f"object 2's points on frame 3 have labels {labels}, expected [1, 0]")
    # The label mode (web/stage.js, shared with the image page): the N key makes a plain click
    # negative and the buttons show it; the Positive button turns it back.
    modes = "() => ['mode-positive', 'mode-negative'].map((id) => document.getElementById(id).classList.contains('active'))"
    page.keyboard.press("n")
    if page.evaluate(modes) != [False, True]:
        fail(f"after the N key the mode buttons are {page.evaluate(modes)}, expected negative active")
    n = draws(page)
    click_video(page, 300, 220)
    wait_draw(page, n, 3)
    page.click("#mode-positive")
    if page.evaluate(modes) != [True, False]:
        fail(f"after Positive the mode buttons are {page.evaluate(modes)}, expected positive active")
    labels = page.evaluate("() => window.samVideo.state.points.get('3:2').map((p) => p.label)")
    if labels != [1, 0, 0]:
        fail(f"object 2's points on frame 3 have labels {labels}, expected [1, 0, 0] after a click in negative mode")
    r = check_frame(page, 3, "object 2 clicked", [1, 2])  # object 1 without an output there yet: empty
    if not r["areas"].get("2"):
        fail("object 2's mask on frame 3 is empty")

    # Propagate: forward from frame 0 over every frame; the progress bar reaches the end.
    page.click("#propagate")
    page.wait_for_selector('body[data-propagated="1"]', timeout=120_000)
    page.wait_for_selector('body[data-state="ready"]')
    status = page.inner_text("#status")
    if "Tracked" not in status:
        fail(f"propagation did not finish: {status}")
    if page.evaluate("() => document.getElementById('progress').value") != 1:
        fail("the progress bar did not reach the end")

    # Scrub through the result: every frame's masks, as the server has them.
    # (The random test model loses its objects on some frames: the object-score head says
    # absent. Each object must show on some frame visited.)
    seen = {}
    for frame in (5, 7, 1, 3, 0):
        scrub(page, frame)
        for obj, area in check_frame(page, frame, "after propagation", [1, 2])["areas"].items():
            seen[obj] = seen.get(obj, 0) + area
    if not all(seen.get(k) for k in ("1", "2")):
        fail(f"after propagation, mask pixels over the frames visited: {seen}; expected both objects somewhere")
    # The keyboard moves one frame.
    n = draws(page)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("ArrowRight")
    wait_draw(page, n, 1)
    check_frame(page, 1, "arrow key", [1, 2])
    scrub(page, 7)
    page.screenshot(path=args.screenshot)
    if errors:
        fail(f"page errors: {'; '.join(errors)}")


def run(args, on_timeout):
    work = tempfile.mkdtemp(prefix="sam-video-browser-")
    try:
        frames = [open(os.path.join(args.data, "sam2_video", "frames", f"{i:05d}.jpg"), "rb").read() for i in range(8)]
        video = os.path.join(work, "frames.avi")
        write_mjpeg_avi(video, frames, 320, 240)
        server = Server([args.sam, "serve", "--checkpoint", os.path.join(args.data, "sam2_video", "sam2_video.pt"),
                         "--config", os.path.join(args.data, "sam2", "config.json"), "--threads", "2"])
        on_timeout.append(server.kill)
        try:
            args.url = server.wait_url()
            with sync_playwright() as p:
                context = browser(p, os.path.join(work, "profile"), 1280, 800)
                try:
                    page = context.pages[0] if context.pages else context.new_page()
                    check_page(page, args, video)
                finally:
                    context.close()
        finally:
            server.kill()
        print(f"PASS: video page masks equal the server's on every frame visited; screenshot {args.screenshot}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("sam", "data", "screenshot"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds before the whole test fails")
    args = parser.parse_args()
    on_timeout = []
    run_with_deadline(lambda: run(args, on_timeout), args.timeout, on_timeout)


if __name__ == "__main__":
    main()
