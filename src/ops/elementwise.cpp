// Normalisation, activations and softmax: SAM's own small kernels (no library call would
// save anything here; the loops vectorise under -O3 -march=native).
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

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
    Tensor y = x.clone();
    const int64_t C = x.dim(-1);
    layer_norm(y.data(), x.numel() / C, C, gamma.data(), beta.data(), eps);
    return y;
}

void gelu_inplace(float* x, int64_t n) {
#pragma omp parallel for if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

void relu_inplace(float* x, int64_t n) {
#pragma omp parallel for if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void add_inplace(float* x, const float* y, int64_t n) {
#pragma omp parallel for if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

namespace {

// exp(x) for x <= 0 (softmax after subtracting the row max): range reduction by ln 2 and a
// degree-6 polynomial, ~1 ulp. Written with plain arithmetic so that the loop vectorises
// (libm's expf does not, unless errno semantics are given up for the whole build).
inline float exp_nonpositive(float x) {
    x = x < -87.0f ? -87.0f : x;
    const float n = std::floor(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

}  // namespace

void softmax_row(float* v, int64_t cols) {
    float mx = v[0];
    for (int64_t c = 1; c < cols; ++c) mx = v[c] > mx ? v[c] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < cols; ++c) {
        v[c] = exp_nonpositive(v[c] - mx);
        sum += v[c];
    }
    const float inv = 1.0f / sum;
    for (int64_t c = 0; c < cols; ++c) v[c] *= inv;
}

void softmax_rows(float* x, int64_t rows, int64_t cols) {
#pragma omp parallel for if (rows * cols >= kParallelMin)
    for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * cols, cols);
}

}  // namespace sam::ops
