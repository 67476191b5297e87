#include "postprocess.h"

#include <omp.h>

#include <algorithm>
#include <string>
#include <type_traits>

#include "amg_utils.h"
#include "ops/cpu.h"
#include "sam/error.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

namespace sam {

BilinearTaps bilinear_taps(int in_size, int out_size) {
    // PyTorch: scale = in / out (float); src = scale * (dst + 0.5) - 0.5, clamped at 0;
    // i0 = floor(src), i1 = i0 + (i0 < in - 1), w1 = src - i0, w0 = 1 - w1.
    BilinearTaps t;
    const auto n = static_cast<size_t>(out_size);
    t.i0.resize(n);
    t.i1.resize(n);
    t.w0.resize(n);
    t.w1.resize(n);
    const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
    for (int i = 0; i < out_size; ++i) {
        float src = scale * (static_cast<float>(i) + 0.5f) - 0.5f;
        if (src < 0.0f) src = 0.0f;
        const int i0 = static_cast<int>(src);
        const float l1 = std::clamp(src - static_cast<float>(i0), 0.0f, 1.0f);
        const auto k = static_cast<size_t>(i);
        t.i0[k] = i0;
        t.i1[k] = i0 + (i0 < in_size - 1 ? 1 : 0);
        t.w1[k] = l1;
        t.w0[k] = 1.0f - l1;
    }
    return t;
}

MaskPostprocessor::MaskPostprocessor(int low_size, int img_size, int input_h, int input_w, int out_h, int out_w)
    : low_(low_size), input_h_(input_h), input_w_(input_w), out_h_(out_h), out_w_(out_w) {
    if (low_size <= 0 || img_size <= 0 || input_h <= 0 || input_w <= 0 || input_h > img_size || input_w > img_size ||
        out_h <= 0 || out_w <= 0)
        throw InputError("mask postprocessing", "bad sizes: low " + std::to_string(low_size) + ", img " +
                                                    std::to_string(img_size) + ", input " + std::to_string(input_h) +
                                                    "x" + std::to_string(input_w) + ", output " +
                                                    std::to_string(out_h) + "x" + std::to_string(out_w));
    up_x_ = bilinear_taps(low_size, img_size);
    up_y_ = bilinear_taps(low_size, img_size);
    down_x_ = bilinear_taps(input_w, out_w);
    down_y_ = bilinear_taps(input_h, out_h);
}

namespace {

// One row of a 1-D bilinear resize along x: dst[x - x0] = w0[x] * src[i0[x]] + w1[x] * src[i1[x]]
// for x in [x0, x1). Every source index lies in [i0[x0], i1[x1 - 1]] (taps never decrease), and
// only those are read. Each product and the sum are rounded once (no fused multiply-add, so
// that every kernel below gives the same bits).
void interp_row_portable(const BilinearTaps& t, const float* src, int x0, int x1, float* dst) {
    const int* i0 = t.i0.data();
    const int* i1 = t.i1.data();
    const float* w0 = t.w0.data();
    const float* w1 = t.w1.data();
    for (int x = x0; x < x1; ++x) dst[x - x0] = w0[x] * src[i0[x]] + w1[x] * src[i1[x]];
}

// dst[x] = w0 * s0[x] + w1 * s1[x]
void combine_rows_portable(const float* s0, const float* s1, float w0, float w1, float* dst, int n) {
    for (int x = 0; x < n; ++x) dst[x] = w0 * s0[x] + w1 * s1[x];
}

#if defined(__GNUC__) && defined(__x86_64__)
#define SAM_PP_X86 1
// AVX2: 8 outputs at a time; their sources, when they span at most 16 values, are two loads
// and two in-register permutes instead of 16 scalar reads.
__attribute__((target("avx2"))) void interp_row_avx2(const BilinearTaps& t, const float* src, int x0, int x1,
                                                     float* dst) {
    const int* i0 = t.i0.data();
    const int* i1 = t.i1.data();
    const float* w0 = t.w0.data();
    const float* w1 = t.w1.data();
    const int end = i1[x1 - 1] + 1;  // one past the last source value the row may read
    const __m256i seven = _mm256_set1_epi32(7), lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int x = x0;
    for (; x + 8 <= x1; x += 8) {
        const int base = i0[x];
        if (i1[x + 7] - base >= 16) {  // spread too wide for two registers (strong downsampling)
            for (int k = x; k < x + 8; ++k) dst[k - x0] = w0[k] * src[i0[k]] + w1[k] * src[i1[k]];
            continue;
        }
        const int avail = end - base;  // >= 1
        const __m256i na = _mm256_set1_epi32(avail), nb = _mm256_set1_epi32(avail - 8);
        const __m256 a = _mm256_maskload_ps(src + base, _mm256_cmpgt_epi32(na, lane));
        const __m256 b = avail > 8 ? _mm256_maskload_ps(src + base + 8, _mm256_cmpgt_epi32(nb, lane)) : _mm256_setzero_ps();
        const __m256i vb = _mm256_set1_epi32(base);
        const __m256i j0 = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(i0 + x)), vb);
        const __m256i j1 = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(i1 + x)), vb);
        const __m256 g0 = _mm256_blendv_ps(_mm256_permutevar8x32_ps(a, j0), _mm256_permutevar8x32_ps(b, j0),
                                           _mm256_castsi256_ps(_mm256_cmpgt_epi32(j0, seven)));
        const __m256 g1 = _mm256_blendv_ps(_mm256_permutevar8x32_ps(a, j1), _mm256_permutevar8x32_ps(b, j1),
                                           _mm256_castsi256_ps(_mm256_cmpgt_epi32(j1, seven)));
        const __m256 p0 = _mm256_mul_ps(_mm256_loadu_ps(w0 + x), g0);
        const __m256 p1 = _mm256_mul_ps(_mm256_loadu_ps(w1 + x), g1);
        _mm256_storeu_ps(dst + (x - x0), _mm256_add_ps(p0, p1));
    }
    for (; x < x1; ++x) dst[x - x0] = w0[x] * src[i0[x]] + w1[x] * src[i1[x]];
}

__attribute__((target("avx2"))) void combine_rows_avx2(const float* s0, const float* s1, float w0, float w1,
                                                       float* dst, int n) {
    const __m256 a = _mm256_set1_ps(w0), b = _mm256_set1_ps(w1);
    int x = 0;
    for (; x + 8 <= n; x += 8)
        _mm256_storeu_ps(dst + x, _mm256_add_ps(_mm256_mul_ps(a, _mm256_loadu_ps(s0 + x)),
                                                _mm256_mul_ps(b, _mm256_loadu_ps(s1 + x))));
    for (; x < n; ++x) dst[x] = w0 * s0[x] + w1 * s1[x];
}

// AVX-512: 16 outputs at a time from a window of 32 source values (two masked loads, two
// two-register permutes).
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void interp_row_avx512(const BilinearTaps& t,
                                                                                      const float* src, int x0,
                                                                                      int x1, float* dst) {
    const int* i0 = t.i0.data();
    const int* i1 = t.i1.data();
    const float* w0 = t.w0.data();
    const float* w1 = t.w1.data();
    const int end = i1[x1 - 1] + 1;
    int x = x0;
    for (; x + 16 <= x1; x += 16) {
        const int base = i0[x];
        if (i1[x + 15] - base >= 32) {
            for (int k = x; k < x + 16; ++k) dst[k - x0] = w0[k] * src[i0[k]] + w1[k] * src[i1[k]];
            continue;
        }
        const int avail = end - base;
        const __mmask16 ma = avail >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << avail) - 1);
        const __mmask16 mb = avail >= 32 ? __mmask16(0xFFFF) : avail <= 16 ? __mmask16(0) : __mmask16((1u << (avail - 16)) - 1);
        const __m512 a = _mm512_maskz_loadu_ps(ma, src + base);
        const __m512 b = _mm512_maskz_loadu_ps(mb, src + base + 16);
        const __m512i vb = _mm512_set1_epi32(base);
        const __m512i j0 = _mm512_sub_epi32(_mm512_loadu_si512(i0 + x), vb);
        const __m512i j1 = _mm512_sub_epi32(_mm512_loadu_si512(i1 + x), vb);
        const __m512 p0 = _mm512_mul_ps(_mm512_loadu_ps(w0 + x), _mm512_permutex2var_ps(a, j0, b));
        const __m512 p1 = _mm512_mul_ps(_mm512_loadu_ps(w1 + x), _mm512_permutex2var_ps(a, j1, b));
        _mm512_storeu_ps(dst + (x - x0), _mm512_add_ps(p0, p1));
    }
    for (; x < x1; ++x) dst[x - x0] = w0[x] * src[i0[x]] + w1[x] * src[i1[x]];
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void combine_rows_avx512(const float* s0,
                                                                                        const float* s1, float w0,
                                                                                        float w1, float* dst, int n) {
    const __m512 a = _mm512_set1_ps(w0), b = _mm512_set1_ps(w1);
    int x = 0;
    for (; x + 16 <= n; x += 16)
        _mm512_storeu_ps(dst + x, _mm512_add_ps(_mm512_mul_ps(a, _mm512_loadu_ps(s0 + x)),
                                                _mm512_mul_ps(b, _mm512_loadu_ps(s1 + x))));
    for (; x < n; ++x) dst[x] = w0 * s0[x] + w1 * s1[x];
}
#endif

using InterpRow = void (*)(const BilinearTaps&, const float*, int, int, float*);
using CombineRows = void (*)(const float*, const float*, float, float, float*, int);

}  // namespace

struct MaskPostprocessor::Kernels {
    InterpRow interp = interp_row_portable;
    CombineRows combine = combine_rows_portable;
};

namespace {

// The kernels for the instruction set in use (ops::kernel_isa(): the CPU's best, or the one
// SAM_KERNEL_ISA asks for). All give the same bits.
MaskPostprocessor::Kernels kernels() {
    MaskPostprocessor::Kernels k;
#ifdef SAM_PP_X86
    switch (ops::kernel_isa()) {
        case ops::KernelIsa::Avx512:
            k = {interp_row_avx512, combine_rows_avx512};
            break;
        case ops::KernelIsa::Avx2:
            k = {interp_row_avx2, combine_rows_avx2};
            break;
        case ops::KernelIsa::Portable:
            break;
    }
#endif
    return k;
}

constexpr int kBandRows = 32;  // output rows computed at a time

// Per-thread scratch for one band, reused from call to call (a click upsamples three masks, the
// generator thousands, band by band on each thread): fresh multi-megabyte buffers would cost a
// page fault per 4 KiB on every call.
struct Scratch {
    std::vector<float> a, mid, b, row;
};
Scratch& scratch() {
    thread_local Scratch s;
    return s;
}

float* sized(std::vector<float>& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
    return v.data();
}

}  // namespace

template <class Out>
void MaskPostprocessor::run(const float* low, Out* out, const PixelRegion& r, float threshold) const {
    if (r.y0 < 0 || r.x0 < 0 || r.y1 > out_h_ || r.x1 > out_w_ || r.y0 >= r.y1 || r.x0 >= r.x1)
        throw InputError("mask postprocessing region", "rows [" + std::to_string(r.y0) + ", " + std::to_string(r.y1) +
                                                           "), cols [" + std::to_string(r.x0) + ", " +
                                                           std::to_string(r.x1) + ") outside " +
                                                           std::to_string(out_h_) + "x" + std::to_string(out_w_));
    static const Kernels k = kernels();
    const int bands = (r.height() + kBandRows - 1) / kBandRows;
    // Bands in parallel for a large region asked for outside a parallel region (a click's
    // masks); inside one (the generator: one mask per thread) on the calling thread.
#pragma omp parallel for schedule(dynamic) if (bands > 1 && static_cast<int64_t>(r.height()) * r.width() >= (int64_t{1} << 18) && !omp_in_parallel())
    for (int band = 0; band < bands; ++band) {
        const int y0 = r.y0 + band * kBandRows, y1 = std::min(r.y1, y0 + kBandRows);
        run_band(k, low, out + static_cast<int64_t>(y0 - r.y0) * r.width(), PixelRegion{y0, y1, r.x0, r.x1}, threshold);
    }
}

template <class Out>
void MaskPostprocessor::run_band(const Kernels& k, const float* low, Out* out, const PixelRegion& r, float threshold) const {
    auto at = [](const std::vector<int>& v, int i) { return v[static_cast<size_t>(i)]; };
    auto wt = [](const std::vector<float>& v, int i) { return v[static_cast<size_t>(i)]; };
    // Ranges of the cropped img_size frame, and of the low-res rows, that the region reads
    // (taps are non-decreasing, so the ends bound them).
    const int cy0 = at(down_y_.i0, r.y0), cy1 = at(down_y_.i1, r.y1 - 1) + 1;
    const int cx0 = at(down_x_.i0, r.x0), cx1 = at(down_x_.i1, r.x1 - 1) + 1;
    const int ly0 = at(up_y_.i0, cy0), ly1 = at(up_y_.i1, cy1 - 1) + 1;
    const int ncx = cx1 - cx0, ncy = cy1 - cy0, nx = r.width();
    Scratch& s = scratch();
    float* a = sized(s.a, static_cast<int64_t>(ly1 - ly0) * ncx);
    float* mid = sized(s.mid, static_cast<int64_t>(ncy) * ncx);
    float* b = sized(s.b, static_cast<int64_t>(ncy) * nx);

    // Stage 1: low -> img_size frame, columns [cx0, cx1) then rows [cy0, cy1).
    for (int y = ly0; y < ly1; ++y)
        k.interp(up_x_, low + static_cast<int64_t>(y) * low_, cx0, cx1, a + static_cast<int64_t>(y - ly0) * ncx);
    for (int y = cy0; y < cy1; ++y)
        k.combine(a + static_cast<int64_t>(at(up_y_.i0, y) - ly0) * ncx, a + static_cast<int64_t>(at(up_y_.i1, y) - ly0) * ncx,
                  wt(up_y_.w0, y), wt(up_y_.w1, y), mid + static_cast<int64_t>(y - cy0) * ncx, ncx);
    // Stage 2: cropped frame -> output, columns [x0, x1) then rows [y0, y1).
    for (int y = 0; y < ncy; ++y)
        k.interp(down_x_, mid + static_cast<int64_t>(y) * ncx - cx0, r.x0, r.x1, b + static_cast<int64_t>(y) * nx);
    float* row = std::is_same_v<Out, float> ? nullptr : sized(s.row, nx);
    for (int y = r.y0; y < r.y1; ++y) {
        const float* s0 = b + static_cast<int64_t>(at(down_y_.i0, y) - cy0) * nx;
        const float* s1 = b + static_cast<int64_t>(at(down_y_.i1, y) - cy0) * nx;
        const float w0 = wt(down_y_.w0, y), w1 = wt(down_y_.w1, y);
        Out* dst = out + static_cast<int64_t>(y - r.y0) * nx;
        if constexpr (std::is_same_v<Out, float>) {
            k.combine(s0, s1, w0, w1, dst, nx);
        } else {
            k.combine(s0, s1, w0, w1, row, nx);
            for (int x = 0; x < nx; ++x) dst[x] = row[x] > threshold ? 1 : 0;
        }
    }
}

int MaskPostprocessor::low_rows_read() const {
    return up_y_.i1[static_cast<size_t>(down_y_.i1[static_cast<size_t>(out_h_ - 1)])] + 1;
}

PixelRegion MaskPostprocessor::low_cells_read(const PixelRegion& r) const {
    auto at = [](const std::vector<int>& v, int i) { return v[static_cast<size_t>(i)]; };
    const int cy0 = at(down_y_.i0, r.y0), cy1 = at(down_y_.i1, r.y1 - 1) + 1;
    const int cx0 = at(down_x_.i0, r.x0), cx1 = at(down_x_.i1, r.x1 - 1) + 1;
    return {at(up_y_.i0, cy0), at(up_y_.i1, cy1 - 1) + 1, at(up_x_.i0, cx0), at(up_x_.i1, cx1 - 1) + 1};
}

namespace {

// Whether any low-res cell of `cells` (rows of `side`) is above 0.
bool any_positive(const float* low, int side, const PixelRegion& cells) {
    for (int y = cells.y0; y < cells.y1; ++y) {
        const float* row = low + static_cast<int64_t>(y) * side;
        for (int x = cells.x0; x < cells.x1; ++x)
            if (row[x] > 0.0f) return true;
    }
    return false;
}

}  // namespace

std::array<int, 4> MaskPostprocessor::box_above_zero(const float* low) const {
    const int H = out_h_, W = out_w_, bands = (H + kBandRows - 1) / kBandRows;
    std::vector<float> buf;
    std::vector<uint8_t> bits;
    // The box of the pixels > 0 of `region`, in output coordinates; false when there are none.
    auto scan = [&](const PixelRegion& region, std::array<int, 4>& found) {
        if (!any_positive(low, low_, low_cells_read(region))) return false;
        const auto n = static_cast<size_t>(region.height()) * static_cast<size_t>(region.width());
        buf.resize(n);
        bits.resize(n);
        logits(low, buf.data(), region);
        bool any = false;
        for (size_t i = 0; i < n; ++i) {
            bits[i] = buf[i] > 0.0f ? 1 : 0;
            any |= bits[i] != 0;
        }
        if (!any) return false;
        const amg::BoxXyxy b = amg::mask_to_box(bits.data(), region.height(), region.width());
        found = {b[0] + region.x0, b[1] + region.y0, b[2] + region.x0, b[3] + region.y0};
        return true;
    };
    auto band = [&](int i) { return PixelRegion{i * kBandRows, std::min(H, (i + 1) * kBandRows), 0, W}; };
    std::array<int, 4> top{}, bottom{};
    int first = 0, last = bands - 1;
    while (first < bands && !scan(band(first), top)) ++first;
    if (first == bands) return {0, 0, 0, 0};
    while (last > first && !scan(band(last), bottom)) --last;
    if (last == first) bottom = top;
    int left = std::min(top[0], bottom[0]), right = std::max(top[2], bottom[2]);
    // Rows strictly between the two bands: the columns left of `left` and right of `right`.
    const int y0 = (first + 1) * kBandRows, y1 = last * kBandRows;
    if (y0 < y1) {
        constexpr int kStrip = 16;
        std::array<int, 4> f{};
        for (int x = 0; x < left; x += kStrip)
            if (scan(PixelRegion{y0, y1, x, std::min(left, x + kStrip)}, f)) {
                left = f[0];
                break;
            }
        for (int x = W; x > right + 1; x -= kStrip)
            if (scan(PixelRegion{y0, y1, std::max(right + 1, x - kStrip), x}, f)) {
                right = f[2];
                break;
            }
    }
    return {left, top[1], right, bottom[3]};
}

void MaskPostprocessor::logits(const float* low, float* out, const PixelRegion& region) const {
    run(low, out, region, 0.0f);
}

void MaskPostprocessor::binary(const float* low, uint8_t* out, float threshold, const PixelRegion& region) const {
    run(low, out, region, threshold);
}

}  // namespace sam
