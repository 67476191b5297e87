// The video page of `sam serve` (SAM 2 tracking; apps/server/video_routes.h): open a video, click
// objects on any frame, propagate, scrub through the frames with every object's mask overlaid in
// its own colour. Plain script, no build step; masks come as COCO RLE at the video's size and
// are drawn one canvas pixel per video pixel (decoded by web/mask.js).
'use strict';

const $ = (id) => document.getElementById(id);
const { decodeRle } = samMask;

// Object colours, by object id (1, 2, ...): distinct hues, opaque on the mask canvas, which the
// page shows at half opacity (CSS), so its pixels are exactly the colours below.
const PALETTE = [
  [30, 144, 255], [255, 99, 71], [50, 205, 50], [255, 215, 0], [186, 85, 211],
  [0, 206, 209], [255, 140, 0], [220, 20, 60], [128, 128, 0], [70, 130, 180],
];
const colourOf = (id) => PALETTE[(id - 1) % PALETTE.length];
const POLL_MS = 250;

const state = {
  video: null,         // {id, frames, width, height, fps}
  frame: 0,            // the frame shown
  objects: [],         // object ids, in creation order
  current: null,       // the object clicks go to
  points: new Map(),   // `${frame}:${obj}` -> [{x, y, label}]
  masks: new Map(),    // frame -> masks [{obj_id, size, counts, score}] as last fetched or answered
  propagating: false,
  busy: false,
  queue: Promise.resolve(),  // requests that change the session, one at a time
  draws: 0,
};

const frameCanvas = $('frame-canvas');
const maskCanvas = $('mask-canvas');
const overlay = $('overlay-canvas');
maskCanvas.style.opacity = '0.5';

// ---------------------------------------------------------------------------------------------
// Server.

async function api(path, options) {
  const res = await fetch(path, options);
  let body = null;
  try { body = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) throw new Error((body && body.error) || `HTTP ${res.status}`);
  return body;
}

const postJson = (path, body) => api(path, {
  method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' },
});

const videoPath = (tail) => `api/videos/${state.video.id}${tail}`;

// Runs `fn` after every earlier change has been answered (the server drives one video's
// predictor from one request at a time, and refuses changes during a propagation).
function enqueue(fn) {
  const run = state.queue.then(fn);
  state.queue = run.catch(() => {});
  return run;
}

function setStatus(text, isError) {
  $('status').textContent = text;
  $('status').classList.toggle('error', !!isError);
}

function setBusy(text) {
  state.busy = !!text;
  $('busy').hidden = !text;
  if (text) $('busy-text').textContent = text;
  refresh();
}

// ---------------------------------------------------------------------------------------------
// Drawing.

// Every object's mask of the frame, one canvas pixel per video pixel; later objects over earlier.
function drawMasks(masks) {
  const { width: w, height: h } = state.video;
  const img = new ImageData(w, h);
  const px = img.data;
  for (const m of masks) {
    const bits = decodeRle(m);
    const [r, g, b] = colourOf(m.obj_id);
    for (let i = 0; i < bits.length; i++) {
      if (!bits[i]) continue;
      const o = 4 * i;
      px[o] = r; px[o + 1] = g; px[o + 2] = b; px[o + 3] = 255;
    }
  }
  maskCanvas.getContext('2d').putImageData(img, 0, 0);
}

function pixelScale() {
  const r = overlay.getBoundingClientRect();
  return r.width > 0 ? state.video.width / r.width : 1;
}

function drawPoints() {
  const ctx = overlay.getContext('2d');
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  if (!state.video) return;
  const s = pixelScale();
  for (const id of state.objects) {
    for (const p of state.points.get(`${state.frame}:${id}`) || []) {
      ctx.beginPath();
      ctx.arc(p.x, p.y, 6 * s, 0, 2 * Math.PI);
      ctx.fillStyle = `rgb(${colourOf(id).join(',')})`;
      ctx.fill();
      ctx.lineWidth = 2 * s;
      ctx.strokeStyle = p.label ? '#fff' : '#000';
      ctx.stroke();
      ctx.fillStyle = p.label ? '#fff' : '#000';
      ctx.fillRect(p.x - 3 * s, p.y - 0.75 * s, 6 * s, 1.5 * s);
      if (p.label) ctx.fillRect(p.x - 0.75 * s, p.y - 3 * s, 1.5 * s, 6 * s);
    }
  }
}

function refresh() {
  const has = !!state.video, locked = !has || state.busy || state.propagating;
  $('new-object').disabled = locked;
  $('remove-object').disabled = locked || state.current === null;
  $('propagate').disabled = locked || state.objects.length === 0;
  $('reset').disabled = locked || state.objects.length === 0;
  $('frame-slider').disabled = !has || state.busy;
  $('frame-label').textContent = has ? `Frame ${state.frame} / ${state.video.frames - 1}` : 'No video';

  const list = $('objects');
  list.textContent = '';
  for (const id of state.objects) {
    const li = document.createElement('li');
    li.className = id === state.current ? 'selected' : '';
    li.dataset.obj = id;
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = `rgb(${colourOf(id).join(',')})`;
    li.append(sw, `Object ${id}`);
    li.addEventListener('click', () => { state.current = id; refresh(); });
    list.append(li);
  }
  const prompts = $('prompts');
  prompts.textContent = '';
  for (const id of state.objects) {
    for (const p of state.points.get(`${state.frame}:${id}`) || []) {
      const li = document.createElement('li');
      li.className = p.label ? 'pos' : 'neg';
      li.textContent = `object ${id}: ${p.label ? '+' : '−'} (${Math.round(p.x)}, ${Math.round(p.y)})`;
      prompts.append(li);
    }
  }
  document.body.dataset.state = !has ? 'idle' : state.busy ? 'busy' : state.propagating ? 'propagating' : 'ready';
}

// ---------------------------------------------------------------------------------------------
// Frames.

const frameImages = new Map();  // frame -> Promise<HTMLImageElement>
function frameImage(k) {
  if (!frameImages.has(k)) {
    const img = new Image();
    img.src = videoPath(`/frames/${k}.jpg`);
    frameImages.set(k, img.decode().then(() => img, (e) => { frameImages.delete(k); throw e; }));
  }
  return frameImages.get(k);
}

async function frameMasks(k) {
  if (!state.masks.has(k)) {
    const r = await api(videoPath(`/frames/${k}/masks`));
    if (!state.masks.has(k)) state.masks.set(k, r.masks);
  }
  return state.masks.get(k);
}

let showToken = 0;
// Shows frame k with its masks; a later call wins over an earlier one still loading.
async function showFrame(k) {
  const token = ++showToken;
  state.frame = k;
  $('frame-slider').value = String(k);
  refresh();
  drawPoints();
  try {
    const [img, masks] = await Promise.all([frameImage(k), frameMasks(k)]);
    if (token !== showToken) return;
    frameCanvas.getContext('2d').drawImage(img, 0, 0);
    drawMasks(masks);
    drawPoints();
    document.body.dataset.frame = String(k);
    document.body.dataset.draws = String(++state.draws);
  } catch (e) {
    if (token === showToken) setStatus(`Frame ${k}: ${e.message}`, true);
  }
}

// ---------------------------------------------------------------------------------------------
// Actions.

async function openVideo(file) {
  if (!file || state.busy || state.propagating) return;
  setBusy('Decoding video…');
  setStatus(`Uploading ${file.name}…`);
  try {
    const info = await api('api/videos', { method: 'POST', body: file, headers: { 'Content-Type': 'application/octet-stream' } });
    state.video = info;
    state.objects = [];
    state.current = null;
    state.points.clear();
    state.masks.clear();
    frameImages.clear();
    for (const c of [frameCanvas, maskCanvas, overlay]) { c.width = info.width; c.height = info.height; }
    const slider = $('frame-slider');
    slider.max = String(info.frames - 1);
    $('drop-hint').hidden = true;
    $('canvas-wrap').hidden = false;
    fitStage();
    newObject();
    setStatus(`${file.name}: ${info.frames} frames of ${info.width}×${info.height}` +
              (info.fps ? ` at ${Math.round(info.fps * 100) / 100} fps` : '') +
              `, decoded in ${Math.round(info.decode_ms)} ms. Click an object.`);
    document.body.dataset.video = info.id;
  } catch (e) {
    setStatus(`Could not open ${file.name}: ${e.message}`, true);
  } finally {
    setBusy(null);
  }
  if (state.video) await showFrame(0);
}

function newObject() {
  const id = state.objects.length ? Math.max(...state.objects) + 1 : 1;
  state.objects.push(id);
  state.current = id;
  refresh();
}

function addPoint(x, y, label) {
  if (!state.video || state.current === null || state.propagating) return;
  const frame = state.frame, obj = state.current, key = `${frame}:${obj}`;
  const points = [...(state.points.get(key) || []), { x, y, label }];
  state.points.set(key, points);
  drawPoints();
  refresh();
  return enqueue(async () => {
    const r = await postJson(videoPath('/points'), {
      frame, obj_id: obj, points: points.map((p) => [p.x, p.y]), labels: points.map((p) => p.label),
    });
    state.masks.set(frame, r.masks);
    if (state.frame === frame) await showFrame(frame);
    const m = r.masks.find((q) => q.obj_id === obj);
    setStatus(`Object ${obj} on frame ${frame}` + (m && m.score !== null ? `: object score ${m.score.toFixed(2)}` : ''));
  }).catch((e) => {
    // The click did not reach the predictor: forget it.
    state.points.set(key, points.slice(0, -1));
    drawPoints();
    setStatus(`Click not added: ${e.message}`, true);
  });
}

function propagate() {
  if (!state.video || state.propagating) return;
  state.propagating = true;
  const bar = $('progress');
  bar.hidden = false;
  bar.value = 0;
  refresh();
  setStatus('Propagating…');
  const poll = setInterval(async () => {
    try {
      const p = (await api(videoPath(''))).propagation;
      if (!state.propagating) return;
      if (p.total > 0) bar.value = p.done / p.total;
      // The frame shown, as far as the tracking has come.
      state.masks.delete(state.frame);
      showFrame(state.frame);
      $('frame-label').textContent = `Frame ${state.frame} / ${state.video.frames - 1} · tracked ${p.done} of ${p.total}`;
    } catch (e) { /* the next poll, or the answer, says */ }
  }, POLL_MS);
  const t0 = performance.now();
  return enqueue(async () => {
    const r = await postJson(videoPath('/propagate'), {});
    bar.value = 1;
    state.masks.clear();
    setStatus(`Tracked ${state.objects.length} object(s) over ${r.frames} frames in ` +
              `${((performance.now() - t0) / 1000).toFixed(1)} s. Scrub through the frames.`);
  }).catch((e) => setStatus(`Propagation failed: ${e.message}`, true)).finally(async () => {
    clearInterval(poll);
    state.propagating = false;
    document.body.dataset.propagated = String(Number(document.body.dataset.propagated || 0) + 1);
    refresh();
    await showFrame(state.frame);
  });
}

function removeObject() {
  const obj = state.current;
  if (!state.video || obj === null || state.propagating) return;
  const known = [...state.points.keys()].some((k) => k.endsWith(`:${obj}`));
  const forget = () => {
    state.objects = state.objects.filter((id) => id !== obj);
    for (const k of [...state.points.keys()]) if (k.endsWith(`:${obj}`)) state.points.delete(k);
    state.current = state.objects.length ? state.objects[state.objects.length - 1] : null;
    state.masks.clear();
  };
  if (!known) {  // never sent to the server
    forget();
    refresh();
    return Promise.resolve();
  }
  return enqueue(async () => {
    await postJson(videoPath('/remove'), { obj_id: obj });
    forget();
    setStatus(`Object ${obj} removed.`);
    await showFrame(state.frame);
  }).catch((e) => setStatus(`Could not remove object ${obj}: ${e.message}`, true));
}

function reset() {
  if (!state.video || state.propagating) return;
  return enqueue(async () => {
    await postJson(videoPath('/reset'), {});
    state.objects = [];
    state.points.clear();
    state.masks.clear();
    newObject();
    setStatus('Every object removed.');
    await showFrame(state.frame);
  }).catch((e) => setStatus(`Could not reset: ${e.message}`, true));
}

// ---------------------------------------------------------------------------------------------
// Input.

function videoPoint(ev) {
  return samStage.point(ev, overlay, state.video.width, state.video.height);
}

overlay.addEventListener('contextmenu', (ev) => ev.preventDefault());
overlay.addEventListener('mousedown', (ev) => {
  if (!state.video || state.busy || (ev.button !== 0 && ev.button !== 2)) return;
  const [x, y] = videoPoint(ev);
  addPoint(x, y, ev.button === 2 || ev.shiftKey || labelMode.negative() ? 0 : 1);
});

const labelMode = samStage.labelMode($('mode-positive'), $('mode-negative'));

$('file-input').addEventListener('change', (ev) => { openVideo(ev.target.files[0]); ev.target.value = ''; });
$('new-object').addEventListener('click', newObject);
$('remove-object').addEventListener('click', removeObject);
$('propagate').addEventListener('click', propagate);
$('reset').addEventListener('click', reset);
$('frame-slider').addEventListener('input', (ev) => showFrame(Number(ev.target.value)));

window.addEventListener('keydown', (ev) => {
  if (!state.video || ev.target instanceof HTMLInputElement) return;
  if (ev.key === 'n' || ev.key === 'N') labelMode.toggle();
  else if (ev.key === 'ArrowRight' && state.frame + 1 < state.video.frames) showFrame(state.frame + 1);
  else if (ev.key === 'ArrowLeft' && state.frame > 0) showFrame(state.frame - 1);
});

const stage = $('stage');
samStage.acceptDrops(stage, openVideo);

// Fit the frame to the stage, keeping its aspect ratio.
function fitStage() {
  if (!state.video) return;
  samStage.fit(stage, frameCanvas, state.video.width, state.video.height);
  drawPoints();
}
window.addEventListener('resize', fitStage);

api('api/health').then((h) => {
  $('model-type').textContent = h.model_type;
  if (h.model !== 'sam2') setStatus('Video tracking needs a SAM 2 checkpoint: this server runs SAM.', true);
}).catch(() => {});
refresh();

// For tests and the console.
window.samVideo = { state, colourOf, decodeRle, showFrame, addPoint, propagate };
