// libFuzzer target: arbitrary bytes as the EXIF block of a JPEG (TIFF header, IFDs, the
// Orientation tag), read by libexif through sam::decode_image. The input becomes the payload of
// an APP1 "Exif\0\0" segment in front of a valid 3x2 JPEG, so every execution reaches the EXIF
// parser and the orientation that follows; the decoded image must be 3x2 or, transposed, 2x3.
// (src/io/image.cpp keeps its EXIF reader private; wrapping the bytes needs no new entry point.)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <jpeglib.h>

#include "sam/error.h"
#include "sam/image.h"

namespace {

// A baseline 3x2 RGB JPEG, encoded once.
std::vector<uint8_t> base_jpeg() {
    jpeg_compress_struct c{};
    jpeg_error_mgr err{};
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char* out = nullptr;
    unsigned long out_size = 0;
    jpeg_mem_dest(&c, &out, &out_size);
    c.image_width = 3;
    c.image_height = 2;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_start_compress(&c, TRUE);
    uint8_t row[9] = {255, 0, 0, 0, 255, 0, 0, 0, 255};
    JSAMPROW rows[1] = {row};
    while (c.next_scanline < c.image_height) jpeg_write_scanlines(&c, rows, 1);
    jpeg_finish_compress(&c);
    std::vector<uint8_t> jpeg(out, out + out_size);
    jpeg_destroy_compress(&c);
    std::free(out);
    return jpeg;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::vector<uint8_t> jpeg = base_jpeg();
    constexpr size_t kMaxPayload = 0xFFFF - 2 - 6;  // segment length field counts itself and "Exif\0\0"
    if (size > kMaxPayload) size = kMaxPayload;
    const size_t length = 2 + 6 + size;
    std::vector<uint8_t> file = {0xFF, 0xD8, 0xFF, 0xE1, static_cast<uint8_t>(length >> 8),
                                 static_cast<uint8_t>(length), 'E', 'x', 'i', 'f', 0, 0};
    file.insert(file.end(), data, data + size);
    file.insert(file.end(), jpeg.begin() + 2, jpeg.end());  // after the base's SOI
    try {
        const sam::Image img = sam::decode_image(file.data(), file.size(), "fuzz-exif.jpg");
        const bool upright = img.width == 3 && img.height == 2, transposed = img.width == 2 && img.height == 3;
        if (!upright && !transposed) __builtin_trap();
        if (img.rgb.size() != 18) __builtin_trap();
    } catch (const sam::Error&) {
        __builtin_trap();  // the JPEG around the EXIF block is valid: EXIF problems are ignored, not errors
    }
    return 0;
}
