// Normalisation and activations: SAM's own small kernels (no library call would save anything
// here; the compiler vectorises the loops).
#include <cmath>
#include <cstring>

#include "ops/ops.h"
#include "ops/vector_math.h"

// No fused multiply-adds: layer norm is built once per instruction set (SAM_VECTOR_CLONES), and
// contraction would make its AVX2 and AVX-512 versions round (x - m) * inv * gamma + beta once
// where the baseline rounds each step, so one image would give other embeddings on other CPUs.
// Measured on the predictor's ill-conditioned fixture case (point_with_mask_input): with the
// fused form its worst sampled full-resolution logit moved from 7.3e-3 to 1.09e-2 off the
// reference, past the test's 1e-2.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace sam::ops {

// Loops smaller than this run on the calling thread: a parallel region costs microseconds.
constexpr int64_t kParallelMin = 1 << 15;

// Mean and variance in double, so that their sums lose nothing over a row; the reductions are
// simd reductions (any order is exact enough in double), without which the compiler keeps
// each sum a scalar chain: 24 normalisations of 4096 x 768 were 3.5% of the int8 encoder.
SAM_VECTOR_CLONES
void layer_norm(const float* x, float* y, int64_t rows, int64_t C, const float* gamma, const float* beta, float eps) {
#pragma omp parallel for if (rows * C >= kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const float* v = x + r * C;
        float* out = y + r * C;
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < C; ++c) sum += static_cast<double>(v[c]);
        const double mean = sum / static_cast<double>(C);
        double var = 0.0;
#pragma omp simd reduction(+ : var)
        for (int64_t c = 0; c < C; ++c) {
            const double d = static_cast<double>(v[c]) - mean;
            var += d * d;
        }
        var /= static_cast<double>(C);
        const float m = static_cast<float>(mean);
        const float inv = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) out[c] = (v[c] - m) * inv * gamma[c] + beta[c];
    }
}

void layer_norm(float* x, int64_t rows, int64_t C, const float* gamma, const float* beta, float eps) {
    layer_norm(x, x, rows, C, gamma, beta, eps);
}

void gelu_inplace(float* x, int64_t n) {
#pragma omp parallel for if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

void add_inplace(float* x, const float* y, int64_t n) {
#pragma omp parallel for if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace sam::ops
