// JPEG encoding (src/io/jpeg_encode.h), as the video page's frames are sent: decodes back (with
// the project's decoder) to the same size and close to the source; bad input is an error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "io/jpeg_encode.h"
#include "sam/error.h"
#include "sam/image.h"
#include "test_util.h"

namespace sam {
namespace {

double mean_abs_difference(const Image& a, const Image& b) {
    double sum = 0;
    for (size_t i = 0; i < a.rgb.size(); ++i) sum += std::abs(int(a.rgb[i]) - int(b.rgb[i]));
    return sum / static_cast<double>(a.rgb.size());
}

TEST(JpegEncode, RoundTripsCloseToTheSource) {
    const Image src = read_image(test::data_path("images/dog.png"));
    double previous = 1e9;
    for (int quality : {50, 90, 100}) {
        const std::vector<uint8_t> bytes = encode_jpeg(src, quality);
        ASSERT_GT(bytes.size(), 2u);
        EXPECT_EQ(bytes[0], 0xFF);
        EXPECT_EQ(bytes[1], 0xD8);  // SOI
        const Image back = decode_image(bytes.data(), bytes.size(), "encoded");
        ASSERT_EQ(back.width, src.width);
        ASSERT_EQ(back.height, src.height);
        const double d = mean_abs_difference(src, back);
        EXPECT_LT(d, quality == 50 ? 8.0 : 4.0) << "quality " << quality;
        EXPECT_LT(d, previous) << "quality " << quality << " is no closer than a lower one";
        previous = d;
    }
    // Odd sizes (4:2:0 subsampling with a half block at the edge) and a single pixel.
    for (auto [w, h] : {std::pair{1, 1}, std::pair{3, 5}, std::pair{17, 9}}) {
        Image img;
        img.width = w;
        img.height = h;
        img.rgb.assign(static_cast<size_t>(w * h * 3), 0);
        for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<uint8_t>(40 + (i * 7) % 150);
        const std::vector<uint8_t> bytes = encode_jpeg(img, 95);
        const Image back = decode_image(bytes.data(), bytes.size(), "encoded");
        EXPECT_EQ(back.width, w);
        EXPECT_EQ(back.height, h);
    }
}

TEST(JpegEncode, BadInputIsAnError) {
    Image empty;
    EXPECT_THROW(encode_jpeg(empty), InputError);
    Image short_pixels;
    short_pixels.width = 4;
    short_pixels.height = 4;
    short_pixels.rgb.assign(10, 0);
    EXPECT_THROW(encode_jpeg(short_pixels), InputError);
    Image ok;
    ok.width = ok.height = 2;
    ok.rgb.assign(12, 128);
    EXPECT_THROW(encode_jpeg(ok, 0), InputError);
    EXPECT_THROW(encode_jpeg(ok, 101), InputError);
}

}  // namespace
}  // namespace sam
