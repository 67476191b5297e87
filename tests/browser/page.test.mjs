// The page of `sam serve` in a real browser: starts the server with the tiny model, opens an
// image through the file picker, clicks a point, waits for the mask, and checks the pixels of a
// screenshot: where the mask is, the overlay colour blended over the image; elsewhere, the
// image unchanged. Writes the screenshot. Loopback only; the server is always killed.
//
//   node page.test.mjs --sam build/sam --data tests/data --image assets/images/truck.jpg \
//                      --screenshot out.png [--point 500,375]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []));
for (const required of ['sam', 'data', 'image', 'screenshot']) {
  if (!args[required]) fail(`missing --${required}`);
}
const [pointX, pointY] = (args.point || '500,375').split(',').map(Number);

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// The server, on a free port.

let server = null;
process.on('exit', () => { if (server) server.kill('SIGKILL'); });
const watchdog = setTimeout(() => fail('timed out after 150 s'), 150_000);

function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn(args.sam, ['serve', '--checkpoint', join(args.data, 'sam_tiny.pth'), '--config',
                              join(args.data, 'config.json'), '--host', '127.0.0.1', '--port', '0'],
                   { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    server.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(log);
      if (m) resolve(m[1]);
    });
    server.on('exit', (code) => reject(new Error(`sam serve exited (${code}):\n${log}`)));
  });
}

// ---------------------------------------------------------------------------------------------
// The pixel check, run inside the page: the screenshots are decoded by the browser itself.

async function checkOverlay(page, before, after, click) {
  return page.evaluate(async ({ before, after, click }) => {
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
  }, { before: before.toString('base64'), after: after.toString('base64'), click });
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const url = await startServer();
  const profile = mkdtempSync(join(tmpdir(), 'sam-browser-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForSelector('body[data-state="idle"]');

    // Open the image: spinner, then the image.
    await page.setInputFiles('#file-input', args.image);
    await page.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
    if (!(await page.isHidden('#busy'))) fail('the spinner is still shown');
    const before = await page.screenshot();

    // Click a positive point at image pixel (pointX, pointY).
    const box = await page.locator('#overlay-canvas').boundingBox();
    const size = await page.evaluate(() => [window.samApp.state.image.width, window.samApp.state.image.height]);
    const click = { x: box.x + pointX * box.width / size[0], y: box.y + pointY * box.height / size[1] };
    await page.mouse.click(click.x, click.y);
    await page.waitForSelector('body[data-predictions="1"]', { timeout: 30_000 });
    const after = await page.screenshot();
    writeFileSync(args.screenshot, after);

    const status = await page.textContent('#status');
    if (/error|could not/i.test(status)) fail(`the page reports: ${status}`);
    const score = await page.textContent('#score');
    if (!/^Score \d\.\d{3}/.test(score)) fail(`no score shown: "${score}"`);
    const candidates = await page.locator('.candidate').count();
    if (candidates !== 3) fail(`${candidates} candidates shown, expected 3`);
    const prompt = await page.evaluate(() => window.samApp.state.prompts[0]);
    if (Math.abs(prompt.x - pointX) > 2 || Math.abs(prompt.y - pointY) > 2 || prompt.label !== 1) {
      fail(`the click became ${JSON.stringify(prompt)}, expected a positive point at (${pointX}, ${pointY})`);
    }

    const stats = await checkOverlay(page, before, after, click);
    console.log('overlay check:', JSON.stringify(stats));
    if (stats.maskArea === 0) fail('the mask is empty');
    if (stats.inside < 50) fail(`only ${stats.inside} screen pixels well inside the mask`);
    if (stats.insideOk < 0.95 * stats.inside) fail(`overlay colour missing inside the mask (${stats.insideOk}/${stats.inside})`);
    if (stats.outside > 0 && stats.outsideOk < 0.95 * stats.outside) {
      fail(`image changed outside the mask (${stats.outsideOk}/${stats.outside} unchanged)`);
    }

    // A negative point (right click) refines: a second prediction, one more prompt.
    await page.mouse.click(click.x + 40, click.y + 30, { button: 'right' });
    await page.waitForSelector('body[data-predictions="2"]', { timeout: 30_000 });
    const labels = await page.evaluate(() => window.samApp.state.prompts.map((p) => p.label));
    if (JSON.stringify(labels) !== '[1,0]') fail(`prompt labels ${JSON.stringify(labels)}, expected [1,0]`);
    // Undo returns to the first mask without a request.
    await page.click('#undo');
    const undone = await page.evaluate(() => window.samApp.state.prompts.length);
    if (undone !== 1) fail(`undo left ${undone} prompts`);

    // Clear removes the overlay: the image as it was before the first click.
    await page.click('#clear');
    const cleared = await page.screenshot();
    const unchanged = await page.evaluate(async ({ x, y }) => {
      const load = async (b64) => {
        const img = new Image();
        img.src = `data:image/png;base64,${b64}`;
        await img.decode();
        const c = document.createElement('canvas');
        c.width = img.width; c.height = img.height;
        c.getContext('2d').drawImage(img, 0, 0);
        return c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      };
      const [a, b] = [await load(x), await load(y)];
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
    }, { x: before.toString('base64'), y: cleared.toString('base64') });
    if (unchanged < 0.99) fail(`after Clear only ${(100 * unchanged).toFixed(1)}% of the image is as before`);

    if (errors.length) fail(`page errors: ${errors.join('; ')}`);
    console.log(`PASS: mask overlay checked on ${stats.inside} + ${stats.outside} pixels; screenshot ${args.screenshot}`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

main().then(() => {
  clearTimeout(watchdog);
  process.exit(0);
}).catch((e) => fail(e.stack || String(e)));
