// 2^x for x <= 0: the exponential of a softmax whose logits are kept in log2 units (scaled by
// log2 e, folded into the operands of the GEMM that makes them), so that the range reduction
// is a plain rounding, x = n + f with |f| <= 1/2, and 2^f a degree-7 polynomial (its Taylor
// series: truncation error 5e-9, below float's rounding). libm's exp2f neither vectorises
// nor inlines, and attention evaluates hundreds of millions of these per image, so this is
// written by hand: a portable scalar version (the oracle) and an AVX2 version of the same
// arithmetic.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

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

#if defined(__AVX2__) && defined(__FMA__)
inline __m256 exp2_nonpositive(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(kExp2Min));
    // Adding 1.5 * 2^23 rounds to an integer (to nearest) and leaves it in the low mantissa bits.
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    const __m256 t = _mm256_add_ps(x, magic);
    const __m256 f = _mm256_sub_ps(x, _mm256_sub_ps(t, magic));
    __m256 p = _mm256_set1_ps(kExp2Poly[0]);
    for (size_t k = 1; k < std::size(kExp2Poly); ++k) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2Poly[k]));
    const __m256i e = _mm256_add_epi32(_mm256_slli_epi32(_mm256_castps_si256(t), 23), _mm256_set1_epi32(127 << 23));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
#endif

}  // namespace sam::ops::approx
