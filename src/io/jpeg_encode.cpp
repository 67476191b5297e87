// libjpeg reports errors through a handler that must not return: as in image.cpp, the one setjmp
// lives in a small function with no destructors between it and the longjmp, and the guard that
// frees libjpeg's state lives in the caller.
#include "io/jpeg_encode.h"

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "sam/error.h"

// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

namespace sam {
namespace {

struct ErrorManager {
    jpeg_error_mgr pub;  // first member: libjpeg hands back a pointer to it
    std::jmp_buf jump;
};

[[noreturn]] void fail(j_common_ptr cinfo) { std::longjmp(reinterpret_cast<ErrorManager*>(cinfo->err)->jump, 1); }

void quiet(j_common_ptr, int) {}

bool compress_protected(jpeg_compress_struct& c, ErrorManager& err, const Image& image, int quality,
                        unsigned char** out, unsigned long* size) {
    if (setjmp(err.jump)) return false;
    jpeg_mem_dest(&c, out, size);
    c.image_width = static_cast<JDIMENSION>(image.width);
    c.image_height = static_cast<JDIMENSION>(image.height);
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    const size_t stride = static_cast<size_t>(image.width) * 3;
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(image.rgb.data() + c.next_scanline * stride);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    return true;
}

}  // namespace

std::vector<uint8_t> encode_jpeg(const Image& image, int quality) {
    if (image.width <= 0 || image.height <= 0 ||
        image.rgb.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3)
        throw InputError("image", "not an RGB image of " + std::to_string(image.width) + "x" + std::to_string(image.height));
    if (quality < 1 || quality > 100) throw InputError("quality", std::to_string(quality) + " out of [1, 100]");
    jpeg_compress_struct c{};
    ErrorManager err{};
    c.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = fail;
    err.pub.emit_message = quiet;
    jpeg_create_compress(&c);
    std::unique_ptr<jpeg_compress_struct, void (*)(jpeg_compress_struct*)> guard(
        &c, [](jpeg_compress_struct* p) { jpeg_destroy_compress(p); });
    unsigned char* out = nullptr;
    unsigned long size = 0;
    const bool ok = compress_protected(c, err, image, quality, &out, &size);
    std::unique_ptr<unsigned char, void (*)(void*)> bytes(out, std::free);
    if (!ok) throw ImageError("jpeg", "cannot encode the image");
    return std::vector<uint8_t>(out, out + size);
}

}  // namespace sam
