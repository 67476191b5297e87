// ResizeLongestSide and Sam.preprocess.
//
// The resize is written out here rather than taken from a library: the reference resizes with
// Pillow (torchvision's resize on a PIL image), and neither libpng/libjpeg nor OpenCV's resize
// reproduce Pillow's antialiased fixed-point bilinear filter bit for bit. This follows the
// algorithm of Pillow's Resample.c (precompute_coeffs, normalize_coeffs_8bpc and the 8-bit
// horizontal/vertical passes): same filter, same double-precision coefficient arithmetic, same
// fixed-point rounding, same pass order, so the output matches to the last bit.
#include "transforms.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "sam/error.h"

namespace sam {
namespace {

// Below this many output bytes a pass runs on one thread: waking a team costs more than it saves.
constexpr int64_t kParallelMinBytes = 1 << 16;

// Fixed-point precision of the coefficients: 8 bits for the result, 2 for over/undershoot.
constexpr int kPrecisionBits = 32 - 8 - 2;

// Triangle filter of support 1.
double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

// Filter taps of one 1-D pass from in_size samples to out_size samples over the whole input.
// Output sample i reads inputs [bounds[2i], bounds[2i] + bounds[2i+1]) with weights
// k[i*ksize ...], in fixed point (kPrecisionBits).
struct ResampleTaps {
    int ksize = 0;
    std::vector<int> bounds;  // (first input index, count) per output sample
    std::vector<int32_t> k;   // out_size * ksize
};

ResampleTaps precompute_taps(int in_size, int out_size) {
    // Pillow's box is float; the region is the whole image, [0, in_size).
    const float in0 = 0.0f, in1 = static_cast<float>(in_size);
    const double scale = static_cast<double>(in1 - in0) / out_size;
    // When shrinking, the filter widens by the scale factor (antialiasing).
    const double filterscale = std::max(scale, 1.0);
    const double support = 1.0 * filterscale;
    ResampleTaps t;
    t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    t.bounds.resize(static_cast<size_t>(out_size) * 2);
    t.k.assign(static_cast<size_t>(out_size) * t.ksize, 0);
    std::vector<double> w(static_cast<size_t>(t.ksize));
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = in0 + (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        // Rounded (truncating) bounds, clipped to the image
        const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
        const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            w[x] = bilinear_filter((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        // Normalise to sum 1, then round to fixed point away from zero
        int32_t* k = &t.k[static_cast<size_t>(xx) * t.ksize];
        for (int x = 0; x < xmax; ++x) {
            const double v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
        }
        t.bounds[static_cast<size_t>(xx) * 2] = xmin;
        t.bounds[static_cast<size_t>(xx) * 2 + 1] = xmax;
    }
    return t;
}

// Fixed-point accumulator -> uint8 (floor, clipped).
inline uint8_t clip8(int32_t acc) {
    return static_cast<uint8_t>(std::clamp(acc >> kPrecisionBits, 0, 255));
}

// Horizontal pass over input rows [row0, row0 + rows): (rows, in_w, 3) -> (rows, out_w, 3).
void resample_horizontal(const uint8_t* in, int in_w, int row0, int rows, const ResampleTaps& t, int out_w,
                         uint8_t* out) {
#pragma omp parallel for schedule(static) if (int64_t{rows} * out_w * 3 >= kParallelMinBytes)
    for (int y = 0; y < rows; ++y) {
        const uint8_t* src = in + static_cast<size_t>(row0 + y) * in_w * 3;
        uint8_t* dst = out + static_cast<size_t>(y) * out_w * 3;
        for (int xx = 0; xx < out_w; ++xx) {
            const int xmin = t.bounds[static_cast<size_t>(xx) * 2], n = t.bounds[static_cast<size_t>(xx) * 2 + 1];
            const int32_t* k = &t.k[static_cast<size_t>(xx) * t.ksize];
            int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
            const uint8_t* p = src + static_cast<size_t>(xmin) * 3;
            for (int x = 0; x < n; ++x, p += 3) {
                s0 += p[0] * k[x];
                s1 += p[1] * k[x];
                s2 += p[2] * k[x];
            }
            dst[xx * 3 + 0] = clip8(s0);
            dst[xx * 3 + 1] = clip8(s1);
            dst[xx * 3 + 2] = clip8(s2);
        }
    }
}

// Vertical pass: (in_rows, w, 3) -> (out_h, w, 3); row offsets in `t` are relative to `in`.
void resample_vertical(const uint8_t* in, int w, const ResampleTaps& t, int row_shift, int out_h, uint8_t* out) {
    const size_t row_len = static_cast<size_t>(w) * 3;
#pragma omp parallel if (int64_t{out_h} * w * 3 >= kParallelMinBytes)
    {
        std::vector<int32_t> acc(row_len);
#pragma omp for schedule(static)
        for (int yy = 0; yy < out_h; ++yy) {
            const int ymin = t.bounds[static_cast<size_t>(yy) * 2] - row_shift;
            const int n = t.bounds[static_cast<size_t>(yy) * 2 + 1];
            const int32_t* k = &t.k[static_cast<size_t>(yy) * t.ksize];
            std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
            for (int y = 0; y < n; ++y) {
                const uint8_t* src = in + static_cast<size_t>(ymin + y) * row_len;
                const int32_t ky = k[y];
                for (size_t i = 0; i < row_len; ++i) acc[i] += src[i] * ky;
            }
            uint8_t* dst = out + static_cast<size_t>(yy) * row_len;
            for (size_t i = 0; i < row_len; ++i) dst[i] = clip8(acc[i]);
        }
    }
}

}  // namespace

std::pair<int, int> preprocess_shape(int h, int w, int long_side) {
    const double scale = long_side * 1.0 / std::max(h, w);
    const double newh = h * scale, neww = w * scale;
    return {static_cast<int>(newh + 0.5), static_cast<int>(neww + 0.5)};
}

Image resize_bilinear_pillow(const Image& img, int new_w, int new_h) {
    if (img.width <= 0 || img.height <= 0 || img.rgb.size() != static_cast<size_t>(img.width) * img.height * 3) {
        throw InputError("image", "empty or inconsistent image (" + std::to_string(img.width) + "x" +
                                      std::to_string(img.height) + ")");
    }
    if (new_w <= 0 || new_h <= 0) {
        throw InputError("size", "cannot resize to " + std::to_string(new_w) + "x" + std::to_string(new_h));
    }
    if (new_w == img.width && new_h == img.height) return img;  // Pillow copies; the taps are identity

    // Only the input rows the vertical pass reads go through the horizontal pass
    const ResampleTaps vert = precompute_taps(img.height, new_h);
    const int row_first = vert.bounds[0];
    const int row_last = vert.bounds[static_cast<size_t>(new_h) * 2 - 2] + vert.bounds[static_cast<size_t>(new_h) * 2 - 1];

    // Horizontal pass first, rounded to uint8
    const uint8_t* rows = img.rgb.data();
    int row_shift = 0;
    std::vector<uint8_t> tmp;
    if (new_w != img.width) {
        const ResampleTaps horiz = precompute_taps(img.width, new_w);
        tmp.resize(static_cast<size_t>(row_last - row_first) * new_w * 3);
        resample_horizontal(img.rgb.data(), img.width, row_first, row_last - row_first, horiz, new_w, tmp.data());
        rows = tmp.data();
        row_shift = row_first;
    }

    // Then the vertical pass
    Image out;
    out.width = new_w;
    out.height = new_h;
    out.rgb.resize(static_cast<size_t>(new_w) * new_h * 3);
    if (new_h != img.height) {
        resample_vertical(rows, new_w, vert, row_shift, new_h, out.rgb.data());
    } else {
        std::copy(rows, rows + out.rgb.size(), out.rgb.begin());  // row_first == 0 here
    }
    return out;
}

Image resize_longest_side(const Image& img, int long_side) {
    const auto [new_h, new_w] = preprocess_shape(img.height, img.width, long_side);
    return resize_bilinear_pillow(img, new_w, new_h);
}

Preprocessed preprocess(const Image& img, int img_size, const std::array<float, 3>& pixel_mean,
                        const std::array<float, 3>& pixel_std) {
    const Image resized = resize_longest_side(img, img_size);
    Preprocessed p;
    p.input_h = resized.height;
    p.input_w = resized.width;
    p.input = Tensor({1, 3, img_size, img_size});  // zeros: the padding
    const size_t plane = static_cast<size_t>(img_size) * img_size;
    float* dst = p.input.data();
    // Normalise in float32, as the reference does on its float tensor; HWC -> CHW
#pragma omp parallel for schedule(static) if (int64_t{resized.height} * resized.width * 3 >= kParallelMinBytes)
    for (int y = 0; y < resized.height; ++y) {
        const uint8_t* src = &resized.rgb[static_cast<size_t>(y) * resized.width * 3];
        for (int c = 0; c < 3; ++c) {
            float* row = dst + c * plane + static_cast<size_t>(y) * img_size;
            for (int x = 0; x < resized.width; ++x) {
                row[x] = (static_cast<float>(src[x * 3 + c]) - pixel_mean[c]) / pixel_std[c];
            }
        }
    }
    return p;
}

void apply_coords(float* xy, int n, int orig_h, int orig_w, int long_side) {
    const auto [new_h, new_w] = preprocess_shape(orig_h, orig_w, long_side);
    const double sx = static_cast<double>(new_w) / orig_w, sy = static_cast<double>(new_h) / orig_h;
    for (int i = 0; i < n; ++i) {
        xy[2 * i] = static_cast<float>(xy[2 * i] * sx);
        xy[2 * i + 1] = static_cast<float>(xy[2 * i + 1] * sy);
    }
}

void apply_boxes(float* boxes, int n, int orig_h, int orig_w, int long_side) {
    apply_coords(boxes, 2 * n, orig_h, orig_w, long_side);
}

}  // namespace sam
