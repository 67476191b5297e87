// The interactive segmentation page of `sam serve`: open an image, click points or drag a box,
// see the mask. Talks to the API (apps/server/routes.h). A click's answer is the decoder's
// low-res logits (POST .../click, binary: apps/server/click.h), which the page upsamples and
// thresholds itself exactly as the server's full-resolution path does (web/mask.js), so the mask
// shown is the full-resolution mask, pixel for pixel. "Segment everything" arrives as COCO RLE.
'use strict';

const $ = (id) => document.getElementById(id);
const MASK_RGB = [30, 144, 255];  // the overlay colour of the current mask
const MASK_ALPHA = 128;           // of 255
const DRAG_PX = 5;                // a press that moves further than this draws a box

const state = {
  image: null,        // {id, width, height, name}
  bitmap: null,       // the decoded image, for drawing
  prompts: [],        // {kind: 'point', x, y, label} | {kind: 'box', box: [x0, y0, x1, y1]}
  result: null,       // the last prediction: {masks: [{logits, low}], scores, best, geometry}
  selected: 0,        // which candidate of result is shown
  history: [],        // snapshots {prompts, result, selected} before each action, for undo
  everything: null,   // records of "segment everything"
  busy: false,
  drag: null,         // {x0, y0, x1, y1, button} in image pixels while the mouse is down
  queue: Promise.resolve(),
  predictions: 0,     // overlays drawn (tests wait on it)
  shown: null,        // the shown candidate under the display: {result, k, dw, dh, mask, full}
  timings: [],        // per click, ms: {before, request, decoder, parse, upsample, draw, total}
};

// COCO RLE, the click's binary answer and its upsampling: web/mask.js, shared with the
// annotation workspace.
const { encodeRle, upsampleMask, upsamplerFor, kernelOptions, parseClick } = samMask;

// The decoded mask of an RLE, kept on it.
function decodeRle(rle) {
  if (!rle.decoded) rle.decoded = samMask.decodeRle(rle);
  return rle.decoded;
}

// ---------------------------------------------------------------------------------------------
// Drawing.

const imageCanvas = $('image-canvas');
const maskCanvas = $('mask-canvas');  // the mask, at the display's resolution
const overlay = $('overlay-canvas');  // the prompts

// A 0/1 mask as RGBA: the colour at alpha inside, opaque on its edge pixels (a 4-neighbour
// outside the mask, or the border): a crisp outline. Without branches per pixel (speckled masks
// would mispredict every other one): the colour is looked up by mask + interior.
function maskImage(mask, w, h, rgb, alpha, img) {
  const px = new Uint32Array(img.data.buffer);  // RGBA bytes as little-endian words
  const colour = rgb[0] | (rgb[1] << 8) | (rgb[2] << 16);
  const lut = new Uint32Array([0, colour | (255 << 24), colour | (alpha << 24)]);  // outside, edge, inside
  for (let y = 0; y < h; y++) {
    const i0 = y * w, up = y > 0 ? i0 - w : i0, down = y < h - 1 ? i0 + w : i0;
    const inner = y > 0 && y < h - 1 ? 1 : 0;
    px[i0] = lut[mask[i0]];
    for (let x = 1; x < w - 1; x++) {
      const i = i0 + x, m = mask[i];
      px[i] = lut[m + (m & mask[i - 1] & mask[i + 1] & mask[up + x] & mask[down + x] & inner)];
    }
    if (w > 1) px[i0 + w - 1] = lut[mask[i0 + w - 1]];
  }
  return img;
}

function maskLayer(mask, w, h, rgb, alpha) {
  const layer = document.createElement('canvas');
  layer.width = w; layer.height = h;
  const ctx = layer.getContext('2d');
  ctx.putImageData(maskImage(mask, w, h, rgb, alpha, ctx.createImageData(w, h)), 0, 0);
  return layer;
}

// Image pixels per screen pixel: markers keep their on-screen size whatever the zoom.
function pixelScale() {
  const r = overlay.getBoundingClientRect();
  return r.width > 0 && state.image ? state.image.width / r.width : 1;
}

function drawPrompts(ctx) {
  const s = pixelScale();
  for (const p of state.prompts) {
    if (p.kind === 'box') drawBox(ctx, p.box, s);
    else {
      ctx.beginPath();
      ctx.arc(p.x, p.y, 6 * s, 0, 2 * Math.PI);
      ctx.fillStyle = p.label === 1 ? '#2fa84f' : '#e5484d';
      ctx.fill();
      ctx.lineWidth = 2 * s;
      ctx.strokeStyle = '#ffffff';
      ctx.stroke();
    }
  }
  if (state.drag && state.drag.moved) {
    const d = state.drag;
    drawBox(ctx, [Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.max(d.x0, d.x1), Math.max(d.y0, d.y1)], s);
  }
}

function drawBox(ctx, b, s) {
  ctx.lineWidth = 2 * s;
  ctx.setLineDash([6 * s, 4 * s]);
  ctx.strokeStyle = '#ffd400';
  ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
  ctx.setLineDash([]);
}

function currentMask() {
  return state.result && state.result.masks.length ? state.result.masks[state.selected] : null;
}

// The mask canvas has one pixel per device pixel of the displayed image (at most one per
// image pixel): the page computes and draws only those pixels of the full-resolution mask.
function displaySize() {
  if (!state.display) {  // measured once per image and window size (fitStage): not on a click's path
    const r = imageCanvas.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    const { width: W, height: H } = state.image;
    if (r.width <= 0 || r.height <= 0) return [W, H];
    state.display = [Math.max(1, Math.min(W, Math.round(r.width * dpr))), Math.max(1, Math.min(H, Math.round(r.height * dpr)))];
  }
  return state.display;
}

// The shown candidate under the display's pixels, computed once per candidate and display size.
function shownMask() {
  const r = state.result, k = state.selected, [dw, dh] = displaySize();
  const s = state.shown;
  if (s && s.result === r && s.k === k && s.dw === dw && s.dh === dh) return s;
  const t0 = performance.now();
  const mask = upsampleMask(r.masks[k].low, r.geometry, new Uint8Array(dw * dh), dw, dh);
  state.shown = { result: r, k, dw, dh, mask, upsampleMs: performance.now() - t0, full: null };
  return state.shown;
}

// The shown candidate at full resolution (row-major 0/1): for export, computed on request.
function maskBits() {
  if (!currentMask()) return null;
  const s = shownMask();
  if (!s.full) {
    const g = state.result.geometry;
    s.full = s.dw === g.width && s.dh === g.height ? s.mask
      : upsampleMask(state.result.masks[s.k].low, g, new Uint8Array(g.width * g.height));
  }
  return s.full;
}

// A candidate's thumbnail straight from its low-res logits (each cell: logit > threshold).
function lowResLayer(m, g, rgb, alpha) {
  const layer = document.createElement('canvas');
  layer.width = g.cols; layer.height = g.rows;
  const ctx = layer.getContext('2d');
  const img = ctx.createImageData(g.cols, g.rows);
  const px = new Uint32Array(img.data.buffer);
  const word = (rgb[0] | (rgb[1] << 8) | (rgb[2] << 16) | (alpha << 24)) >>> 0;
  for (let i = 0; i < px.length; i++) if (m.low[i] > g.threshold) px[i] = word;
  ctx.putImageData(img, 0, 0);
  return layer;
}

// The mask canvas: the shown candidate, or every record of "segment everything".
let maskDrawn = null;  // what the mask canvas shows now
function drawMask() {
  let what = null;
  if (state.image && state.everything) what = state.everything;
  else if (state.image && currentMask()) what = shownMask();
  const [dw, dh] = state.image ? displaySize() : [1, 1];
  if (what === maskDrawn && maskCanvas.width === dw && maskCanvas.height === dh) return;
  if (maskCanvas.width !== dw || maskCanvas.height !== dh) { maskCanvas.width = dw; maskCanvas.height = dh; }
  const ctx = maskCanvas.getContext('2d');
  maskDrawn = what;
  if (what && what === state.everything) {
    ctx.clearRect(0, 0, dw, dh);
    const { width: w, height: h } = state.image;
    // Largest first, so small masks stay visible on top.
    const records = [...state.everything].sort((a, b) => b.area - a.area);
    for (const r of records) ctx.drawImage(maskLayer(decodeRle(r.segmentation), w, h, r.colour, 140), 0, 0, dw, dh);
  } else if (what) {
    if (!maskImageData || maskImageData.width !== dw || maskImageData.height !== dh) maskImageData = ctx.createImageData(dw, dh);
    ctx.putImageData(maskImage(what.mask, dw, dh, MASK_RGB, MASK_ALPHA, maskImageData), 0, 0);
  } else {
    ctx.clearRect(0, 0, dw, dh);
  }
}
let maskImageData = null;

// The prompts, on a canvas of the display's size too, drawn in image pixels.
function redraw() {
  drawMask();
  const ctx = overlay.getContext('2d');
  const [dw, dh] = state.image ? displaySize() : [1, 1];
  if (overlay.width !== dw || overlay.height !== dh) { overlay.width = dw; overlay.height = dh; }
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, dw, dh);
  if (!state.image) return;
  ctx.setTransform(dw / state.image.width, 0, 0, dh / state.image.height, 0, 0);
  drawPrompts(ctx);
}

function drawCandidates() {
  const box = $('candidates');
  box.replaceChildren();
  const r = state.result;
  if (!r || r.masks.length < 2) return;
  r.masks.forEach((m, k) => {
    const item = document.createElement('button');
    item.className = 'candidate' + (k === state.selected ? ' selected' : '');
    item.title = 'Show this candidate';
    const thumb = document.createElement('canvas');
    const tw = 160, th = Math.max(1, Math.round(tw * state.image.height / state.image.width));
    thumb.width = tw; thumb.height = th;
    const ctx = thumb.getContext('2d');
    if (!state.imageThumb) {  // the image scaled down once, not once per candidate and click
      state.imageThumb = document.createElement('canvas');
      state.imageThumb.width = tw; state.imageThumb.height = th;
      state.imageThumb.getContext('2d').drawImage(imageCanvas, 0, 0, tw, th);
    }
    ctx.drawImage(state.imageThumb, 0, 0);
    // The low-res cells that cover the image (input_w x input_h of the img_size frame).
    const g = r.geometry, cell = g.img_size / g.low_size;
    ctx.drawImage(lowResLayer(m, g, MASK_RGB, 150), 0, 0, g.input_w / cell, g.input_h / cell, 0, 0, tw, th);
    const label = document.createElement('span');
    label.textContent = `#${k + 1} score ${formatScore(r.scores[k])}`;
    item.append(thumb, label);
    item.addEventListener('click', () => {
      state.selected = k;
      refresh();
    });
    box.append(item);
  });
}

// A score as text; JSON has no NaN or infinity (they arrive as null), so say "n/a" for those.
function formatScore(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : 'n/a';
}

function describePrompts() {
  const list = $('prompts');
  list.replaceChildren();
  for (const p of state.prompts) {
    const li = document.createElement('li');
    if (p.kind === 'box') li.textContent = `box [${p.box.map(Math.round).join(', ')}]`;
    else {
      li.className = p.label === 1 ? 'pos' : 'neg';
      li.textContent = `${p.label === 1 ? '+' : '−'} (${Math.round(p.x)}, ${Math.round(p.y)})`;
    }
    list.append(li);
  }
}

function refresh() {
  redraw();
  drawCandidates();
  describePrompts();
  const r = state.result;
  if (state.everything) $('score').textContent = `${state.everything.length} masks (segment everything)`;
  else if (r && r.masks.length) {
    const of = r.masks.length > 1 ? ` — candidate ${state.selected + 1} of ${r.masks.length}` : '';
    $('score').textContent = `Score ${formatScore(r.scores[state.selected])}${of}`;
  } else $('score').textContent = state.image ? 'Click the image to add a point, drag for a box.' : 'No image yet.';
  const has = !!state.image;
  $('undo').disabled = !has || state.history.length === 0;
  $('clear').disabled = !has || (state.prompts.length === 0 && !state.everything);
  $('everything').disabled = !has;
  $('export-png').disabled = !currentMask() || !!state.everything;
  $('export-coco').disabled = !currentMask() && !state.everything;
}

// ---------------------------------------------------------------------------------------------
// Talking to the server.

async function api(path, options) {
  const res = await fetch(path, options);
  let body = null;
  try { body = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) throw new Error((body && body.error) || `HTTP ${res.status}`);
  return body;
}

// A POST whose answer is binary (errors are still JSON): the bytes and the Server-Timing phases.
async function apiBinary(path, options) {
  const res = await fetch(path, options);
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    throw new Error((body && body.error) || `HTTP ${res.status}`);
  }
  const timing = {};
  for (const m of (res.headers.get('Server-Timing') || '').matchAll(/(\w+);dur=([\d.]+)/g)) timing[m[1]] = Number(m[2]);
  return { buf: await res.arrayBuffer(), timing };
}

function setBusy(text) {
  state.busy = !!text;
  $('busy').hidden = !text;
  if (text) $('busy-text').textContent = text;
  document.body.dataset.state = text ? 'busy' : (state.image ? 'ready' : 'idle');
}

function setStatus(text, isError) {
  $('status').textContent = text;
  $('status').classList.toggle('error', !!isError);
}

async function openImage(file) {
  if (!file || state.busy) return;
  setBusy('Encoding image…');
  setStatus(`Uploading ${file.name}…`);
  try {
    const [info, bitmap] = await Promise.all([
      api('api/images', { method: 'POST', body: file, headers: { 'Content-Type': 'application/octet-stream' } }),
      createImageBitmap(file, { imageOrientation: 'from-image' }),
    ]);
    state.image = { ...info, name: file.name.replace(/\.[^.]*$/, '') };
    state.bitmap = bitmap;
    imageCanvas.width = info.width;
    imageCanvas.height = info.height;
    imageCanvas.getContext('2d').drawImage(bitmap, 0, 0, info.width, info.height);
    state.imageThumb = null;
    $('drop-hint').hidden = true;
    $('canvas-wrap').hidden = false;
    fitStage();
    resetPrompts();
    setStatus(`${file.name}: ${info.width}×${info.height}, ` +
              (info.cached ? 'embedding cached' : `encoded in ${Math.round(info.encode_ms)} ms`));
  } catch (e) {
    setStatus(`Could not open ${file.name}: ${e.message}`, true);
  } finally {
    setBusy(null);
    refresh();
  }
}

function promptBody(withMaskInput) {
  const points = state.prompts.filter((p) => p.kind === 'point');
  const box = state.prompts.filter((p) => p.kind === 'box').pop();
  const body = {
    points: points.map((p) => [p.x, p.y]),
    labels: points.map((p) => p.label),
    multimask: $('multimask').checked,
  };
  if (box) body.box = box.box;
  // Refine the mask shown: its low-res logits go back as the mask input.
  const prev = currentMask();
  if (withMaskInput && prev && prev.logits) body.mask_input = prev.logits;
  return body;
}

// Predictions run one after another, each from the state the previous one left.
function predict() {
  state.queue = state.queue.then(runPredict);
  return state.queue;
}

async function runPredict() {
  if (!state.image) return;
  if (state.prompts.length === 0) {
    state.result = null;
    refresh();
    return;
  }
  const url = `api/images/${state.image.id}/click`;
  const post = (body) => apiBinary(url, { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                          body: JSON.stringify(body) });
  const t0 = performance.now();
  let timing = null;
  try {
    let answer;
    try {
      answer = await post(promptBody(true));
    } catch (e) {
      if (!/^mask_input/.test(e.message)) throw e;
      answer = await post(promptBody(false));  // the handle expired: predict from the prompts alone
    }
    const t1 = performance.now();
    state.result = parseClick(answer.buf);
    state.selected = state.result.best || 0;
    timing = { before: t0 - (state.clickAt || t0), request: t1 - t0, parse: performance.now() - t1,
               decoder: answer.timing.decoder };
  } catch (e) {
    if (/image id/.test(e.message)) setStatus('The server no longer has this image: open it again.', true);
    else setStatus(e.message, true);
  }
  // The mask first; the candidates' thumbnails and the lists once it is on screen.
  const t2 = performance.now();
  redraw();
  if (timing) {
    timing.upsample = state.shown ? state.shown.upsampleMs : 0;
    timing.total = performance.now() - t0;
    timing.draw = performance.now() - t2 - timing.upsample;  // RGBA, the canvases
    state.timings.push(timing);
    if (state.timings.length > 100) state.timings.shift();
    const dec = timing.decoder === undefined ? '' : ` (decoder ${Math.round(timing.decoder)} ms)`;
    setStatus(`Mask in ${Math.round(timing.total)} ms${dec}`);
  }
  state.predictions++;
  document.body.dataset.predictions = String(state.predictions);
  const n = state.predictions;
  requestAnimationFrame(() => setTimeout(() => {
    refresh();
    document.body.dataset.refreshed = String(n);  // the lists and thumbnails too (tests wait on it)
  }, 0));
}

async function segmentEverything() {
  if (!state.image || state.busy) return;
  await state.queue;
  setBusy('Segmenting everything…');
  const t0 = performance.now();
  try {
    const r = await api(`api/images/${state.image.id}/everything`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({}) });
    pushHistory();
    state.prompts = [];
    state.result = null;
    state.everything = r.records.map((rec) => ({ ...rec, colour: randomColour() }));
    setStatus(`${r.records.length} masks in ${Math.round(performance.now() - t0)} ms`);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    setBusy(null);
    refresh();
  }
}

function randomColour() {
  // Random hue, fixed saturation and lightness: distinct and never grey.
  const h = Math.random() * 6, c = 200, x = Math.round(c * (1 - Math.abs((h % 2) - 1)));
  const table = [[c, x, 0], [x, c, 0], [0, c, x], [0, x, c], [x, 0, c], [c, 0, x]];
  return table[Math.floor(h)].map((v) => v + 40);
}

// ---------------------------------------------------------------------------------------------
// Prompts and history.

function pushHistory() {
  state.history.push({ prompts: [...state.prompts], result: state.result, selected: state.selected,
                       everything: state.everything });
}

function addPrompt(p) {
  pushHistory();
  state.everything = null;
  if (p.kind === 'box') state.prompts = state.prompts.filter((q) => q.kind !== 'box');  // one box at a time
  state.prompts.push(p);
  state.clickAt = performance.now();
  // The request first (predict starts it in a microtask, before the next task); meanwhile the
  // new marker, then the lists.
  predict();
  redraw();
  setTimeout(refresh, 0);
}

function undo() {
  const h = state.history.pop();
  if (!h) return;
  Object.assign(state, h);
  refresh();
}

function resetPrompts() {
  state.prompts = [];
  state.result = null;
  state.selected = 0;
  state.history = [];
  state.everything = null;
}

function clearAll() {
  if (state.prompts.length || state.everything) pushHistory();
  state.prompts = [];
  state.result = null;
  state.everything = null;
  refresh();
}

// ---------------------------------------------------------------------------------------------
// Export.

function download(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function exportPng() {
  const mask = maskBits();
  if (!mask) return;
  const { width: w, height: h } = state.image;
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const v = mask[i] ? 255 : 0;
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  c.toBlob((blob) => download(blob, `${state.image.name}_mask.png`), 'image/png');
}

function exportCoco() {
  const { width, height, name } = state.image;
  let annotations;
  if (state.everything) {
    annotations = state.everything.map((r, k) => ({
      id: k + 1, image_id: 1, category_id: 1, segmentation: r.segmentation, area: r.area, bbox: r.bbox,
      predicted_iou: r.predicted_iou, point_coords: r.point_coords, stability_score: r.stability_score,
      crop_box: r.crop_box,
    }));
  } else {
    const mask = maskBits();
    let area = 0, x0 = width, y0 = height, x1 = -1, y1 = -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (!mask[y * width + x]) continue;
        area++;
        x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
      }
    }
    const bbox = area ? [x0, y0, x1 - x0, y1 - y0] : [0, 0, 0, 0];
    annotations = [{ id: 1, image_id: 1, category_id: 1, segmentation: encodeRle(mask, height, width),
                     area, bbox, predicted_iou: state.result.scores[state.selected] }];
  }
  const coco = {
    images: [{ id: 1, width, height, file_name: name }],
    categories: [{ id: 1, name: 'object' }],
    annotations,
  };
  download(new Blob([JSON.stringify(coco)], { type: 'application/json' }), `${name}_masks.json`);
}

// ---------------------------------------------------------------------------------------------
// Input.

function imagePoint(ev) {
  return samStage.point(ev, overlay, state.image.width, state.image.height);
}

overlay.addEventListener('contextmenu', (ev) => ev.preventDefault());
overlay.addEventListener('mousedown', (ev) => {
  if (!state.image || state.busy || (ev.button !== 0 && ev.button !== 2)) return;
  const [x, y] = imagePoint(ev);
  state.drag = { x0: x, y0: y, x1: x, y1: y, button: ev.button, moved: false };
});
window.addEventListener('mousemove', (ev) => {
  const d = state.drag;
  if (!d) return;
  [d.x1, d.y1] = imagePoint(ev);
  const s = pixelScale();
  if (Math.hypot(d.x1 - d.x0, d.y1 - d.y0) > DRAG_PX * s) d.moved = true;
  if (d.moved) redraw();
});
window.addEventListener('mouseup', (ev) => {
  const d = state.drag;
  if (!d) return;
  state.drag = null;
  if (d.moved) {
    [d.x1, d.y1] = imagePoint(ev);
    addPrompt({ kind: 'box', box: [Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.max(d.x0, d.x1), Math.max(d.y0, d.y1)] });
  } else {
    const label = d.button === 2 || labelMode.negative() ? 0 : 1;
    addPrompt({ kind: 'point', x: d.x0, y: d.y0, label });
  }
});

const labelMode = samStage.labelMode($('mode-positive'), $('mode-negative'));

$('file-input').addEventListener('change', (ev) => { openImage(ev.target.files[0]); ev.target.value = ''; });
$('multimask').addEventListener('change', () => { if (state.prompts.length) { state.result = null; predict(); } });
$('undo').addEventListener('click', undo);
$('clear').addEventListener('click', clearAll);
$('everything').addEventListener('click', segmentEverything);
$('export-png').addEventListener('click', exportPng);
$('export-coco').addEventListener('click', exportCoco);

window.addEventListener('keydown', (ev) => {
  if ((ev.ctrlKey || ev.metaKey) && ev.key === 'z') { ev.preventDefault(); undo(); }
  else if (ev.key === 'Escape') clearAll();
  else if (ev.key === 'n' || ev.key === 'N') labelMode.toggle();
});

const stage = $('stage');
samStage.acceptDrops(stage, openImage);

// Fit the image to the stage, keeping its aspect ratio.
function fitStage() {
  if (!state.image) return;
  samStage.fit(stage, imageCanvas, state.image.width, state.image.height);
  state.display = null;
  redraw();
}
window.addEventListener('resize', fitStage);

api('api/health').then((h) => { $('model-type').textContent = h.model_type; }).catch(() => {});
document.body.dataset.state = 'idle';
document.body.dataset.predictions = '0';
refresh();

// For tests and the console: the state and the mask decoder.
window.samApp = { state, decodeRle, encodeRle, currentMask, maskBits, shownMask, upsampleMask, upsamplerFor, kernelOptions, parseClick, maskImage, redraw, MASK_RGB, MASK_ALPHA };
