// RGB images to JPEG bytes (libjpeg-turbo), for pages that show video frames. Free function, safe
// from any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "sam/image.h"

namespace sam {

// Baseline JPEG, 4:2:0, `quality` in [1, 100]. Throws sam::ImageError ("jpeg") should libjpeg
// fail (out of memory), sam::InputError for an empty image or a quality out of range.
std::vector<uint8_t> encode_jpeg(const Image& image, int quality = 90);

}  // namespace sam
