"""What the browser tests share: a `sam` server on a free loopback port, Debian's chromium
through Playwright, click timing on the page's timeline (Performance API), and percentiles.

  from harness import Failure, fail, Server, browser, percentile, run_with_deadline
"""
import os
import re
import subprocess
import sys
import threading

CHROMIUM = "/usr/bin/chromium"
START_TIMEOUT_S = 150


class Failure(Exception):
    pass


def fail(message):
    raise Failure(message)


class Server:
    """A `sam serve` or `sam annotate` command line, started at once with --port 0 on 127.0.0.1;
    `wait_url()` gives the address it says it listens on. Its log is read to the end (so that it
    never blocks on a full pipe) and kept in `log`. `kill()` may be called from any thread."""

    def __init__(self, cmd):
        self.name = " ".join(os.path.basename(c) for c in cmd[:2])
        self.proc = subprocess.Popen(cmd + ["--host", "127.0.0.1", "--port", "0"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
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

    def wait_url(self, timeout_s=START_TIMEOUT_S):
        self.ready.wait(timeout_s)
        if not self.url:
            try:
                code = self.proc.wait(5)
            except subprocess.TimeoutExpired:
                fail(f"{self.name} did not say where it listens:\n{self.log}")
            fail(f"{self.name} exited ({code}):\n{self.log}")
        return self.url

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def browser(playwright, profile, width, height):
    """Headless chromium (Debian's) with its own profile folder, at device scale 1: a context
    whose `pages[0]` is the page. Close it when done."""
    return playwright.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, headless=True,
        viewport={"width": width, "height": height}, device_scale_factor=1,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"])


def percentile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))]


def report_timing(name, values):
    print(f"timing: {name}: median {percentile(values, 0.5):.1f} ms, p90 {percentile(values, 0.9):.1f} ms "
          f"(n={len(values)})", flush=True)


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# Marks on the page's timeline: the press (`press` = 'mousedown') or release ('mouseup') of the
# mouse button, and the first animation frame after the page says a prediction is drawn
# (body[data-predictions] changes once the mask is drawn). The request's own resource entry
# gives its time and the server's phases (Server-Timing). Works with any version of a page that
# counts its predictions that way. Entries go to window.__clicks.
INSTALL_TIMER = """(press) => {
    window.__clicks = [];
    window.addEventListener(press, () => { performance.clearResourceTimings(); performance.mark('test:click'); }, true);
    new MutationObserver(() => {
      performance.mark('test:drawn');
      requestAnimationFrame(() => {
        performance.mark('test:frame');
        const m = performance.measure('test:click-to-frame', 'test:click', 'test:frame');
        const d = performance.measure('test:click-to-drawn', 'test:click', 'test:drawn');
        const req = performance.getEntriesByType('resource').filter((e) => /[/](predict|click)$/.test(e.name)).pop();
        const phase = (name) => ((req && req.serverTiming) || []).find((t) => t.name === name);
        window.__clicks.push({ frame: m.duration, drawn: d.duration, request: req ? req.duration : null,
                               decoder: phase('decoder') ? phase('decoder').duration : null,
                               server: phase('total') ? phase('total').duration : null,
                               wait: req ? req.responseStart - req.requestStart : null,
                               transfer: req ? req.responseEnd - req.responseStart : null });
      });
    }).observe(document.body, { attributes: true, attributeFilter: ['data-predictions'] });
}"""


def run_with_deadline(run, timeout_s, on_timeout):
    """Returns run()'s result; a hang anywhere (server, browser) fails the test after timeout_s
    seconds instead of waiting for ctest's timeout: the callables appended to on_timeout (by
    run, as it starts things) are called and the process exits with status 1. A Failure raised
    by run is printed and exits with status 1 too."""
    def watchdog():
        print(f"FAIL: timed out after {timeout_s} s", file=sys.stderr, flush=True)
        for cleanup in on_timeout:
            cleanup()
        os._exit(1)

    timer = threading.Timer(timeout_s, watchdog)
    timer.daemon = True
    timer.start()
    try:
        return run()
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        timer.cancel()
