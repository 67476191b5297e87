// Image decoding (imread colour semantics), EXIF orientation, errors, PNG round trips.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

#include "hostile_images.h"
#include "sam/error.h"
#include "sam/image.h"

namespace fs = std::filesystem;

namespace {

const std::string kData = SAM_TEST_DATA;

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A fresh directory for files a test writes, removed afterwards.
class TempDir {
  public:
    TempDir() {
        path_ = fs::temp_directory_path() /
                ("sam_test_image_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(path_);
    }
    ~TempDir() { fs::remove_all(path_); }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

  private:
    fs::path path_;
};

// Expects `fn` to throw sam::ImageError whose message contains every one of `parts`.
template <class Fn>
void expect_image_error(Fn fn, const std::vector<std::string>& parts) {
    try {
        fn();
        ADD_FAILURE() << "no ImageError thrown";
    } catch (const sam::ImageError& e) {
        for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
}

// Encodes RGB (or, with channels = 1, grey) pixels as a baseline JPEG; `app1` (if not empty)
// is written as an APP1 segment.
std::vector<uint8_t> encode_jpeg(const std::vector<uint8_t>& rgb, int w, int h, const std::vector<uint8_t>& app1 = {},
                                 int quality = 95, int channels = 3) {
    jpeg_compress_struct c{};
    jpeg_error_mgr err{};
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char* buf = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &buf, &size);
    c.image_width = static_cast<JDIMENSION>(w);
    c.image_height = static_cast<JDIMENSION>(h);
    c.input_components = channels;
    c.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    if (!app1.empty()) jpeg_write_marker(&c, JPEG_APP0 + 1, app1.data(), static_cast<unsigned>(app1.size()));
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = const_cast<uint8_t*>(&rgb[static_cast<size_t>(c.next_scanline) * w * channels]);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    std::vector<uint8_t> out(buf, buf + size);
    std::free(buf);
    return out;
}

// An Exif APP1 payload holding only IFD0 with one Orientation (0x0112, SHORT) entry.
std::vector<uint8_t> exif_orientation_segment(int orientation, bool big_endian) {
    std::vector<uint8_t> d = {'E', 'x', 'i', 'f', 0, 0};
    auto u16 = [&](unsigned v) {
        if (big_endian) {
            d.push_back(static_cast<uint8_t>(v >> 8));
            d.push_back(static_cast<uint8_t>(v));
        } else {
            d.push_back(static_cast<uint8_t>(v));
            d.push_back(static_cast<uint8_t>(v >> 8));
        }
    };
    auto u32 = [&](uint32_t v) {
        if (big_endian) {
            u16(v >> 16);
            u16(v & 0xffff);
        } else {
            u16(v & 0xffff);
            u16(v >> 16);
        }
    };
    d.push_back(big_endian ? 'M' : 'I');  // byte order mark: "MM" or "II"
    d.push_back(d.back());
    u16(42);  // TIFF magic
    u32(8);   // IFD0 right after the 8-byte TIFF header
    u16(1);   // one entry
    u16(0x0112);
    u16(3);   // SHORT
    u32(1);   // one value, stored in the first 2 of the 4 value bytes
    u16(static_cast<unsigned>(orientation));
    u16(0);
    u32(0);   // no next IFD
    return d;
}

// A 64x32 image with four flat quadrants: red top-left, green top-right, blue bottom-left,
// white bottom-right.
constexpr int kQuadW = 64, kQuadH = 32;
enum Colour { kRed, kGreen, kBlue, kWhite };
const uint8_t kColours[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};

std::vector<uint8_t> quadrant_image() {
    std::vector<uint8_t> rgb(static_cast<size_t>(kQuadW) * kQuadH * 3);
    for (int y = 0; y < kQuadH; ++y) {
        for (int x = 0; x < kQuadW; ++x) {
            const int q = (y >= kQuadH / 2 ? 2 : 0) + (x >= kQuadW / 2 ? 1 : 0);
            std::memcpy(&rgb[(static_cast<size_t>(y) * kQuadW + x) * 3], kColours[q], 3);
        }
    }
    return rgb;
}

// Checks the colours at the centres of the four quadrants of `img` (TL, TR, BL, BR).
void expect_quadrants(const sam::Image& img, const std::array<Colour, 4>& want) {
    const int cx[2] = {img.width / 4, img.width * 3 / 4}, cy[2] = {img.height / 4, img.height * 3 / 4};
    for (int q = 0; q < 4; ++q) {
        const uint8_t* p = &img.rgb[(static_cast<size_t>(cy[q / 2]) * img.width + cx[q % 2]) * 3];
        for (int c = 0; c < 3; ++c) {
            EXPECT_NEAR(p[c], kColours[want[q]][c], 40) << "quadrant " << q << " channel " << c;
        }
    }
}

// Standard CRC-32 (as PNG chunks use), for patching a chunk in a test.
uint32_t crc32(const uint8_t* p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; ++i) {
        c ^= p[i];
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

void put_be32(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 24);
    p[1] = static_cast<uint8_t>(v >> 16);
    p[2] = static_cast<uint8_t>(v >> 8);
    p[3] = static_cast<uint8_t>(v);
}

}  // namespace

TEST(Image, DecodesFixturePngs) {
    const auto manifest = nlohmann::json::parse(read_bytes(kData + "/manifest.json"));
    for (const auto& [name, entry] : manifest["images"].items()) {
        const sam::Image img = sam::read_image(kData + "/" + entry["png"].get<std::string>());
        EXPECT_EQ(img.width, entry["width"].get<int>()) << name;
        EXPECT_EQ(img.height, entry["height"].get<int>()) << name;
        EXPECT_EQ(img.rgb.size(), static_cast<size_t>(img.width) * img.height * 3) << name;
    }
}

TEST(Image, RealJpegMatchesReferenceDecode) {
    // images/dog.png is the reference's imread of dog.jpg (BGR->RGB): the decode must be exact.
    const sam::Image jpg = sam::read_image(kData + "/images/dog.jpg");
    const sam::Image png = sam::read_image(kData + "/images/dog.png");
    ASSERT_EQ(jpg.width, png.width);
    ASSERT_EQ(jpg.height, png.height);
    size_t differing = 0;
    for (size_t i = 0; i < jpg.rgb.size(); ++i) differing += jpg.rgb[i] != png.rgb[i];
    EXPECT_EQ(differing, 0u);
}

TEST(Image, DecodeFromMemoryMatchesFile) {
    const std::string path = kData + "/images/synthetic.png";
    const std::vector<uint8_t> bytes = read_bytes(path);
    const sam::Image a = sam::read_image(path);
    const sam::Image b = sam::decode_image(bytes.data(), bytes.size(), "upload");
    EXPECT_EQ(a.width, b.width);
    EXPECT_EQ(a.height, b.height);
    EXPECT_EQ(a.rgb, b.rgb);
}

TEST(Image, PngRoundTripAllChannelCounts) {
    TempDir dir;
    const int w = 7, h = 5;
    for (int channels : {1, 3, 4}) {
        std::vector<uint8_t> px(static_cast<size_t>(w) * h * channels);
        for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 37 + 11);
        const std::string path = dir.file("rt" + std::to_string(channels) + ".png");
        sam::write_png(path, px.data(), w, h, channels);
        const sam::Image img = sam::read_image(path);
        ASSERT_EQ(img.width, w);
        ASSERT_EQ(img.height, h);
        for (int i = 0; i < w * h; ++i) {
            for (int c = 0; c < 3; ++c) {
                // Grey gives 3 equal channels; RGBA loses its alpha, nothing composited.
                const uint8_t want = channels == 1 ? px[static_cast<size_t>(i)] : px[static_cast<size_t>(i) * channels + c];
                ASSERT_EQ(img.rgb[static_cast<size_t>(i) * 3 + c], want) << "channels " << channels << " pixel " << i;
            }
        }
        // The in-memory encoder writes the same bytes as the file writer.
        EXPECT_EQ(sam::encode_png(px.data(), w, h, channels), read_bytes(path));
    }
}

TEST(Image, GreyPngGivesThreeEqualChannels) {
    const uint8_t grey[6] = {0, 40, 80, 120, 200, 255};
    const std::vector<uint8_t> png = sam::encode_png(grey, 3, 2, 1);
    const sam::Image img = sam::decode_image(png.data(), png.size(), "grey.png");
    ASSERT_EQ(img.rgb.size(), 18u);
    for (int i = 0; i < 6; ++i) {
        for (int c = 0; c < 3; ++c) EXPECT_EQ(img.rgb[static_cast<size_t>(i) * 3 + c], grey[i]);
    }
}

TEST(Image, RgbaAlphaIsDroppedNotComposited) {
    const uint8_t rgba[8] = {10, 20, 30, 0, 200, 100, 50, 128};  // transparent, half-transparent
    const std::vector<uint8_t> png = sam::encode_png(rgba, 2, 1, 4);
    const sam::Image img = sam::decode_image(png.data(), png.size(), "rgba.png");
    EXPECT_EQ(img.rgb, (std::vector<uint8_t>{10, 20, 30, 200, 100, 50}));
}

TEST(Image, SixteenBitPngKeepsHighByte) {
    // encode_png writes 8-bit only, so build a 1x2 16-bit grey PNG by hand: IDAT is a zlib
    // stream with one stored block holding two filter-0 rows, 0x1234 and 0xABFF.
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    auto chunk = [&](const char* type, const std::vector<uint8_t>& data) {
        uint8_t len[4];
        put_be32(len, static_cast<uint32_t>(data.size()));
        png.insert(png.end(), len, len + 4);
        std::vector<uint8_t> body(type, type + 4);
        body.insert(body.end(), data.begin(), data.end());
        png.insert(png.end(), body.begin(), body.end());
        uint8_t crc[4];
        put_be32(crc, crc32(body.data(), body.size()));
        png.insert(png.end(), crc, crc + 4);
    };
    chunk("IHDR", {0, 0, 0, 1, 0, 0, 0, 2, 16, 0, 0, 0, 0});  // 1x2, 16-bit, grey
    const std::vector<uint8_t> raw = {0, 0x12, 0x34, 0, 0xAB, 0xFF};
    // zlib stream: header, one stored block, Adler-32
    std::vector<uint8_t> z = {0x78, 0x01, 0x01, static_cast<uint8_t>(raw.size()), 0,
                              static_cast<uint8_t>(~raw.size()), 0xff};
    z.insert(z.end(), raw.begin(), raw.end());
    uint32_t a = 1, b = 0;
    for (uint8_t v : raw) {
        a = (a + v) % 65521;
        b = (b + a) % 65521;
    }
    uint8_t adler[4];
    put_be32(adler, (b << 16) | a);
    z.insert(z.end(), adler, adler + 4);
    chunk("IDAT", z);
    chunk("IEND", {});
    const sam::Image img = sam::decode_image(png.data(), png.size(), "grey16.png");
    ASSERT_EQ(img.width, 1);
    ASSERT_EQ(img.height, 2);
    EXPECT_EQ(img.rgb, (std::vector<uint8_t>{0x12, 0x12, 0x12, 0xAB, 0xAB, 0xAB}));
}

TEST(Image, JpegWithoutExifIsUpright) {
    const std::vector<uint8_t> jpg = encode_jpeg(quadrant_image(), kQuadW, kQuadH);
    const sam::Image img = sam::decode_image(jpg.data(), jpg.size(), "plain.jpg");
    ASSERT_EQ(img.width, kQuadW);
    ASSERT_EQ(img.height, kQuadH);
    expect_quadrants(img, {kRed, kGreen, kBlue, kWhite});
}

TEST(Image, JpegExifOrientationIsApplied) {
    struct Case {
        int orientation;
        bool transposed;
        std::array<Colour, 4> want;  // TL, TR, BL, BR as displayed
    };
    const Case cases[] = {
        {1, false, {kRed, kGreen, kBlue, kWhite}},
        {2, false, {kGreen, kRed, kWhite, kBlue}},   // mirrored left-right
        {3, false, {kWhite, kBlue, kGreen, kRed}},   // rotated 180
        {4, false, {kBlue, kWhite, kRed, kGreen}},   // mirrored top-bottom
        {5, true, {kRed, kBlue, kGreen, kWhite}},    // transposed
        {6, true, {kBlue, kRed, kWhite, kGreen}},    // rotated 90 clockwise
        {7, true, {kWhite, kGreen, kBlue, kRed}},    // transverse
        {8, true, {kGreen, kWhite, kRed, kBlue}},    // rotated 90 anticlockwise
    };
    for (const Case& c : cases) {
        for (bool big_endian : {false, true}) {
            SCOPED_TRACE("orientation " + std::to_string(c.orientation) + (big_endian ? " MM" : " II"));
            const std::vector<uint8_t> jpg =
                encode_jpeg(quadrant_image(), kQuadW, kQuadH, exif_orientation_segment(c.orientation, big_endian));
            const sam::Image img = sam::decode_image(jpg.data(), jpg.size(), "exif.jpg");
            ASSERT_EQ(img.width, c.transposed ? kQuadH : kQuadW);
            ASSERT_EQ(img.height, c.transposed ? kQuadW : kQuadH);
            expect_quadrants(img, c.want);
        }
    }
}

TEST(Image, GreyJpegGivesThreeEqualChannels) {
    std::vector<uint8_t> grey(16 * 16);
    for (size_t i = 0; i < grey.size(); ++i) grey[i] = static_cast<uint8_t>((i % 16) * 16 + i / 16);
    const std::vector<uint8_t> jpg = encode_jpeg(grey, 16, 16, {}, 75, /*channels=*/1);
    const sam::Image img = sam::decode_image(jpg.data(), jpg.size(), "grey.jpg");
    ASSERT_EQ(img.width, 16);
    for (size_t i = 0; i < img.rgb.size(); i += 3) {
        EXPECT_EQ(img.rgb[i], img.rgb[i + 1]);
        EXPECT_EQ(img.rgb[i], img.rgb[i + 2]);
    }
}

TEST(Image, TruncatedPngIsAnError) {
    TempDir dir;
    std::vector<uint8_t> bytes = read_bytes(kData + "/images/dog.png");
    for (size_t keep : {bytes.size() / 2, bytes.size() - 13, size_t{40}, size_t{10}}) {
        SCOPED_TRACE("kept " + std::to_string(keep) + " bytes");
        const std::string path = dir.file("cut.png");
        write_bytes(path, std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(keep)));
        expect_image_error([&] { sam::read_image(path); }, {path, "PNG"});
    }
}

TEST(Image, TruncatedJpegIsAnError) {
    // Noise-like content so the entropy-coded data is long.
    const int w = 128, h = 96;
    std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
    uint32_t s = 12345;
    for (auto& v : rgb) {
        s = s * 1664525u + 1013904223u;
        v = static_cast<uint8_t>(s >> 24);
    }
    const std::vector<uint8_t> jpg = encode_jpeg(rgb, w, h);
    ASSERT_NO_THROW(sam::decode_image(jpg.data(), jpg.size(), "whole.jpg"));
    TempDir dir;
    for (size_t keep : {jpg.size() * 3 / 4, jpg.size() / 2, jpg.size() - 2, size_t{300}, size_t{4}}) {
        SCOPED_TRACE("kept " + std::to_string(keep) + " bytes");
        const std::string path = dir.file("cut.jpg");
        write_bytes(path, std::vector<uint8_t>(jpg.begin(), jpg.begin() + static_cast<ptrdiff_t>(keep)));
        expect_image_error([&] { sam::read_image(path); }, {path, "JPEG"});
    }
}

TEST(Image, TruncatedRealJpegIsAnError) {
    const std::vector<uint8_t> jpg = read_bytes(kData + "/images/dog.jpg");
    for (size_t keep : {jpg.size() / 3, jpg.size() - 100}) {
        SCOPED_TRACE("kept " + std::to_string(keep) + " bytes");
        expect_image_error([&] { sam::decode_image(jpg.data(), keep, "dog_cut.jpg"); }, {"dog_cut.jpg", "JPEG"});
    }
}

TEST(Image, GarbageAndMissingFilesAreErrors) {
    const std::vector<uint8_t> garbage = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'};
    expect_image_error([&] { sam::decode_image(garbage.data(), garbage.size(), "garbage.bin"); },
                       {"garbage.bin", "unknown image format"});
    expect_image_error([&] { sam::decode_image(garbage.data(), 0, "empty.png"); }, {"empty.png", "empty"});
    // Right signatures, garbage after them.
    std::vector<uint8_t> fake_png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    fake_png.insert(fake_png.end(), garbage.begin(), garbage.end());
    expect_image_error([&] { sam::decode_image(fake_png.data(), fake_png.size(), "fake.png"); }, {"fake.png"});
    std::vector<uint8_t> fake_jpg = {0xFF, 0xD8, 0xFF};
    fake_jpg.insert(fake_jpg.end(), garbage.begin(), garbage.end());
    expect_image_error([&] { sam::decode_image(fake_jpg.data(), fake_jpg.size(), "fake.jpg"); }, {"fake.jpg"});
    const std::string missing = kData + "/images/no_such_image.png";
    expect_image_error([&] { sam::read_image(missing); }, {missing, "cannot open"});
    expect_image_error([&] { sam::read_image(kData + "/images"); }, {kData + "/images"});
}

TEST(Image, DecompressionBombsAreRefused) {
    // A valid 1x1 PNG whose IHDR is patched to 20000x20000 (4e8 pixels > 2^28).
    const uint8_t px[3] = {1, 2, 3};
    std::vector<uint8_t> png = sam::encode_png(px, 1, 1, 3);
    ASSERT_EQ(std::memcmp(&png[12], "IHDR", 4), 0);
    put_be32(&png[16], 20000);
    put_be32(&png[20], 20000);
    put_be32(&png[29], crc32(&png[12], 17));
    expect_image_error([&] { sam::decode_image(png.data(), png.size(), "bomb.png"); },
                       {"bomb.png", "20000x20000", "decompression bomb"});

    // A JPEG whose SOF0 frame header is patched to 20000x20000.
    std::vector<uint8_t> jpg = encode_jpeg(quadrant_image(), kQuadW, kQuadH);
    size_t sof = 2;
    while (sof + 9 < jpg.size() && !(jpg[sof] == 0xFF && jpg[sof + 1] == 0xC0)) ++sof;
    ASSERT_LT(sof + 9, jpg.size());
    jpg[sof + 5] = jpg[sof + 7] = static_cast<uint8_t>(20000 >> 8);
    jpg[sof + 6] = jpg[sof + 8] = static_cast<uint8_t>(20000 & 0xff);
    expect_image_error([&] { sam::decode_image(jpg.data(), jpg.size(), "bomb.jpg"); },
                       {"bomb.jpg", "decompression bomb"});
}

// ImageLimits: the size from the header, before any pixel is decoded; the scans as they come.
TEST(Image, PixelLimitIsCheckedFromTheHeader) {
    // ~33 KB of PNG for 16384 x 16384 pixels (2^28, within kMaxImagePixels).
    const std::string bomb = sam::test::pixel_bomb_png(16384, 16384);
    EXPECT_LT(bomb.size(), size_t{64} << 10);
    sam::ImageLimits limits;
    limits.max_pixels = 40'000'000;
    const auto* bytes = reinterpret_cast<const uint8_t*>(bomb.data());
    EXPECT_THROW(sam::decode_image(bytes, bomb.size(), "bomb.png", limits), sam::ImageTooLargeError);
    expect_image_error([&] { sam::decode_image(bytes, bomb.size(), "bomb.png", limits); },
                       {"bomb.png", "16384x16384", "268435456 pixels", "40000000"});
    // The same kind of file, small, decodes; a real image over a small limit does not.
    const std::string small = sam::test::pixel_bomb_png(64, 32);
    const sam::Image img = sam::decode_image(reinterpret_cast<const uint8_t*>(small.data()), small.size(), "s.png", limits);
    EXPECT_EQ(img.width, 64);
    EXPECT_EQ(img.height, 32);
    limits.max_pixels = kQuadW * kQuadH - 1;
    std::vector<uint8_t> jpg = encode_jpeg(quadrant_image(), kQuadW, kQuadH);
    EXPECT_THROW(sam::decode_image(jpg.data(), jpg.size(), "q.jpg", limits), sam::ImageTooLargeError);
    limits.max_pixels = kQuadW * kQuadH;
    EXPECT_EQ(sam::decode_image(jpg.data(), jpg.size(), "q.jpg", limits).width, kQuadW);
}

TEST(Image, ProgressiveJpegScansAreLimited) {
    const std::string jpg = sam::test::many_scans_jpeg();  // 190 scans
    const auto* bytes = reinterpret_cast<const uint8_t*>(jpg.data());
    expect_image_error([&] { sam::decode_image(bytes, jpg.size(), "scans.jpg"); },
                       {"scans.jpg", "more than 100 scans"});
    sam::ImageLimits limits;
    limits.max_jpeg_scans = 190;
    const sam::Image img = sam::decode_image(bytes, jpg.size(), "scans.jpg", limits);
    EXPECT_EQ(img.width, 16);
    EXPECT_EQ(img.height, 16);
}

TEST(Image, EncodeRejectsBadArguments) {
    const uint8_t px[4] = {};
    EXPECT_THROW(sam::encode_png(px, 1, 1, 2), sam::InputError);
    EXPECT_THROW(sam::encode_png(px, 0, 1, 3), sam::InputError);
    EXPECT_THROW(sam::write_png("/nonexistent_dir/x.png", px, 1, 1, 1), sam::Error);
}
