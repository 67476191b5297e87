// ResizeLongestSide (segment_anything/utils/transforms.py) and the model's input preprocessing
// (Sam.preprocess): resize so the longest side is 1024, normalise, zero-pad to 1024x1024.
#pragma once

#include <array>
#include <utility>

#include "sam/image.h"
#include "sam/tensor.h"

namespace sam {

// Output size (newh, neww) for an (h, w) image whose longest side becomes `long_side`:
// scale = long_side / max(h, w), newh = int(h * scale + 0.5), neww = int(w * scale + 0.5).
std::pair<int, int> preprocess_shape(int h, int w, int long_side);

// Pillow's Image.resize(size, BILINEAR) on an RGB uint8 image, bit for bit.
Image resize_bilinear_pillow(const Image& img, int new_w, int new_h);

// ResizeLongestSide.apply_image: resize_bilinear_pillow to preprocess_shape(h, w, long_side).
Image resize_longest_side(const Image& img, int long_side);

// The model input and the size of the image inside it (the rest is zero padding).
struct Preprocessed {
    Tensor input;         // (1, 3, img_size, img_size), float32, normalised, zero-padded
    int input_h = 0;      // resized height (rows [0, input_h) hold the image)
    int input_w = 0;      // resized width
};

inline constexpr std::array<float, 3> kPixelMean = {123.675f, 116.28f, 103.53f};
inline constexpr std::array<float, 3> kPixelStd = {58.395f, 57.12f, 57.375f};

// Resize the longest side to img_size, normalise (x - mean) / std per channel, pad bottom and
// right with zeros to img_size x img_size, HWC -> CHW.
Preprocessed preprocess(const Image& img, int img_size = 1024,
                        const std::array<float, 3>& pixel_mean = kPixelMean,
                        const std::array<float, 3>& pixel_std = kPixelStd);

// ResizeLongestSide.apply_coords: n points (x, y) in original pixels, in place, to the resized
// frame: x * (neww / orig_w), y * (newh / orig_h), computed in double as numpy does.
void apply_coords(float* xy, int n, int orig_h, int orig_w, int long_side);

// ResizeLongestSide.apply_boxes: n boxes (x0, y0, x1, y1), both corners transformed, in place.
void apply_boxes(float* boxes, int n, int orig_h, int orig_w, int long_side);

}  // namespace sam
