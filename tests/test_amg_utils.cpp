// Automatic mask generator helpers: NMS against torchvision's output (tests/data/nms.json), point
// grids and crop boxes against values computed with the reference formulas, and hand-made masks.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "amg_utils.h"
#include "sam/error.h"
#include "sam/rle.h"

namespace {

namespace amg = sam::amg;

nlohmann::json load_json(const std::string& name) {
    std::ifstream f(std::string(SAM_TEST_DATA) + "/" + name);
    EXPECT_TRUE(f.good()) << name;
    return nlohmann::json::parse(f);
}

struct NmsFixture {
    std::vector<amg::BoxXyxyF> boxes;
    std::vector<float> scores;
    std::vector<int64_t> categories;
    nlohmann::json cases;
};

NmsFixture load_nms() {
    const auto j = load_json("nms.json");
    NmsFixture f;
    // float32 values written as float64: the conversion back is exact.
    for (const auto& b : j["boxes_xyxy"]) f.boxes.push_back({b[0].get<float>(), b[1].get<float>(), b[2].get<float>(), b[3].get<float>()});
    f.scores = j["scores"].get<std::vector<float>>();
    f.categories = j["categories"].get<std::vector<int64_t>>();
    f.cases = j["cases"];
    return f;
}

// The fixture has 11 boxes with one score (indices 9..19). torchvision sorts them in an
// unspecified order; ours is lower index first. Where an expected list differs from ours, it
// must be only by the order of tied scores: same kept set, same score sequence.
void expect_same_keep(const std::vector<int>& got, const std::vector<int>& want, const std::vector<float>& scores) {
    if (got == want) return;
    ASSERT_EQ(std::set<int>(got.begin(), got.end()), std::set<int>(want.begin(), want.end()));
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(scores[got[i]], scores[want[i]]) << "position " << i;
}

TEST(AmgUtils, BoxNmsMatchesTorchvision) {
    const NmsFixture f = load_nms();
    ASSERT_EQ(f.boxes.size(), 300u);
    ASSERT_EQ(f.cases.size(), 4u);
    for (const auto& c : f.cases) {
        const double thr = c["iou_threshold"];
        SCOPED_TRACE("iou_threshold " + std::to_string(thr));
        // In this fixture the tie order happens to be lower index first, so lists match exactly.
        const auto want = c["keep_single_category"].get<std::vector<int>>();
        const auto got = amg::box_nms(f.boxes, f.scores, thr);
        EXPECT_EQ(got, want);
        expect_same_keep(got, want, f.scores);
    }
}

TEST(AmgUtils, BatchedNmsMatchesTorchvision) {
    const NmsFixture f = load_nms();
    for (const auto& c : f.cases) {
        const double thr = c["iou_threshold"];
        SCOPED_TRACE("iou_threshold " + std::to_string(thr));
        const auto want = c["keep"].get<std::vector<int>>();
        const auto got = amg::batched_nms(f.boxes, f.scores, f.categories, thr);
        EXPECT_EQ(got, want);
        expect_same_keep(got, want, f.scores);
    }
}

// Above 1000 boxes batched_nms runs per category; check it against box_nms on each category.
TEST(AmgUtils, BatchedNmsPerCategoryPath) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> pos(0.0f, 500.0f), len(5.0f, 120.0f), score(0.0f, 1.0f);
    const int n = 1500;
    std::vector<amg::BoxXyxyF> boxes;
    std::vector<float> scores;
    std::vector<int64_t> cats;
    for (int i = 0; i < n; ++i) {
        const float x = pos(rng), y = pos(rng);
        boxes.push_back({x, y, x + len(rng), y + len(rng)});
        scores.push_back(i % 50 == 0 ? 0.5f : score(rng));  // some ties
        cats.push_back(i % 3);
    }
    const auto got = amg::batched_nms(boxes, scores, cats, 0.5);
    std::set<int> want;
    for (int64_t cat = 0; cat < 3; ++cat) {
        std::vector<amg::BoxXyxyF> b;
        std::vector<float> s;
        std::vector<int> index;
        for (int i = 0; i < n; ++i) {
            if (cats[static_cast<size_t>(i)] != cat) continue;
            b.push_back(boxes[static_cast<size_t>(i)]);
            s.push_back(scores[static_cast<size_t>(i)]);
            index.push_back(i);
        }
        for (int k : amg::box_nms(b, s, 0.5)) want.insert(index[static_cast<size_t>(k)]);
    }
    EXPECT_EQ(std::set<int>(got.begin(), got.end()), want);
    for (size_t i = 1; i < got.size(); ++i) {
        const float a = scores[static_cast<size_t>(got[i - 1])], b = scores[static_cast<size_t>(got[i])];
        EXPECT_TRUE(a > b || (a == b && got[i - 1] < got[i])) << "position " << i;
    }
    EXPECT_TRUE(amg::batched_nms({}, {}, {}, 0.7).empty());
    EXPECT_THROW(amg::box_nms(boxes, {}, 0.7), sam::InputError);
}

TEST(AmgUtils, NmsSuppressesOnlyAboveThreshold) {
    // Boxes 0 and 1 (areas 2 and 2, intersection 1) have IoU 1/3.
    const std::vector<amg::BoxXyxyF> boxes = {{0, 0, 2, 1}, {1, 0, 3, 1}, {10, 10, 11, 11}};
    const std::vector<float> scores = {0.9f, 0.8f, 0.95f};
    EXPECT_EQ(amg::box_nms(boxes, scores, 0.3), (std::vector<int>{2, 0}));
    EXPECT_EQ(amg::box_nms(boxes, scores, 1.0 / 3.0 + 1e-6), (std::vector<int>{2, 0, 1}));
    // Equal scores: lower index first.
    EXPECT_EQ(amg::box_nms(boxes, {0.5f, 0.5f, 0.5f}, 0.3), (std::vector<int>{0, 2}));
}

TEST(AmgUtils, PointGrids) {
    const auto g1 = amg::build_point_grid(1);
    ASSERT_EQ(g1.size(), 1u);
    EXPECT_EQ(g1[0], (amg::Point{0.5, 0.5}));

    const auto g2 = amg::build_point_grid(2);
    const std::vector<amg::Point> want2 = {{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}};
    EXPECT_EQ(g2, want2);

    const auto g32 = amg::build_point_grid(32);
    ASSERT_EQ(g32.size(), 1024u);
    for (int i = 0; i < 32; ++i) {
        EXPECT_EQ(g32[static_cast<size_t>(i)][0], (2 * i + 1) / 64.0);  // first row: x varies, y fixed
        EXPECT_EQ(g32[static_cast<size_t>(i)][1], 1 / 64.0);
        EXPECT_EQ(g32[static_cast<size_t>(32 * i)][1], (2 * i + 1) / 64.0);
    }

    // n = 12: values not exactly representable, as numpy.linspace computes them (i * step + start,
    // each rounded; the last one is stop).
    const double want12[12] = {0x1.5555555555555p-5, 0x1.0000000000000p-3, 0x1.aaaaaaaaaaaabp-3,
                               0x1.2aaaaaaaaaaabp-2, 0x1.8000000000001p-2, 0x1.d555555555557p-2,
                               0x1.1555555555555p-1, 0x1.4000000000000p-1, 0x1.6aaaaaaaaaaabp-1,
                               0x1.9555555555556p-1, 0x1.c000000000001p-1, 0x1.eaaaaaaaaaaabp-1};
    const auto g12 = amg::build_point_grid(12);
    for (int i = 0; i < 12; ++i) {
        EXPECT_EQ(g12[static_cast<size_t>(i)][0], want12[i]) << i;
        EXPECT_EQ(g12[static_cast<size_t>(12 * i + 5)][1], want12[i]) << i;
    }
    // The reference fixture's first record of the 12-per-side run on the 800x534 image.
    EXPECT_EQ(g12[8][0] * 800, 566.6666666666667);

    const auto layers = amg::build_all_layer_point_grids(32, 2, 2);
    ASSERT_EQ(layers.size(), 3u);
    EXPECT_EQ(layers[0].size(), 1024u);
    EXPECT_EQ(layers[1].size(), 256u);
    EXPECT_EQ(layers[2].size(), 64u);
    EXPECT_EQ(amg::build_all_layer_point_grids(12, 1, 5)[1].size(), 4u);  // int(12 / 5) = 2 per side
    EXPECT_THROW(amg::build_point_grid(0), sam::InputError);
}

std::vector<amg::BoxXyxy> boxes_of(const std::vector<amg::CropBox>& crops) {
    std::vector<amg::BoxXyxy> out;
    for (const auto& c : crops) out.push_back(c.box);
    return out;
}

TEST(AmgUtils, CropBoxes) {
    const double ratio = 512.0 / 1500.0;
    // 1200 x 1800, one layer: overlap int(0.3413 * 1200) = 409, crop 1105 x 805, starts 0/696 and 0/396.
    const auto one = amg::generate_crop_boxes(1200, 1800, 1, ratio);
    EXPECT_EQ(boxes_of(one), (std::vector<amg::BoxXyxy>{
                                 {0, 0, 1800, 1200}, {0, 0, 1105, 805}, {0, 396, 1105, 1200}, {696, 0, 1800, 805}, {696, 396, 1800, 1200}}));
    EXPECT_EQ(one[0].layer, 0);
    EXPECT_EQ(one[4].layer, 1);

    // Two layers: layer 2 has overlap 204, crop 603 x 453, x starts 0/399/798/1197, y 0/249/498/747.
    const auto two = amg::generate_crop_boxes(1200, 1800, 2, ratio);
    ASSERT_EQ(two.size(), 21u);
    EXPECT_EQ(two[5].box, (amg::BoxXyxy{0, 0, 603, 453}));
    EXPECT_EQ(two[6].box, (amg::BoxXyxy{0, 249, 603, 702}));  // y0 varies fastest
    EXPECT_EQ(two[9].box, (amg::BoxXyxy{399, 0, 1002, 453}));
    EXPECT_EQ(two[16].box, (amg::BoxXyxy{798, 747, 1401, 1200}));
    EXPECT_EQ(two[20].box, (amg::BoxXyxy{1197, 747, 1800, 1200}));
    EXPECT_EQ(two[20].layer, 2);

    // The 800x534 dog image with one layer (the fixture's crop case).
    EXPECT_EQ(boxes_of(amg::generate_crop_boxes(534, 800, 1, ratio)),
              (std::vector<amg::BoxXyxy>{{0, 0, 800, 534}, {0, 0, 491, 358}, {0, 176, 491, 534}, {309, 0, 800, 358}, {309, 176, 800, 534}}));

    // An odd size and ratio, third layer: overlap int(0.25 * 173 * 0.25) = 10, crop 47 x 31.
    const auto odd = amg::generate_crop_boxes(173, 301, 3, 0.25);
    ASSERT_EQ(odd.size(), 1u + 4u + 16u + 64u);
    EXPECT_EQ(odd[21].box, (amg::BoxXyxy{0, 0, 47, 31}));
    EXPECT_EQ(odd[28].box, (amg::BoxXyxy{0, 147, 47, 173}));
    EXPECT_EQ(odd[84].box, (amg::BoxXyxy{259, 147, 301, 173}));
    EXPECT_EQ(amg::generate_crop_boxes(173, 301, 0, 0.25).size(), 1u);
}

TEST(AmgUtils, MaskToBox) {
    std::vector<uint8_t> m(5 * 7, 0);
    EXPECT_EQ(amg::mask_to_box(m.data(), 5, 7), (amg::BoxXyxy{0, 0, 0, 0}));
    m[2 * 7 + 3] = 1;
    EXPECT_EQ(amg::mask_to_box(m.data(), 5, 7), (amg::BoxXyxy{3, 2, 3, 2}));
    m[4 * 7 + 1] = 1;
    m[0 * 7 + 6] = 1;
    EXPECT_EQ(amg::mask_to_box(m.data(), 5, 7), (amg::BoxXyxy{1, 0, 6, 4}));

    std::mt19937 rng(2);
    for (int t = 0; t < 200; ++t) {
        const int h = 1 + t % 13, w = 1 + t % 17;
        std::bernoulli_distribution on(t % 5 == 0 ? 0.01 : 0.2);
        std::vector<uint8_t> mask(static_cast<size_t>(h * w));
        int x0 = w, y0 = h, x1 = -1, y1 = -1;
        for (int r = 0; r < h; ++r) {
            for (int c = 0; c < w; ++c) {
                if (!on(rng)) continue;
                mask[static_cast<size_t>(r * w + c)] = 1;
                x0 = std::min(x0, c), y0 = std::min(y0, r), x1 = std::max(x1, c), y1 = std::max(y1, r);
            }
        }
        const amg::BoxXyxy want = x1 < 0 ? amg::BoxXyxy{0, 0, 0, 0} : amg::BoxXyxy{x0, y0, x1, y1};
        EXPECT_EQ(amg::mask_to_box(mask.data(), h, w), want);
    }
}

TEST(AmgUtils, BoxNearCropEdge) {
    const amg::BoxXyxy orig = {0, 0, 1800, 1200};
    const amg::BoxXyxy top_left = {0, 0, 1105, 805}, bottom_right = {696, 396, 1800, 1200};
    // Near the crop's left/top edges, which are image edges: kept.
    EXPECT_FALSE(amg::is_box_near_crop_edge({10, 10, 100, 100}, top_left, orig));
    // Within 20 px of the crop's right edge (not an image edge): dropped; 21 px: kept.
    EXPECT_TRUE(amg::is_box_near_crop_edge({200, 200, 1085, 300}, top_left, orig));
    EXPECT_FALSE(amg::is_box_near_crop_edge({200, 200, 1084, 300}, top_left, orig));
    EXPECT_TRUE(amg::is_box_near_crop_edge({200, 200, 300, 785}, top_left, orig));
    // Boxes are in crop coordinates: (0, 0) in this crop is (696, 396) in the image.
    EXPECT_TRUE(amg::is_box_near_crop_edge({0, 100, 50, 150}, bottom_right, orig));
    EXPECT_FALSE(amg::is_box_near_crop_edge({500, 300, 1104, 804}, bottom_right, orig));
    // The whole-image crop has no inner edges.
    EXPECT_FALSE(amg::is_box_near_crop_edge({0, 0, 1799, 1199}, orig, orig));
    EXPECT_TRUE(amg::is_box_near_crop_edge({200, 200, 1095, 300}, top_left, orig, 10.0));
    EXPECT_FALSE(amg::is_box_near_crop_edge({200, 200, 1094, 300}, top_left, orig, 10.0));
}

// calculate_stability_score over a whole mask, through the counts the generator accumulates
// band by band.
float stability_score(const float* logits, int64_t n, double mask_threshold, double threshold_offset) {
    amg::StabilityCounts counts(mask_threshold, threshold_offset);
    for (int64_t i = 0; i < n; ++i) counts.add(logits[i]);
    return counts.score();
}

TEST(AmgUtils, StabilityScore) {
    const std::vector<float> logits = {2.0f, 1.5f, 1.0f, 0.5f, -0.5f, -1.0f, -1.5f};
    // > 1: {2, 1.5}; > -1: {2, 1.5, 1, 0.5, -0.5}.
    EXPECT_EQ(stability_score(logits.data(), 7, 0.0, 1.0), 2.0f / 5.0f);
    EXPECT_EQ(stability_score(logits.data(), 7, 0.0, 0.0), 1.0f);
    EXPECT_EQ(stability_score(logits.data(), 7, 0.5, 0.75), 2.0f / 4.0f);  // > 1.25 / > -0.25
    const std::vector<float> low = {-3.0f, -2.0f};
    const float nan = stability_score(low.data(), 2, 0.0, 1.0);
    EXPECT_TRUE(std::isnan(nan));  // 0 / 0, as torch divides
    EXPECT_FALSE(nan >= 0.95f);
    EXPECT_EQ(stability_score(low.data(), 2, -10.0, 1.0), 1.0f);
}

// Row-major mask from rows of '#' (set) and '.'.
std::vector<uint8_t> parse(const std::vector<std::string>& rows) {
    std::vector<uint8_t> m;
    for (const auto& r : rows) {
        for (char c : r) m.push_back(c == '#');
    }
    return m;
}

TEST(AmgUtils, FillsSmallHoles) {
    auto m = parse({"#######",
                    "#..####",
                    "#.#####",
                    "#####.#",
                    "#######"});
    // Holes of area 3 and 1, both < 5: filled.
    EXPECT_TRUE(amg::remove_small_regions(m.data(), 5, 7, 5, amg::RegionMode::kHoles));
    EXPECT_EQ(m, std::vector<uint8_t>(35, 1));

    auto m2 = parse({"#######",
                     "#..####",
                     "#.#####",
                     "#####.#",
                     "#######"});
    // At threshold 3 only the 1-pixel hole is small (area 3 is not < 3).
    EXPECT_TRUE(amg::remove_small_regions(m2.data(), 5, 7, 3, amg::RegionMode::kHoles));
    EXPECT_EQ(m2, parse({"#######", "#..####", "#.#####", "#######", "#######"}));
    // Nothing small left: unchanged.
    EXPECT_FALSE(amg::remove_small_regions(m2.data(), 5, 7, 3, amg::RegionMode::kHoles));
}

TEST(AmgUtils, BackgroundTouchingTheBorderIsAHoleToo) {
    // The inverse's components include the outer background; a small one is filled like any hole.
    auto m = parse({"..###",
                    "#####",
                    "#####"});
    EXPECT_TRUE(amg::remove_small_regions(m.data(), 3, 5, 3, amg::RegionMode::kHoles));
    EXPECT_EQ(m, std::vector<uint8_t>(15, 1));
    // An all-zero mask is one hole of the whole image.
    std::vector<uint8_t> empty(6, 0);
    EXPECT_TRUE(amg::remove_small_regions(empty.data(), 2, 3, 7, amg::RegionMode::kHoles));
    EXPECT_EQ(empty, std::vector<uint8_t>(6, 1));
}

TEST(AmgUtils, RemovesSmallIslands) {
    auto m = parse({"####...",
                    "####..#",
                    "####...",
                    "......#",
                    ".....##"});
    EXPECT_TRUE(amg::remove_small_regions(m.data(), 5, 7, 4, amg::RegionMode::kIslands));
    EXPECT_EQ(m, parse({"####...", "####...", "####...", ".......", "......."}));
}

TEST(AmgUtils, DiagonalPixelsAreOneComponent) {
    // Four pixels touching only at corners: one 8-connected island of area 4, not < 4.
    auto m = parse({"#....",
                    ".#...",
                    "..#..",
                    "...#.",
                    "....."});
    const auto before = m;
    EXPECT_FALSE(amg::remove_small_regions(m.data(), 5, 5, 4, amg::RegionMode::kIslands));
    EXPECT_EQ(m, before);
    // The hole enclosed only diagonally is connected to the outside: not a hole.
    auto ring = parse({".#.",
                       "#.#",
                       ".#."});
    EXPECT_FALSE(amg::remove_small_regions(ring.data(), 3, 3, 5, amg::RegionMode::kHoles));
    // The centre and corners form one background component of area 5; at 6 it is filled.
    EXPECT_TRUE(amg::remove_small_regions(ring.data(), 3, 3, 6, amg::RegionMode::kHoles));
    EXPECT_EQ(ring, std::vector<uint8_t>(9, 1));
}

TEST(AmgUtils, AllIslandsSmallKeepsLargest) {
    auto m = parse({"##...#",
                    "##....",
                    "....##",
                    "#....."});
    EXPECT_TRUE(amg::remove_small_regions(m.data(), 4, 6, 100, amg::RegionMode::kIslands));
    EXPECT_EQ(m, parse({"##....", "##....", "......", "......"}));
    // A single island below the threshold stays, but the reference still reports a change.
    auto one = parse({"..", ".#"});
    EXPECT_TRUE(amg::remove_small_regions(one.data(), 2, 2, 5, amg::RegionMode::kIslands));
    EXPECT_EQ(one, parse({"..", ".#"}));
    // Equal sizes: the first in OpenCV's order (by 2x2 block, block rows first) wins. The right
    // island's first pixel comes first in pixel order, but the left one's block (0, 0) comes first.
    auto tie = parse({"....##",
                      "##....",
                      "......"});
    EXPECT_TRUE(amg::remove_small_regions(tie.data(), 3, 6, 10, amg::RegionMode::kIslands));
    EXPECT_EQ(tie, parse({"......", "##....", "......"}));
}

// The reference rule on a pixel-by-pixel BFS labelling, labels ordered as OpenCV orders them.
bool brute_remove(std::vector<uint8_t>& mask, int h, int w, double thresh, bool holes) {
    std::vector<int> label(mask.size(), -1);
    std::vector<int64_t> size, first_block;
    for (int r0 = 0; r0 < h; ++r0) {
        for (int c0 = 0; c0 < w; ++c0) {
            const auto i0 = static_cast<size_t>(r0 * w + c0);
            if ((mask[i0] != 0) == holes || label[i0] >= 0) continue;
            const int id = static_cast<int>(size.size());
            size.push_back(0);
            first_block.push_back(INT64_MAX);
            std::queue<std::pair<int, int>> q;
            q.push({r0, c0});
            label[i0] = id;
            while (!q.empty()) {
                const auto [r, c] = q.front();
                q.pop();
                ++size.back();
                first_block.back() = std::min<int64_t>(first_block.back(), (r / 2) * ((w + 1) / 2) + c / 2);
                for (int dr = -1; dr <= 1; ++dr) {
                    for (int dc = -1; dc <= 1; ++dc) {
                        const int rr = r + dr, cc = c + dc;
                        if (rr < 0 || rr >= h || cc < 0 || cc >= w) continue;
                        const auto j = static_cast<size_t>(rr * w + cc);
                        if ((mask[j] != 0) == holes || label[j] >= 0) continue;
                        label[j] = id;
                        q.push({rr, cc});
                    }
                }
            }
        }
    }
    // OpenCV label order.
    std::vector<int> order(size.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return first_block[a] < first_block[b]; });
    std::vector<int> small;
    for (int k : order) {
        if (static_cast<double>(size[static_cast<size_t>(k)]) < thresh) small.push_back(k);
    }
    if (small.empty()) return false;
    std::set<int> fill(small.begin(), small.end());  // plus label 0 = the non-working pixels
    bool keep_working_fill = holes;
    if (!holes) {
        std::set<int> rest;
        for (int k = 0; k < static_cast<int>(size.size()); ++k) {
            if (!fill.count(k)) rest.insert(k);
        }
        if (rest.empty()) {
            int best = order[0];
            for (int k : order) {
                if (size[static_cast<size_t>(k)] > size[static_cast<size_t>(best)]) best = k;
            }
            rest = {best};
        }
        fill = rest;
    }
    for (size_t i = 0; i < mask.size(); ++i) {
        mask[i] = label[i] < 0 ? keep_working_fill : fill.count(label[i]) > 0;
    }
    return true;
}

TEST(AmgUtils, RemoveSmallRegionsMatchesBruteForce) {
    std::mt19937 rng(9);
    for (int t = 0; t < 400; ++t) {
        const int h = 1 + static_cast<int>(rng() % 24), w = 1 + static_cast<int>(rng() % 24);
        std::bernoulli_distribution on(0.15 + 0.7 * (t % 7) / 6.0);
        std::vector<uint8_t> mask(static_cast<size_t>(h * w));
        for (auto& v : mask) v = on(rng);
        const double thresh = 1 + static_cast<double>(rng() % 12);
        for (bool holes : {true, false}) {
            auto got = mask, want = mask;
            const bool changed = amg::remove_small_regions(got.data(), h, w, thresh,
                                                           holes ? amg::RegionMode::kHoles : amg::RegionMode::kIslands);
            EXPECT_EQ(changed, brute_remove(want, h, w, thresh, holes)) << t;
            EXPECT_EQ(got, want) << t << (holes ? " holes" : " islands");
        }
    }
}

TEST(AmgUtils, CoordinateHelpers) {
    const amg::BoxXyxy crop = {696, 396, 1800, 1200};
    EXPECT_EQ(amg::uncrop_box_xyxy({1, 2, 3, 4}, crop), (amg::BoxXyxy{697, 398, 699, 400}));
    EXPECT_EQ(amg::uncrop_point({1.5, 2.25}, crop), (amg::Point{697.5, 398.25}));
    EXPECT_EQ(amg::box_xyxy_to_xywh({10, 20, 15, 40}), (amg::BoxXyxy{10, 20, 5, 20}));

    // uncrop_masks then mask_to_rle_pytorch, as the generator does it: the crop mask encoded in
    // place (rle_encode_placed), against the RLE of the mask pasted into the image.
    const std::vector<uint8_t> small = {1, 0, 0, 1, 1, 0};  // 2x3 crop at (1, 2) in a 5x4 image
    const std::vector<uint8_t> full = {0, 0, 0, 0,  //
                                       0, 0, 0, 0,  //
                                       0, 1, 0, 0,  //
                                       0, 1, 1, 0,  //
                                       0, 0, 0, 0};
    EXPECT_EQ(sam::rle_encode_placed(small.data(), 2, 3, 1, 2, 5, 4).counts, sam::rle_encode(full.data(), 5, 4).counts);
    EXPECT_THROW(sam::rle_encode_placed(small.data(), 2, 3, 2, 2, 5, 4), sam::InputError);
}

}  // namespace
