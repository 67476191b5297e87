// Run-length encoding of binary masks, as the automatic mask generator and COCO write them
// (segment_anything/utils/amg.py: mask_to_rle_pytorch, rle_to_mask, area_from_rle,
// coco_encode_rle; pycocotools: rleToString, rleFrString, rleIou, rleToBbox).
// Thread safety: the functions here keep no state between calls; any number of threads may
// call them at once on different arguments.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace sam {

// Uncompressed COCO RLE of an (height, width) mask. Pixels are read in column-major (Fortran)
// order; counts are run lengths alternating zeros, ones, zeros, ... starting with zeros (the
// first count is 0 when the first pixel is set). The counts sum to height * width.
struct Rle {
    int height = 0, width = 0;
    std::vector<uint32_t> counts;

    bool operator==(const Rle&) const = default;
};

// mask: row-major (height, width), any non-zero byte is "on". An empty (0-pixel) mask has no counts.
Rle rle_encode(const uint8_t* mask, int height, int width);

// The RLE of a (height, width) crop mask placed at (x0, y0) inside an all-zero
// (full_height, full_width) image, without building the full image (amg.py: uncrop_masks,
// then mask_to_rle_pytorch). The crop must lie inside the image.
Rle rle_encode_placed(const uint8_t* mask, int height, int width, int x0, int y0, int full_height,
                      int full_width);

// Row-major (height, width) mask of 0/1. Throws InputError when the counts do not sum to
// height * width.
std::vector<uint8_t> rle_decode(const Rle& rle);

// Number of set pixels (sum of the odd-indexed counts).
int64_t rle_area(const Rle& rle);

// Compressed COCO string (pycocotools rleToString): count i is delta-coded against count i - 2
// when i > 2, then written 5 bits at a time, low bits first, as chr(48 + chunk), with 0x20 set
// on every chunk but the last.
std::string rle_to_coco_string(const Rle& rle);

// Inverse of rle_to_coco_string (pycocotools rleFrString). Throws InputError on a malformed
// string: a character outside '0'..'o', a number cut short, a count that is negative or does
// not fit 32 bits, or counts that do not sum to height * width.
Rle rle_from_coco_string(const std::string& s, int height, int width);

// Intersection over union of two masks of the same size, computed on the runs without decoding.
// Two empty masks have IoU 0, as in pycocotools. Throws InputError when the sizes differ.
double rle_iou(const Rle& a, const Rle& b);

// Bounding box XYXY with inclusive max (min col, min row, max col, max row) of the set pixels;
// [0, 0, 0, 0] for an empty mask (the same box as the generator's mask_to_box).
std::array<int, 4> rle_to_box_xyxy(const Rle& rle);

}  // namespace sam
