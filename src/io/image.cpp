// JPEG (libjpeg-turbo) and PNG (libpng) decoding with cv2.imread(IMREAD_COLOR) semantics, and
// PNG encoding.
//
// Both C libraries report errors by calling a handler that must not return. We longjmp out of
// it. To keep that well defined in C++, every setjmp lives in a small "protected" function whose
// own locals are trivially destructible; the objects it fills (buffers, messages) and the RAII
// guards that free the library state live in the caller, so a longjmp skips no destructor.
#include "sam/image.h"

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

// jpeglib.h needs FILE and size_t declared first.
#include <jerror.h>
#include <jpeglib.h>
#include <libexif/exif-data.h>
#include <png.h>

#include "io/atomic_file.h"
#include "sam/error.h"

namespace sam {
namespace {

// How a protected decode ended. The message is formatted by the caller, outside the setjmp
// frame, so that frame holds no std::string.
enum class Status { kOk, kLibraryError, kBadSize, kTooManyScans, kUnsupported };

bool size_ok(int64_t width, int64_t height, int64_t max_pixels) {
    return width > 0 && height > 0 && width * height <= std::min(max_pixels, kMaxImagePixels);
}

// Throws the error for a header size that size_ok refuses: empty, or over the limit.
[[noreturn]] void throw_size_error(const std::string& name, int64_t width, int64_t height, int64_t max_pixels) {
    const std::string size = std::to_string(width) + "x" + std::to_string(height);
    if (width <= 0 || height <= 0) throw ImageError(name, "invalid image size " + size);
    const int64_t limit = std::min(max_pixels, kMaxImagePixels);
    throw ImageTooLargeError(name, "image is " + size + " = " + std::to_string(width * height) +
                                       " pixels, more than the " + std::to_string(limit) +
                                       " accepted (refused before decoding, as a possible decompression bomb)");
}

// ---------------------------------------------------------------------------------------------
// EXIF orientation
// ---------------------------------------------------------------------------------------------

// The Orientation tag (0x0112) of IFD0 in an APP1 "Exif\0\0" segment; 1 when absent or invalid.
int exif_orientation(const uint8_t* data, unsigned size) {
    if (size < 6 || std::memcmp(data, "Exif\0\0", 6) != 0) return 1;
    ExifData* ed = exif_data_new();
    if (!ed) return 1;
    // Read the tags as stored: no "fixing" that could invent or rewrite entries.
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_load_data(ed, data, size);
    int orientation = 1;
    ExifEntry* e = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (e && e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->size >= 2 && e->data) {
        orientation = exif_get_short(e->data, exif_data_get_byte_order(ed));
    }
    exif_data_unref(ed);
    return orientation >= 1 && orientation <= 8 ? orientation : 1;
}

// Applies an EXIF orientation as OpenCV does (values 2-8 flip and/or transpose the stored
// pixels so that the result is upright). out(r, c) = in(src_row, src_col) below.
Image apply_orientation(const Image& in, int orientation) {
    if (orientation <= 1 || orientation > 8) return in;
    const int h = in.height, w = in.width;
    const bool transpose = orientation >= 5;
    Image out;
    out.width = transpose ? h : w;
    out.height = transpose ? w : h;
    out.rgb.resize(in.rgb.size());
    for (int r = 0; r < out.height; ++r) {
        for (int c = 0; c < out.width; ++c) {
            int sr = r, sc = c;
            switch (orientation) {
                case 2: sc = w - 1 - c; break;                      // mirror horizontally
                case 3: sr = h - 1 - r; sc = w - 1 - c; break;      // rotate 180
                case 4: sr = h - 1 - r; break;                      // mirror vertically
                case 5: sr = c; sc = r; break;                      // transpose
                case 6: sr = h - 1 - c; sc = r; break;              // rotate 90 clockwise
                case 7: sr = h - 1 - c; sc = w - 1 - r; break;      // transverse
                case 8: sr = c; sc = w - 1 - r; break;              // rotate 90 anticlockwise
                default: break;
            }
            const uint8_t* s = &in.rgb[(static_cast<size_t>(sr) * w + sc) * 3];
            uint8_t* d = &out.rgb[(static_cast<size_t>(r) * out.width + c) * 3];
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// JPEG
// ---------------------------------------------------------------------------------------------

struct JpegErrorManager {
    jpeg_error_mgr pub;  // first member: libjpeg hands back a pointer to it
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
}

// Counts the scans of a progressive file as libjpeg reads them (the check libjpeg-turbo's
// documentation recommends against hostile progressive JPEGs); past the limit it jumps out.
struct JpegScanLimit {
    jpeg_progress_mgr pub;  // first member: libjpeg hands back a pointer to it
    int max_scans;
};

void jpeg_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    const auto* limit = reinterpret_cast<JpegScanLimit*>(cinfo->progress);
    if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > limit->max_scans)
        std::longjmp(reinterpret_cast<JpegErrorManager*>(cinfo->err)->jump, 2);
}

// Warnings are ignored (as OpenCV does), except running out of data: libjpeg would otherwise
// fill the rest of a truncated file with grey and succeed.
void jpeg_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_fail(cinfo);
}

struct JpegDecode {
    Image image;
    std::vector<uint8_t> row;  // one scanline as libjpeg produces it (3 or 4 components)
    int orientation = 1;
    int64_t header_w = 0, header_h = 0;
};

// CMYK/YCCK scanline -> RGB, with OpenCV's formula (which assumes Adobe's inverted CMYK).
void cmyk_row_to_rgb(const uint8_t* cmyk, uint8_t* rgb, int width) {
    for (int x = 0; x < width; ++x, cmyk += 4, rgb += 3) {
        const int k = cmyk[3];
        for (int ch = 0; ch < 3; ++ch) rgb[ch] = static_cast<uint8_t>(k - (((255 - cmyk[ch]) * k) >> 8));
    }
}

Status decode_jpeg_protected(jpeg_decompress_struct& cinfo, JpegErrorManager& err, JpegDecode& st,
                             int64_t max_pixels) {
    if (const int jumped = setjmp(err.jump)) return jumped == 2 ? Status::kTooManyScans : Status::kLibraryError;
    jpeg_read_header(&cinfo, TRUE);
    st.header_w = cinfo.image_width;
    st.header_h = cinfo.image_height;
    if (!size_ok(st.header_w, st.header_h, max_pixels)) return Status::kBadSize;
    // The first APP1 segment holding Exif data gives the orientation.
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
            st.orientation = exif_orientation(m->data, m->data_length);
            break;
        }
    }
    // As OpenCV: 4-component files come out as CMYK and are converted below; everything else
    // (grey included) is converted to RGB by libjpeg, with its default (ISLOW, fancy upsampling).
    const bool cmyk = cinfo.num_components == 4;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGB;
    jpeg_start_decompress(&cinfo);
    const int w = static_cast<int>(cinfo.output_width), h = static_cast<int>(cinfo.output_height);
    st.image.width = w;
    st.image.height = h;
    st.image.rgb.resize(static_cast<size_t>(w) * h * 3);
    st.row.resize(static_cast<size_t>(w) * cinfo.output_components);
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t* dst = &st.image.rgb[static_cast<size_t>(cinfo.output_scanline) * w * 3];
        JSAMPROW row = cmyk ? st.row.data() : dst;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) return Status::kUnsupported;
        if (cmyk) cmyk_row_to_rgb(st.row.data(), dst, w);
    }
    jpeg_finish_decompress(&cinfo);
    return Status::kOk;
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name, const ImageLimits& limits) {
    jpeg_decompress_struct cinfo{};
    JpegErrorManager err{};
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_fail;
    err.pub.emit_message = jpeg_message;
    jpeg_create_decompress(&cinfo);
    JpegScanLimit scan_limit{};
    scan_limit.pub.progress_monitor = jpeg_progress;
    scan_limit.max_scans = limits.max_jpeg_scans;
    cinfo.progress = &scan_limit.pub;
    std::unique_ptr<jpeg_decompress_struct, void (*)(jpeg_decompress_struct*)> guard(
        &cinfo, [](jpeg_decompress_struct* c) { jpeg_destroy_decompress(c); });
    jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);

    JpegDecode st;
    switch (decode_jpeg_protected(cinfo, err, st, limits.max_pixels)) {
        case Status::kOk: break;
        case Status::kLibraryError: throw ImageError(name, std::string("corrupt or truncated JPEG: ") + err.message);
        case Status::kBadSize: throw_size_error(name, st.header_w, st.header_h, limits.max_pixels);
        case Status::kTooManyScans:
            throw ImageError(name, "progressive JPEG with more than " + std::to_string(limits.max_jpeg_scans) +
                                       " scans (refused as a possible denial of service)");
        case Status::kUnsupported: throw ImageError(name, "JPEG decoder returned no scanline");
    }
    return apply_orientation(st.image, st.orientation);
}

// ---------------------------------------------------------------------------------------------
// PNG
// ---------------------------------------------------------------------------------------------

struct PngSource {
    const uint8_t* data;
    size_t size;
    size_t pos = 0;
};

struct PngErrorState {
    char message[256] = {};
};

void png_fail(png_structp png, png_const_charp msg) {
    auto* st = static_cast<PngErrorState*>(png_get_error_ptr(png));
    std::snprintf(st->message, sizeof st->message, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

void png_warn(png_structp, png_const_charp) {}  // ignored, as OpenCV does

void png_read_memory(png_structp png, png_bytep out, size_t n) {
    auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
    if (src->size - src->pos < n) png_error(png, "unexpected end of data (file truncated)");
    std::memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

struct PngDecode {
    Image image;
    std::vector<uint8_t> pixels;      // as libpng delivers them: 8-bit, 1-4 channels
    std::vector<png_bytep> rows;
    int64_t header_w = 0, header_h = 0;
};

Status decode_png_protected(png_structp png, png_infop info, PngDecode& st, int64_t max_pixels) {
    if (setjmp(png_jmpbuf(png))) return Status::kLibraryError;
    png_read_info(png, info);
    const png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    st.header_w = w;
    st.header_h = h;
    if (!size_ok(w, h, max_pixels)) return Status::kBadSize;
    const int bit_depth = png_get_bit_depth(png, info), color_type = png_get_color_type(png, info);
    // To 8-bit samples: 16-bit keeps the high byte (OpenCV uses png_set_strip_16 too);
    // palettes and 1/2/4-bit grey are expanded. Alpha and tRNS are left for us to drop.
    if (bit_depth == 16) png_set_strip_16(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const int channels = png_get_channels(png, info);
    const size_t row_bytes = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || channels < 1 || channels > 4 || row_bytes != size_t{w} * channels) {
        return Status::kUnsupported;
    }
    st.pixels.resize(row_bytes * h);
    st.rows.resize(h);
    for (png_uint_32 y = 0; y < h; ++y) st.rows[y] = &st.pixels[row_bytes * y];
    png_read_image(png, st.rows.data());
    png_read_end(png, nullptr);

    // Grey -> 3 equal channels; alpha (grey+alpha, RGBA) dropped without compositing.
    st.image.width = static_cast<int>(w);
    st.image.height = static_cast<int>(h);
    st.image.rgb.resize(size_t{w} * h * 3);
    const size_t n = size_t{w} * h;
    const uint8_t* s = st.pixels.data();
    uint8_t* d = st.image.rgb.data();
    for (size_t i = 0; i < n; ++i, s += channels, d += 3) {
        if (channels <= 2) {
            d[0] = d[1] = d[2] = s[0];
        } else {
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
        }
    }
    return Status::kOk;
}

Image decode_png(const uint8_t* data, size_t size, const std::string& name, const ImageLimits& limits) {
    PngErrorState err;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_fail, png_warn);
    if (!png) throw ImageError(name, "cannot initialise the PNG decoder");
    png_infop info = png_create_info_struct(png);
    struct Guard {  // frees the decoder however we leave (error, exception or success)
        png_structp& png;
        png_infop& info;
        ~Guard() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
    } guard{png, info};
    if (!info) throw ImageError(name, "cannot initialise the PNG decoder");
    PngSource src{data, size};
    png_set_read_fn(png, &src, png_read_memory);

    PngDecode st;
    switch (decode_png_protected(png, info, st, limits.max_pixels)) {
        case Status::kOk: break;
        case Status::kLibraryError: throw ImageError(name, std::string("corrupt or truncated PNG: ") + err.message);
        case Status::kBadSize: throw_size_error(name, st.header_w, st.header_h, limits.max_pixels);
        case Status::kTooManyScans:
        case Status::kUnsupported: throw ImageError(name, "unsupported PNG layout");
    }
    return std::move(st.image);
}

// ---------------------------------------------------------------------------------------------
// PNG encoding
// ---------------------------------------------------------------------------------------------

struct PngEncode {
    const uint8_t* pixels;
    int width, height, channels;
    std::vector<uint8_t> out;
    bool out_of_memory = false;
};

void png_write_memory(png_structp png, png_bytep data, size_t n) {
    auto* st = static_cast<PngEncode*>(png_get_io_ptr(png));
    try {
        st->out.insert(st->out.end(), data, data + n);
    } catch (const std::bad_alloc&) {
        st->out_of_memory = true;
        png_error(png, "out of memory");
    }
}

void png_flush_memory(png_structp) {}

bool encode_png_protected(png_structp png, png_infop info, PngEncode& st) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_set_write_fn(png, &st, png_write_memory, png_flush_memory);
    const int color_type = st.channels == 1   ? PNG_COLOR_TYPE_GRAY
                           : st.channels == 3 ? PNG_COLOR_TYPE_RGB
                                              : PNG_COLOR_TYPE_RGB_ALPHA;
    png_set_IHDR(png, info, static_cast<png_uint_32>(st.width), static_cast<png_uint_32>(st.height), 8,
                 color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    const size_t row_bytes = static_cast<size_t>(st.width) * st.channels;
    for (int y = 0; y < st.height; ++y) {
        png_write_row(png, st.pixels + row_bytes * y);
    }
    png_write_end(png, nullptr);
    return true;
}

}  // namespace

Image decode_image(const uint8_t* data, size_t size, const std::string& name, const ImageLimits& limits) {
    static const uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size == 0 || data == nullptr) throw ImageError(name, "empty file");
    if (size >= 8 && std::memcmp(data, kPngSignature, 8) == 0) return decode_png(data, size, name, limits);
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        return decode_jpeg(data, size, name, limits);
    throw ImageError(name, "unknown image format (only JPEG and PNG are read)");
}

Image read_image(const std::string& path, const ImageLimits& limits) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
    if (!f) throw ImageError(path, std::string("cannot open: ") + std::strerror(errno));
    std::vector<uint8_t> bytes;
    uint8_t buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) bytes.insert(bytes.end(), buf, buf + n);
    if (std::ferror(f.get())) throw ImageError(path, std::string("cannot read: ") + std::strerror(errno));
    return decode_image(bytes.data(), bytes.size(), path, limits);
}

std::vector<uint8_t> encode_png(const uint8_t* pixels, int width, int height, int channels) {
    if (channels != 1 && channels != 3 && channels != 4) {
        throw InputError("channels", std::to_string(channels) + ", expected 1, 3 or 4");
    }
    if (width <= 0 || height <= 0 || pixels == nullptr) {
        throw InputError("image", "cannot encode an empty " + std::to_string(width) + "x" + std::to_string(height) +
                                      " image as PNG");
    }
    PngErrorState err;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_fail, png_warn);
    if (!png) throw Error("cannot initialise the PNG encoder");
    png_infop info = png_create_info_struct(png);
    PngEncode st{pixels, width, height, channels, {}};
    const bool ok = info && encode_png_protected(png, info, st);
    png_destroy_write_struct(&png, info ? &info : nullptr);
    if (st.out_of_memory) throw std::bad_alloc();
    if (!ok) throw Error(std::string("PNG encoding failed: ") + err.message);
    return std::move(st.out);
}

void write_png(const std::string& path, const uint8_t* pixels, int width, int height, int channels) {
    const std::vector<uint8_t> png = encode_png(pixels, width, height, channels);
    write_file_atomic(path, [&](std::ostream& out) {
        out.write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
    });
}

}  // namespace sam
