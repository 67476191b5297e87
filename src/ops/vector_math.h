// Element-wise math written for the compiler to vectorise: the natural exponential of a
// softmax's shifted logits (x <= 0) and the exact-form GELU through a polynomial erf. libm's
// expf and erff neither vectorise nor inline under GCC's default flags, and the decoder's
// softmaxes and upscaling GELU evaluate millions of them per click. Tests compare each with
// std::exp / std::erf (tests/test_ops.cpp). The attention kernels' exponential works in log2
// units and lives beside them (ops/exp2_approx.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

// Functions marked with this are also compiled for x86-64-v3 (AVX2, FMA) and v4 (AVX-512) and
// picked at load time by CPUID (GCC target clones), so the portable binary runs their loops
// with the widest vectors the CPU has. Mark the loops' functions, not these inline helpers.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SAM_VECTOR_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define SAM_VECTOR_CLONES
#endif

namespace sam::ops {

// exp(x) for x <= 0: reduction by ln 2 (n rounded to nearest with the 1.5 * 2^23 trick, as
// floorf and float selects keep GCC from vectorising under the default trapping-math), a
// degree-6 Taylor polynomial (rel. error ~1.2e-7 on |r| <= ln2/2), 2^n from the exponent bits;
// below 2^-126 the result is 0.
inline float exp_nonpositive(float x) {
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t e = static_cast<int32_t>(n);
    e = e < -127 ? -127 : e;
    const int32_t bits = (e + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// Softmax of n values in place, numerically stable (shifted by the maximum).
inline void softmax_inplace(float* v, int64_t n) {
    float mx = v[0];
    for (int64_t i = 1; i < n; ++i) mx = v[i] > mx ? v[i] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; ++i) {
        v[i] = exp_nonpositive(v[i] - mx);
        sum += v[i];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) v[i] *= inv;
}

// Exact-form GELU x/2 (1 + erf(x/sqrt 2)) (nn.GELU()), with erfc(|z|) = t P(t) exp(-z^2),
// t = 1/(1 + 0.3275911 |z|) (Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7), and
// 1 + erf(z) = (1 + sign) - sign erfc(|z|): for x < 0 that is the small tail erfc itself (no
// cancellation). Branch-free, so loops over it vectorise.
inline float gelu_erf(float x) {
    const float z = std::fabs(x) * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.3275911f * z);
    const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    const float erfc = poly * exp_nonpositive(-z * z);
    const float sign = std::copysign(1.0f, x);
    return 0.5f * x * ((1.0f + sign) - sign * erfc);
}

}  // namespace sam::ops
