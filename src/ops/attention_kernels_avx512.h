// AVX-512 (F, BW, DQ, VL) micro-kernels of the fused attention, for the AVX-512 sources
// (fp32 products, and bf16 products), which include this after setting their compile target.
// A tile is one packed panel (6 rows) x all the block's queries (up to 64: four 512-bit
// registers), 24 accumulators: each step loads the queries' four vectors and broadcasts the
// panel's six row operands, 10 loads for 24 FMAs. The 12-row x 16-query tile it replaced took
// one broadcast per FMA; on Zen 4 this one measured ~10% faster on SAM 2's memory attention
// (bench_sam2_attention, fp32, alternated: 85-94 against 67-86 GFLOP/s) and a few percent on
// the SAM encoder's attention, within that VM's noise. The transpositions and the layout are
// the AVX2 kernels'. Internal linkage throughout (see attention_blocking_impl.h).
#pragma once

#include "ops/attention_kernels_avx2.h"

namespace sam::ops::attention {
namespace {

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

template <int N>
using Int = std::integral_constant<int, N>;

// f(Int<NV>{}) with NV = nqp / 16, the query vectors of a block (1 to 4).
template <class F>
void with_query_vectors(int64_t nqp, F&& f) {
    static_assert(kQueryBlock == 4 * kLanes, "a tile holds at most four query vectors");
    switch (nqp / kLanes) {
        case 1: f(Int<1>{}); break;
        case 2: f(Int<2>{}); break;
        case 3: f(Int<3>{}); break;
        default: f(Int<4>{}); break;
    }
}

// f(Int<MR>{}, r0) for each panel of rows [0, rows): MR = 6 rows from r0, the last panel MR
// = rows - r0 when fewer are left.
template <class F>
void for_panels(int64_t rows, F&& f) {
    int64_t r = 0;
    for (; r + kRowTile <= rows; r += kRowTile) f(Int<kRowTile>{}, r);
    switch (rows - r) {
        case 5: f(Int<5>{}, r); break;
        case 4: f(Int<4>{}, r); break;
        case 3: f(Int<3>{}, r); break;
        case 2: f(Int<2>{}, r); break;
        case 1: f(Int<1>{}, r); break;
        default: break;
    }
}

// Accumulators of one tile: MR panel rows x NV query vectors.
template <int MR, int NV>
using Tile = __m512[MR][NV];

struct Avx512Kernels {
    static void rows_to_columns(const float* const* rows, int64_t n, int64_t width, float* out, int64_t ldo) {
        Avx2Kernels::rows_to_columns(rows, n, width, out, ldo);
    }
    static void columns_to_rows(const float* in, int64_t ldi, int64_t n, int64_t width, const float* lane_scale,
                                float* const* rows) {
        Avx2Kernels::columns_to_rows(in, ldi, n, width, lane_scale, rows);
    }

    template <int MR, int NV>
    [[gnu::always_inline]] static inline void zero(Tile<MR, NV>& acc) {
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
    }

    // acc[r][v] += sum_d a[d][r] x[d][16 v .. 16 v + 15] for r < MR, v < NV: a is one panel
    // ([depth][6]), x has rows ldx apart.
    template <int MR, int NV>
    [[gnu::always_inline]] static inline void accumulate(int64_t depth, const float* a, const float* x, int64_t ldx,
                                                         Tile<MR, NV>& acc) {
        for (int64_t d = 0; d < depth; ++d, a += kRowTile, x += ldx) {
            __m512 xd[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) xd[v] = _mm512_loadu_ps(x + v * kLanes);
#pragma GCC unroll 6
            for (int r = 0; r < MR; ++r) {
                const __m512 ar = _mm512_set1_ps(a[r]);
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, xd[v], acc[r][v]);
            }
        }
    }

    // rows[r] (r < MR, rows ld apart) = acc[r] over the NV query vectors.
    template <int MR, int NV>
    [[gnu::always_inline]] static inline void store(const Tile<MR, NV>& acc, float* rows, int64_t ld) {
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) _mm512_storeu_ps(rows + r * ld + v * kLanes, acc[r][v]);
    }

    static void products(const Block& b, int64_t rows, int64_t depth, const float* a, const float* x, float* out) {
        with_query_vectors(b.nqp, [&](auto nv) {
            for_panels(rows, [&](auto mr, int64_t r0) {
                Tile<decltype(mr)::value, decltype(nv)::value> acc;
                zero(acc);
                accumulate(depth, a + r0 * depth, x, b.ldq, acc);
                store(acc, out + r0 * b.ldq, b.ldq);
            });
        });
    }

    // The scores of the MR keys from key j0 + r0 (a panel, r0 within the block of keys from j0),
    // in acc: with the relative terms RH[kh] + RW[kw] of each key's grid position added when
    // Relative, stored to the block's scores and folded into its maximum b.bmax. Shared by the
    // fp32 and bf16 score kernels.
    template <bool Relative, int MR, int NV>
    [[gnu::always_inline]] static inline void store_scores(const Packed& p, const Block& b, int64_t j0, int64_t r0,
                                                           Tile<MR, NV>& acc) {
        [[maybe_unused]] int64_t kh = 0, kw = 0;  // grid position of the panel's first key
        if constexpr (Relative) kh = (j0 + r0) / p.gw, kw = (j0 + r0) % p.gw;
        float* s = b.s + r0 * b.ldq;
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) {
                if constexpr (Relative)
                    acc[r][v] = _mm512_add_ps(acc[r][v], _mm512_add_ps(_mm512_loadu_ps(b.rh + kh * b.ldq + v * kLanes),
                                                                       _mm512_loadu_ps(b.rw + kw * b.ldq + v * kLanes)));
                _mm512_storeu_ps(s + r * b.ldq + v * kLanes, acc[r][v]);
            }
            if constexpr (Relative) {
                if (++kw == p.gw) {
                    kw = 0;
                    ++kh;
                }
            }
        }
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            __m512 vmax = _mm512_loadu_ps(b.bmax + v * kLanes);
#pragma GCC unroll 6
            for (int r = 0; r < MR; ++r) vmax = _mm512_max_ps(vmax, acc[r][v]);
            _mm512_storeu_ps(b.bmax + v * kLanes, vmax);
        }
    }

    static void reset_block_max(const Block& b) {
        std::fill(b.bmax, b.bmax + b.nqp, -std::numeric_limits<float>::infinity());
    }

    // Relative: with the relative terms RH[kh] + RW[kw] added.
    template <bool Relative>
    static void scores(const Packed& p, const Block& b, int64_t j0, int64_t nk) {
        reset_block_max(b);
        with_query_vectors(b.nqp, [&](auto nv) {
            for_panels(nk, [&](auto mr, int64_t r0) {
                Tile<decltype(mr)::value, decltype(nv)::value> acc;
                zero(acc);
                accumulate(p.hd, p.keys + (j0 + r0) * p.hd, b.qs, b.ldq, acc);
                store_scores<Relative>(p, b, j0, r0, acc);
            });
        });
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

    // acc = the output rows O^T[c0 .. c0 + MR - 1] for the block's queries, times the rescale
    // alpha of the previous key blocks (zero for the first).
    template <int MR, int NV>
    [[gnu::always_inline]] static inline void load_rescaled(const Block& b, int64_t c0, bool first, Tile<MR, NV>& acc) {
        if (first) return zero(acc);
        const float* o = b.o + c0 * b.ldq;
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            const __m512 alpha = _mm512_loadu_ps(b.alpha + v * kLanes);
#pragma GCC unroll 6
            for (int r = 0; r < MR; ++r) acc[r][v] = _mm512_mul_ps(_mm512_loadu_ps(o + r * b.ldq + v * kLanes), alpha);
        }
    }

    // O^T = O^T alpha + V_blk^T P^T, a panel of 6 components at a time; the value panels
    // hold components in groups of 6, each [tokens][6].
    static void weighted_values(const Packed& p, const Block& b, int64_t j0, int64_t nk, bool first) {
        with_query_vectors(b.nqp, [&](auto nv) {
            for_panels(p.hd, [&](auto mr, int64_t c0) {
                Tile<decltype(mr)::value, decltype(nv)::value> acc;
                load_rescaled(b, c0, first, acc);
                accumulate(nk, p.values + c0 * p.tokens + j0 * kRowTile, b.s, b.ldq, acc);
                store(acc, b.o + c0 * b.ldq, b.ldq);
            });
        });
    }
};

}  // namespace
}  // namespace sam::ops::attention
