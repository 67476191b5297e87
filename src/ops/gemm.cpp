#include <dnnl.h>

#include <string>

#include "ops/ops.h"
#include "sam/error.h"

namespace sam::ops {

void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
          bool b_transposed, float* C, int64_t ldc, float alpha, float beta) {
    if (M == 0 || N == 0) return;
    dnnl_status_t st = dnnl_sgemm('N', b_transposed ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (st != dnnl_success) throw Error("gemm: oneDNN sgemm failed with status " + std::to_string(st));
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
    const int64_t K = x.dim(-1), M = x.numel() / K, N = w.dim(0);
    if (w.dim(1) != K) throw Error("linear: input " + shape_str(x.shape()) + " vs weight " + shape_str(w.shape()));
    Shape out_shape = x.shape();
    out_shape.back() = N;
    Tensor y = Tensor::empty(out_shape);
    float* yd = y.data();
    if (b.defined()) {
        const float* bd = b.data();
#pragma omp parallel for if (M * N >= (1 << 15))
        for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) yd[i * N + j] = bd[j];
    }
    gemm(M, N, K, x.data(), K, w.data(), K, true, yd, N, 1.0f, b.defined() ? 1.0f : 0.0f);
    return y;
}

}  // namespace sam::ops
