// Normalisation and activations: SAM's own small kernels (no library call would save anything
// here; the compiler vectorises the loops).
#include <cmath>
#include <cstring>

#include "ops/ops.h"

namespace sam::ops {

// Loops smaller than this run on the calling thread: a parallel region costs microseconds.
constexpr int64_t kParallelMin = 1 << 15;

void layer_norm(float* x, int64_t rows, int64_t C, const float* gamma, const float* beta, float eps) {
#pragma omp parallel for if (rows * C >= kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        float* v = x + r * C;
        double mean = 0.0;
        for (int64_t c = 0; c < C; ++c) mean += v[c];
        mean /= static_cast<double>(C);
        double var = 0.0;
        for (int64_t c = 0; c < C; ++c) {
            double d = v[c] - mean;
            var += d * d;
        }
        var /= static_cast<double>(C);
        const float m = static_cast<float>(mean);
        const float inv = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
        for (int64_t c = 0; c < C; ++c) v[c] = (v[c] - m) * inv * gamma[c] + beta[c];
    }
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
