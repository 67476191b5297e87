#include "postprocess.h"

#include <algorithm>
#include <string>
#include <type_traits>

#include "sam/error.h"

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

template <class Out>
void MaskPostprocessor::run(const float* low, Out* out, const PixelRegion& r, float threshold) const {
    if (r.y0 < 0 || r.x0 < 0 || r.y1 > out_h_ || r.x1 > out_w_ || r.y0 >= r.y1 || r.x0 >= r.x1)
        throw InputError("mask postprocessing region", "rows [" + std::to_string(r.y0) + ", " + std::to_string(r.y1) +
                                                           "), cols [" + std::to_string(r.x0) + ", " +
                                                           std::to_string(r.x1) + ") outside " +
                                                           std::to_string(out_h_) + "x" + std::to_string(out_w_));
    auto at = [](const std::vector<int>& v, int i) { return v[static_cast<size_t>(i)]; };
    auto wt = [](const std::vector<float>& v, int i) { return v[static_cast<size_t>(i)]; };
    // Ranges of the cropped img_size frame, and of the low-res rows, that the region reads
    // (taps are non-decreasing, so the ends bound them).
    const int cy0 = at(down_y_.i0, r.y0), cy1 = at(down_y_.i1, r.y1 - 1) + 1;
    const int cx0 = at(down_x_.i0, r.x0), cx1 = at(down_x_.i1, r.x1 - 1) + 1;
    const int ly0 = at(up_y_.i0, cy0), ly1 = at(up_y_.i1, cy1 - 1) + 1;
    const int ncx = cx1 - cx0, ncy = cy1 - cy0, nx = r.width();
    std::vector<float> a(static_cast<size_t>((ly1 - ly0) * ncx)), mid(static_cast<size_t>(ncy * ncx)),
        b(static_cast<size_t>(ncy * nx));

    // Stage 1: low -> img_size frame, columns [cx0, cx1) then rows [cy0, cy1).
#pragma omp parallel for
    for (int y = ly0; y < ly1; ++y) {
        const float* src = low + static_cast<int64_t>(y) * low_;
        float* dst = a.data() + static_cast<int64_t>(y - ly0) * ncx;
        for (int x = cx0; x < cx1; ++x)
            dst[x - cx0] = wt(up_x_.w0, x) * src[at(up_x_.i0, x)] + wt(up_x_.w1, x) * src[at(up_x_.i1, x)];
    }
#pragma omp parallel for
    for (int y = cy0; y < cy1; ++y) {
        const float* s0 = a.data() + static_cast<int64_t>(at(up_y_.i0, y) - ly0) * ncx;
        const float* s1 = a.data() + static_cast<int64_t>(at(up_y_.i1, y) - ly0) * ncx;
        const float w0 = wt(up_y_.w0, y), w1 = wt(up_y_.w1, y);
        float* dst = mid.data() + static_cast<int64_t>(y - cy0) * ncx;
        for (int x = 0; x < ncx; ++x) dst[x] = w0 * s0[x] + w1 * s1[x];
    }
    // Stage 2: cropped frame -> output, columns [x0, x1) then rows [y0, y1).
#pragma omp parallel for
    for (int y = 0; y < ncy; ++y) {
        const float* src = mid.data() + static_cast<int64_t>(y) * ncx - cx0;
        float* dst = b.data() + static_cast<int64_t>(y) * nx;
        for (int x = r.x0; x < r.x1; ++x)
            dst[x - r.x0] = wt(down_x_.w0, x) * src[at(down_x_.i0, x)] + wt(down_x_.w1, x) * src[at(down_x_.i1, x)];
    }
#pragma omp parallel for
    for (int y = r.y0; y < r.y1; ++y) {
        const float* s0 = b.data() + static_cast<int64_t>(at(down_y_.i0, y) - cy0) * nx;
        const float* s1 = b.data() + static_cast<int64_t>(at(down_y_.i1, y) - cy0) * nx;
        const float w0 = wt(down_y_.w0, y), w1 = wt(down_y_.w1, y);
        Out* dst = out + static_cast<int64_t>(y - r.y0) * nx;
        for (int x = 0; x < nx; ++x) {
            const float v = w0 * s0[x] + w1 * s1[x];
            if constexpr (std::is_same_v<Out, float>)
                dst[x] = v;
            else
                dst[x] = v > threshold ? 1 : 0;
        }
    }
}

void MaskPostprocessor::logits(const float* low, float* out, const PixelRegion& region) const {
    run(low, out, region, 0.0f);
}

void MaskPostprocessor::binary(const float* low, uint8_t* out, float threshold, const PixelRegion& region) const {
    run(low, out, region, threshold);
}

}  // namespace sam
