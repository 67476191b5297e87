// Linear layers through oneDNN's matmul primitive: weights are reordered once into the
// layout the primitive prefers (pre-packed), and bias, GELU and the residual sum are fused
// into the GEMM as post-ops, so a block's MLP and projections make no extra memory passes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "sam/tensor.h"

namespace sam::ops {

enum class Epilogue {
    None,      // y = x W^T + b
    Gelu,      // y = gelu(x W^T + b)          (exact erf GELU)
    Relu,      // y = relu(x W^T + b)
    Residual,  // y += x W^T + b               (y holds the residual on entry)
};

enum class Precision { F32, BF16 };
void set_precision(Precision p);  // for every matmul created afterwards
Precision precision();
// Whether this CPU has native bf16 matrix instructions the library can use (AVX512-BF16, AMX).
bool bf16_supported();

// A linear layer's weights plus the primitives and packed weights made for them, per row
// count M. Thread-safe; copies share the cache.
class PackedLinear {
  public:
    PackedLinear() = default;
    PackedLinear(Tensor w, Tensor b);  // w (N, K), b (N) or undefined

    const Tensor& weight() const { return w_; }
    const Tensor& bias() const { return b_; }
    int64_t out_features() const { return w_.dim(0); }
    int64_t in_features() const { return w_.dim(1); }

    // y (M, N) from x (M, K), rows with leading dimensions lda / ldy (in elements).
    void forward(const float* x, int64_t M, float* y, Epilogue e = Epilogue::None, int64_t lda = -1,
                 int64_t ldy = -1) const;

  private:
    struct Entry;
    Tensor w_, b_;
    struct Cache {
        std::mutex mutex;
        std::map<std::tuple<int64_t, int64_t, int64_t, int, int>, std::shared_ptr<Entry>> entries;
    };
    std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();
};

}  // namespace sam::ops
