// Fused relative-position attention (attention_kernels.h).
//
// Blocking, per block of at most 64 queries of one head:
//   * The queries are stored transposed, Q^T (head_dim x nqp), padded with zero queries to
//     nqp, a multiple of 16. Every vector then runs along queries: any head_dim (64, 80, odd
//     sizes) works without masked loads, and the softmax statistics are plain vector ops.
//   * Relative terms: Rh Q^T with the same micro-kernel as the scores, for the table rows this
//     block's query rows reach, gathered into RH (gh x nqp), RH[kh][i] = (Rh Q^T)[qh_i - kh +
//     gh - 1][i]; likewise RW (gw x nqp). Without tables (SAM 2) the block is compiled a second
//     time with all of this left out: no table products, gathers, bias additions, unscaled
//     Q^T or query positions (attend_block<Kernels, false>).
//   * Keys in blocks of at most kKeyBlock (a 252 x 64 score block is 64 KiB: L2; a window's
//     196 keys are one block):
//       S^T = K_blk (Q * scale)^T + RH[kh] + RW[kw]  (bias and block maximum in the store)
//       m' = max(m, max_blk S), P = exp(S - m'), l = l exp(m - m') + sum P
//       O^T = O^T exp(m - m') + V_blk^T P^T          (the rescale is the accumulator's start)
//     and at the end out_i = O^T[:, i] / l_i. The logits are kept in log2 units (Q and the
//     relative terms scaled by log2 e), so that the exponentials are 2^x, cheaper to reduce.
//   * Micro-kernels, one set per instruction set, chosen at run time (ops/cpu.h): AVX2 uses a
//     register tile of 6 rows x 16 queries (12 accumulators), broadcasting the row operand (a
//     key component for the scores, a value component for the output) and loading 16 queries
//     of the column operand per step: 8 loads per 12 FMAs, within Zen 3's load ports.
//     AVX-512 (attention_kernels_avx512.h) uses 12 rows x 16 queries, one register a row.
//     The portable kernels run the same blocking in plain loops and are the oracle.
//   * bf16 products (attention_kernels_avx512_bf16.cpp), for the bf16 and int8 encoders: the
//     AVX-512 tiles with vdpbf16ps, keys, values, queries and probabilities packed as pairs of
//     bf16 along each product's sum; chosen where the CPU has AVX512-BF16 and a probe measures
//     vdpbf16ps faster than fp32 FMA (bf16_attention_preferred()).
//   * The row operands are packed once per head in panels of 6 rows, component-major
//     (panel[d][r]), so that a tile broadcasts from one pointer at fixed offsets: keys as
//     K[t / 6][d][t % 6], values as V[c / 6][t][c % 6], the tables like the keys. With one
//     pointer per row (reading the qkv buffer in place) the inner loop ran out of general
//     registers and reloaded them from the stack at every step.
//   * Key blocks are visited in order and scores kept in L2 between the passes; computing
//     the exponentials inside the score tiles instead (fused) measured slower.
#include "ops/attention_kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <string>

#include "ops/attention_blocking_impl.h"
#include "ops/cpu.h"
#include "sam/error.h"

namespace sam::ops {

using namespace attention;

float* AlignedFloats::reserve(size_t n) {
    if (n > size_) {
        const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;  // aligned_alloc wants a multiple
        float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
        if (!p) throw std::bad_alloc();
        data_.reset(p);
        size_ = bytes / sizeof(float);
    }
    return data_.get();
}

namespace attention {

int64_t block_floats(const Packed& p, int64_t ldq) {
    int64_t rows = 0;
    for (int64_t r : block_rows(p)) rows += r;
    return rows * ldq;
}

SAM_ATTENTION_ENTRY(portable) { attend_blocks<PortableKernels>(p, nq, q_rows, q_tok, out_rows, work, positions); }

}  // namespace attention

namespace {

// out[p][d][r] = rows[p * 6 + r][d], zero past the last row: the panels the micro-kernel
// broadcasts from (keys, relative-position tables).
template <class RowAt>
void pack_row_panels(int64_t rows, int64_t depth, RowAt&& row_at, float* out) {
    for (int64_t p = 0; p < panels(rows); ++p, out += depth * kRowTile) {
        const int64_t n = std::min(kRowTile, rows - p * kRowTile);
        const float* src[kRowTile];
        for (int64_t r = 0; r < n; ++r) src[r] = row_at(p * kRowTile + r);
        for (int64_t r = p * kRowTile + kPrefetchRows; r < std::min(rows, (p + 1) * kRowTile + kPrefetchRows); ++r)
            prefetch_row(row_at(r), depth);
        if (n == kRowTile) {
            for (int64_t d = 0; d < depth; ++d)
                for (int64_t r = 0; r < kRowTile; ++r) out[d * kRowTile + r] = src[r][d];
        } else {
            for (int64_t d = 0; d < depth; ++d)
                for (int64_t r = 0; r < kRowTile; ++r) out[d * kRowTile + r] = r < n ? src[r][d] : 0.0f;
        }
    }
}

// out[c / 6][t][c % 6] = rows[t][c], zero past the last component: the value panels, whose
// rows are components and whose depth is the tokens.
template <class RowAt>
void pack_column_panels(int64_t rows, int64_t width, RowAt&& row_at, float* out) {
    const int64_t full = width / kRowTile, rest = width % kRowTile;
    for (int64_t t = 0; t < rows; ++t) {
        const float* src = row_at(t);
        if (t + kPrefetchRows < rows) prefetch_row(row_at(t + kPrefetchRows), width);
        float* dst = out + t * kRowTile;
        for (int64_t p = 0; p < full; ++p)
            for (int64_t r = 0; r < kRowTile; ++r) dst[p * rows * kRowTile + r] = src[p * kRowTile + r];
        if (rest > 0)
            for (int64_t r = 0; r < kRowTile; ++r)
                dst[full * rows * kRowTile + r] = r < rest ? src[full * kRowTile + r] : 0.0f;
    }
}

}  // namespace

bool bf16_attention_supported() { return cpu_runs(KernelIsa::Avx512) && cpu_features().avx512_bf16; }

double bf16_attention_speed_ratio() {
    static const double ratio = bf16_attention_supported() ? bf16_dot_speed_ratio() : 0.0;
    return ratio;
}

namespace {
std::atomic<int> g_bf16_override{-1};
}

void set_bf16_attention_override(int mode) {
    if (mode == 1 && !bf16_attention_supported())
        throw Error("attention: bf16 products asked for on a CPU without AVX512-BF16 (it has: " +
                    cpu_features().summary() + ")");
    g_bf16_override.store(mode < 0 ? -1 : mode != 0);
}

bool bf16_attention_preferred() {
    if (const int o = g_bf16_override.load(); o >= 0) return o == 1;
    static const int forced = [] {  // -1: measured
        const char* env = std::getenv("SAM_ATTENTION_BF16");
        const std::string v = env ? env : "";
        if (v.empty() || v == "auto") return -1;
        if (v == "0" || v == "1") return v == "1" ? 1 : 0;
        throw InputError("SAM_ATTENTION_BF16", "'" + v + "' is not one of 0, 1, auto");
    }();
    if (forced == 1 && !bf16_attention_supported())
        throw InputError("SAM_ATTENTION_BF16", "bf16 attention asked for, but this CPU lacks AVX512-BF16 (it has: " +
                                                   cpu_features().summary() + ")");
    if (forced >= 0) return forced == 1;
    return bf16_attention_supported() && kernel_isa() == KernelIsa::Avx512 && bf16_attention_speed_ratio() > 1.25;
}

RelPosAttentionParams RelPosAttentionParams::plain(int64_t head_dim, int64_t grid_h, int64_t grid_w) {
    RelPosAttentionParams p;
    p.head_dim = head_dim;
    p.grid_h = grid_h;
    p.grid_w = grid_w;
    p.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    return p;
}

RelPosAttention::RelPosAttention(const RelPosAttentionParams& params) : params_(params) {
    if (params.bf16_products && !bf16_attention_supported())
        throw Error("attention: bf16 products asked for on a CPU without AVX512-BF16 (it has: " +
                    cpu_features().summary() + ")");
    if ((params.rel_pos_h == nullptr) != (params.rel_pos_w == nullptr))
        throw Error("attention: one relative-position table given without the other (both, or neither)");
    if (!params.rel_pos_h) return;  // no relative terms
    const int64_t hd = params.head_dim, rh = 2 * params.grid_h - 1, rw = 2 * params.grid_w - 1;
    pack_row_panels(rh, hd, [&](int64_t r) { return params.rel_pos_h + r * hd; },
                    table_h_.reserve(static_cast<size_t>(panels(rh) * kRowTile * hd)));
    pack_row_panels(rw, hd, [&](int64_t r) { return params.rel_pos_w + r * hd; },
                    table_w_.reserve(static_cast<size_t>(panels(rw) * kRowTile * hd)));
}

void RelPosAttention::set_keys_values(const float* const* k_rows, const float* const* v_rows) {
    const int64_t hd = params_.head_dim, tokens = params_.grid_h * params_.grid_w;
    if (params_.bf16_products) {  // one float's room per pair
        pack_keys_bf16(tokens, hd, k_rows,
                       reinterpret_cast<uint32_t*>(keys_.reserve(static_cast<size_t>(panels(tokens) * kRowTile * ((hd + 1) / 2)))));
        pack_values_bf16(tokens, hd, v_rows,
                         reinterpret_cast<uint32_t*>(values_.reserve(static_cast<size_t>(panels(hd) * kRowTile * ((tokens + 1) / 2)))));
        return;
    }
    pack_row_panels(tokens, hd, [&](int64_t t) { return k_rows[t]; },
                    keys_.reserve(static_cast<size_t>(panels(tokens) * kRowTile * hd)));
    pack_column_panels(tokens, hd, [&](int64_t t) { return v_rows[t]; },
                       values_.reserve(static_cast<size_t>(panels(hd) * kRowTile * tokens)));
}

void RelPosAttention::attend(int64_t nq, const float* const* q_rows, const int64_t* q_tok, float* const* out_rows,
                             KernelIsa isa) {
    Packed p;
    p.hd = params_.head_dim;
    p.gh = params_.grid_h;
    p.gw = params_.grid_w;
    p.tokens = p.gh * p.gw;
    p.keys = keys_.data();
    p.values = values_.data();
    p.relative = params_.rel_pos_h != nullptr;
    p.table_h = table_h_.data();
    p.table_w = table_w_.data();
    p.q_scale = params_.scale * kLog2e;
    float* work = work_.reserve(static_cast<size_t>(block_floats(p, kQueryBlock)));
    if (positions_.size() < 2 * kQueryBlock) positions_.resize(2 * kQueryBlock);
    if (params_.bf16_products) {
        p.keys_bf16 = reinterpret_cast<const uint32_t*>(keys_.data());
        p.values_bf16 = reinterpret_cast<const uint32_t*>(values_.data());
        return attend_blocks_avx512_bf16(p, nq, q_rows, q_tok, out_rows, work, positions_.data());
    }
    switch (isa) {
        case KernelIsa::Avx512: return attend_blocks_avx512(p, nq, q_rows, q_tok, out_rows, work, positions_.data());
        case KernelIsa::Avx2: return attend_blocks_avx2(p, nq, q_rows, q_tok, out_rows, work, positions_.data());
        default: return attend_blocks_portable(p, nq, q_rows, q_tok, out_rows, work, positions_.data());
    }
}

void RelPosAttention::attend(int64_t nq, const float* const* q_rows, const int64_t* q_tok, float* const* out_rows) {
    attend(nq, q_rows, q_tok, out_rows, kernel_isa());
}

}  // namespace sam::ops
