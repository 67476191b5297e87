// The official video predictor's JPEG-folder loader (sam2/utils/misc.py,
// load_video_frames_from_jpg_images): frames <index>.jpg ordered by index, each opened with
// Pillow, converted to RGB and resized with Image.resize((S, S)), whose default filter is
// bicubic. The resize follows Pillow's Resample.c as src/transforms.cpp does for its bilinear
// filter (the same coefficient arithmetic in double, fixed-point rounding and pass order), with
// Pillow's bicubic kernel (a = -0.5, support 2).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "sam/error.h"
#include "sam2/video_model.h"

namespace sam {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

struct Taps {
    int ksize = 0;
    std::vector<int> bounds;
    std::vector<int32_t> k;
};

Taps taps(int in_size, int out_size) {
    const double scale = static_cast<double>(in_size) / out_size;
    const double filterscale = std::max(scale, 1.0);
    const double support = 2.0 * filterscale;
    Taps t;
    t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    t.bounds.resize(static_cast<size_t>(out_size) * 2);
    t.k.assign(static_cast<size_t>(out_size) * static_cast<size_t>(t.ksize), 0);
    std::vector<double> w(static_cast<size_t>(t.ksize));
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
        const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            w[static_cast<size_t>(x)] = bicubic_filter((x + xmin - center + 0.5) * ss);
            ww += w[static_cast<size_t>(x)];
        }
        int32_t* k = &t.k[static_cast<size_t>(xx) * static_cast<size_t>(t.ksize)];
        for (int x = 0; x < xmax; ++x) {
            const double v = ww != 0.0 ? w[static_cast<size_t>(x)] / ww : w[static_cast<size_t>(x)];
            k[x] = static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
        }
        t.bounds[static_cast<size_t>(xx) * 2] = xmin;
        t.bounds[static_cast<size_t>(xx) * 2 + 1] = xmax;
    }
    return t;
}

inline uint8_t clip8(int32_t acc) { return static_cast<uint8_t>(std::clamp(acc >> kPrecisionBits, 0, 255)); }

// One pass along x (step 3 bytes) or y (step a row), `lines` lines of `len` pixels each.
void pass(const uint8_t* in, uint8_t* out, const Taps& t, int out_n, int lines, int64_t in_line, int64_t out_line,
          int64_t in_step, int64_t out_step) {
#pragma omp parallel for
    for (int l = 0; l < lines; ++l)
        for (int o = 0; o < out_n; ++o) {
            const int xmin = t.bounds[static_cast<size_t>(o) * 2], n = t.bounds[static_cast<size_t>(o) * 2 + 1];
            const int32_t* k = &t.k[static_cast<size_t>(o) * static_cast<size_t>(t.ksize)];
            int32_t s[3] = {1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1)};
            for (int x = 0; x < n; ++x) {
                const uint8_t* p = in + l * in_line + (xmin + x) * in_step;
                for (int c = 0; c < 3; ++c) s[c] += p[c] * k[x];
            }
            uint8_t* d = out + l * out_line + o * out_step;
            for (int c = 0; c < 3; ++c) d[c] = clip8(s[c]);
        }
}

}  // namespace

Image resize_bicubic_pillow(const Image& img, int new_w, int new_h) {
    if (img.width <= 0 || img.height <= 0 ||
        img.rgb.size() != static_cast<size_t>(img.width) * static_cast<size_t>(img.height) * 3)
        throw InputError("image", "empty or inconsistent image");
    if (new_w == img.width && new_h == img.height) return img;
    // Horizontal pass first (when the width changes), then vertical.
    Image h = img;
    if (new_w != img.width) {
        h.width = new_w;
        h.rgb.assign(static_cast<size_t>(new_w) * static_cast<size_t>(img.height) * 3, 0);
        pass(img.rgb.data(), h.rgb.data(), taps(img.width, new_w), new_w, img.height, int64_t{img.width} * 3,
             int64_t{new_w} * 3, 3, 3);
    }
    if (new_h == img.height) return h;
    Image v;
    v.width = new_w;
    v.height = new_h;
    v.rgb.assign(static_cast<size_t>(new_w) * static_cast<size_t>(new_h) * 3, 0);
    // Columns as lines: line l is column l, a step is a row.
    pass(h.rgb.data(), v.rgb.data(), taps(img.height, new_h), new_h, new_w, 3, 3, int64_t{new_w} * 3,
         int64_t{new_w} * 3);
    return v;
}

std::vector<std::string> list_jpeg_frames(const std::string& folder) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) throw InputError("video", folder + ": not a folder of JPEG frames");
    std::vector<std::pair<long long, std::string>> named;
    for (const auto& e : fs::directory_iterator(folder, ec)) {
        const std::string ext = e.path().extension().string();
        if (ext != ".jpg" && ext != ".jpeg" && ext != ".JPG" && ext != ".JPEG") continue;
        const std::string stem = e.path().stem().string();
        size_t used = 0;
        long long index = 0;
        try {
            index = std::stoll(stem, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != stem.size())
            throw InputError("video", e.path().string() + ": frame name is not a number (<index>.jpg)");
        named.emplace_back(index, e.path().string());
    }
    if (ec) throw InputError("video", folder + ": " + ec.message());
    if (named.empty()) throw InputError("video", "no images found in " + folder);
    std::stable_sort(named.begin(), named.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> paths;
    for (auto& [i, p] : named) paths.push_back(std::move(p));
    return paths;
}

}  // namespace sam
