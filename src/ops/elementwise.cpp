// Normalisation, activations and softmax: SAM's own small kernels (no library call would
// save anything here; the loops vectorise under -O3 -march=native).
#include <cmath>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

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
// degree-6 polynomial, ~1 ulp. SAM's softmax runs over 200M scores per global block, and
// libm's expf neither vectorises nor inlines, so this kernel is written by hand: a portable
// scalar version (the oracle) and an AVX2 version of the same arithmetic.
inline float exp_nonpositive(float x) {
    x = x < -87.0f ? -87.0f : x;
    const float n = std::nearbyint(x * 1.44269504088896341f);
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

#if defined(__AVX2__) && defined(__FMA__)
inline __m256 exp_nonpositive(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

inline float hsum(__m256 v) {
    __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
#endif

}  // namespace

void softmax_row_portable(float* v, int64_t cols) {
    float mx = v[0];
    for (int64_t c = 1; c < cols; ++c) mx = v[c] > mx ? v[c] : mx;
    float sum = 0.0f;
    for (int64_t c = 0; c < cols; ++c) {
        v[c] = exp_nonpositive(v[c] - mx);
        sum += v[c];
    }
    const float inv = 1.0f / sum;
    for (int64_t c = 0; c < cols; ++c) v[c] *= inv;
}

void softmax_row(float* v, int64_t cols) {
#if defined(__AVX2__) && defined(__FMA__)
    if (cols < 16) return softmax_row_portable(v, cols);
    const int64_t n8 = cols / 8 * 8;
    __m256 vmax = _mm256_loadu_ps(v);
    for (int64_t c = 8; c < n8; c += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(v + c));
    float mx = hmax(vmax);
    for (int64_t c = n8; c < cols; ++c) mx = v[c] > mx ? v[c] : mx;
    const __m256 m = _mm256_set1_ps(mx);
    __m256 vsum = _mm256_setzero_ps();
    for (int64_t c = 0; c < n8; c += 8) {
        const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(v + c), m));
        _mm256_storeu_ps(v + c, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    float sum = hsum(vsum);
    for (int64_t c = n8; c < cols; ++c) sum += (v[c] = exp_nonpositive(v[c] - mx));
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (int64_t c = 0; c < n8; c += 8) _mm256_storeu_ps(v + c, _mm256_mul_ps(_mm256_loadu_ps(v + c), inv));
    for (int64_t c = n8; c < cols; ++c) v[c] *= 1.0f / sum;
#else
    softmax_row_portable(v, cols);
#endif
}

void softmax_rows(float* x, int64_t rows, int64_t cols) {
#pragma omp parallel for if (rows * cols >= kParallelMin)
    for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * cols, cols);
}

}  // namespace sam::ops
