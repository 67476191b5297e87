// Linear layers through oneDNN's matmul primitive: bias, GELU and the residual sum are fused
// into the GEMM as post-ops, so a block's MLP and projections make no extra memory passes.
//
// Reduced precision (asked for per call: the image encoder asks for its blocks' layers) comes
// in two kinds:
//   BF16: weights converted once, activations converted per call; needs native bf16
//         instructions (AVX512-BF16, AMX).
//   INT8: weights quantised once per output channel, to 8 bits (-127..127) where the library's
//         u8 x s8 matmul uses VNNI (vpdpbusd sums u8 x s8 products straight into int32), to
//         7 bits (-63..63) elsewhere (without VNNI, u8 x s8 pairs are summed into saturating
//         int16, and 2 x 255 x 63 is the largest pair that fits); activations quantised per
//         call to u8 with a scale and zero point taken from the tensor's own range (dynamic
//         quantisation); int32 accumulation, fp32 output.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sam/execution.h"
#include "sam/tensor.h"

namespace sam::ops {

enum class Epilogue {
    None,      // y = x W^T + b
    Gelu,      // y = gelu(x W^T + b)          (exact erf GELU)
    Relu,      // y = relu(x W^T + b)
    Residual,  // y += x W^T + b               (y holds the residual on entry)
};

// Whether this CPU has native bf16 matrix instructions the library can use (AVX512-BF16, AMX).
bool bf16_supported();
// Whether the library has an optimised u8 x s8 matmul on this CPU (AVX2 and later).
bool int8_supported();
// The int8 weights' largest level for a library instruction set (gemm_library_isa()'s names):
// 127 where its u8 x s8 products are summed by VNNI (avx2_vnni, avx512_core_vnni and the sets
// above it), 63 elsewhere and for names it does not know.
int int8_weight_levels_for(const std::string& gemm_isa);
// The level in use here: int8_weight_levels_for(gemm_library_isa()), read once.
int int8_weight_levels();

// Best GFLOP/s of the library's bare matmul for (M, K) x (K, N) in precision p (int8: u8 x s8 with
// fp32 output, as the layers use it), over at least `reps` timed runs and at least
// kPeakMinSeconds of them, after a warm-up. For benchmarks: a fast int8 run takes ~10 ms, and
// the best of 3 such runs swung by 50% on a shared VM.
constexpr double kPeakMinSeconds = 0.5;
double matmul_peak_gflops(Precision p, int64_t M, int64_t N, int64_t K, int reps);

// A linear layer's weights plus the primitives and packed weights made for them, per row
// shape and precision. Thread-safe: forward() may run on any number of threads at once (each
// execution has its own scratchpad); copies share the cache.
class PackedLinear {
  public:
    PackedLinear() = default;
    PackedLinear(Tensor w, Tensor b);  // w (N, K), b (N) or undefined

    const Tensor& weight() const { return w_; }
    const Tensor& bias() const { return b_; }
    int64_t out_features() const { return w_.dim(0); }
    int64_t in_features() const { return w_.dim(1); }
    // y (M, N) from x (M, K), rows with leading dimensions lda / ldy (in elements), in
    // precision p (which the caller has checked is supported: precision_supported()).
    void forward(const float* x, int64_t M, float* y, Epilogue e = Epilogue::None, int64_t lda = -1,
                 int64_t ldy = -1, Precision p = Precision::F32) const;

    // How many converted copies of the weights this layer holds (one per layout a primitive
    // asked for; fp32 in place makes none): for memory accounting and tests.
    size_t converted_weight_copies() const;

  private:
    struct Entry;
    struct Converted;
    void forward_int8(const Entry& entry, const float* x, int64_t M, float* y, int64_t lda) const;
    Tensor w_, b_;
    struct Cache {
        std::mutex mutex;
        std::vector<int8_t> w_int8;  // (N, K), made on first int8 use
        std::vector<float> w_scale;  // (N)
        std::vector<float> w_sum;    // (N): sum over k of w_int8[n][k], for the activations' zero point
        std::map<std::tuple<int64_t, int64_t, int64_t, int, int>, std::shared_ptr<Entry>> entries;
        // Weights converted into a primitive's layout, one copy per layout, shared by the
        // entries (row counts, epilogues) whose primitives want that layout.
        std::vector<std::shared_ptr<Converted>> converted;
    };
    std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();
};

}  // namespace sam::ops
