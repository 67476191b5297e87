// Tensor operations used by the model. Matrix multiplies go through oneDNN (measured fastest
// here, docs/BENCHMARKS.md); the element-wise and normalisation kernels are SAM's own and are
// written by hand, threaded with OpenMP (the same runtime oneDNN uses).
//
// Conventions: activations are row-major (rows, features); a Linear holds PyTorch's
// (out_features, in_features) weight, so y = x W^T + b.
#pragma once

#include <cstdint>

#include "sam/tensor.h"

namespace sam::ops {

// C (M, N) = alpha * A (M, K) * op(B) + beta * C; op(B) = B^T when `b_transposed`
// (B stored (N, K)), else B stored (K, N). Leading dimensions are explicit for sub-views.
void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
          bool b_transposed, float* C, int64_t ldc, float alpha = 1.0f, float beta = 0.0f);

// y (M, N) = x (M, K) W^T + b, with W (N, K) and b (N) or undefined.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);

// Over the last dimension (size C) of a (rows, C) buffer: x into y (y may be x), or in place.
void layer_norm(const float* x, float* y, int64_t rows, int64_t C, const float* gamma, const float* beta, float eps);
void layer_norm(float* x, int64_t rows, int64_t C, const float* gamma, const float* beta, float eps);

void gelu_inplace(float* x, int64_t n);  // exact (erf) GELU, as nn.GELU()
void add_inplace(float* x, const float* y, int64_t n);  // x += y

}  // namespace sam::ops
