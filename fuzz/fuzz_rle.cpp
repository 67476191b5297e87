// libFuzzer target: COCO compressed RLE strings (pycocotools rleFrString). The first 4 bytes give
// the mask height and width (16 bits each), the rest is the counts string. Every input must
// either decode to counts summing to height x width or throw sam::Error; small masks are also
// decoded, re-encoded and compared.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sam/error.h"
#include "sam/rle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 4) return 0;
    const int height = data[0] | data[1] << 8, width = data[2] | data[3] << 8;
    const std::string s(reinterpret_cast<const char*>(data) + 4, size - 4);
    try {
        const sam::Rle rle = sam::rle_from_coco_string(s, height, width);
        uint64_t total = 0;
        for (uint32_t c : rle.counts) total += c;
        if (total != static_cast<uint64_t>(height) * static_cast<uint64_t>(width)) __builtin_trap();
        // The canonical string decodes to the same counts.
        if (sam::rle_from_coco_string(sam::rle_to_coco_string(rle), height, width) != rle) __builtin_trap();
        if (static_cast<int64_t>(height) * width <= (1 << 16)) {
            const std::vector<uint8_t> mask = sam::rle_decode(rle);
            int64_t area = 0;
            for (uint8_t v : mask) area += v;
            if (area != sam::rle_area(rle)) __builtin_trap();
            const sam::Rle again = sam::rle_encode(mask.data(), height, width);
            if (sam::rle_decode(again) != mask) __builtin_trap();
            (void)sam::rle_to_box_xyxy(rle);
            if (area > 0 && sam::rle_iou(rle, again) != 1.0) __builtin_trap();
        }
    } catch (const sam::Error&) {
    }
    return 0;
}
