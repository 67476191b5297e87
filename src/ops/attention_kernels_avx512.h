// AVX-512 (F, BW, DQ, VL) micro-kernels of the fused attention, for the AVX-512 sources
// (fp32 products, and bf16 products), which include this after setting their compile target.
// Sixteen queries fill one 512-bit register, so a tile is 12 rows (two packed panels) x 16
// queries: 12 accumulators, the query vector and the broadcasts, which AVX-512 folds into the
// FMAs as memory operands, out of 32 registers. The transpositions and the layout are the AVX2
// kernels'. Internal linkage throughout (see attention_blocking_impl.h).
#pragma once

#include "ops/attention_kernels_avx2.h"

namespace sam::ops::attention {
namespace {

constexpr int kTileRows = 2 * static_cast<int>(kRowTile);

// 2^x for x <= 0, sixteen at a time: the arithmetic of approx::exp2_nonpositive.
inline __m512 exp2_nonpositive(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(approx::kExp2Min));
    const __m512 magic = _mm512_set1_ps(12582912.0f);  // 1.5 * 2^23: rounds to nearest
    const __m512 t = _mm512_add_ps(x, magic);
    const __m512 f = _mm512_sub_ps(x, _mm512_sub_ps(t, magic));
    __m512 p = _mm512_set1_ps(approx::kExp2Poly[0]);
    for (size_t k = 1; k < std::size(approx::kExp2Poly); ++k) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(approx::kExp2Poly[k]));
    const __m512i e = _mm512_add_epi32(_mm512_slli_epi32(_mm512_castps_si512(t), 23), _mm512_set1_epi32(127 << 23));
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// f(std::integral_constant<int, MR>, r0) over rows [0, rows) in groups of kTileRows, then one
// smaller group.
template <class F>
void for_tile_rows(int64_t rows, F&& f) {
    int64_t r = 0;
    for (; r + kTileRows <= rows; r += kTileRows) f(std::integral_constant<int, kTileRows>{}, r);
    switch (rows - r) {
#define SAM_CASE(n) \
    case n: f(std::integral_constant<int, n>{}, r); break;
        SAM_CASE(11) SAM_CASE(10) SAM_CASE(9) SAM_CASE(8) SAM_CASE(7) SAM_CASE(6)
        SAM_CASE(5) SAM_CASE(4) SAM_CASE(3) SAM_CASE(2) SAM_CASE(1)
#undef SAM_CASE
        default: break;
    }
}

struct Avx512Kernels {
    static void rows_to_columns(const float* const* rows, int64_t n, int64_t width, float* out, int64_t ldo) {
        Avx2Kernels::rows_to_columns(rows, n, width, out, ldo);
    }
    static void columns_to_rows(const float* in, int64_t ldi, int64_t n, int64_t width, const float* lane_scale,
                                float* const* rows) {
        Avx2Kernels::columns_to_rows(in, ldi, n, width, lane_scale, rows);
    }

    // acc[r] += sum_d a(r)[d] x[d][0..15] for r < MR, a(r) being row r of the panels starting at
    // `a`; rows r0 .. r0 + 11 span two panels, the second `panel_floats` floats on (keys and
    // tables: depth * 6; values, whose panels run over all tokens: tokens * 6).
    template <int MR>
    [[gnu::always_inline]] static inline void accumulate(int64_t depth, int64_t panel_floats, const float* a,
                                                         const float* x, int64_t ldx, __m512 (&acc)[MR]) {
        const float* a1 = a + panel_floats;
        for (int64_t d = 0; d < depth; ++d, a += kRowTile, a1 += kRowTile, x += ldx) {
            const __m512 xd = _mm512_loadu_ps(x);
#pragma GCC unroll 12
            for (int r = 0; r < MR; ++r)
                acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(r < kRowTile ? a[r] : a1[r - kRowTile]), xd, acc[r]);
        }
    }

    template <int MR>
    [[gnu::always_inline]] static inline void zero(__m512 (&acc)[MR]) {
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r) acc[r] = _mm512_setzero_ps();
    }

    static void products(const Block& b, int64_t rows, int64_t depth, const float* a, const float* x, float* out) {
        for (int64_t i0 = 0; i0 < b.nqp; i0 += kLanes)
            for_tile_rows(rows, [&](auto mr, int64_t r0) {
                constexpr int MR = decltype(mr)::value;
                __m512 acc[MR];
                zero(acc);
                accumulate(depth, depth * kRowTile, a + r0 * depth, x + i0, b.ldq, acc);
                float* o = out + r0 * b.ldq + i0;
#pragma GCC unroll 12
                for (int r = 0; r < MR; ++r) _mm512_storeu_ps(o + r * b.ldq, acc[r]);
            });
    }

    // The scores of MR keys from key j0 + r0 (a tile's rows, r0 within the block of keys from j0)
    // for the 16 queries from i0, in acc: with
    // the relative terms RH[kh] + RW[kw] of each key's grid position added when Relative, stored
    // to the block's scores and folded into vmax. Shared by the fp32 and bf16 score kernels.
    template <bool Relative, int MR>
    [[gnu::always_inline]] static inline void store_scores(const Packed& p, const Block& b, int64_t j0, int64_t r0,
                                                           int64_t i0, __m512* acc, __m512& vmax) {
        [[maybe_unused]] int64_t kh = 0, kw = 0;  // grid position of the tile's first key
        if constexpr (Relative) kh = (j0 + r0) / p.gw, kw = (j0 + r0) % p.gw;
        float* s = b.s + r0 * b.ldq + i0;
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r) {
            if constexpr (Relative) {
                const __m512 bias = _mm512_add_ps(_mm512_loadu_ps(b.rh + kh * b.ldq + i0),
                                                  _mm512_loadu_ps(b.rw + kw * b.ldq + i0));
                acc[r] = _mm512_add_ps(acc[r], bias);
                if (++kw == p.gw) {
                    kw = 0;
                    ++kh;
                }
            }
            _mm512_storeu_ps(s + r * b.ldq, acc[r]);
            vmax = _mm512_max_ps(vmax, acc[r]);
        }
    }

    // Relative: with the relative terms RH[kh] + RW[kw] added.
    template <bool Relative>
    static void scores(const Packed& p, const Block& b, int64_t j0, int64_t nk) {
        for (int64_t i0 = 0; i0 < b.nqp; i0 += kLanes) {
            __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
            for_tile_rows(nk, [&](auto mr, int64_t r0) {
                constexpr int MR = decltype(mr)::value;
                __m512 acc[MR];
                zero(acc);
                accumulate(p.hd, p.hd * kRowTile, p.keys + (j0 + r0) * p.hd, b.qs + i0, b.ldq, acc);
                store_scores<Relative, MR>(p, b, j0, r0, i0, acc, vmax);
            });
            _mm512_storeu_ps(b.bmax + i0, vmax);
        }
    }

    // Four independent exponentials per step (four keys x 16 queries): one alone is a long
    // dependency chain.
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
            float* s = b.s + i0;
            int64_t j = 0;
            for (; j + 4 <= nk; j += 4, s += 4 * b.ldq) {
#pragma GCC unroll 4
                for (int u = 0; u < 4; ++u) {
                    const __m512 e = exp2_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(s + u * b.ldq), m_new));
                    _mm512_storeu_ps(s + u * b.ldq, e);
                    sums[u] = _mm512_add_ps(sums[u], e);
                }
            }
            for (; j < nk; ++j, s += b.ldq) {
                const __m512 e = exp2_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(s), m_new));
                _mm512_storeu_ps(s, e);
                sums[0] = _mm512_add_ps(sums[0], e);
            }
            _mm512_storeu_ps(b.l + i0, _mm512_add_ps(_mm512_add_ps(sums[0], sums[1]), _mm512_add_ps(sums[2], sums[3])));
        }
    }

    // O^T rows c0 .. c0 + MR - 1, queries i0 .. i0 + 15: O^T alpha + V_blk^T P^T. The value
    // panels hold components in groups of 6, each [tokens][6]: the tile's second panel starts
    // tokens * 6 floats after the first.
    template <int MR>
    static void value_tile(const Packed& p, const Block& b, int64_t j0, int64_t nk, int64_t c0, int64_t i0, bool first) {
        __m512 acc[MR];
        float* o = b.o + c0 * b.ldq + i0;
        if (first) {
            zero(acc);
        } else {
            const __m512 alpha = _mm512_loadu_ps(b.alpha + i0);
#pragma GCC unroll 12
            for (int r = 0; r < MR; ++r) acc[r] = _mm512_mul_ps(_mm512_loadu_ps(o + r * b.ldq), alpha);
        }
        const float* v = p.values + (c0 / kRowTile) * p.tokens * kRowTile + j0 * kRowTile;
        accumulate(nk, p.tokens * kRowTile, v, b.s + i0, b.ldq, acc);
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r) _mm512_storeu_ps(o + r * b.ldq, acc[r]);
    }

    static void weighted_values(const Packed& p, const Block& b, int64_t j0, int64_t nk, bool first) {
        for_tile_rows(p.hd, [&](auto mr, int64_t c0) {
            for (int64_t i0 = 0; i0 < b.nqp; i0 += kLanes) value_tile<decltype(mr)::value>(p, b, j0, nk, c0, i0, first);
        });
    }
};

}  // namespace
}  // namespace sam::ops::attention
