// ResizeLongestSide and preprocessing against the reference fixtures (resized_*.npy: Pillow's
// bilinear resize, which must match with 0 differing bytes).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sam/error.h"
#include "sam/image.h"
#include "sam/npy.h"
#include "transforms.h"

namespace {

const std::string kData = SAM_TEST_DATA;

nlohmann::json manifest() {
    std::ifstream in(kData + "/manifest.json");
    return nlohmann::json::parse(in);
}

}  // namespace

TEST(Transforms, PreprocessShapeMatchesManifest) {
    const nlohmann::json m = manifest();
    ASSERT_EQ(m["images"].size(), 4u);
    for (const auto& [name, e] : m["images"].items()) {
        const auto [h, w] = sam::preprocess_shape(e["height"].get<int>(), e["width"].get<int>(), 1024);
        EXPECT_EQ(h, e["input_size"][0].get<int>()) << name;
        EXPECT_EQ(w, e["input_size"][1].get<int>()) << name;
    }
    EXPECT_EQ(sam::preprocess_shape(1200, 1800, 1024), std::make_pair(683, 1024));  // 682.67 rounds up
    EXPECT_EQ(sam::preprocess_shape(1024, 1024, 1024), std::make_pair(1024, 1024));
    EXPECT_EQ(sam::preprocess_shape(3000, 10, 1024), std::make_pair(1024, 3));     // 3.41
}

TEST(Transforms, ResizeMatchesReferenceByteForByte) {
    const nlohmann::json m = manifest();
    ASSERT_EQ(m["images"].size(), 4u);
    for (const auto& [name, e] : m["images"].items()) {
        const sam::Image img = sam::read_image(kData + "/" + e["png"].get<std::string>());
        const sam::Image resized = sam::resize_longest_side(img, 1024);
        const sam::NpyArray want = sam::read_npy(kData + "/" + e["resized"].get<std::string>());
        ASSERT_EQ(want.descr, "|u1") << name;
        ASSERT_EQ(want.shape, (sam::Shape{resized.height, resized.width, 3})) << name;
        ASSERT_EQ(want.bytes.size(), resized.rgb.size()) << name;
        size_t differing = 0;
        for (size_t i = 0; i < want.bytes.size(); ++i) differing += want.bytes[i] != resized.rgb[i];
        EXPECT_EQ(differing, 0u) << name << ": " << differing << " of " << want.bytes.size() << " bytes differ";
    }
}

TEST(Transforms, ResizeEdgeCases) {
    sam::Image img;
    img.width = 5;
    img.height = 3;
    img.rgb.assign(5 * 3 * 3, 77);
    // Same size: unchanged. Uniform input stays uniform when shrinking or enlarging.
    EXPECT_EQ(sam::resize_bilinear_pillow(img, 5, 3).rgb, img.rgb);
    for (auto [w, h] : {std::pair{1, 1}, std::pair{2, 7}, std::pair{13, 3}, std::pair{40, 1}}) {
        const sam::Image r = sam::resize_bilinear_pillow(img, w, h);
        ASSERT_EQ(r.rgb.size(), static_cast<size_t>(w) * h * 3);
        for (uint8_t v : r.rgb) EXPECT_EQ(v, 77);
    }
    EXPECT_THROW(sam::resize_bilinear_pillow(img, 0, 3), sam::InputError);
    EXPECT_THROW(sam::resize_bilinear_pillow(sam::Image{}, 4, 4), sam::InputError);
}

TEST(Transforms, PreprocessNormalisesAndPads) {
    const sam::Image img = sam::read_image(kData + "/images/synthetic.png");  // 301x173
    const sam::Image resized = sam::resize_longest_side(img, 1024);
    const sam::Preprocessed p = sam::preprocess(img);
    ASSERT_EQ(p.input.shape(), (sam::Shape{1, 3, 1024, 1024}));
    EXPECT_EQ(p.input_h, 589);
    EXPECT_EQ(p.input_w, 1024);
    const float mean[3] = {123.675f, 116.28f, 103.53f}, stdev[3] = {58.395f, 57.12f, 57.375f};
    auto at = [&](int c, int y, int x) { return p.input[(static_cast<int64_t>(c) * 1024 + y) * 1024 + x]; };
    for (auto [y, x] : {std::pair{0, 0}, std::pair{100, 500}, std::pair{588, 1023}, std::pair{300, 7}}) {
        for (int c = 0; c < 3; ++c) {
            const float v = resized.rgb[(static_cast<size_t>(y) * resized.width + x) * 3 + c];
            EXPECT_EQ(at(c, y, x), (v - mean[c]) / stdev[c]) << y << "," << x << "," << c;
        }
    }
    // Everything below the image is zero padding.
    for (int c = 0; c < 3; ++c) {
        for (int y = 589; y < 1024; y += 17) {
            for (int x = 0; x < 1024; x += 31) EXPECT_EQ(at(c, y, x), 0.0f);
        }
        EXPECT_EQ(at(c, 1023, 1023), 0.0f);
    }
}

TEST(Transforms, PreprocessPadsRightForPortraitImages) {
    sam::Image img;
    img.width = 2;
    img.height = 4;
    img.rgb.assign(2 * 4 * 3, 255);
    const sam::Preprocessed p = sam::preprocess(img, 16);
    EXPECT_EQ(p.input_h, 16);
    EXPECT_EQ(p.input_w, 8);
    EXPECT_FLOAT_EQ(p.input[0], (255.0f - 123.675f) / 58.395f);
    EXPECT_EQ(p.input[8], 0.0f);         // first padded column of row 0, channel 0
    EXPECT_EQ(p.input[2 * 256 + 15], 0.0f);
}

TEST(Transforms, ApplyCoordsAndBoxes) {
    // 1800x1200 -> 1024x683
    float pts[4] = {900.0f, 600.0f, 1800.0f, 0.0f};
    sam::apply_coords(pts, 2, 1200, 1800, 1024);
    EXPECT_FLOAT_EQ(pts[0], 512.0f);
    EXPECT_FLOAT_EQ(pts[1], 341.5f);
    EXPECT_FLOAT_EQ(pts[2], 1024.0f);
    EXPECT_FLOAT_EQ(pts[3], 0.0f);
    float box[4] = {0.0f, 1200.0f, 450.0f, 300.0f};
    sam::apply_boxes(box, 1, 1200, 1800, 1024);
    EXPECT_FLOAT_EQ(box[0], 0.0f);
    EXPECT_FLOAT_EQ(box[1], 683.0f);
    EXPECT_FLOAT_EQ(box[2], 256.0f);
    EXPECT_FLOAT_EQ(box[3], 170.75f);
}
