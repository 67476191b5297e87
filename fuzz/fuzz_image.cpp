// libFuzzer target: decode arbitrary bytes as an image. Any input must either decode or throw
// sam::Error (never crash, hang, exit or leak).
#include <cstddef>
#include <cstdint>

#include "sam/error.h"
#include "sam/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // A small pixel cap (checked from the header before decoding, as the server's is): a
    // header declaring a huge image is refused in microseconds instead of decoding for seconds.
    sam::ImageLimits limits;
    limits.max_pixels = int64_t{1} << 20;
    try {
        const sam::Image img = sam::decode_image(data, size, "fuzz-input", limits);
        if (img.rgb.size() != static_cast<size_t>(img.width) * img.height * 3) __builtin_trap();
    } catch (const sam::Error&) {
    }
    return 0;
}
