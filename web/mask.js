// Masks in the page, shared by both pages (web/app.js of `sam serve`, web/annotate/app.js of
// `sam annotate`): COCO RLE in both directions, and the binary answer of a click
// (apps/server/click.h) upsampled and thresholded exactly as the server's full-resolution path
// does it (src/postprocess.cpp), so that a page shows the full-resolution mask pixel for pixel.
// A classic script that defines one global, samMask; load it before the page's own script.
'use strict';

const samMask = (() => {  // (the body is not indented)

// ---------------------------------------------------------------------------------------------
// COCO RLE: compressed string -> counts -> row-major 0/1 mask.

// pycocotools' rleFrString: 5-bit chunks from '0', 0x20 = more chunks follow, 0x10 on the last
// chunk = negative; counts after the second are deltas against the count two before.
function rleCounts(s) {
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = true;
    while (more) {
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p++; k++;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

// Runs alternate 0s and 1s (starting with 0s) over the pixels in column-major order.
function decodeRle(rle) {
  const [h, w] = rle.size;
  const mask = new Uint8Array(h * w);
  let pos = 0, on = false;
  for (const n of rleCounts(rle.counts)) {
    if (on) {
      for (let i = pos; i < pos + n; i++) mask[(i % h) * w + Math.floor(i / h)] = 1;
    }
    pos += n;
    on = !on;
  }
  return mask;
}

// A row-major 0/1 mask -> COCO RLE {size, counts} (pycocotools' rleEncode and rleToString).
function encodeRle(mask, h, w) {
  const counts = [];
  let prev = 0, run = 0;
  for (let x = 0; x < w; x++) {
    for (let i = x; i < h * w; i += w) {
      if (mask[i] !== prev) { counts.push(run); run = 0; prev = mask[i]; }
      run++;
    }
  }
  counts.push(run);
  let s = '';
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;
      more = (c & 0x10) ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return { size: [h, w], counts: s };
}

// ---------------------------------------------------------------------------------------------
// Low-res logits -> full-resolution mask, as src/postprocess.cpp computes it: bilinear
// (align_corners=False) from low_size to the img_size frame, crop to input_h x input_w, bilinear
// to the image's size, then logit > threshold. Every step is one fp32 operation (Math.fround, or
// a store into a Float32Array), in the server's order: the server compiles it without fused
// multiply-adds, so both round alike and the masks are identical (the browser test checks).

const f32 = Math.fround;

function bilinearTaps(inSize, outSize) {
  const i0 = new Int32Array(outSize), i1 = new Int32Array(outSize);
  const w0 = new Float32Array(outSize), w1 = new Float32Array(outSize);
  const scale = f32(inSize / outSize);
  for (let i = 0; i < outSize; i++) {
    let src = f32(f32(scale * (i + 0.5)) - 0.5);
    if (src < 0) src = 0;
    const j = Math.floor(src);
    const l1 = Math.min(Math.max(f32(src - j), 0), 1);
    i0[i] = j;
    i1[i] = j + (j < inSize - 1 ? 1 : 0);
    w1[i] = l1;
    w0[i] = f32(1 - l1);
  }
  return { i0, i1, w0, w1 };
}

// The output pixels computed: all of them (dw = width, dh = height), or those under the pixels
// of a smaller display, column j at image column floor((j + 0.5) * width / dw) (and so for
// rows): each one exactly the full-resolution mask's pixel there.
function samples(n, full) {
  const out = new Int32Array(n);
  for (let j = 0; j < n; j++) out[j] = n === full ? j : Math.min(full - 1, Math.floor((j + 0.5) * full / n));
  return out;
}

function pickTaps(t, at) {
  return { i0: at.map((i) => t.i0[i]), i1: at.map((i) => t.i1[i]),
           w0: Float32Array.from(at, (i) => t.w0[i]), w1: Float32Array.from(at, (i) => t.w1[i]) };
}

// The inner loops, on one buffer addressed in bytes, in two interchangeable forms: WebAssembly
// (fp32 arithmetic as such, four lanes at a time where the data is contiguous; WebAssembly
// never fuses a multiply and an add) and plain JavaScript (Math.fround after each operation).
//   gather(dst, src, i0, i1, w0, w1, n): dst[k] = w0[k] * src[i0[k]] + w1[k] * src[i1[k]]
//   lerp(dst, s0, s1, n, w0, w1):        dst[k] = w0 * s0[k] + w1 * s1[k]
//   thresh(out, s0, s1, n, w0, w1, t):   out[k] (a byte) = w0 * s0[k] + w1 * s1[k] > t
function kernelsModule() {
  const uleb = (n) => { const b = []; do { let c = n & 0x7f; n >>>= 7; if (n) c |= 0x80; b.push(c); } while (n); return b; };
  const sleb = (n) => {
    const b = [];
    for (;;) {
      const c = n & 0x7f; n >>= 7;
      if ((n === 0 && !(c & 0x40)) || (n === -1 && (c & 0x40))) { b.push(c); return b; }
      b.push(c | 0x80);
    }
  };
  const name = (t) => [...uleb(t.length), ...Array.from(t, (c) => c.charCodeAt(0))];
  const vec = (items) => [...uleb(items.length), ...items.flat()];
  const section = (id, bytes) => [id, ...uleb(bytes.length), ...bytes];
  const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;
  const get = (i) => [0x20, ...uleb(i)], set = (i) => [0x21, ...uleb(i)], i32 = (v) => [0x41, ...sleb(v)];
  const simd = (op, ...imm) => [0xfd, ...uleb(op), ...imm];
  const F32_LOAD = [0x2a, 2, 0], F32_STORE = [0x38, 2, 0], I32_LOAD = [0x28, 2, 0], I32_STORE = [0x36, 0, 0];
  const I32_STORE8 = [0x3a, 0, 0], ADD = 0x6a, AND = 0x71, SHL = 0x74, GE_U = 0x4f;
  const FMUL = 0x94, FADD = 0x92, FGT = 0x5e;
  const V_LOAD = simd(0x00, 0, 0), V_STORE = simd(0x0b, 0, 0), F4_SPLAT = simd(0x13), I8_SPLAT = simd(0x0f);
  const F4_MUL = simd(0xe6), F4_ADD = simd(0xe4), F4_GT = simd(0x44), V_AND = simd(0x4e);
  const NARROW32 = simd(0x85), NARROW16 = simd(0x65), LANE0 = simd(0x1b, 0);
  // for (k = k; k < end; k += step) { o = k << 2; body }
  const loop = (k, end, step, o, body) => [0x02, 0x40, 0x03, 0x40, ...get(k), ...get(end), GE_U, 0x0d, 1,
    ...get(k), ...i32(2), SHL, ...set(o), ...body, ...get(k), ...i32(step), ADD, ...set(k), 0x0c, 0, 0x0b, 0x0b];
  const at = (base, o) => [...get(base), ...get(o), ADD];
  const lerp1 = (s0, s1, w0, w1, o) => [...get(w0), ...at(s0, o), ...F32_LOAD, FMUL, ...get(w1), ...at(s1, o), ...F32_LOAD, FMUL, FADD];
  const lerp4 = (s0, s1, W0, W1, o) => [...get(W0), ...at(s0, o), ...V_LOAD, ...F4_MUL, ...get(W1), ...at(s1, o), ...V_LOAD, ...F4_MUL, ...F4_ADD];
  const body = (locals, code) => { const b = [...vec(locals), ...code, 0x0b]; return [...uleb(b.length), ...b]; };
  // gather(dst 0, src 1, i0 2, i1 3, w0 4, w1 5, n 6); k 7, o 8
  const gather = body([[2, I32]], [...loop(7, 6, 1, 8, [
    ...at(0, 8),
    ...at(4, 8), ...F32_LOAD, ...get(1), ...at(2, 8), ...I32_LOAD, ...i32(2), SHL, ADD, ...F32_LOAD, FMUL,
    ...at(5, 8), ...F32_LOAD, ...get(1), ...at(3, 8), ...I32_LOAD, ...i32(2), SHL, ADD, ...F32_LOAD, FMUL,
    FADD, ...F32_STORE])]);
  // lerp(dst 0, s0 1, s1 2, n 3, w0 4, w1 5); k 6, o 7, n4 8, W0 9, W1 10
  const lerp = body([[3, I32], [2, V128]], [
    ...get(4), ...F4_SPLAT, ...set(9), ...get(5), ...F4_SPLAT, ...set(10), ...get(3), ...i32(-4), AND, ...set(8),
    ...loop(6, 8, 4, 7, [...at(0, 7), ...lerp4(1, 2, 9, 10, 7), ...V_STORE]),
    ...loop(6, 3, 1, 7, [...at(0, 7), ...lerp1(1, 2, 4, 5, 7), ...F32_STORE])]);
  // thresh(out 0, s0 1, s1 2, n 3, w0 4, w1 5, t 6); k 7, o 8, n4 9, W0 10, W1 11, T 12, ONE 13, V 14
  const thresh = body([[3, I32], [5, V128]], [
    ...get(4), ...F4_SPLAT, ...set(10), ...get(5), ...F4_SPLAT, ...set(11), ...get(6), ...F4_SPLAT, ...set(12),
    ...i32(1), ...I8_SPLAT, ...set(13), ...get(3), ...i32(-4), AND, ...set(9),
    ...loop(7, 9, 4, 8, [...at(0, 7), ...lerp4(1, 2, 10, 11, 8), ...get(12), ...F4_GT, ...set(14),
                         ...get(14), ...get(14), ...NARROW32, ...set(14), ...get(14), ...get(14), ...NARROW16,
                         ...get(13), ...V_AND, ...LANE0, ...I32_STORE]),
    ...loop(7, 3, 1, 8, [...at(0, 7), ...lerp1(1, 2, 4, 5, 8), ...get(6), FGT, ...I32_STORE8])]);
  const type = (params) => [0x60, ...vec(params.map((t) => [t])), 0];
  const bytes = [0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, vec([type([I32, I32, I32, I32, I32, I32, I32]), type([I32, I32, I32, I32, F32, F32]),
                       type([I32, I32, I32, I32, F32, F32, F32])])),
    ...section(2, vec([[...name('env'), ...name('mem'), 0x02, 0x00, 1]])),
    ...section(3, vec([[0], [1], [2]])),
    ...section(7, vec([[...name('gather'), 0, 0], [...name('lerp'), 0, 1], [...name('thresh'), 0, 2]])),
    ...section(10, vec([gather, lerp, thresh]))];
  return new WebAssembly.Module(new Uint8Array(bytes));
}

let kernelsCompiled;  // the module, or null where WebAssembly (or its SIMD) is missing
const kernelOptions = { wasm: true };  // tests switch to the JavaScript form

function makeKernels(bytes) {
  if (kernelOptions.wasm && kernelsCompiled === undefined) {
    try { kernelsCompiled = kernelsModule(); } catch (e) { kernelsCompiled = null; }
  }
  if (kernelOptions.wasm && kernelsCompiled) {
    const mem = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) + 1 });
    const k = new WebAssembly.Instance(kernelsCompiled, { env: { mem } }).exports;
    return { buffer: mem.buffer, wasm: true, gather: k.gather, lerp: k.lerp, thresh: k.thresh };
  }
  const buffer = new ArrayBuffer(bytes), F = new Float32Array(buffer), I = new Int32Array(buffer), U = new Uint8Array(buffer);
  return {
    buffer, wasm: false,
    gather(dst, src, i0, i1, w0, w1, n) {
      dst >>= 2; src >>= 2; i0 >>= 2; i1 >>= 2; w0 >>= 2; w1 >>= 2;
      for (let k = 0; k < n; k++) F[dst + k] = f32(F[w0 + k] * F[src + I[i0 + k]]) + f32(F[w1 + k] * F[src + I[i1 + k]]);
    },
    lerp(dst, s0, s1, n, w0, w1) {
      dst >>= 2; s0 >>= 2; s1 >>= 2;
      for (let k = 0; k < n; k++) F[dst + k] = f32(w0 * F[s0 + k]) + f32(w1 * F[s1 + k]);
    },
    thresh(out, s0, s1, n, w0, w1, t) {
      s0 >>= 2; s1 >>= 2;
      for (let k = 0; k < n; k++) U[out + k] = (f32(f32(w0 * F[s0 + k]) + f32(w1 * F[s1 + k])) > t) | 0;  // no branch
    },
  };
}

// Taps, column runs and scratch rows of one geometry and output size, kept while they last,
// all in one buffer (the kernels' memory).
const upsamplers = new Map();  // at most two: the display's size and the full size
function upsamplerFor(g, dw, dh) {
  const key = [g.low_size, g.img_size, g.input_h, g.input_w, g.height, g.width, g.rows, g.cols, dw, dh,
               kernelOptions.wasm].join();
  if (upsamplers.has(key)) return upsamplers.get(key);
  const iw = g.input_w;
  const upX = bilinearTaps(g.low_size, g.img_size), upY = bilinearTaps(g.low_size, g.img_size);
  const downX = pickTaps(bilinearTaps(iw, g.width), samples(dw, g.width));
  const downY = pickTaps(bilinearTaps(g.input_h, g.height), samples(dh, g.height));
  // Output columns in runs that read the same low-res columns [lx0, lx1].
  const starts = [], lx0s = [], lx1s = [];
  for (let x = 0; x < dw; x++) {
    const lx0 = upX.i0[downX.i0[x]], lx1 = upX.i1[downX.i1[x]];
    const k = starts.length - 1;
    if (k < 0 || lx0s[k] !== lx0 || lx1s[k] !== lx1) { starts.push(x); lx0s.push(lx0); lx1s.push(lx1); }
  }
  const runs = starts.length;
  // The buffer: 4-byte words, then the output bytes.
  const words = { low: g.rows * g.cols, a: g.rows * iw, upX: 4 * iw, downX: 4 * dw, mid: 2 * iw, b: 2 * dw };
  let at = 0;
  const offset = {};
  for (const [name, n] of Object.entries(words)) { offset[name] = at; at += 4 * n; }
  offset.out = at;
  const k = makeKernels(Math.ceil((at + dw * dh) / 4) * 4);  // whole words, for the typed views
  const F = new Float32Array(k.buffer), I = new Int32Array(k.buffer);
  const putTaps = (t, base, n) => {
    I.set(t.i0.subarray(0, n), base / 4); I.set(t.i1.subarray(0, n), base / 4 + n);
    F.set(t.w0.subarray(0, n), base / 4 + 2 * n); F.set(t.w1.subarray(0, n), base / 4 + 3 * n);
  };
  putTaps(upX, offset.upX, iw);
  putTaps(downX, offset.downX, dw);
  const u = {
    dw, dh, upX, upY, downX, downY, runs, k, offset, F,
    low: new Float32Array(k.buffer, offset.low, words.low),
    out: new Uint8Array(k.buffer, offset.out, dw * dh),
    runStart: Int32Array.from([...starts, dw]), runLx0: Int32Array.from(lx0s), runLx1: Int32Array.from(lx1s),
    cls: new Int8Array(g.rows * g.cols),  // per low-res cell: +1 clearly above the threshold, -1 below, 0 near
    rowCls: new Int8Array(g.cols),
    // Frame rows r & 1: the cropped frame's row (mid), then along x (b), computed run by run.
    slots: [0, 1].map((i) => ({ row: -1, midDone: false, done: new Uint8Array(runs),
                                mid: offset.mid + 4 * i * iw, b: offset.b + 4 * i * dw })),
  };
  if (upsamplers.size >= 2) upsamplers.delete(upsamplers.keys().next().value);
  upsamplers.set(key, u);
  return u;
}

// Frame row r of the second stage's input (the cropped img_size frame resampled along x to the
// output's width), computed over the columns of runs [k0, k1) only, each run once per row.
// Returns its byte offset.
function frameRow(u, g, r, k0, k1) {
  const s = u.slots[r & 1], iw = g.input_w;
  if (s.row !== r) { s.row = r; s.midDone = false; s.done.fill(0); }
  if (!s.midDone) {
    const a = u.offset.a;
    u.k.lerp(s.mid, a + 4 * iw * u.upY.i0[r], a + 4 * iw * u.upY.i1[r], iw, u.upY.w0[r], u.upY.w1[r]);
    s.midDone = true;
  }
  const { runStart } = u, dw = u.dw, t = u.offset.downX;
  for (let k = k0; k < k1; k++) {
    if (s.done[k]) continue;
    let e = k + 1;
    while (e < k1 && !s.done[e]) e++;  // consecutive runs not yet computed: one call
    const x0 = runStart[k], n = runStart[e] - x0;
    u.k.gather(s.b + 4 * x0, s.mid, t + 4 * x0, t + 4 * (dw + x0), t + 4 * (2 * dw + x0), t + 4 * (3 * dw + x0), n);
    s.done.fill(1, k, e);
    k = e - 1;
  }
  return s.b;
}

// One candidate's logits (rows x cols of the low-res grid) -> a dw x dh 0/1 mask: the
// full-resolution mask (dw = width, dh = height, the default) or its pixels under a display.
// Where every low-res cell that a run of output pixels reads is clearly above (below) the
// threshold, the run is 1 (0) without interpolating: each of the four steps is a convex
// combination whose rounding moves it by less than 2^-19 of the largest |logit|, far inside the
// margin (1e-5 of it). Elsewhere, the exact fp32 steps.
function upsampleMask(low, g, out, dw = g.width, dh = g.height) {
  const u = upsamplerFor(g, dw, dh);
  const { rows, cols, input_w: iw, threshold: t } = g;
  const { cls, rowCls, runStart, runLx0, runLx1, upY, downY, runs, offset } = u;
  const mask = u.out;
  u.low.set(low);
  const tx = offset.upX;
  for (let y = 0; y < rows; y++) {
    u.k.gather(offset.a + 4 * y * iw, offset.low + 4 * y * cols, tx, tx + 4 * iw, tx + 8 * iw, tx + 12 * iw, iw);
  }
  let big = Math.abs(t);
  for (let i = 0; i < low.length; i++) big = Math.max(big, Math.abs(low[i]));
  const margin = 1e-5 * big + 1e-30;  // NaN or infinite logits: every cell near, all exact
  for (let i = 0; i < low.length; i++) cls[i] = low[i] > t + margin ? 1 : low[i] < t - margin ? -1 : 0;
  u.slots[0].row = u.slots[1].row = -1;
  // Segments of a row: consecutive runs of one class (+1, -1, or 0: interpolate).
  const segK = new Int32Array(runs + 1), segCls = new Int8Array(runs);
  let segs = 0, ly0 = -1, ly1 = -1;
  for (let y = 0; y < dh; y++) {
    const r0 = downY.i0[y], r1 = downY.i1[y];
    if (upY.i0[r0] !== ly0 || upY.i1[r1] !== ly1) {
      // New low-res rows: the class common to them per low-res column, then per run.
      ly0 = upY.i0[r0]; ly1 = upY.i1[r1];
      for (let lx = 0; lx < cols; lx++) {
        let c = cls[ly0 * cols + lx];
        for (let ly = ly0 + 1; ly <= ly1 && c !== 0; ly++) if (cls[ly * cols + lx] !== c) c = 0;
        rowCls[lx] = c;
      }
      segs = 0;
      for (let k = 0; k < runs; k++) {
        let c = rowCls[runLx0[k]];
        for (let lx = runLx0[k] + 1; lx <= runLx1[k] && c !== 0; lx++) if (rowCls[lx] !== c) c = 0;
        if (segs === 0 || segCls[segs - 1] !== c) { segK[segs] = k; segCls[segs] = c; segs++; }
      }
      segK[segs] = runs;
    }
    const w0 = downY.w0[y], w1 = downY.w1[y], d = y * dw;
    for (let j = 0; j < segs; j++) {
      const xs = runStart[segK[j]], xe = runStart[segK[j + 1]];
      if (segCls[j] !== 0) {
        mask.fill(segCls[j] > 0 ? 1 : 0, d + xs, d + xe);
        continue;
      }
      const b0 = frameRow(u, g, r0, segK[j], segK[j + 1]), b1 = frameRow(u, g, r1, segK[j], segK[j + 1]);
      u.k.thresh(offset.out + d + xs, b0 + 4 * xs, b1 + 4 * xs, xe - xs, w0, w1, t);
    }
  }
  out.set(mask);
  return out;
}

// The binary answer of POST .../click (apps/server/click.h) -> a result for the page.
function parseClick(buf) {
  const view = new DataView(buf);
  if (buf.byteLength < 8 || String.fromCharCode(...new Uint8Array(buf, 0, 4)) !== 'SAMc') {
    throw new Error('not a click answer');
  }
  const n = view.getUint32(4, true);
  const g = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, n)));
  const per = g.rows * g.cols;
  const masks = g.logits.map((handle, k) => ({ logits: handle, low: new Float32Array(buf, 8 + n + 4 * k * per, per) }));
  return { masks, scores: g.scores, best: g.best, geometry: g };
}

return { rleCounts, decodeRle, encodeRle, upsampleMask, upsamplerFor, kernelOptions, parseClick };
})();
