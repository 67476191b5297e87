// 2^x for x <= 0: the exponential of a softmax whose logits are kept in log2 units (scaled by
// log2 e, folded into the operands of the GEMM that makes them), so that the range reduction
// is a plain rounding, x = n + f with |f| <= 1/2, and 2^f a degree-7 polynomial (its Taylor
// series: truncation error 5e-9, below float's rounding). libm's exp2f neither vectorises
// nor inlines, and attention evaluates hundreds of millions of these per image, so this is
// written by hand: this portable scalar version (the oracle), and vector versions of the same
// arithmetic beside the attention kernels of each instruction set.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>


namespace sam::ops::approx {

// 2^f = sum_k (f ln 2)^k / k!, k <= 7, highest degree first.
constexpr float kExp2Poly[] = {1.525273380405984e-05f, 1.5403530393381606e-04f, 1.3333558146428443e-03f,
                               9.618129107628477e-03f, 5.550410866482158e-02f,  2.402265069591007e-01f,
                               6.931471805599453e-01f, 1.0f};
// Below this 2^x is set to 2^-125: the result stays a normal float (no denormal slow paths)
// and is negligible next to the softmax's largest term, 1.
constexpr float kExp2Min = -125.0f;

inline float exp2_nonpositive(float x) {
    x = x < kExp2Min ? kExp2Min : x;
    const float n = std::nearbyint(x);
    const float f = x - n;
    float p = kExp2Poly[0];
    for (size_t k = 1; k < std::size(kExp2Poly); ++k) p = p * f + kExp2Poly[k];
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}


}  // namespace sam::ops::approx
