// Resampling as torch computes it on CPU in fp32: bicubic interpolation (Hiera's positional
// embedding) and the antialiased bilinear resize torchvision's Resize uses on tensors
// (SAM2Transforms; antialias is on by default from torchvision 0.17, and the sam2 package
// requires a later one).
#include <algorithm>
#include <cmath>
#include <vector>

#include "sam/error.h"
#include "sam2/model.h"

namespace sam {

namespace {

// Cubic convolution weights of the four taps around t in [0, 1] (A = -0.75, as torch).
std::array<float, 4> cubic_weights(float t) {
    const float A = -0.75f;
    auto c1 = [A](float x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
    auto c2 = [A](float x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
    return {c2(t + 1.0f), c1(t), c1(1.0f - t), c2(2.0f - t)};
}

struct CubicTaps {
    std::vector<int> idx;     // 4 per output: clamped source indices
    std::vector<float> wts;   // 4 per output
};

CubicTaps cubic_taps(int in, int out) {
    CubicTaps t;
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    for (int i = 0; i < out; ++i) {
        const float real = scale * (static_cast<float>(i) + 0.5f) - 0.5f;  // not clamped for cubic
        const int64_t f = std::min(static_cast<int64_t>(std::floor(real)), static_cast<int64_t>(in - 1));
        const float lambda = std::min(std::max(real - static_cast<float>(f), 0.0f), 1.0f);
        const std::array<float, 4> w = cubic_weights(lambda);
        for (int k = 0; k < 4; ++k) {
            t.idx.push_back(static_cast<int>(std::clamp<int64_t>(f - 1 + k, 0, in - 1)));
            t.wts.push_back(w[static_cast<size_t>(k)]);
        }
    }
    return t;
}

// Antialiased bilinear taps (torch's _compute_indices_min_size_weights_aa, triangle filter).
struct AaTaps {
    std::vector<int> start, size;
    std::vector<float> wts;  // `width` per output
    int width = 0;
};

AaTaps aa_taps(int in, int out) {
    AaTaps t;
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    const float support = scale >= 1.0f ? scale : 1.0f;  // interp_size / 2 = 1, times the scale when shrinking
    const float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
    t.width = static_cast<int>(std::ceil(support)) * 2 + 1;
    t.wts.assign(static_cast<size_t>(out) * static_cast<size_t>(t.width), 0.0f);
    for (int i = 0; i < out; ++i) {
        const float center = scale * (static_cast<float>(i) + 0.5f);
        const int64_t xmin = std::max(static_cast<int64_t>(center - support + 0.5f), int64_t{0});
        const int64_t xsize = std::min(static_cast<int64_t>(center + support + 0.5f), static_cast<int64_t>(in)) - xmin;
        float* w = t.wts.data() + static_cast<size_t>(i) * static_cast<size_t>(t.width);
        float total = 0.0f;
        int64_t j = 0;
        for (; j < xsize && j < t.width; ++j) {
            float x = (static_cast<float>(j + xmin) - center + 0.5f) * invscale;
            x = std::fabs(x);
            const float v = x < 1.0f ? 1.0f - x : 0.0f;
            w[j] = v;
            total += v;
        }
        if (total != 0.0f)
            for (int64_t k = 0; k < j; ++k) w[k] /= total;
        t.start.push_back(static_cast<int>(xmin));
        t.size.push_back(static_cast<int>(j));
    }
    return t;
}

}  // namespace

Tensor interpolate_bicubic(const Tensor& x, int H, int W) {
    const int64_t C = x.dim(0), h = x.dim(1), w = x.dim(2);
    const CubicTaps ty = cubic_taps(static_cast<int>(h), H), tx = cubic_taps(static_cast<int>(w), W);
    Tensor y = Tensor::empty({C, H, W});
#pragma omp parallel for
    for (int64_t c = 0; c < C; ++c)
        for (int oy = 0; oy < H; ++oy)
            for (int ox = 0; ox < W; ++ox) {
                // Along x within each of the four rows, then along y (torch's order).
                float out = 0.0f;
                for (int a = 0; a < 4; ++a) {
                    const float* row = x.data() + (c * h + ty.idx[static_cast<size_t>(oy * 4 + a)]) * w;
                    float r = 0.0f;
                    for (int b = 0; b < 4; ++b)
                        r = b == 0 ? row[tx.idx[static_cast<size_t>(ox * 4)]] * tx.wts[static_cast<size_t>(ox * 4)]
                                   : r + row[tx.idx[static_cast<size_t>(ox * 4 + b)]] * tx.wts[static_cast<size_t>(ox * 4 + b)];
                    out = a == 0 ? r * ty.wts[static_cast<size_t>(oy * 4)] : out + r * ty.wts[static_cast<size_t>(oy * 4 + a)];
                }
                y[(c * H + oy) * W + ox] = out;
            }
    return y;
}

Tensor resize_bilinear_antialias(const Tensor& x, int H, int W) {
    const int64_t C = x.dim(0), h = x.dim(1), w = x.dim(2);
    // Width first (into (C, h, W)), then height; a side of equal size is not resampled.
    Tensor tmp = x;
    if (W != w) {
        const AaTaps t = aa_taps(static_cast<int>(w), W);
        tmp = Tensor::empty({C, h, W});
#pragma omp parallel for
        for (int64_t r = 0; r < C * h; ++r) {
            const float* src = x.data() + r * w;
            float* dst = tmp.data() + r * W;
            for (int o = 0; o < W; ++o) {
                const float* wt = t.wts.data() + static_cast<size_t>(o) * static_cast<size_t>(t.width);
                const float* s = src + t.start[static_cast<size_t>(o)];
                float acc = s[0] * wt[0];
                for (int k = 1; k < t.size[static_cast<size_t>(o)]; ++k) acc += s[k] * wt[k];
                dst[o] = acc;
            }
        }
    }
    if (H == h) return tmp.data() == x.data() ? x.clone() : tmp;
    const AaTaps t = aa_taps(static_cast<int>(h), H);
    Tensor y = Tensor::empty({C, H, W});
#pragma omp parallel for
    for (int64_t c = 0; c < C; ++c)
        for (int o = 0; o < H; ++o) {
            const float* wt = t.wts.data() + static_cast<size_t>(o) * static_cast<size_t>(t.width);
            const float* s = tmp.data() + (c * h + t.start[static_cast<size_t>(o)]) * W;
            float* dst = y.data() + (c * H + o) * W;
            for (int xx = 0; xx < W; ++xx) dst[xx] = s[xx] * wt[0];
            for (int k = 1; k < t.size[static_cast<size_t>(o)]; ++k)
                for (int xx = 0; xx < W; ++xx) dst[xx] += s[k * W + xx] * wt[k];
        }
    return y;
}

}  // namespace sam
