#include "mask_overlay.h"

#include <cstddef>

namespace sam {

std::array<uint8_t, 3> overlay_colour(int k) {
    static constexpr std::array<std::array<uint8_t, 3>, 6> kPalette = {
        {{30, 144, 255}, {255, 64, 64}, {64, 200, 64}, {255, 200, 0}, {200, 64, 255}, {0, 220, 220}}};
    return kPalette[static_cast<size_t>(((k % 6) + 6) % 6)];
}

void draw_mask(Image& img, const uint8_t* mask, const std::array<uint8_t, 3>& colour, bool outline) {
    const int W = img.width, H = img.height;
    const auto at = [&](int x, int y) { return static_cast<size_t>(y) * static_cast<size_t>(W) + static_cast<size_t>(x); };
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
            const size_t i = at(x, y);
            if (!mask[i]) continue;
            const bool edge = outline && ((x > 0 && !mask[i - 1]) || (x + 1 < W && !mask[i + 1]) ||
                                          (y > 0 && !mask[i - static_cast<size_t>(W)]) ||
                                          (y + 1 < H && !mask[i + static_cast<size_t>(W)]));
            for (size_t c = 0; c < 3; ++c) {
                uint8_t& v = img.rgb[3 * i + c];
                v = edge ? colour[c] : static_cast<uint8_t>((v + colour[c] + 1) / 2);
            }
        }
}

}  // namespace sam
