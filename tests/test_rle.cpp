// RLE encoding against the reference's counts and COCO strings (tests/data/rle.json), and against
// brute force on random masks.
#include <gtest/gtest.h>

#include <fstream>
#include <ostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "amg_utils.h"
#include "sam/error.h"
#include "sam/rle.h"

namespace sam {
// Readable failure messages.
void PrintTo(const Rle& rle, std::ostream* os) {
    *os << rle.height << "x" << rle.width << " " << ::testing::PrintToString(rle.counts);
}
}  // namespace sam

namespace {

using sam::Rle;

nlohmann::json load_json(const std::string& name) {
    std::ifstream f(std::string(SAM_TEST_DATA) + "/" + name);
    EXPECT_TRUE(f.good()) << name;
    return nlohmann::json::parse(f);
}

std::vector<uint8_t> random_mask(std::mt19937& rng, int h, int w, double density) {
    std::bernoulli_distribution on(density);
    std::vector<uint8_t> m(static_cast<size_t>(h) * static_cast<size_t>(w));
    for (auto& v : m) v = on(rng);
    return m;
}

// Random masks of awkward shapes and densities, including all-zero and all-one.
std::vector<std::pair<std::array<int, 2>, std::vector<uint8_t>>> random_cases() {
    std::mt19937 rng(7);
    const std::vector<std::array<int, 2>> sizes = {{1, 1}, {1, 17}, {23, 1}, {2, 2},   {9, 8},
                                                   {64, 7}, {7, 130}, {65, 66}, {131, 97}};
    std::vector<std::pair<std::array<int, 2>, std::vector<uint8_t>>> cases;
    for (const auto& hw : sizes) {
        for (double density : {0.0, 1.0, 0.02, 0.5, 0.97}) {
            cases.push_back({hw, random_mask(rng, hw[0], hw[1], density)});
        }
        // Blocky masks: long runs that cross column ends.
        std::vector<uint8_t> m(static_cast<size_t>(hw[0]) * static_cast<size_t>(hw[1]));
        for (int r = 0; r < hw[0]; ++r) {
            for (int c = 0; c < hw[1]; ++c) m[static_cast<size_t>(r * hw[1] + c)] = (c / 3 + r / 5) % 2;
        }
        cases.push_back({hw, m});
    }
    return cases;
}

// Column-major runs by brute force, the definition of the counts.
std::vector<uint32_t> brute_counts(const std::vector<uint8_t>& m, int h, int w) {
    std::vector<uint32_t> counts;
    uint8_t cur = 0;
    uint32_t len = 0;
    for (int c = 0; c < w; ++c) {
        for (int r = 0; r < h; ++r) {
            const uint8_t v = m[static_cast<size_t>(r * w + c)] != 0;
            if (v != cur) {
                counts.push_back(len);
                cur = v;
                len = 0;
            }
            ++len;
        }
    }
    counts.push_back(len);
    return counts;
}

TEST(Rle, MatchesReferenceFixture) {
    const auto cases = load_json("rle.json");
    ASSERT_FALSE(cases.empty());
    for (const auto& c : cases) {
        const int h = c["h"], w = c["w"];
        const auto mask = c["mask_row_major"].get<std::vector<uint8_t>>();
        const auto counts = c["counts"].get<std::vector<uint32_t>>();
        const std::string str = c["string"];
        SCOPED_TRACE(std::to_string(h) + "x" + std::to_string(w));

        const Rle rle = sam::rle_encode(mask.data(), h, w);
        EXPECT_EQ(rle.height, h);
        EXPECT_EQ(rle.width, w);
        EXPECT_EQ(rle.counts, counts);
        EXPECT_EQ(sam::rle_to_coco_string(rle), str);
        EXPECT_EQ(sam::rle_from_coco_string(str, h, w), rle);
        EXPECT_EQ(sam::rle_decode(rle), mask);
        int64_t area = 0;
        for (uint8_t v : mask) area += v;
        EXPECT_EQ(sam::rle_area(rle), area);
    }
}

TEST(Rle, RandomMasksRoundTrip) {
    for (const auto& [hw, mask] : random_cases()) {
        const int h = hw[0], w = hw[1];
        SCOPED_TRACE(std::to_string(h) + "x" + std::to_string(w));
        const Rle rle = sam::rle_encode(mask.data(), h, w);
        EXPECT_EQ(rle.counts, brute_counts(mask, h, w));
        EXPECT_EQ(sam::rle_decode(rle), mask);
        EXPECT_EQ(sam::rle_from_coco_string(sam::rle_to_coco_string(rle), h, w), rle);
        int64_t area = 0;
        for (uint8_t v : mask) area += v;
        EXPECT_EQ(sam::rle_area(rle), area);
        // The box from the runs is the box from the pixels.
        EXPECT_EQ(sam::rle_to_box_xyxy(rle), sam::amg::mask_to_box(mask.data(), h, w));
    }
}

TEST(Rle, NonZeroBytesCountAsSet) {
    const std::vector<uint8_t> mask = {0, 255, 7, 0, 1, 0};  // 2x3
    EXPECT_EQ(sam::rle_encode(mask.data(), 2, 3).counts, (std::vector<uint32_t>{2, 3, 1}));  // 0 0 | 1 1 | 1 0
}

TEST(Rle, EmptyImageHasNoCounts) {
    const Rle rle = sam::rle_encode(nullptr, 0, 5);
    EXPECT_TRUE(rle.counts.empty());
    EXPECT_TRUE(sam::rle_decode(rle).empty());
    EXPECT_EQ(sam::rle_to_coco_string(rle), "");
    EXPECT_EQ(sam::rle_from_coco_string("", 0, 5), rle);
}

// The reference's uncrop_masks: the crop mask pasted into an all-zero image (the oracle).
std::vector<uint8_t> paste_crop(const std::vector<uint8_t>& mask, const sam::amg::BoxXyxy& crop, int full_h,
                                int full_w) {
    std::vector<uint8_t> full(static_cast<size_t>(full_h) * full_w, 0);
    const int w = crop[2] - crop[0];
    for (int y = crop[1]; y < crop[3]; ++y)
        for (int x = crop[0]; x < crop[2]; ++x)
            full[static_cast<size_t>(y) * full_w + x] = mask[static_cast<size_t>(y - crop[1]) * w + (x - crop[0])];
    return full;
}

TEST(Rle, PlacedEncodingEqualsEncodingOfUncroppedMask) {
    std::mt19937 rng(11);
    const int full_h = 37, full_w = 53;
    for (const sam::amg::BoxXyxy& crop : std::vector<sam::amg::BoxXyxy>{
             {0, 0, 53, 37}, {0, 0, 20, 15}, {10, 5, 53, 37}, {7, 9, 8, 30}, {52, 36, 53, 37}, {0, 3, 53, 4}}) {
        const int h = crop[3] - crop[1], w = crop[2] - crop[0];
        const auto mask = random_mask(rng, h, w, 0.5);
        const auto full = paste_crop(mask, crop, full_h, full_w);
        EXPECT_EQ(sam::rle_encode_placed(mask.data(), h, w, crop[0], crop[1], full_h, full_w),
                  sam::rle_encode(full.data(), full_h, full_w));
    }
    const std::vector<uint8_t> one = {1};
    EXPECT_THROW(sam::rle_encode_placed(one.data(), 1, 1, 5, 0, 4, 5), sam::InputError);
}

TEST(Rle, IouMatchesBruteForce) {
    std::mt19937 rng(3);
    for (const auto& [hw, a] : random_cases()) {
        const int h = hw[0], w = hw[1];
        for (double density : {0.0, 0.3, 1.0}) {
            const auto b = random_mask(rng, h, w, density);
            int64_t inter = 0, uni = 0;
            for (size_t i = 0; i < a.size(); ++i) {
                inter += a[i] && b[i];
                uni += a[i] || b[i];
            }
            const double want = uni > 0 ? static_cast<double>(inter) / static_cast<double>(uni) : 0.0;
            const Rle ra = sam::rle_encode(a.data(), h, w), rb = sam::rle_encode(b.data(), h, w);
            EXPECT_DOUBLE_EQ(sam::rle_iou(ra, rb), want) << h << "x" << w << " density " << density;
            EXPECT_DOUBLE_EQ(sam::rle_iou(rb, ra), want);
        }
    }
    const Rle full = sam::rle_encode(std::vector<uint8_t>(6, 1).data(), 2, 3);
    EXPECT_DOUBLE_EQ(sam::rle_iou(full, full), 1.0);
    EXPECT_THROW(sam::rle_iou(full, sam::rle_encode(std::vector<uint8_t>(6, 1).data(), 3, 2)), sam::InputError);
}

TEST(Rle, MalformedCocoStringsThrow) {
    // 2x2 image: counts must sum to 4.
    EXPECT_THROW(sam::rle_from_coco_string("01", 2, 2), sam::InputError);        // sums to 1
    EXPECT_NO_THROW(sam::rle_from_coco_string("4", 2, 2));                       // 4 zeros
    EXPECT_NO_THROW(sam::rle_from_coco_string("04", 2, 2));                      // 0 zeros, 4 ones
    EXPECT_THROW(sam::rle_from_coco_string("0P", 2, 2), sam::InputError);        // continuation at end
    EXPECT_THROW(sam::rle_from_coco_string("/", 2, 2), sam::InputError);         // below '0'
    EXPECT_THROW(sam::rle_from_coco_string("p", 2, 2), sam::InputError);         // above 'o'
    EXPECT_THROW(sam::rle_from_coco_string(std::string("0\0", 2), 2, 2), sam::InputError);
    EXPECT_THROW(sam::rle_from_coco_string("\xff", 2, 2), sam::InputError);
    EXPECT_THROW(sam::rle_from_coco_string("@", 2, 2), sam::InputError);         // -16
    EXPECT_THROW(sam::rle_from_coco_string("PPPPPP8", 2, 2), sam::InputError);   // 2**33
    EXPECT_THROW(sam::rle_from_coco_string("PPPPPPPPPPPPPPPPPPPP0", 2, 2), sam::InputError);
    EXPECT_THROW(sam::rle_from_coco_string("0", -1, 2), sam::InputError);
    EXPECT_THROW(sam::rle_decode(Rle{2, 2, {1, 1}}), sam::InputError);
}

TEST(Rle, RandomStringsNeverCrash) {
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> len(0, 12), byte(0, 255), coco(48, 48 + 63);
    for (int t = 0; t < 20000; ++t) {
        std::string s(static_cast<size_t>(len(rng)), '0');
        for (auto& ch : s) ch = static_cast<char>(t % 4 == 0 ? byte(rng) : coco(rng));
        const int h = 1 + t % 7, w = 1 + t % 5;
        try {
            const Rle rle = sam::rle_from_coco_string(s, h, w);
            EXPECT_EQ(sam::rle_decode(rle).size(), static_cast<size_t>(h * w));
        } catch (const sam::InputError&) {
        }
    }
}

}  // namespace
