// Image files in and out: JPEG and PNG decoding with the semantics of OpenCV's imread in colour
// mode (what the reference reads images with), PNG encoding for masks and overlays.
// Thread safety: the functions here keep no state between calls; any number of threads may
// call them at once on different arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sam {

// An 8-bit RGB image, row-major, (height, width, 3).
struct Image {
    int width = 0, height = 0;
    std::vector<uint8_t> rgb;  // height * width * 3 bytes, R G B per pixel
};

// Largest image accepted, in pixels (2^28); larger headers are refused as decompression bombs.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 28;

// What one decode may cost, checked before any pixel is decoded: the size from the PNG IHDR or
// the JPEG frame header, and the scans of a progressive JPEG as they are read (each scan is a
// pass over the whole image, and a hostile file can hold thousands).
struct ImageLimits {
    int64_t max_pixels = kMaxImagePixels;  // width * height; larger throws ImageTooLargeError
    int max_jpeg_scans = 100;              // more throws ImageError; real files have at most a few dozen
};

// Reads a JPEG or PNG file (format from the content, not the name), as cv2.imread(path,
// IMREAD_COLOR) followed by BGR->RGB:
//   - grey becomes 3 equal channels; alpha is dropped without compositing; palettes expanded;
//   - 16-bit samples keep their high byte;
//   - JPEG EXIF orientation (all 8 values) is applied.
// Throws sam::ImageError "<path>: <what>" for a missing, truncated, corrupt or unknown file, and
// sam::ImageTooLargeError (an ImageError) for one over limits.max_pixels.
Image read_image(const std::string& path, const ImageLimits& limits = {});

// Same from bytes in memory (e.g. an HTTP upload); `name` is used in error messages.
Image decode_image(const uint8_t* data, size_t size, const std::string& name, const ImageLimits& limits = {});

// Encodes 8-bit pixels, row-major (height, width, channels) with channels 1 (grey), 3 (RGB)
// or 4 (RGBA), as a PNG.
std::vector<uint8_t> encode_png(const uint8_t* pixels, int width, int height, int channels);

// Writes encode_png's output to `path` atomically (temporary file + rename).
void write_png(const std::string& path, const uint8_t* pixels, int width, int height, int channels);

}  // namespace sam
