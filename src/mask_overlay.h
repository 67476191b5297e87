// Masks drawn over an image, as the CLI's overlays show them (`sam predict`'s overlay.png,
// `sam track --overlay-video`): each object in its own colour, blended at one half inside the
// mask, its outline in the full colour.
//
// Thread safety: no state; any number of threads may call these at once on different images.
#pragma once

#include <array>
#include <cstdint>

#include "sam/image.h"

namespace sam {

// The overlay colour of object (or mask) k: a palette of six, by k modulo 6 (k may be negative).
std::array<uint8_t, 3> overlay_colour(int k);

// Tints `img` with one mask (row-major img.height x img.width bytes, nonzero inside) in `colour`:
// every pixel inside becomes (pixel + colour + 1) / 2 per channel; with `outline`, then every
// pixel inside that has a 4-neighbour (within the image) outside the mask becomes the colour.
// Masks drawn one after another: later ones over earlier ones.
void draw_mask(Image& img, const uint8_t* mask, const std::array<uint8_t, 3>& colour, bool outline);

}  // namespace sam
