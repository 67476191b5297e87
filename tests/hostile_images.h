// Small files that are expensive to decode, for the decoder's limits and the server's: a PNG
// whose header declares a huge image, and a valid progressive JPEG with many scans.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

namespace sam::test {

// A valid 1-bit grey PNG of width x height black pixels: 16384 x 16384 is ~33 KB of file for
// 2^28 pixels (~1 GB once decoded to RGB).
inline std::string pixel_bomb_png(uint32_t width, uint32_t height) {
    auto be32 = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
    std::string out("\x89PNG\r\n\x1a\n", 8);
    auto chunk = [&](const char* type, const std::string& data) {
        const std::string body = std::string(type, 4) + data;
        const auto crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
        out += be32(static_cast<uint32_t>(data.size())) + body + be32(static_cast<uint32_t>(crc));
    };
    // 1-bit grey, deflate, no filter, not interlaced.
    chunk("IHDR", be32(width) + be32(height) + std::string{char(1), char(0), char(0), char(0), char(0)});
    // Every row: filter type 0, then width / 8 zero bytes.
    const std::vector<uint8_t> raw(static_cast<size_t>(height) * (1 + (width + 7) / 8), 0);
    uLongf size = compressBound(static_cast<uLong>(raw.size()));
    std::string idat(size, '\0');
    compress2(reinterpret_cast<Bytef*>(idat.data()), &size, raw.data(), static_cast<uLong>(raw.size()), 9);
    idat.resize(size);
    chunk("IDAT", idat);
    chunk("IEND", "");
    return out;
}

// A valid 16x16 progressive JPEG of 1 + 3 * 63 = 190 scans: the DC coefficients, then each AC
// coefficient of each component in a scan of its own (a spectral selection of one).
inline std::string many_scans_jpeg() {
    jpeg_compress_struct c{};
    jpeg_error_mgr err{};
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char* buf = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &buf, &size);
    c.image_width = 16;
    c.image_height = 16;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    std::vector<jpeg_scan_info> script;
    script.push_back({3, {0, 1, 2, 0}, 0, 0, 0, 0});
    for (int comp = 0; comp < 3; ++comp)
        for (int k = 1; k < 64; ++k) script.push_back({1, {comp, 0, 0, 0}, k, k, 0, 0});
    c.scan_info = script.data();
    c.num_scans = static_cast<int>(script.size());
    jpeg_start_compress(&c, TRUE);
    std::vector<uint8_t> row(16 * 3);
    for (int y = 0; y < 16; ++y) {
        for (int x = 0; x < 16 * 3; ++x) row[static_cast<size_t>(x)] = static_cast<uint8_t>(x * 5 + y * 11);
        JSAMPROW r = row.data();
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    std::string out(reinterpret_cast<const char*>(buf), size);
    std::free(buf);
    return out;
}

}  // namespace sam::test
