// Normalisation, activations and softmax: SAM's own small kernels (no library call would
// save anything here; the loops vectorise under -O3 -march=native).
#include <cmath>

#include "ops/ops.h"

namespace sam::ops {

void layer_norm(float* x, int64_t rows, int64_t C, const float* gamma, const float* beta, float eps) {
#pragma omp parallel for
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

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
    Tensor y = x.clone();
    const int64_t C = x.dim(-1);
    layer_norm(y.data(), x.numel() / C, C, gamma.data(), beta.data(), eps);
    return y;
}

void gelu_inplace(float* x, int64_t n) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

void relu_inplace(float* x, int64_t n) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void add_inplace(float* x, const float* y, int64_t n) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void softmax_rows(float* x, int64_t rows, int64_t cols) {
#pragma omp parallel for
    for (int64_t r = 0; r < rows; ++r) {
        float* v = x + r * cols;
        float mx = v[0];
        for (int64_t c = 1; c < cols; ++c) mx = v[c] > mx ? v[c] : mx;
        float sum = 0.0f;
        for (int64_t c = 0; c < cols; ++c) {
            v[c] = std::exp(v[c] - mx);
            sum += v[c];
        }
        const float inv = 1.0f / sum;
        for (int64_t c = 0; c < cols; ++c) v[c] *= inv;
    }
}

}  // namespace sam::ops
