// sam annotate: the page. Talks to the JSON API of apps/annotate/routes.h; every change is
// saved at once (PUT with the version it started from; a 409 means another tab saved first).
// A click is answered with the decoder's low-res logits (POST .../click, binary), which the page
// upsamples and thresholds itself with web/mask.js (loaded first: samMask), exactly as the
// server's full-resolution path does: the mask drawn is the full-resolution mask, pixel for
// pixel, and the object saved on Enter is that mask, COCO RLE encoded here. `?route=predict`
// makes the page ask the full-resolution JSON route instead (to compare the two).
"use strict";

const $ = (id) => document.getElementById(id);
// Two layers: the image with the saved objects and proposals (at the image's size), and over it
// the object being made, its mask and its prompts (one pixel per device pixel of the displayed
// image, at most the image's size): a click redraws only the second.
const canvas = $("canvas"), ctx = canvas.getContext("2d");
const draftCanvas = $("draft"), dctx = draftCanvas.getContext("2d");
const COLORS = [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128]];

const state = {
  project: null, name: null, record: null, image: null,
  draft: null, undo: [], redo: [], selectedObject: -1, selectedProposal: -1,
  label: 0, opacity: 0.5, tool: "click", dragStart: null,
};
const counters = { saves: 0, predictions: 0 };  // for tests: body[data-saves], body[data-predictions]
const options = { route: new URLSearchParams(location.search).get("route") === "predict" ? "predict" : "click" };
const timings = [];  // per click, ms: {request, decoder, parse, upsample, draw, total}
window.samAnnotate = { state, options, timings, displaySize, fullMask };

function message(text, ok) {
  const m = $("message");
  m.textContent = text || "";
  m.className = ok ? "ok" : "";
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const json = await res.json().catch(() => ({ error: "bad answer from the server" }));
  if (!res.ok) {
    const e = new Error(json.error || ("HTTP " + res.status));
    e.status = res.status;
    throw e;
  }
  return json;
}

// A row-major 0/1 mask -> a canvas of its size, opaque `color` where the mask is 1.
function maskCanvas(mask, w, h, color) {
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  const cx = c.getContext("2d"), img = cx.createImageData(w, h);
  const px = new Uint32Array(img.data.buffer);  // RGBA bytes as little-endian words
  const lut = new Uint32Array([0, color[0] | (color[1] << 8) | (color[2] << 16) | (255 << 24)]);
  for (let i = 0; i < mask.length; i++) px[i] = lut[mask[i]];
  cx.putImageData(img, 0, 0);
  return c;
}

const overlayCache = new Map();  // counts + colour -> canvas
function overlay(seg, color) {
  const key = seg.counts + "|" + color.join(",");
  let c = overlayCache.get(key);
  if (c) return c;
  c = maskCanvas(samMask.decodeRle(seg), seg.size[1], seg.size[0], color);
  if (overlayCache.size > 400) overlayCache.clear();
  overlayCache.set(key, c);
  return c;
}

const DRAFT_COLOR = [30, 144, 255];

function labelColor(label) {
  const i = state.project.labels.indexOf(label);
  return COLORS[(i < 0 ? 9 : i) % COLORS.length];
}

function draw() {
  if (!state.image) return;
  ctx.globalAlpha = 1;
  ctx.drawImage(state.image, 0, 0);
  const r = state.record;
  ctx.globalAlpha = state.opacity * 0.6;
  r.proposals.forEach((o, i) => {
    if (i === state.selectedProposal) return;
    ctx.drawImage(overlay(o.segmentation, [200, 200, 200]), 0, 0);
  });
  ctx.globalAlpha = state.opacity;
  r.objects.forEach((o) => { if (!o.hidden) ctx.drawImage(overlay(o.segmentation, labelColor(o.label)), 0, 0); });
  if (state.selectedProposal >= 0 && r.proposals[state.selectedProposal])
    ctx.drawImage(overlay(r.proposals[state.selectedProposal].segmentation, [255, 255, 0]), 0, 0);
  ctx.globalAlpha = 1;
  drawDraft();
}

// The draft layer's size: one pixel per device pixel of the displayed image, at most the image's.
function displaySize() {
  const r = canvas.getBoundingClientRect(), dpr = window.devicePixelRatio || 1, W = canvas.width, H = canvas.height;
  if (r.width <= 0 || r.height <= 0) return [W, H];
  return [Math.max(1, Math.min(W, Math.round(r.width * dpr))), Math.max(1, Math.min(H, Math.round(r.height * dpr)))];
}

// The click's answer under the display's pixels, each the full-resolution mask's pixel under
// its centre (web/mask.js computes only those), as RGBA at the opacity; kept per size.
function shownMask(d, dw, dh) {
  const s = d.shown;
  if (s && s.dw === dw && s.dh === dh && s.opacity === state.opacity) return s;
  const mask = s && s.dw === dw && s.dh === dh ? s.mask : samMask.upsampleMask(d.low, d.geometry, new Uint8Array(dw * dh), dw, dh);
  const img = dctx.createImageData(dw, dh), px = new Uint32Array(img.data.buffer);  // little-endian RGBA words
  const c = DRAFT_COLOR, lut = new Uint32Array([0, (c[0] | (c[1] << 8) | (c[2] << 16) | (Math.round(255 * state.opacity) << 24)) >>> 0]);
  for (let i = 0; i < mask.length; i++) px[i] = lut[mask[i]];
  d.shown = { dw, dh, mask, img, opacity: state.opacity };
  return d.shown;
}

// The object being made: its mask, its points and its box, over the image.
function drawDraft() {
  const [dw, dh] = state.image ? displaySize() : [1, 1];
  if (draftCanvas.width !== dw || draftCanvas.height !== dh) { draftCanvas.width = dw; draftCanvas.height = dh; }
  else dctx.clearRect(0, 0, dw, dh);
  const d = state.draft;
  if (!d || !state.image) return;
  const s = dw / canvas.width;  // display pixels per image pixel
  if (d.low) {
    dctx.putImageData(shownMask(d, dw, dh).img, 0, 0);
  } else if (d.segmentation) {  // an object being refined, before its first click
    dctx.globalAlpha = state.opacity;
    dctx.drawImage(overlay(d.segmentation, DRAFT_COLOR), 0, 0, dw, dh);
    dctx.globalAlpha = 1;
  }
  const rad = Math.max(3, canvas.width / 200) * s;
  dctx.lineWidth = 1;
  d.points.forEach((p, i) => {
    dctx.beginPath();
    dctx.arc(p[0] * s, p[1] * s, rad, 0, 2 * Math.PI);
    dctx.fillStyle = d.labels[i] ? "#0c0" : "#e00";
    dctx.fill();
    dctx.strokeStyle = "#fff";
    dctx.stroke();
  });
  if (d.box) {
    dctx.strokeStyle = "#1e90ff";
    dctx.lineWidth = Math.max(2, canvas.width / 400) * s;
    dctx.strokeRect(d.box[0] * s, d.box[1] * s, (d.box[2] - d.box[0]) * s, (d.box[3] - d.box[1]) * s);
  }
}

// The object being made at full resolution (row-major 0/1, the image's size): the mask saved.
function fullMask(d) {
  if (!d.full) d.full = samMask.upsampleMask(d.low, d.geometry, new Uint8Array(d.geometry.width * d.geometry.height));
  return d.full;
}

function renderLists() {
  const p = state.project, r = state.record;
  $("counts").textContent = `new ${p.counts.new} · in progress ${p.counts.in_progress} · done ${p.counts.done} · ` +
    `image ${p.images.findIndex((i) => i.name === state.name) + 1}/${p.images.length}`;
  $("image-name").textContent = state.name;
  const list = $("images");
  list.innerHTML = "";
  p.images.forEach((im) => {
    const li = document.createElement("li");
    li.className = (im.name === state.name ? "selected " : "") + "status-" + im.status;
    li.title = `${im.name}: ${im.status.replace("_", " ")}, ${im.objects} objects, ${im.proposals} proposals`;
    li.innerHTML = `<span></span> <span class="n"></span>`;
    li.firstChild.textContent = im.name;
    li.lastChild.textContent = `${im.status === "done" ? "✓" : im.status === "in_progress" ? "…" : ""} ${im.objects || ""}`;
    li.onclick = () => loadImage(im.name);
    list.appendChild(li);
  });
  $("status").value = r.status;
  const labels = $("labels");
  labels.innerHTML = "";
  p.labels.forEach((l, i) => {
    const li = document.createElement("li");
    li.innerHTML = `<span class="swatch" style="background:rgb(${labelColor(l)})"></span>`;
    li.appendChild(document.createTextNode(l));
    if (i === state.label) li.className = "active-label";
    li.onclick = () => { state.label = i; renderLists(); };
    labels.appendChild(li);
  });
  const objects = $("objects");
  objects.innerHTML = "";
  r.objects.forEach((o, i) => {
    const li = document.createElement("li");
    li.className = i === state.selectedObject ? "selected" : "";
    const sel = document.createElement("select");
    p.labels.forEach((l) => { const opt = new Option(l, l, false, l === o.label); sel.add(opt); });
    sel.onchange = () => change((n) => { n.objects[i].label = sel.value; });
    sel.onclick = (e) => e.stopPropagation();
    li.innerHTML = `<span class="swatch" style="background:rgb(${labelColor(o.label)})"></span>#${o.id} `;
    li.appendChild(sel);
    const hide = document.createElement("button");
    hide.textContent = o.hidden ? "show" : "hide";
    hide.onclick = (e) => { e.stopPropagation(); change((n) => { n.objects[i].hidden = !n.objects[i].hidden; }); };
    const del = document.createElement("button");
    del.textContent = "delete";
    del.onclick = (e) => { e.stopPropagation(); change((n) => { n.objects.splice(i, 1); }); };
    const ref = document.createElement("button");
    ref.textContent = "refine";
    ref.onclick = (e) => { e.stopPropagation(); refine("objects", i); };
    li.append(" ", hide, " ", ref, " ", del);
    li.onclick = () => { state.selectedObject = i; renderLists(); };
    objects.appendChild(li);
  });
  const proposals = $("proposals");
  proposals.innerHTML = "";
  r.proposals.forEach((o, i) => {
    const li = document.createElement("li");
    li.className = i === state.selectedProposal ? "selected" : "";
    li.textContent = `proposal ${i + 1} (iou ${o.predicted_iou.toFixed(2)}) `;
    const acc = document.createElement("button");
    acc.textContent = "accept";
    acc.className = "accept-proposal";
    acc.onclick = (e) => { e.stopPropagation(); acceptProposal(i); };
    const rej = document.createElement("button");
    rej.textContent = "reject";
    rej.onclick = (e) => { e.stopPropagation(); rejectProposal(i); };
    const ref = document.createElement("button");
    ref.textContent = "refine";
    ref.onclick = (e) => { e.stopPropagation(); refine("proposals", i); };
    li.append(acc, " ", ref, " ", rej);
    li.onclick = () => { state.selectedProposal = i; renderLists(); draw(); };
    proposals.appendChild(li);
  });
}

const snapshot = (r) => JSON.parse(JSON.stringify({ status: r.status, objects: r.objects, proposals: r.proposals }));

// Saves the record as `next` (a snapshot); on success the old one goes on the undo stack.
async function save(next, history = true) {
  const before = snapshot(state.record);
  try {
    const saved = await api("PUT", "/api/images/" + encodeURIComponent(state.name),
                            { version: state.record.version, status: next.status, objects: next.objects, proposals: next.proposals });
    if (history) { state.undo.push(before); state.redo = []; }
    state.record = saved;
    document.body.dataset.saves = ++counters.saves;
    const entry = state.project.images.find((i) => i.name === state.name);
    if (entry) { entry.objects = saved.objects.length; entry.proposals = saved.proposals.length; }
    if (entry && entry.status !== saved.status) {
      state.project.counts[entry.status]--;
      state.project.counts[saved.status]++;
      entry.status = saved.status;
    }
    message("saved", true);
    return true;
  } catch (e) {
    message(e.status === 409 ? e.message : "not saved: " + e.message);
    return false;
  } finally {
    renderLists();
    draw();
  }
}

// Applies f to a copy of the record and saves it; a first change marks a new image in progress.
function change(f) {
  const next = snapshot(state.record);
  f(next);
  if (next.status === "new") next.status = "in_progress";
  return save(next);
}

async function undo() {
  if (!state.undo.length) return;
  const prev = state.undo.pop(), cur = snapshot(state.record);
  if (await save(prev, false)) state.redo.push(cur); else state.undo.push(prev);
}

async function redo() {
  if (!state.redo.length) return;
  const next = state.redo.pop(), cur = snapshot(state.record);
  if (await save(next, false)) state.undo.push(cur); else state.redo.push(next);
}

// The error of a failed request, from its JSON body.
async function requestError(res) {
  const json = await res.json().catch(() => ({ error: "bad answer from the server" }));
  const e = new Error(json.error || ("HTTP " + res.status));
  e.status = res.status;
  return e;
}

// Asks the model for the object being made (its points, box and the last answer's logits) and
// draws the answer. On the click route: the best candidate's logits, upsampled here at the
// display's pixels only; on the predict route: its full-resolution mask as COCO RLE.
async function predict() {
  const d = state.draft;
  const body = { multimask: d.points.length <= 1 && !d.box };
  if (d.points.length) { body.points = d.points; body.labels = d.labels; }
  if (d.box) body.box = d.box;
  if (d.logits && d.points.length > 1) body.mask_input = d.logits;
  d.request = body;  // (tests send it to the full-resolution route)
  const asked = d.asked = (d.asked || 0) + 1;
  const t0 = performance.now();
  try {
    const res = await fetch("/api/images/" + encodeURIComponent(state.name) + "/" + options.route,
                            { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!res.ok) throw await requestError(res);
    const low = options.route === "click";
    const answer = low ? await res.arrayBuffer() : await res.json();
    const t1 = performance.now();
    if (state.draft !== d || d.asked !== asked) return;  // discarded, or a later click asked again
    const t = { request: t1 - t0 };
    const server = res.headers.get("Server-Timing") || "", decoder = /decoder;dur=([\d.]+)/.exec(server);
    if (decoder) t.decoder = +decoder[1];
    let embedding, t3;
    if (low) {
      const c = samMask.parseClick(answer), m = c.masks[c.best];
      const t2 = performance.now();
      t.parse = t2 - t1;
      d.low = m.low; d.geometry = c.geometry; d.shown = null; d.full = null;
      d.segmentation = null;  // the full-resolution mask is computed on accept
      d.logits = m.logits; d.score = c.scores[c.best];
      const [dw, dh] = displaySize();
      shownMask(d, dw, dh);
      t3 = performance.now();
      t.upsample = t3 - t2;
      embedding = res.headers.get("X-Sam-Embedding");
      drawDraft();
    } else {
      t3 = performance.now();
      d.segmentation = answer.segmentation; d.logits = answer.logits; d.score = answer.score;
      d.low = null; d.shown = null;
      embedding = answer.embedding;
      drawDraft();  // (decodes and colours the RLE at full size, as the page did before)
    }
    t.draw = performance.now() - t3;
    t.total = performance.now() - t0;
    timings.push(t);
    if (timings.length > 1000) timings.shift();
    $("timing").textContent = `answered in ${t.request.toFixed(0)} ms` +
      (t.decoder !== undefined ? ` (decoder ${t.decoder.toFixed(0)} ms)` : "") +
      `, drawn after ${t.total.toFixed(0)} ms; embedding: ${embedding}`;
    document.body.dataset.predictions = ++counters.predictions;  // once drawn (tests time it)
  } catch (e) {
    message(e.message);
  }
}

function acceptDraft() {
  const d = state.draft;
  if (!d || !(d.segmentation || d.low)) return;
  state.draft = null;
  const label = state.project.labels[state.label];
  if (label === undefined) { message("add a label first"); return; }
  // The full-resolution mask, computed here from the click's answer (the browser test checks it
  // against the server's): no second decoder run.
  const segmentation = d.segmentation || samMask.encodeRle(fullMask(d), d.geometry.height, d.geometry.width);
  change((n) => {
    const o = { label, segmentation, source: d.box ? "box" : "clicks",
                predicted_iou: d.score, point_coords: d.points, point_labels: d.labels };
    // A refined object keeps its place (and its id); a refined proposal becomes an object.
    if (d.refines && d.refines.list === "objects") {
      const i = n.objects.findIndex((x) => x.id === d.refines.id);
      if (i >= 0) { o.id = d.refines.id; o.hidden = n.objects[i].hidden; n.objects[i] = o; return; }
    }
    if (d.refines && d.refines.list === "proposals") {
      const i = n.proposals.findIndex((x) => x.id === d.refines.id);
      if (i >= 0) n.proposals.splice(i, 1);
    }
    n.objects.push(o);
  });
}

// Refine an accepted object or a proposal: its prompt points become the object being made;
// further clicks change it, Enter replaces the original with it.
function refine(list, i) {
  const o = state.record[list][i];
  if (!o) return;
  const points = (o.point_coords || []).map((p) => [Math.round(p[0]), Math.round(p[1])]);
  const labels = (o.point_labels && o.point_labels.length === points.length) ? o.point_labels.slice() : points.map(() => 1);
  state.draft = { points, labels, box: null, segmentation: o.segmentation, refines: { list, id: o.id } };
  if (list === "objects") state.label = Math.max(0, state.project.labels.indexOf(o.label));
  message(`refining ${list === "objects" ? "object #" + o.id : "a proposal"}: click to change it, Enter to accept`, true);
  renderLists();
  draw();
}

function acceptProposal(i) {
  const label = state.project.labels[state.label];
  if (label === undefined) { message("add a label first"); return; }
  state.selectedProposal = -1;
  change((n) => {
    const [p] = n.proposals.splice(i, 1);
    p.label = label;
    n.objects.push(p);
  });
}

function rejectProposal(i) {
  state.selectedProposal = -1;
  change((n) => { n.proposals.splice(i, 1); });
}

function toImage(e) {
  const rect = canvas.getBoundingClientRect();
  return [(e.clientX - rect.left) * canvas.width / rect.width, (e.clientY - rect.top) * canvas.height / rect.height];
}

canvas.addEventListener("contextmenu", (e) => e.preventDefault());
new ResizeObserver(() => drawDraft()).observe(canvas);  // the draft layer follows the display's size
canvas.addEventListener("mousedown", (e) => {
  if (!state.record) return;
  const p = toImage(e);
  if (state.tool === "box") { state.dragStart = p; return; }
  const positive = !(e.shiftKey || e.button === 2);
  if (!state.draft) state.draft = { points: [], labels: [], box: null };
  state.draft.points.push([Math.round(p[0]), Math.round(p[1])]);
  state.draft.labels.push(positive ? 1 : 0);
  drawDraft();
  predict();
});
canvas.addEventListener("mousemove", (e) => {
  if (state.tool !== "box" || !state.dragStart) return;
  const p = toImage(e), s = state.dragStart;
  if (!state.draft) state.draft = { points: [], labels: [], box: null };
  state.draft.box = [Math.min(s[0], p[0]), Math.min(s[1], p[1]), Math.max(s[0], p[0]), Math.max(s[1], p[1])].map(Math.round);
  drawDraft();
});
canvas.addEventListener("mouseup", () => {
  if (state.tool !== "box" || !state.dragStart) return;
  state.dragStart = null;
  if (state.draft && state.draft.box && state.draft.box[2] > state.draft.box[0]) predict();
});

async function loadImage(name) {
  state.draft = null; state.undo = []; state.redo = [];
  state.selectedObject = -1; state.selectedProposal = -1;
  state.name = name;
  const img = new Image();
  const loaded = new Promise((ok, fail) => { img.onload = ok; img.onerror = fail; });
  img.src = "/api/images/" + encodeURIComponent(name) + "/file";
  const [record] = await Promise.all([api("GET", "/api/images/" + encodeURIComponent(name)), loaded]);
  if (state.name !== name) return;
  state.record = record;
  state.image = img;
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  api("PUT", "/api/current", { name }).catch(() => {});
  renderLists();
  draw();
  document.body.dataset.image = name;
  message("");
}

function go(delta) {
  const names = state.project.images.map((i) => i.name);
  const i = names.indexOf(state.name) + delta;
  if (i >= 0 && i < names.length) loadImage(names[i]);
}

function nextUnfinished() {
  const imgs = state.project.images, start = imgs.findIndex((i) => i.name === state.name);
  for (let k = 1; k <= imgs.length; k++) {
    const im = imgs[(start + k) % imgs.length];
    if (im.status !== "done") { loadImage(im.name); return; }
  }
  message("every image is done", true);
}

async function propose(all) {
  try {
    const body = { images: all ? "all" : [state.name], options: {
      points_per_side: +$("pps").value, pred_iou_thresh: +$("min-iou").value,
      stability_score_thresh: +$("min-stability").value } };
    const { job } = await api("POST", "/api/propose", body);
    const show = $("job");
    let finished = "";
    for (;;) {
      const s = await api("GET", "/api/jobs/" + job);
      show.textContent = `proposing: ${s.images_done}/${s.images_total} images` +
        (s.prompts_total ? `, ${s.prompts_done}/${s.prompts_total} points on ${s.image}` : "");
      if (s.state === "done" || s.state === "failed") {
        show.textContent = s.state === "done" ? `proposals ready (${s.images_total} images)` : "failed: " + s.error;
        finished = s.state;
        break;
      }
      await new Promise((ok) => setTimeout(ok, 300));
    }
    state.project = await api("GET", "/api/project");
    const r = await api("GET", "/api/images/" + encodeURIComponent(state.name));
    state.record = r;
    state.undo = []; state.redo = [];
    renderLists();
    draw();
    // Said once the proposals are on the page, not when the job ends (tests wait for this).
    document.body.dataset.job = finished;
    document.body.dataset.proposals = r.proposals.length;
  } catch (e) {
    message(e.message);
  }
}

async function addLabel() {
  const l = $("new-label").value.trim();
  if (!l) return;
  try {
    const r = await api("PUT", "/api/labels", { labels: [...state.project.labels, l], version: state.project.labels_version });
    state.project.labels = r.labels; state.project.labels_version = r.labels_version;
    $("new-label").value = "";
    renderLists();
  } catch (e) { message(e.message); }
}

async function exportAs(format) {
  try {
    const r = await api("POST", "/api/export", { format });
    $("export-result").textContent = `${format}: ${r.files.length} file(s) in ${r.path}`;
    document.body.dataset.exported = format;
    message("exported " + format, true);
  } catch (e) { message(e.message); }
}

$("prev").onclick = () => go(-1);
$("next").onclick = () => go(1);
$("next-unfinished").onclick = nextUnfinished;
$("status").onchange = () => change((n) => { n.status = $("status").value; }).then(() => {});
$("accept").onclick = acceptDraft;
$("discard").onclick = () => { state.draft = null; draw(); };
$("undo").onclick = undo;
$("redo").onclick = redo;
$("opacity").oninput = () => { state.opacity = $("opacity").value / 100; draw(); };
$("add-label").onclick = addLabel;
$("propose").onclick = () => propose(false);
$("propose-all").onclick = () => propose(true);
document.querySelectorAll("input[name=tool]").forEach((r) => { r.onchange = () => { state.tool = r.value; }; });
document.querySelectorAll("button.export").forEach((b) => { b.onclick = () => exportAs(b.dataset.format); });

function setTool(t) {
  state.tool = t;
  document.querySelector(`input[name=tool][value=${t}]`).checked = true;
}

document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT" && e.target.type === "text") return;
  if (e.target.tagName === "INPUT" && e.target.id === "new-label") return;
  const k = e.key;
  if ((e.ctrlKey || e.metaKey) && (k === "z" || k === "Z")) { e.preventDefault(); e.shiftKey ? redo() : undo(); return; }
  if ((e.ctrlKey || e.metaKey) && k === "y") { e.preventDefault(); redo(); return; }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const r = state.record;
  if (k >= "1" && k <= "9") { const i = +k - 1; if (i < state.project.labels.length) { state.label = i; renderLists(); } }
  else if (k === "Enter") acceptDraft();
  else if (k === "Escape") { state.draft = null; draw(); }
  else if (k === "n" || k === "ArrowRight") go(1);
  else if (k === "p" || k === "ArrowLeft") go(-1);
  else if (k === "u") nextUnfinished();
  else if (k === "b") setTool(state.tool === "box" ? "click" : "box");
  else if (k === "d") change((n) => { n.status = "done"; });
  else if (k === "e") propose(false);
  else if (k === "j" || k === "k") {
    const n = r.proposals.length;
    if (n) { state.selectedProposal = ((state.selectedProposal + (k === "j" ? 1 : -1)) % n + n) % n; renderLists(); draw(); }
  }
  else if (k === "a" && state.selectedProposal >= 0) acceptProposal(state.selectedProposal);
  else if (k === "f" && state.selectedProposal >= 0) refine("proposals", state.selectedProposal);
  else if (k === "f" && state.selectedObject >= 0) refine("objects", state.selectedObject);
  else if (k === "r" && state.selectedProposal >= 0) rejectProposal(state.selectedProposal);
  else if (k === "h" && state.selectedObject >= 0) change((n) => { n.objects[state.selectedObject].hidden = !n.objects[state.selectedObject].hidden; });
  else if (k === "Delete" && state.selectedObject >= 0) { const i = state.selectedObject; state.selectedObject = -1; change((n) => { n.objects.splice(i, 1); }); }
  else if (k === "[" || k === "]") {
    state.opacity = Math.min(1, Math.max(0, state.opacity + (k === "]" ? 0.1 : -0.1)));
    $("opacity").value = Math.round(state.opacity * 100);
    draw();
  } else return;
  e.preventDefault();
});

(async () => {
  try {
    state.project = await api("GET", "/api/project");
    const names = state.project.images.map((i) => i.name);
    await loadImage(names.includes(state.project.current) ? state.project.current : names[0]);
  } catch (e) {
    message("cannot load the project: " + e.message);
  }
})();
