// The blocking of the fused attention kernel (attention_kernels.cpp describes it): the data
// layout every instruction-set version shares, and the entry point of each version. Private
// to src/ops.
#pragma once

#include <cstdint>

namespace sam::ops::attention {

constexpr int64_t kLanes = 16;       // queries per micro-tile (two AVX2 vectors, one AVX-512 vector)
constexpr int64_t kRowTile = 6;      // rows per packed panel (AVX2 tile: 12 accumulators + 2 loads + 1 broadcast)
constexpr int64_t kQueryBlock = 64;  // queries per block: Q^T, O^T and the score block fit L1/L2
constexpr int64_t kKeyBlock = 252;   // keys per online-softmax step, a multiple of 2 * kRowTile
constexpr float kLog2e = 1.44269504088896341f;

inline int64_t panels(int64_t rows) { return (rows + kRowTile - 1) / kRowTile; }

// The head's packed operands (see the top of the file).
struct Packed {
    int64_t hd = 0, gh = 0, gw = 0, tokens = 0;
    // Whether there are relative-position tables. Without them the scores are the scaled
    // products alone: no table products, gathers or bias additions, and no query positions.
    bool relative = true;
    const float* keys = nullptr;     // [panels(tokens)][hd][6]
    const float* values = nullptr;   // [panels(hd)][tokens][6]
    const float* table_h = nullptr;  // [panels(2 gh - 1)][hd][6]
    const float* table_w = nullptr;  // [panels(2 gw - 1)][hd][6]
    // bf16 products (attention_kernels_avx512_bf16.cpp) instead of keys and values: pairs of
    // bf16 (the lower-indexed element in the low half), summed by vdpbf16ps; zero past the end.
    const uint32_t* keys_bf16 = nullptr;    // [panels(tokens)][(hd + 1) / 2][6]: (K[t][2e], K[t][2e + 1])
    const uint32_t* values_bf16 = nullptr;  // [panels(hd)][(tokens + 1) / 2][6]: (V[2u][c], V[2u + 1][c])
    float q_scale = 1.0f;  // scale * log2 e: the logits are kept in log2 units (see exp2_approx.h)
};

// One query block's buffers. Matrices with a query axis are (rows x ldq), ldq = nqp.
struct Block {
    int64_t nq = 0, nqp = 0, ldq = 0;
    float* qs = nullptr;     // (hd x ldq) Q^T * scale * log2 e
    // The relative terms' buffers (empty without tables):
    float* qu = nullptr;     // (hd x ldq) Q^T, for the relative terms
    float* rel = nullptr;    // (rows of a table x ldq) table products before the gather
    float* rh = nullptr;     // (gh x ldq) RH[kh][i] (log2 units)
    float* rw = nullptr;     // (gw x ldq) RW[kw][i] (log2 units)
    float* s = nullptr;      // (kKeyBlock x ldq) scores, then probabilities, of a key block
    float* o = nullptr;      // (hd x ldq) output accumulator O^T
    float* m = nullptr;      // (ldq) running maximum (log2 units)
    float* l = nullptr;      // (ldq) running sum of 2^(s - m)
    float* alpha = nullptr;  // (ldq) rescale of the previous blocks: 2^(m_old - m_new)
    float* bmax = nullptr;   // (ldq) maximum over the current key block
    uint32_t* qp = nullptr;  // ((hd + 1) / 2 x ldq) bf16 pairs of qs rows 2e, 2e + 1 (bf16 products only)
    uint32_t* sp = nullptr;  // (kKeyBlock / 2 x ldq) bf16 pairs of s rows 2u, 2u + 1 (bf16 products only)
    int32_t* qh = nullptr;   // (ldq) grid row of each query (relative terms only)
    int32_t* qw = nullptr;   // (ldq) grid column
};

int64_t block_floats(const Packed& p, int64_t ldq);  // floats of `work` one query block needs

// Attention of nq queries against the packed head p, in blocks of kQueryBlock; `work` holds
// block_floats(p, kQueryBlock) floats, `positions` 2 * kQueryBlock; q_tok is read only with
// relative terms. One per kernel set, each compiled for its instruction set
// (attention_kernels_<isa>.cpp).
#define SAM_ATTENTION_ENTRY(isa)                                                                               \
    void attend_blocks_##isa(const Packed& p, int64_t nq, const float* const* q_rows, const int64_t* q_tok, \
                             float* const* out_rows, float* work, int32_t* positions)
SAM_ATTENTION_ENTRY(portable);
SAM_ATTENTION_ENTRY(avx2);
SAM_ATTENTION_ENTRY(avx512);
SAM_ATTENTION_ENTRY(avx512_bf16);  // needs AVX512-BF16 too, and the bf16 operands of Packed

// The bf16 operands of Packed from the head's fp32 rows (attention_kernels_avx512_bf16.cpp,
// AVX512-BF16), each the rounding to nearest even of the whole rows at once: keys_bf16 from
// `tokens` key rows, values_bf16 from as many value rows, each hd floats.
void pack_keys_bf16(int64_t tokens, int64_t hd, const float* const* k_rows, uint32_t* out);
void pack_values_bf16(int64_t tokens, int64_t hd, const float* const* v_rows, uint32_t* out);

// Multiply-adds per second of vdpbf16ps over those of fp32 vfmadd (zmm, twelve independent
// chains; best of five alternated trials of ~50k instructions each). Needs AVX512-BF16.
double bf16_dot_speed_ratio();

}  // namespace sam::ops::attention
