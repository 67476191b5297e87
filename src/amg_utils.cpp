// Helpers of the automatic mask generator (see amg_utils.h).
#include "amg_utils.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "sam/error.h"

// NMS and the point grid must match the reference bit for bit, and the reference rounds every
// product before adding to it. With -march=native the compiler may fuse a*b+c into one
// instruction with a single rounding, so contraction is switched off for this file.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace sam::amg {

std::vector<Point> build_point_grid(int n_per_side) {
    if (n_per_side < 1) throw InputError("points_per_side", "must be >= 1, got " + std::to_string(n_per_side));
    // np.linspace(offset, 1 - offset, n): i * step + start, with the last value set to stop.
    const int n = n_per_side;
    const double start = 1.0 / (2 * n), stop = 1.0 - start;
    std::vector<double> side(static_cast<size_t>(n));
    const double step = n > 1 ? (stop - start) / (n - 1) : 0.0;
    for (int i = 0; i < n; ++i) side[static_cast<size_t>(i)] = i * step + start;
    if (n > 1) side.back() = stop;
    // Row by row (y), x varying fastest.
    std::vector<Point> points;
    points.reserve(static_cast<size_t>(n) * static_cast<size_t>(n));
    for (double y : side) {
        for (double x : side) points.push_back({x, y});
    }
    return points;
}

std::vector<std::vector<Point>> build_all_layer_point_grids(int n_per_side, int n_layers, int scale_per_layer) {
    std::vector<std::vector<Point>> grids;
    for (int i = 0; i <= n_layers; ++i) {
        const double n_points = n_per_side / std::pow(static_cast<double>(scale_per_layer), i);
        grids.push_back(build_point_grid(static_cast<int>(n_points)));
    }
    return grids;
}

std::vector<CropBox> generate_crop_boxes(int height, int width, int n_layers, double overlap_ratio) {
    std::vector<CropBox> crops;
    crops.push_back({{0, 0, width, height}, 0});
    const int short_side = std::min(height, width);
    // ceil((overlap * (n_crops - 1) + orig_len) / n_crops), a true division as in Python.
    auto crop_len = [](int orig_len, int n_crops, int overlap) {
        return static_cast<int>(std::ceil(static_cast<double>(overlap * (n_crops - 1) + orig_len) / n_crops));
    };
    for (int layer = 0; layer < n_layers; ++layer) {
        const int n_crops = 1 << (layer + 1);
        const int overlap = static_cast<int>(overlap_ratio * short_side * (2.0 / n_crops));
        const int crop_w = crop_len(width, n_crops, overlap);
        const int crop_h = crop_len(height, n_crops, overlap);
        for (int i = 0; i < n_crops; ++i) {
            const int x0 = (crop_w - overlap) * i;
            for (int j = 0; j < n_crops; ++j) {
                const int y0 = (crop_h - overlap) * j;
                crops.push_back({{x0, y0, std::min(x0 + crop_w, width), std::min(y0 + crop_h, height)}, layer + 1});
            }
        }
    }
    return crops;
}

namespace {

// Index of the first non-zero byte in [begin, end), or end; 8 bytes at a time over zeros.
size_t first_nonzero(const uint8_t* p, size_t begin, size_t end) {
    for (; begin + 8 <= end; begin += 8) {
        uint64_t word;
        std::memcpy(&word, p + begin, 8);
        if (word != 0) break;
    }
    while (begin < end && !p[begin]) ++begin;
    return begin;
}

// Index of the first zero byte in [begin, end), or end; 8 bytes at a time over words without a
// zero byte.
size_t first_zero(const uint8_t* p, size_t begin, size_t end) {
    constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
    for (; begin + 8 <= end; begin += 8) {
        uint64_t word;
        std::memcpy(&word, p + begin, 8);
        if ((word - kOnes) & ~word & kHighs) break;  // some byte is zero
    }
    while (begin < end && p[begin]) ++begin;
    return begin;
}

// Index of the last non-zero byte in [begin, end), or begin - 1 as a signed value when none.
int64_t last_nonzero(const uint8_t* p, size_t begin, size_t end) {
    for (; end >= begin + 8; end -= 8) {
        uint64_t word;
        std::memcpy(&word, p + end - 8, 8);
        if (word != 0) break;
    }
    while (end > begin && !p[end - 1]) --end;
    return static_cast<int64_t>(end) - 1;
}

}  // namespace

BoxXyxy mask_to_box(const uint8_t* mask, int height, int width) {
    const auto w = static_cast<size_t>(width);
    int64_t top = -1, bottom = -1, left = width, right = -1;
    for (int r = 0; r < height; ++r) {
        const uint8_t* row = mask + static_cast<size_t>(r) * w;
        const size_t first = first_nonzero(row, 0, w);
        if (first == w) continue;
        if (top < 0) top = r;
        bottom = r;
        left = std::min(left, static_cast<int64_t>(first));
        // The last set pixel only matters beyond the current right edge.
        const size_t from = static_cast<size_t>(std::max<int64_t>(right + 1, static_cast<int64_t>(first)));
        right = std::max(right, last_nonzero(row, from, w));
    }
    if (top < 0) return {0, 0, 0, 0};
    return {static_cast<int>(left), static_cast<int>(top), static_cast<int>(right), static_cast<int>(bottom)};
}

bool is_box_near_crop_edge(const BoxXyxy& box, const BoxXyxy& crop_box, const BoxXyxy& orig_box, double atol) {
    const BoxXyxy b = uncrop_box_xyxy(box, crop_box);
    for (int i = 0; i < 4; ++i) {
        const bool near_crop = std::abs(static_cast<double>(b[i]) - crop_box[i]) <= atol;
        const bool near_image = std::abs(static_cast<double>(b[i]) - orig_box[i]) <= atol;
        if (near_crop && !near_image) return true;
    }
    return false;
}

namespace {

// Indices ordered by descending score, lower index first among equals.
std::vector<int> order_by_score(const std::vector<float>& scores, std::vector<int> idx) {
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return scores[a] > scores[b]; });
    return idx;
}

// torchvision's CPU nms kernel over the boxes with the given indices (in any order).
std::vector<int> nms_subset(const std::vector<BoxXyxyF>& boxes, const std::vector<float>& scores,
                            const std::vector<int>& subset, double iou_threshold) {
    const std::vector<int> order = order_by_score(scores, subset);
    const size_t n = order.size();
    std::vector<BoxXyxyF> b(n);
    std::vector<float> area(n);
    for (size_t k = 0; k < n; ++k) {
        b[k] = boxes[static_cast<size_t>(order[k])];
        area[k] = (b[k][2] - b[k][0]) * (b[k][3] - b[k][1]);
    }
    std::vector<uint8_t> suppressed(n, 0);
    std::vector<int> keep;
    for (size_t i = 0; i < n; ++i) {
        if (suppressed[i]) continue;
        keep.push_back(order[i]);
        for (size_t j = i + 1; j < n; ++j) {
            if (suppressed[j]) continue;
            const float w = std::max(0.0f, std::min(b[i][2], b[j][2]) - std::max(b[i][0], b[j][0]));
            const float h = std::max(0.0f, std::min(b[i][3], b[j][3]) - std::max(b[i][1], b[j][1]));
            const float inter = w * h;
            const float iou = inter / (area[i] + area[j] - inter);
            if (iou > iou_threshold) suppressed[j] = 1;
        }
    }
    return keep;
}

void check_nms_sizes(size_t boxes, size_t scores) {
    if (boxes != scores) {
        throw InputError("nms", std::to_string(boxes) + " boxes but " + std::to_string(scores) + " scores");
    }
}

}  // namespace

std::vector<int> box_nms(const std::vector<BoxXyxyF>& boxes, const std::vector<float>& scores, double iou_threshold) {
    check_nms_sizes(boxes.size(), scores.size());
    std::vector<int> all(boxes.size());
    std::iota(all.begin(), all.end(), 0);
    return nms_subset(boxes, scores, all, iou_threshold);
}

std::vector<int> batched_nms(const std::vector<BoxXyxyF>& boxes, const std::vector<float>& scores,
                             const std::vector<int64_t>& categories, double iou_threshold) {
    check_nms_sizes(boxes.size(), scores.size());
    if (categories.size() != boxes.size()) {
        throw InputError("nms", std::to_string(boxes.size()) + " boxes but " + std::to_string(categories.size()) +
                                    " categories");
    }
    if (boxes.empty()) return {};
    if (boxes.size() * 4 <= 4000) {
        // Coordinate trick: shift each category by category * (max coordinate + 1), in float32.
        float max_coord = -std::numeric_limits<float>::infinity();
        for (const auto& b : boxes) max_coord = std::max({max_coord, b[0], b[1], b[2], b[3]});
        std::vector<BoxXyxyF> shifted(boxes.size());
        for (size_t i = 0; i < boxes.size(); ++i) {
            const float offset = static_cast<float>(categories[i]) * (max_coord + 1.0f);
            for (int k = 0; k < 4; ++k) shifted[i][static_cast<size_t>(k)] = boxes[i][static_cast<size_t>(k)] + offset;
        }
        return box_nms(shifted, scores, iou_threshold);
    }
    // Per category, then all kept indices by descending score.
    std::vector<int64_t> ids = categories;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::vector<int> kept;
    for (int64_t id : ids) {
        std::vector<int> subset;
        for (size_t i = 0; i < categories.size(); ++i) {
            if (categories[i] == id) subset.push_back(static_cast<int>(i));
        }
        const std::vector<int> k = nms_subset(boxes, scores, subset, iou_threshold);
        kept.insert(kept.end(), k.begin(), k.end());
    }
    std::sort(kept.begin(), kept.end());
    return order_by_score(scores, kept);
}

namespace {

// A horizontal run [start, end) of foreground pixels in one row.
struct Run {
    int row, start, end;
};

int find_root(std::vector<int>& parent, int i) {
    while (parent[static_cast<size_t>(i)] != i) {
        parent[static_cast<size_t>(i)] = parent[static_cast<size_t>(parent[static_cast<size_t>(i)])];
        i = parent[static_cast<size_t>(i)];
    }
    return i;
}

}  // namespace

// The reference labels components with cv2.connectedComponentsWithStats. OpenCV is the only
// packaged library that does this and we do not depend on it; labelling runs with union-find is
// short. Only sizes and, for a tie in "keep the largest", OpenCV's label order matter: its
// default 8-connected algorithm scans 2x2 blocks, so labels follow each component's first block
// in block-raster order (every set pixel of a 2x2 block is in one component).
bool remove_small_regions(uint8_t* mask, int height, int width, double area_thresh, RegionMode mode) {
    const bool holes = mode == RegionMode::kHoles;
    const auto w = static_cast<size_t>(width);
    // 1. Runs of the working mask (the inverse for holes), unioned with touching runs of the row above.
    std::vector<Run> runs;
    std::vector<int> parent;
    size_t prev_begin = 0, prev_end = 0;
    for (int r = 0; r < height; ++r) {
        const uint8_t* row = mask + static_cast<size_t>(r) * w;
        const size_t row_begin = runs.size();
        size_t j = prev_begin;
        for (size_t x = 0;;) {
            const size_t run_begin = holes ? first_zero(row, x, w) : first_nonzero(row, x, w);
            if (run_begin == w) break;
            x = holes ? first_nonzero(row, run_begin, w) : first_zero(row, run_begin, w);
            const int s = static_cast<int>(run_begin), c = static_cast<int>(x);
            const int id = static_cast<int>(runs.size());
            runs.push_back({r, s, c});
            parent.push_back(id);
            // 8-connected: a run above touches [s - 1, c] inclusive.
            while (j < prev_end && runs[j].end < s) ++j;
            for (size_t k = j; k < prev_end && runs[k].start <= c; ++k) {
                const int a = find_root(parent, id), b = find_root(parent, static_cast<int>(k));
                parent[static_cast<size_t>(std::max(a, b))] = std::min(a, b);
            }
        }
        prev_begin = row_begin;
        prev_end = runs.size();
    }
    // 2. Component sizes and first 2x2 block, on the roots.
    const int64_t block_cols = (width + 1) / 2;
    std::vector<int64_t> size(runs.size(), 0), first_block(runs.size(), std::numeric_limits<int64_t>::max());
    for (size_t i = 0; i < runs.size(); ++i) {
        const auto root = static_cast<size_t>(find_root(parent, static_cast<int>(i)));
        size[root] += runs[i].end - runs[i].start;
        first_block[root] = std::min(first_block[root], runs[i].row / 2 * block_cols + runs[i].start / 2);
    }
    // 3. Which components are small; for islands, keep the largest if all are.
    std::vector<uint8_t> small(runs.size(), 0);
    bool any_small = false, any_large = false;
    int largest = -1;
    for (size_t i = 0; i < runs.size(); ++i) {
        if (parent[i] != static_cast<int>(i)) continue;
        small[i] = static_cast<double>(size[i]) < area_thresh;
        any_small |= small[i] != 0;
        any_large |= small[i] == 0;
        if (largest < 0 || size[i] > size[static_cast<size_t>(largest)] ||
            (size[i] == size[static_cast<size_t>(largest)] && first_block[i] < first_block[static_cast<size_t>(largest)])) {
            largest = static_cast<int>(i);
        }
    }
    if (!any_small) return false;
    if (!holes && !any_large) small[static_cast<size_t>(largest)] = 0;
    // 4. Holes: fill small components of the inverse. Islands: clear small components.
    for (size_t i = 0; i < runs.size(); ++i) {
        if (!small[static_cast<size_t>(find_root(parent, static_cast<int>(i)))]) continue;
        const Run& run = runs[i];
        std::memset(mask + static_cast<size_t>(run.row) * w + static_cast<size_t>(run.start), holes ? 1 : 0,
                    static_cast<size_t>(run.end - run.start));
    }
    return true;
}

BoxXyxy box_xyxy_to_xywh(const BoxXyxy& box) { return {box[0], box[1], box[2] - box[0], box[3] - box[1]}; }

BoxXyxy uncrop_box_xyxy(const BoxXyxy& box, const BoxXyxy& crop_box) {
    return {box[0] + crop_box[0], box[1] + crop_box[1], box[2] + crop_box[0], box[3] + crop_box[1]};
}

Point uncrop_point(const Point& point, const BoxXyxy& crop_box) {
    return {point[0] + crop_box[0], point[1] + crop_box[1]};
}

}  // namespace sam::amg
