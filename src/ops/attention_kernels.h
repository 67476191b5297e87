// Fused attention for one head, with SAM's decomposed relative positions
// (segment_anything/modeling/image_encoder.py, add_decomposed_rel_pos):
//
//   out_i = sum_t softmax_t(s_it) v_t,
//   s_it  = (q_i * scale) . k_t + q_i . rel_h[qh_i - kh_t + gh - 1] + q_i . rel_w[qw_i - kw_t + gw - 1]
//
// over the keys t of a (gh, gw) token grid, (qh_i, qw_i) and (kh_t, kw_t) being grid positions.
// The relative terms use the unscaled q, as the reference does. Without tables (SAM 2's Hiera
// and memory attention) the kernel is plain softmax(scale q k^T) v over any number of keys, and
// computes no relative terms at all.
//
// Why hand-written: no library offers fused attention with these decomposed relative terms on
// CPU, and the unfused form (a GEMM writing the whole score block, a bias pass, a softmax
// pass, a GEMM reading it back) streams a (queries x 4096) score block through memory several
// times per head for global attention. Here the keys are visited in blocks with an online
// softmax (running maximum and sum per query; the output accumulator is rescaled when the
// maximum grows), so a block of scores lives in L1/L2 from the product that writes it to the
// product that consumes it. The blocking is described in attention_kernels.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "ops/cpu.h"

namespace sam::ops {

// What the heads and windows of one attention layer share: the token grid, the relative-
// position tables (one per layer, as in the reference) and the scale.
struct RelPosAttentionParams {
    int64_t head_dim = 0;
    int64_t grid_h = 0, grid_w = 0;    // keys: grid_h * grid_w tokens, row-major over the grid
    // Both tables, or neither (nullptr): then there are no relative terms, the grid only
    // counts the keys (1 x n will do) and the queries' tokens are not read. One without the
    // other is an error.
    const float* rel_pos_h = nullptr;  // (2 * grid_h - 1, head_dim)
    const float* rel_pos_w = nullptr;  // (2 * grid_w - 1, head_dim)
    float scale = 1.0f;                // multiplies q . k, not the relative terms
    // The two large products (Q K^T and P V) with bf16 operands and fp32 sums, for the reduced-
    // precision encoder: the AVX-512 kernels with vdpbf16ps, which need AVX512-BF16
    // (bf16_attention_supported()). The relative terms and the softmax stay fp32.
    bool bf16_products = false;

    // Plain scaled dot-product attention of head_dim channels over grid_h x grid_w keys: no
    // relative tables, scale 1/sqrt(head_dim) (SAM 2's Hiera and memory attention).
    static RelPosAttentionParams plain(int64_t head_dim, int64_t grid_h, int64_t grid_w);
};

// Whether this CPU runs the bf16-product kernels (AVX-512 F/BW/DQ/VL and AVX512-BF16).
bool bf16_attention_supported();
// Multiply-adds per second of vdpbf16ps over fp32 FMA on this CPU, measured once (~1 ms);
// 0 where the CPU lacks AVX512-BF16. Measured 2.0 on AMD Zen 4 (bf16 dot products at the FMA's
// instruction rate), 0.5 on an AVX512-BF16 Xeon, where they lose to fp32 products
// (docs/BENCHMARKS.md).
double bf16_attention_speed_ratio();
// Whether the bf16 and int8 encoders take attention's products in bf16: the CPU runs them, the
// AVX-512 kernels are in use (kernel_isa()), and bf16_attention_speed_ratio() > 1.25 (the
// conversions cost a little). The environment variable SAM_ATTENTION_BF16=1|0 (read once)
// forces the choice, for comparisons; 1 on a CPU without the instructions is an error.
bool bf16_attention_preferred();
// Overrides that choice (and SAM_ATTENTION_BF16) from now on, process-wide: 1 on, 0 off, -1 back
// to the default. For tests and comparisons; 1 on a CPU without the instructions is an error.
void set_bf16_attention_override(int mode);

// 64-byte aligned float storage that only grows; contents unspecified after a resize.
class AlignedFloats {
  public:
    float* reserve(size_t n);
    float* data() { return data_.get(); }
    const float* data() const { return data_.get(); }

  private:
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float[], Free> data_;
    size_t size_ = 0;
};

// Attention over one head of one window at a time. The constructor packs (copies) the
// tables; set_keys_values packs a head's keys and values (a head_dim x tokens copy, reused by
// every query block of that head); attend() then takes any number of queries. Rows are given by
// pointer so that windows (whose tokens are scattered over the image, and whose padding
// tokens all share one row) need no gathering by the caller. One object per thread: it keeps
// its buffers from call to call.
class RelPosAttention {
  public:
    // Throws sam::Error for bf16 products on a CPU without them, or for one table alone.
    explicit RelPosAttention(const RelPosAttentionParams& params);
    // k_rows[t], v_rows[t]: key and value of grid token t (head_dim floats each).
    void set_keys_values(const float* const* k_rows, const float* const* v_rows);
    // out_rows[i] (head_dim floats) = attention of query q_rows[i], at grid token q_tok[i]
    // (not read, and may be null, without tables), with the kernels in use (kernel_isa()).
    void attend(int64_t nq, const float* const* q_rows, const int64_t* q_tok, float* const* out_rows);
    // The same with the kernels of `isa` (which the CPU must run: cpu_runs()). The portable
    // kernels, the same blocking in plain C++ loops, are the oracle for the vector ones. With
    // bf16 products the kernels are the AVX-512 ones whatever `isa` says.
    void attend(int64_t nq, const float* const* q_rows, const int64_t* q_tok, float* const* out_rows, KernelIsa isa);

  private:
    RelPosAttentionParams params_;
    AlignedFloats keys_, values_, table_h_, table_w_;  // packed (see attention_kernels.cpp)
    AlignedFloats work_;                               // per query block buffers
    std::vector<int32_t> positions_;
};

}  // namespace sam::ops
