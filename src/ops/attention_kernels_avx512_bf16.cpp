// The fused attention kernel with its two large products in bf16, for the reduced-precision
// encoder (bf16 and int8) on CPUs with AVX512-BF16 (chosen at run time: attention_kernels.h).
//
// vdpbf16ps multiplies pairs of bf16 and adds both products to one fp32 lane, so the reduction
// axis of each product is packed in pairs:
//   scores  S^T = K_blk Q^T:  Q^T as pairs of head components (b.qp[e][i] = (q_i[2e], q_i[2e+1])),
//           the keys likewise (p.keys_bf16, panels of 6 keys, broadcast one pair at a time);
//   values  O^T += V_blk^T P^T: P^T as pairs of keys (b.sp[u][i] = (p_i[2u], p_i[2u+1])), made by
//           the softmax as it computes the probabilities, the values likewise (p.values_bf16).
// A tile is a panel of 6 rows x the block's queries as in the fp32 AVX-512 kernels, with half
// the instructions per product. Accumulation, the relative-position terms (small products kept in fp32), the scores'
// bias and maximum and the online softmax are fp32: only the operands are rounded to bf16
// (round to nearest even), a relative error of at most 2^-9 per operand.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <limits>
#include <type_traits>
#include <vector>

#include <immintrin.h>

// Everything below is compiled for AVX-512 F/BW/DQ/VL and BF16, AVX2 and FMA; the intrinsics
// header comes first, as it declares each intrinsic with its own target.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma")
#endif
#if !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // see attention_kernels_avx512.cpp
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include "ops/attention_kernels_avx512.h"

namespace sam::ops::attention {
namespace {

// Sixteen bf16 pairs (a_i, b_i), a in the low half of each 32-bit lane, rounded to nearest even.
inline __m512i bf16_pairs(__m512 a, __m512 b) {
    // cvtne2ps(b, a) gives [a_0 .. a_15, b_0 .. b_15] (its second operand in the lower half).
    alignas(64) static constexpr uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                             8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i packed = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a));
    return _mm512_permutexvar_epi16(_mm512_load_si512(kInterleave), packed);
}

struct Avx512Bf16Kernels : Avx512Kernels {
    // acc[r][v] += sum_e a[e][r] . x[e][16 v .. 16 v + 15] over pairs, as
    // Avx512Kernels::accumulate: a is one panel of pairs ([depth][6]).
    template <int MR, int NV>
    [[gnu::always_inline]] static inline void accumulate_pairs(int64_t depth, const uint32_t* a, const uint32_t* x,
                                                               int64_t ldx, Tile<MR, NV>& acc) {
        for (int64_t e = 0; e < depth; ++e, a += kRowTile, x += ldx) {
            __m512bh xe[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) xe[v] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(x + v * kLanes));
#pragma GCC unroll 6
            for (int r = 0; r < MR; ++r) {
                const __m512bh ar = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(a[r])));
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], ar, xe[v]);
            }
        }
    }

    // b.qp from b.qs: the scaled queries in pairs of head components (a zero component past an
    // odd head_dim).
    static void prepare_queries(const Packed& p, const Block& b) {
        for (int64_t e = 0; e < (p.hd + 1) / 2; ++e) {
            const float* q0 = b.qs + 2 * e * b.ldq;
            const float* q1 = 2 * e + 1 < p.hd ? q0 + b.ldq : nullptr;
            for (int64_t i0 = 0; i0 < b.nqp; i0 += kLanes)
                _mm512_storeu_si512(b.qp + e * b.ldq + i0,
                                    bf16_pairs(_mm512_loadu_ps(q0 + i0), q1 ? _mm512_loadu_ps(q1 + i0) : _mm512_setzero_ps()));
        }
    }

    // Relative: with the relative terms RH[kh] + RW[kw] added.
    template <bool Relative>
    static void scores(const Packed& p, const Block& b, int64_t j0, int64_t nk) {
        const int64_t hp = (p.hd + 1) / 2;
        reset_block_max(b);
        with_query_vectors(b.nqp, [&](auto nv) {
            for_panels(nk, [&](auto mr, int64_t r0) {
                Tile<decltype(mr)::value, decltype(nv)::value> acc;
                zero(acc);
                accumulate_pairs(hp, p.keys_bf16 + (j0 + r0) * hp, b.qp, b.ldq, acc);
                store_scores<Relative>(p, b, j0, r0, acc);
            });
        });
    }

    // As Avx512Kernels::softmax_update, writing the probabilities as pairs of keys into b.sp
    // (a zero probability after an odd last key) instead of back into b.s.
    static void softmax_update(const Block& b, int64_t nk, bool first) {
        for (int64_t i0 = 0; i0 < b.nqp; i0 += kLanes) {
            const __m512 bmax = _mm512_loadu_ps(b.bmax + i0);
            const __m512 m_old = first ? bmax : _mm512_loadu_ps(b.m + i0);
            const __m512 m_new = _mm512_max_ps(m_old, bmax);
            const __m512 alpha = first ? _mm512_setzero_ps() : exp2_nonpositive(_mm512_sub_ps(m_old, m_new));
            const __m512 l_old = first ? _mm512_setzero_ps() : _mm512_loadu_ps(b.l + i0);
            __m512 sums[4] = {_mm512_mul_ps(l_old, alpha), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
            _mm512_storeu_ps(b.m + i0, m_new);
            _mm512_storeu_ps(b.alpha + i0, alpha);
            const float* s = b.s + i0;
            uint32_t* sp = b.sp + i0;
            int64_t j = 0;
            for (; j + 4 <= nk; j += 4, s += 4 * b.ldq, sp += 2 * b.ldq) {
                __m512 e[4];
#pragma GCC unroll 4
                for (int u = 0; u < 4; ++u) {
                    e[u] = exp2_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(s + u * b.ldq), m_new));
                    sums[u] = _mm512_add_ps(sums[u], e[u]);
                }
                _mm512_storeu_si512(sp, bf16_pairs(e[0], e[1]));
                _mm512_storeu_si512(sp + b.ldq, bf16_pairs(e[2], e[3]));
            }
            for (; j < nk; j += 2, s += 2 * b.ldq, sp += b.ldq) {
                const __m512 e0 = exp2_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(s), m_new));
                const __m512 e1 = j + 1 < nk ? exp2_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(s + b.ldq), m_new))
                                             : _mm512_setzero_ps();
                sums[0] = _mm512_add_ps(sums[0], _mm512_add_ps(e0, e1));
                _mm512_storeu_si512(sp, bf16_pairs(e0, e1));
            }
            _mm512_storeu_ps(b.l + i0, _mm512_add_ps(_mm512_add_ps(sums[0], sums[1]), _mm512_add_ps(sums[2], sums[3])));
        }
    }

    // O^T = O^T alpha + V_blk^T P^T over pairs of keys, a panel of 6 components at a time; a
    // value panel holds (tokens + 1) / 2 pairs of each of its components.
    static void weighted_values(const Packed& p, const Block& b, int64_t j0, int64_t nk, bool first) {
        const int64_t tp = (p.tokens + 1) / 2;  // j0 is even: key blocks hold whole pairs
        with_query_vectors(b.nqp, [&](auto nv) {
            for_panels(p.hd, [&](auto mr, int64_t c0) {
                Tile<decltype(mr)::value, decltype(nv)::value> acc;
                load_rescaled(b, c0, first, acc);
                accumulate_pairs((nk + 1) / 2, p.values_bf16 + c0 * tp + j0 / 2 * kRowTile, b.sp, b.ldq, acc);
                store(acc, b.o + c0 * b.ldq, b.ldq);
            });
        });
    }
};

static_assert(kKeyBlock % 2 == 0, "key blocks must hold whole pairs of keys");

// Twelve independent chains of `op` (`steps` times each), in registers: the instruction's
// throughput.
template <class Op>
[[gnu::noinline]] __m512 twelve_chains(int64_t steps, Op op) {
    // Different starts, so that no two chains are the same computation (which a compiler merges).
    __m512 a0 = _mm512_set1_ps(0.0f), a1 = _mm512_set1_ps(1.0f), a2 = _mm512_set1_ps(2.0f), a3 = _mm512_set1_ps(3.0f),
           a4 = _mm512_set1_ps(4.0f), a5 = _mm512_set1_ps(5.0f), a6 = _mm512_set1_ps(6.0f), a7 = _mm512_set1_ps(7.0f),
           a8 = _mm512_set1_ps(8.0f), a9 = _mm512_set1_ps(9.0f), a10 = _mm512_set1_ps(10.0f), a11 = _mm512_set1_ps(11.0f);
    for (int64_t k = 0; k < steps; ++k) {
        a0 = op(a0), a1 = op(a1), a2 = op(a2), a3 = op(a3), a4 = op(a4), a5 = op(a5);
        a6 = op(a6), a7 = op(a7), a8 = op(a8), a9 = op(a9), a10 = op(a10), a11 = op(a11);
        __asm__ volatile("" : "+v"(a0), "+v"(a6));  // keeps the loop from being folded
    }
    const __m512 s0 = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    const __m512 s1 = _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7));
    const __m512 s2 = _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11));
    return _mm512_add_ps(_mm512_add_ps(s0, s1), s2);
}

// The first n (<= 16) lanes.
inline __mmask16 first_lanes(int64_t n) {
    return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << std::max<int64_t>(n, 0)) - 1u);
}

}  // namespace

// Each panel's six key rows are converted 32 components at a time into a row of pairs (a row's
// consecutive bf16 are its pairs in order), then interleaved into [pair][6]. The scalar
// rounding this replaced took 9% of the int8 encoder's attention.
void pack_keys_bf16(int64_t tokens, int64_t hd, const float* const* k_rows, uint32_t* out) {
    const int64_t hp = (hd + 1) / 2, ld = (hp + kLanes - 1) / kLanes * kLanes;  // pairs per converted row
    std::vector<uint32_t> rows(static_cast<size_t>(kRowTile * ld));
    for (int64_t p = 0; p < panels(tokens); ++p, out += hp * kRowTile) {
        for (int64_t r = 0; r < kRowTile; ++r) {
            const int64_t t = p * kRowTile + r;
            uint32_t* dst = rows.data() + r * ld;
            if (t >= tokens) {
                std::fill(dst, dst + ld, 0u);
                continue;
            }
            if (t + kPrefetchRows < tokens) prefetch_row(k_rows[t + kPrefetchRows], hd);
            const float* src = k_rows[t];
            for (int64_t e0 = 0; e0 < hp; e0 += kLanes) {
                const int64_t c0 = 2 * e0, n = hd - c0;  // components left from c0
                const __m512 lo = _mm512_maskz_loadu_ps(first_lanes(n), src + c0);
                const __m512 hi = _mm512_maskz_loadu_ps(first_lanes(n - kLanes), src + c0 + kLanes);
                _mm512_storeu_si512(dst + e0, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
            }
        }
        for (int64_t e = 0; e < hp; ++e)
            for (int64_t r = 0; r < kRowTile; ++r) out[e * kRowTile + r] = rows[r * ld + e];
    }
}

// Each pair of value rows (tokens 2u, 2u + 1) is converted 16 components at a time into pairs,
// then split into the components' panels.
void pack_values_bf16(int64_t tokens, int64_t hd, const float* const* v_rows, uint32_t* out) {
    const int64_t tp = (tokens + 1) / 2, np = panels(hd);
    std::vector<uint32_t> pairs(static_cast<size_t>(std::max(np * kRowTile, (hd + kLanes - 1) / kLanes * kLanes)), 0u);
    for (int64_t u = 0; u < tp; ++u) {
        const float* a = v_rows[2 * u];
        const float* b = 2 * u + 1 < tokens ? v_rows[2 * u + 1] : nullptr;
        for (int64_t t = 2 * u + kPrefetchRows; t < std::min(tokens, 2 * u + 2 + kPrefetchRows); ++t)
            prefetch_row(v_rows[t], hd);
        for (int64_t c0 = 0; c0 < hd; c0 += kLanes) {
            const __mmask16 m = first_lanes(hd - c0);
            const __m512 va = _mm512_maskz_loadu_ps(m, a + c0);
            const __m512 vb = b ? _mm512_maskz_loadu_ps(m, b + c0) : _mm512_setzero_ps();
            _mm512_mask_storeu_epi32(pairs.data() + c0, m, bf16_pairs(va, vb));  // zero past hd stays zero
        }
        for (int64_t q = 0; q < np; ++q)
            std::copy_n(pairs.data() + q * kRowTile, kRowTile, out + (q * tp + u) * kRowTile);
    }
}

double bf16_dot_speed_ratio() {
    const __m512i one = _mm512_set1_epi32(0x3f803f80), tiny = _mm512_set1_epi32(0x30003000);  // bf16 pairs (1, 1), (2^-31, 2^-31)
    const __m512bh a = reinterpret_cast<__m512bh>(one), b = reinterpret_cast<__m512bh>(tiny);
    const __m512 x = _mm512_set1_ps(1.0f), y = _mm512_set1_ps(0x1p-31f);
    constexpr int64_t kSteps = 4096;
    double bf16_s = 1e30, fma_s = 1e30;
    float sink[16];  // the sums are stored, so that the chains are computed
    for (int trial = 0; trial < 5; ++trial) {  // alternated, best of each: other load hits both alike
        auto t0 = std::chrono::steady_clock::now();
        _mm512_storeu_ps(sink, twelve_chains(kSteps, [=](__m512 c) { return _mm512_dpbf16_ps(c, a, b); }));
        auto t1 = std::chrono::steady_clock::now();
        _mm512_storeu_ps(sink, twelve_chains(kSteps, [=](__m512 c) { return _mm512_fmadd_ps(x, y, c); }));
        __asm__ volatile("" : : "r"(sink) : "memory");
        auto t2 = std::chrono::steady_clock::now();
        bf16_s = std::min(bf16_s, std::chrono::duration<double>(t1 - t0).count());
        fma_s = std::min(fma_s, std::chrono::duration<double>(t2 - t1).count());
    }
    return (2.0 / bf16_s) / (1.0 / fma_s);  // a vdpbf16ps does two multiply-adds per lane
}

SAM_ATTENTION_ENTRY(avx512_bf16) { attend_blocks<Avx512Bf16Kernels>(p, nq, q_rows, q_tok, out_rows, work, positions); }

}  // namespace sam::ops::attention
#if !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
