// AVX2/FMA micro-kernels of the fused attention (the register tiles described in
// attention_kernels.cpp), for the AVX2 and AVX-512 sources, which include this after setting
// their compile target. Internal linkage throughout (see attention_blocking_impl.h).
#pragma once

#include <immintrin.h>

#include <type_traits>

#include "ops/attention_blocking_impl.h"

namespace sam::ops::attention {
namespace {

// 2^x for x <= 0, eight at a time: the arithmetic of approx::exp2_nonpositive (exp2_approx.h).
inline __m256 exp2_nonpositive(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(approx::kExp2Min));
    // Adding 1.5 * 2^23 rounds to an integer (to nearest) and leaves it in the low mantissa bits.
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    const __m256 t = _mm256_add_ps(x, magic);
    const __m256 f = _mm256_sub_ps(x, _mm256_sub_ps(t, magic));
    __m256 p = _mm256_set1_ps(approx::kExp2Poly[0]);
    for (size_t k = 1; k < std::size(approx::kExp2Poly); ++k) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(approx::kExp2Poly[k]));
    const __m256i e = _mm256_add_epi32(_mm256_slli_epi32(_mm256_castps_si256(t), 23), _mm256_set1_epi32(127 << 23));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// f(std::integral_constant<int, MR>, r0) over rows [0, rows) in groups of kRowTile, then one
// smaller group: the register tile's height must be a compile-time constant.
template <class F>
void for_row_groups(int64_t rows, F&& f) {
    int64_t r = 0;
    for (; r + kRowTile <= rows; r += kRowTile) f(std::integral_constant<int, kRowTile>{}, r);
    switch (rows - r) {
        case 5: f(std::integral_constant<int, 5>{}, r); break;
        case 4: f(std::integral_constant<int, 4>{}, r); break;
        case 3: f(std::integral_constant<int, 3>{}, r); break;
        case 2: f(std::integral_constant<int, 2>{}, r); break;
        case 1: f(std::integral_constant<int, 1>{}, r); break;
        default: break;
    }
}

// r[j][c] -> r[c][j]: an 8 x 8 block transposed in registers.
inline void transpose8(__m256 (&r)[8]) {
    __m256 t[8], u[8];
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
        t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
    }
    for (int j = 0; j < 8; j += 4) {
        u[j] = _mm256_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int j = 0; j < 4; ++j) {
        r[j] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x20);
        r[j + 4] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x31);
    }
}

// AVX2/FMA kernels: the register tiles described at the top of the file.
struct Avx2Kernels {
    // The transpositions go by 8 x 8 blocks in registers: element by element, the strided
    // stores made loading the queries cost a tenth of a window's attention.
    static void rows_to_columns(const float* const* rows, int64_t n, int64_t width, float* out, int64_t ldo) {
        const int64_t n8 = n / 8 * 8, w8 = width / 8 * 8;
        for (int64_t i0 = 0; i0 < n8; i0 += 8) {
            for (int64_t i = i0 + kPrefetchRows; i < std::min(n, i0 + 8 + kPrefetchRows); ++i)
                prefetch_row(rows[i], width);
            for (int64_t c0 = 0; c0 < w8; c0 += 8) {
                __m256 r[8];
                for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(rows[i0 + j] + c0);
                transpose8(r);
                for (int c = 0; c < 8; ++c) _mm256_storeu_ps(out + (c0 + c) * ldo + i0, r[c]);
            }
            for (int64_t c = w8; c < width; ++c)
                for (int64_t i = i0; i < i0 + 8; ++i) out[c * ldo + i] = rows[i][c];
        }
        PortableKernels::rows_to_columns(rows + n8, n - n8, width, out + n8, ldo);
    }

    static void columns_to_rows(const float* in, int64_t ldi, int64_t n, int64_t width, const float* lane_scale,
                                float* const* rows) {
        const int64_t n8 = n / 8 * 8, w8 = width / 8 * 8;
        for (int64_t i0 = 0; i0 < n8; i0 += 8) {
            const __m256 scale = _mm256_loadu_ps(lane_scale + i0);
            for (int64_t c0 = 0; c0 < w8; c0 += 8) {
                __m256 r[8];
                for (int c = 0; c < 8; ++c) r[c] = _mm256_mul_ps(_mm256_loadu_ps(in + (c0 + c) * ldi + i0), scale);
                transpose8(r);
                for (int j = 0; j < 8; ++j) _mm256_storeu_ps(rows[i0 + j] + c0, r[j]);
            }
            for (int64_t i = i0; i < i0 + 8; ++i)
                for (int64_t c = w8; c < width; ++c) rows[i][c] = in[c * ldi + i] * lane_scale[i];
        }
        PortableKernels::columns_to_rows(in + n8, ldi, n - n8, width, lane_scale + n8, rows + n8);
    }

    // (lo, hi)[r] += sum_d a[d][r] x[d][0..15] for r < MR: a is one panel, x rows ldx apart.
    template <int MR>
    [[gnu::always_inline]] static inline void accumulate(int64_t depth, const float* a, const float* x, int64_t ldx,
                                                         __m256 (&lo)[MR], __m256 (&hi)[MR]) {
        for (int64_t d = 0; d < depth; ++d, a += kRowTile, x += ldx) {
            const __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8);
#pragma GCC unroll 8
            for (int r = 0; r < MR; ++r) {
                const __m256 ad = _mm256_broadcast_ss(a + r);
                lo[r] = _mm256_fmadd_ps(ad, x0, lo[r]);
                hi[r] = _mm256_fmadd_ps(ad, x1, hi[r]);
            }
        }
    }

    template <int MR>
    [[gnu::always_inline]] static inline void zero(__m256 (&lo)[MR], __m256 (&hi)[MR]) {
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
    }

    static void products(const Block& b, int64_t rows, int64_t depth, const float* a, const float* x, float* out) {
        for (int64_t i0 = 0; i0 < b.nqp; i0 += kLanes)
            for_row_groups(rows, [&](auto mr, int64_t r0) {
                constexpr int MR = decltype(mr)::value;
                __m256 lo[MR], hi[MR];
                zero(lo, hi);
                accumulate(depth, a + r0 * depth, x + i0, b.ldq, lo, hi);
                float* o = out + r0 * b.ldq + i0;
#pragma GCC unroll 8
                for (int r = 0; r < MR; ++r) {
                    _mm256_storeu_ps(o + r * b.ldq, lo[r]);
                    _mm256_storeu_ps(o + r * b.ldq + 8, hi[r]);
                }
            });
    }

    // The block maximum goes through memory, not registers held across tiles: the 12
    // accumulators, 2 query vectors and a broadcast already take 15 of the 16 registers.
    // Relative: with the relative terms RH[kh] + RW[kw] added.
    template <bool Relative>
    static void scores(const Packed& p, const Block& b, int64_t j0, int64_t nk) {
        std::fill(b.bmax, b.bmax + b.nqp, -std::numeric_limits<float>::infinity());
        for_row_groups(nk, [&](auto mr, int64_t r0) {
            for (int64_t i0 = 0; i0 < b.nqp; i0 += kLanes) {
                constexpr int MR = decltype(mr)::value;
                __m256 lo[MR], hi[MR];
                zero(lo, hi);
                accumulate(p.hd, p.keys + (j0 + r0) * p.hd, b.qs + i0, b.ldq, lo, hi);
                [[maybe_unused]] int64_t kh = 0, kw = 0;  // grid position of the tile's first key
                if constexpr (Relative) kh = (j0 + r0) / p.gw, kw = (j0 + r0) % p.gw;
                float* s = b.s + r0 * b.ldq + i0;
                __m256 max_lo = _mm256_loadu_ps(b.bmax + i0), max_hi = _mm256_loadu_ps(b.bmax + i0 + 8);
#pragma GCC unroll 8
                for (int r = 0; r < MR; ++r) {
                    if constexpr (Relative) {
                        const float *bh = b.rh + kh * b.ldq + i0, *bw = b.rw + kw * b.ldq + i0;
                        lo[r] = _mm256_add_ps(lo[r], _mm256_add_ps(_mm256_loadu_ps(bh), _mm256_loadu_ps(bw)));
                        hi[r] = _mm256_add_ps(hi[r], _mm256_add_ps(_mm256_loadu_ps(bh + 8), _mm256_loadu_ps(bw + 8)));
                        if (++kw == p.gw) {
                            kw = 0;
                            ++kh;
                        }
                    }
                    _mm256_storeu_ps(s + r * b.ldq, lo[r]);
                    _mm256_storeu_ps(s + r * b.ldq + 8, hi[r]);
                    max_lo = _mm256_max_ps(max_lo, lo[r]);
                    max_hi = _mm256_max_ps(max_hi, hi[r]);
                }
                _mm256_storeu_ps(b.bmax + i0, max_lo);
                _mm256_storeu_ps(b.bmax + i0 + 8, max_hi);
            }
        });
    }

    // s = 2^(s - m) for 16 queries of one key; sums accumulate them.
    [[gnu::always_inline]] static inline void exp2_row(float* s, __m256 m_lo, __m256 m_hi, __m256& sum_lo,
                                                      __m256& sum_hi) {
        const __m256 e_lo = exp2_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s), m_lo));
        const __m256 e_hi = exp2_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + 8), m_hi));
        _mm256_storeu_ps(s, e_lo);
        _mm256_storeu_ps(s + 8, e_hi);
        sum_lo = _mm256_add_ps(sum_lo, e_lo);
        sum_hi = _mm256_add_ps(sum_hi, e_hi);
    }

    // Four independent exponentials per step (two keys x 16 queries): one alone is a ~50-cycle
    // dependency chain, too long for the out-of-order window to overlap enough of them.
    static void softmax_update(const Block& b, int64_t nk, bool first) {
        for (int64_t i0 = 0; i0 < b.nqp; i0 += kLanes) {
            __m256 m_new[2], sums[4];
            for (int h = 0; h < 2; ++h) {
                const __m256 bmax = _mm256_loadu_ps(b.bmax + i0 + 8 * h);
                const __m256 m_old = first ? bmax : _mm256_loadu_ps(b.m + i0 + 8 * h);
                m_new[h] = _mm256_max_ps(m_old, bmax);
                const __m256 alpha = first ? _mm256_setzero_ps() : exp2_nonpositive(_mm256_sub_ps(m_old, m_new[h]));
                const __m256 l_old = first ? _mm256_setzero_ps() : _mm256_loadu_ps(b.l + i0 + 8 * h);
                sums[h] = _mm256_mul_ps(l_old, alpha);
                sums[h + 2] = _mm256_setzero_ps();
                _mm256_storeu_ps(b.m + i0 + 8 * h, m_new[h]);
                _mm256_storeu_ps(b.alpha + i0 + 8 * h, alpha);
            }
            float* s = b.s + i0;
            int64_t j = 0;
            for (; j + 2 <= nk; j += 2, s += 2 * b.ldq) {
                exp2_row(s, m_new[0], m_new[1], sums[0], sums[1]);
                exp2_row(s + b.ldq, m_new[0], m_new[1], sums[2], sums[3]);
            }
            if (j < nk) exp2_row(s, m_new[0], m_new[1], sums[0], sums[1]);
            _mm256_storeu_ps(b.l + i0, _mm256_add_ps(sums[0], sums[2]));
            _mm256_storeu_ps(b.l + i0 + 8, _mm256_add_ps(sums[1], sums[3]));
        }
    }

    // O^T rows c0 .. c0 + MR - 1, queries i0 .. i0 + 15: O^T alpha + V_blk^T P^T.
    template <int MR>
    static void value_tile(const Packed& p, const Block& b, int64_t j0, int64_t nk, int64_t c0, int64_t i0, bool first) {
        __m256 lo[MR], hi[MR];
        float* o = b.o + c0 * b.ldq + i0;
        if (first) {
            zero(lo, hi);
        } else {
            const __m256 a0 = _mm256_loadu_ps(b.alpha + i0), a1 = _mm256_loadu_ps(b.alpha + i0 + 8);
#pragma GCC unroll 8
            for (int r = 0; r < MR; ++r) {
                lo[r] = _mm256_mul_ps(_mm256_loadu_ps(o + r * b.ldq), a0);
                hi[r] = _mm256_mul_ps(_mm256_loadu_ps(o + r * b.ldq + 8), a1);
            }
        }
        const float* v = p.values + (c0 / kRowTile) * p.tokens * kRowTile + j0 * kRowTile;
        accumulate(nk, v, b.s + i0, b.ldq, lo, hi);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
            _mm256_storeu_ps(o + r * b.ldq, lo[r]);
            _mm256_storeu_ps(o + r * b.ldq + 8, hi[r]);
        }
    }

    static void weighted_values(const Packed& p, const Block& b, int64_t j0, int64_t nk, bool first) {
        for_row_groups(p.hd, [&](auto mr, int64_t c0) {
            for (int64_t i0 = 0; i0 < b.nqp; i0 += kLanes) value_tile<decltype(mr)::value>(p, b, j0, nk, c0, i0, first);
        });
    }
};

}  // namespace
}  // namespace sam::ops::attention
