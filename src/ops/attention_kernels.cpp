// Fused relative-position attention (attention_kernels.h).
//
// Blocking, per block of at most 64 queries of one head:
//   * The queries are stored transposed, Q^T (head_dim x nqp), padded with zero queries to
//     nqp, a multiple of 16. Every vector then runs along queries: any head_dim (64, 80, odd
//     sizes) works without masked loads, and the softmax statistics are plain vector ops.
//   * Relative terms: Rh Q^T with the same micro-kernel as the scores, for the table rows this
//     block's query rows reach, gathered into RH (gh x nqp), RH[kh][i] = (Rh Q^T)[qh_i - kh +
//     gh - 1][i]; likewise RW (gw x nqp).
//   * Keys in blocks of at most kKeyBlock (a 252 x 64 score block is 64 KiB: L2; a window's
//     196 keys are one block):
//       S^T = K_blk (Q * scale)^T + RH[kh] + RW[kw]  (bias and block maximum in the store)
//       m' = max(m, max_blk S), P = exp(S - m'), l = l exp(m - m') + sum P
//       O^T = O^T exp(m - m') + V_blk^T P^T          (the rescale is the accumulator's start)
//     and at the end out_i = O^T[:, i] / l_i. The logits are kept in log2 units (Q and the
//     relative terms scaled by log2 e), so that the exponentials are 2^x, cheaper to reduce.
//   * Micro-kernel: a register tile of 6 rows x 16 queries (12 accumulators), broadcasting
//     the row operand (a key component for the scores, a value component for the output) and
//     loading 16 queries of the column operand per step: 8 loads per 12 FMAs, within Zen 3's
//     load ports.
//   * The row operands are packed once per head in panels of 6 rows, component-major
//     (panel[d][r]), so that a tile broadcasts from one pointer at fixed offsets: keys as
//     K[t / 6][d][t % 6], values as V[c / 6][t][c % 6], the tables like the keys. With one
//     pointer per row (reading the qkv buffer in place) the inner loop ran out of general
//     registers and reloaded them from the stack at every step.
//   * Key blocks are visited in order and scores kept in L2 between the passes; computing
//     the exponentials inside the score tiles instead (fused) measured slower.
#include "ops/attention_kernels.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <new>
#include <type_traits>

#include "ops/exp2_approx.h"

namespace sam::ops {

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

namespace {

constexpr int64_t kLanes = 16;       // queries per micro-tile (two AVX2 vectors)
constexpr int64_t kRowTile = 6;      // rows per micro-tile: 12 accumulators + 2 loads + 1 broadcast
constexpr int64_t kQueryBlock = 64;  // queries per block: Q^T, O^T and the score block fit L1/L2
constexpr int64_t kKeyBlock = 252;   // keys per online-softmax step, a multiple of kRowTile
constexpr float kLog2e = 1.44269504088896341f;

int64_t panels(int64_t rows) { return (rows + kRowTile - 1) / kRowTile; }

// Starts loading a row that is read soon: a head's rows sit a page apart in the qkv buffer,
// where the hardware prefetchers do not follow, and they come from memory.
inline void prefetch_row(const float* row, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(row + i);
}

constexpr int64_t kPrefetchRows = 12;  // rows ahead: enough to cover memory latency

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

// The head's packed operands (see the top of the file).
struct Packed {
    int64_t hd = 0, gh = 0, gw = 0, tokens = 0;
    const float* keys = nullptr;     // [panels(tokens)][hd][6]
    const float* values = nullptr;   // [panels(hd)][tokens][6]
    const float* table_h = nullptr;  // [panels(2 gh - 1)][hd][6]
    const float* table_w = nullptr;  // [panels(2 gw - 1)][hd][6]
    float q_scale = 1.0f;  // scale * log2 e: the logits are kept in log2 units (see exp2_approx.h)
};

// One query block's buffers. Matrices with a query axis are (rows x ldq), ldq = nqp.
struct Block {
    int64_t nq = 0, nqp = 0, ldq = 0;
    float* qs = nullptr;     // (hd x ldq) Q^T * scale * log2 e
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
    int32_t* qh = nullptr;   // (ldq) grid row of each query
    int32_t* qw = nullptr;   // (ldq) grid column
};

int64_t table_rows(const Packed& p) { return panels(2 * std::max(p.gh, p.gw) - 1) * kRowTile; }

int64_t block_floats(const Packed& p, int64_t ldq) {
    return (3 * p.hd + table_rows(p) + p.gh + p.gw + kKeyBlock + 4) * ldq;
}

Block carve(const Packed& p, int64_t nq, float* work, int32_t* positions) {
    Block b;
    b.nq = nq;
    b.nqp = (nq + kLanes - 1) / kLanes * kLanes;
    b.ldq = b.nqp;
    const int64_t rows[] = {p.hd, p.hd, table_rows(p), p.gh, p.gw, kKeyBlock, p.hd, 1, 1, 1, 1};
    float** dst[] = {&b.qs, &b.qu, &b.rel, &b.rh, &b.rw, &b.s, &b.o, &b.m, &b.l, &b.alpha, &b.bmax};
    for (size_t i = 0; i < std::size(rows); ++i) {  // each piece stays 64-byte aligned: ldq % 16 == 0
        *dst[i] = work;
        work += rows[i] * b.ldq;
    }
    b.qh = positions;
    b.qw = positions + b.ldq;
    return b;
}

// Q^T scaled and unscaled, and the queries' grid positions; padding queries are zero.
template <class Kernels>
void load_queries(const Packed& p, Block& b, const float* const* q_rows, const int64_t* q_tok) {
    Kernels::rows_to_columns(q_rows, b.nq, p.hd, b.qu, b.ldq);
    for (int64_t d = 0; d < p.hd; ++d) std::fill(b.qu + d * b.ldq + b.nq, b.qu + (d + 1) * b.ldq, 0.0f);
    for (int64_t k = 0; k < p.hd * b.ldq; ++k) b.qs[k] = b.qu[k] * p.q_scale;
    for (int64_t i = 0; i < b.nqp; ++i) {  // padding queries copy query 0's position: no new table rows
        const int64_t t = q_tok[i < b.nq ? i : 0];
        b.qh[i] = static_cast<int32_t>(t / p.gw);
        b.qw[i] = static_cast<int32_t>(t % p.gw);
    }
}

// out[k][i] = log2 e (table Q^T)[pos_i - k + g - 1][i] for k < g: the relative term of query
// i and a key at grid coordinate k, in log2 units, with products[r] = (table Q^T)[first + r].
void gather_relative(const Block& b, const float* products, int64_t first, const int32_t* pos, int64_t g,
                     float* out) {
    for (int64_t k = 0; k < g; ++k)
        for (int64_t i = 0; i < b.nqp; ++i)
            out[k * b.ldq + i] = products[(pos[i] - first - k + g - 1) * b.ldq + i] * kLog2e;
}

// out_i = O^T[:, i] / l_i.
template <class Kernels>
void store_output(const Packed& p, const Block& b, float* const* out_rows) {
    float* inv = b.alpha;  // free once the last key block is done
    for (int64_t i = 0; i < b.nq; ++i) inv[i] = 1.0f / b.l[i];
    Kernels::columns_to_rows(b.o, b.ldq, b.nq, p.hd, inv, out_rows);
}

// Plain C++ kernels: straightforward loops over the same buffers, innermost along queries so
// that they vectorise wherever the compiler can.
struct PortableKernels {
    // out[c][i] = rows[i][c] for i < n, c < width; out's rows ldo apart.
    static void rows_to_columns(const float* const* rows, int64_t n, int64_t width, float* out, int64_t ldo) {
        for (int64_t i = 0; i < n; ++i) {
            if (i + kPrefetchRows < n) prefetch_row(rows[i + kPrefetchRows], width);
            for (int64_t c = 0; c < width; ++c) out[c * ldo + i] = rows[i][c];
        }
    }

    // rows[i][c] = in[c][i] * lane_scale[i] for i < n, c < width; in's rows ldi apart.
    static void columns_to_rows(const float* in, int64_t ldi, int64_t n, int64_t width, const float* lane_scale,
                                float* const* rows) {
        for (int64_t i = 0; i < n; ++i)
            for (int64_t c = 0; c < width; ++c) rows[i][c] = in[c * ldi + i] * lane_scale[i];
    }

    // out[r][i] = sum_d a[r][d] x[d][i] for r < rows, with a in panels ([r / 6][d][r % 6]).
    static void products(const Block& b, int64_t rows, int64_t depth, const float* a, const float* x, float* out) {
        for (int64_t r = 0; r < rows; ++r) {
            float* row = out + r * b.ldq;
            const float* ar = a + (r / kRowTile) * depth * kRowTile + r % kRowTile;
            std::fill(row, row + b.nqp, 0.0f);
            for (int64_t d = 0; d < depth; ++d) {
                const float ad = ar[d * kRowTile];
                const float* xd = x + d * b.ldq;
                for (int64_t i = 0; i < b.nqp; ++i) row[i] += ad * xd[i];
            }
        }
    }

    static void scores(const Packed& p, const Block& b, int64_t j0, int64_t nk) {
        products(b, nk, p.hd, p.keys + j0 * p.hd, b.qs, b.s);
        std::fill(b.bmax, b.bmax + b.nqp, -std::numeric_limits<float>::infinity());
        for (int64_t j = 0; j < nk; ++j) {
            const int64_t kh = (j0 + j) / p.gw, kw = (j0 + j) % p.gw;
            float* row = b.s + j * b.ldq;
            const float *bh = b.rh + kh * b.ldq, *bw = b.rw + kw * b.ldq;
            for (int64_t i = 0; i < b.nqp; ++i) {
                row[i] += bh[i] + bw[i];
                b.bmax[i] = std::max(b.bmax[i], row[i]);
            }
        }
    }

    static void softmax_update(const Block& b, int64_t nk, bool first) {
        for (int64_t i = 0; i < b.nqp; ++i) {
            const float m_new = first ? b.bmax[i] : std::max(b.m[i], b.bmax[i]);
            b.alpha[i] = first ? 0.0f : approx::exp2_nonpositive(b.m[i] - m_new);
            b.l[i] = first ? 0.0f : b.l[i] * b.alpha[i];
            b.m[i] = m_new;
        }
        for (int64_t j = 0; j < nk; ++j) {
            float* row = b.s + j * b.ldq;
            for (int64_t i = 0; i < b.nqp; ++i) {
                row[i] = approx::exp2_nonpositive(row[i] - b.m[i]);
                b.l[i] += row[i];
            }
        }
    }

    static void weighted_values(const Packed& p, const Block& b, int64_t j0, int64_t nk, bool first) {
        for (int64_t c = 0; c < p.hd; ++c) {
            float* orow = b.o + c * b.ldq;
            for (int64_t i = 0; i < b.nqp; ++i) orow[i] = first ? 0.0f : orow[i] * b.alpha[i];
        }
        for (int64_t j = 0; j < nk; ++j) {
            const float* prow = b.s + j * b.ldq;
            for (int64_t c = 0; c < p.hd; ++c) {
                const float vjc = p.values[(c / kRowTile) * p.tokens * kRowTile + (j0 + j) * kRowTile + c % kRowTile];
                float* orow = b.o + c * b.ldq;
                for (int64_t i = 0; i < b.nqp; ++i) orow[i] += vjc * prow[i];
            }
        }
    }
};

#if defined(__AVX2__) && defined(__FMA__)
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
    static void scores(const Packed& p, const Block& b, int64_t j0, int64_t nk) {
        std::fill(b.bmax, b.bmax + b.nqp, -std::numeric_limits<float>::infinity());
        for_row_groups(nk, [&](auto mr, int64_t r0) {
            for (int64_t i0 = 0; i0 < b.nqp; i0 += kLanes) {
                constexpr int MR = decltype(mr)::value;
                __m256 lo[MR], hi[MR];
                zero(lo, hi);
                accumulate(p.hd, p.keys + (j0 + r0) * p.hd, b.qs + i0, b.ldq, lo, hi);
                int64_t kh = (j0 + r0) / p.gw, kw = (j0 + r0) % p.gw;  // grid position of the tile's first key
                float* s = b.s + r0 * b.ldq + i0;
                __m256 max_lo = _mm256_loadu_ps(b.bmax + i0), max_hi = _mm256_loadu_ps(b.bmax + i0 + 8);
#pragma GCC unroll 8
                for (int r = 0; r < MR; ++r) {
                    const float *bh = b.rh + kh * b.ldq + i0, *bw = b.rw + kw * b.ldq + i0;
                    lo[r] = _mm256_add_ps(lo[r], _mm256_add_ps(_mm256_loadu_ps(bh), _mm256_loadu_ps(bw)));
                    hi[r] = _mm256_add_ps(hi[r], _mm256_add_ps(_mm256_loadu_ps(bh + 8), _mm256_loadu_ps(bw + 8)));
                    _mm256_storeu_ps(s + r * b.ldq, lo[r]);
                    _mm256_storeu_ps(s + r * b.ldq + 8, hi[r]);
                    max_lo = _mm256_max_ps(max_lo, lo[r]);
                    max_hi = _mm256_max_ps(max_hi, hi[r]);
                    if (++kw == p.gw) {
                        kw = 0;
                        ++kh;
                    }
                }
                _mm256_storeu_ps(b.bmax + i0, max_lo);
                _mm256_storeu_ps(b.bmax + i0 + 8, max_hi);
            }
        });
    }

    // s = 2^(s - m) for 16 queries of one key; sums accumulate them.
    [[gnu::always_inline]] static inline void exp2_row(float* s, __m256 m_lo, __m256 m_hi, __m256& sum_lo,
                                                      __m256& sum_hi) {
        const __m256 e_lo = approx::exp2_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s), m_lo));
        const __m256 e_hi = approx::exp2_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + 8), m_hi));
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
                const __m256 alpha = first ? _mm256_setzero_ps() : approx::exp2_nonpositive(_mm256_sub_ps(m_old, m_new[h]));
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
#endif

// RH or RW: the table's products with the unscaled queries, gathered by relative position.
// Only the panels holding the rows pos - k + g - 1 reached by this block are multiplied: for
// global attention a block of 64 queries lies on one grid row, which halves RH's products.
template <class Kernels>
void relative_terms(const Packed& p, const Block& b, const float* table, int64_t g, const int32_t* pos, float* out) {
    const auto [lo, hi] = std::minmax_element(pos, pos + b.nqp);
    const int64_t first = *lo / kRowTile, last = (*hi + g - 1) / kRowTile;  // panels
    Kernels::products(b, (last - first + 1) * kRowTile, p.hd, table + first * kRowTile * p.hd, b.qu, b.rel);
    gather_relative(b, b.rel, first * kRowTile, pos, g, out);
}

template <class Kernels>
void attend_block(const Packed& p, Block& b, const float* const* q_rows, const int64_t* q_tok,
                  float* const* out_rows) {
    load_queries<Kernels>(p, b, q_rows, q_tok);
    relative_terms<Kernels>(p, b, p.table_h, p.gh, b.qh, b.rh);
    relative_terms<Kernels>(p, b, p.table_w, p.gw, b.qw, b.rw);
    for (int64_t j0 = 0; j0 < p.tokens; j0 += kKeyBlock) {
        const int64_t nk = std::min(kKeyBlock, p.tokens - j0);
        Kernels::scores(p, b, j0, nk);
        Kernels::softmax_update(b, nk, j0 == 0);
        Kernels::weighted_values(p, b, j0, nk, j0 == 0);
    }
    store_output<Kernels>(p, b, out_rows);
}

}  // namespace

RelPosAttention::RelPosAttention(const RelPosAttentionParams& params) : params_(params) {
    const int64_t hd = params.head_dim, rh = 2 * params.grid_h - 1, rw = 2 * params.grid_w - 1;
    pack_row_panels(rh, hd, [&](int64_t r) { return params.rel_pos_h + r * hd; },
                    table_h_.reserve(static_cast<size_t>(panels(rh) * kRowTile * hd)));
    pack_row_panels(rw, hd, [&](int64_t r) { return params.rel_pos_w + r * hd; },
                    table_w_.reserve(static_cast<size_t>(panels(rw) * kRowTile * hd)));
}

void RelPosAttention::set_keys_values(const float* const* k_rows, const float* const* v_rows) {
    const int64_t hd = params_.head_dim, tokens = params_.grid_h * params_.grid_w;
    pack_row_panels(tokens, hd, [&](int64_t t) { return k_rows[t]; },
                    keys_.reserve(static_cast<size_t>(panels(tokens) * kRowTile * hd)));
    pack_column_panels(tokens, hd, [&](int64_t t) { return v_rows[t]; },
                       values_.reserve(static_cast<size_t>(panels(hd) * kRowTile * tokens)));
}

template <class Kernels>
void RelPosAttention::attend_with(int64_t nq, const float* const* q_rows, const int64_t* q_tok,
                                  float* const* out_rows) {
    Packed p;
    p.hd = params_.head_dim;
    p.gh = params_.grid_h;
    p.gw = params_.grid_w;
    p.tokens = p.gh * p.gw;
    p.keys = keys_.data();
    p.values = values_.data();
    p.table_h = table_h_.data();
    p.table_w = table_w_.data();
    p.q_scale = params_.scale * kLog2e;
    float* work = work_.reserve(static_cast<size_t>(block_floats(p, kQueryBlock)));
    if (positions_.size() < 2 * kQueryBlock) positions_.resize(2 * kQueryBlock);
    for (int64_t i0 = 0; i0 < nq; i0 += kQueryBlock) {
        Block b = carve(p, std::min(kQueryBlock, nq - i0), work, positions_.data());
        attend_block<Kernels>(p, b, q_rows + i0, q_tok + i0, out_rows + i0);
    }
}

void RelPosAttention::attend(int64_t nq, const float* const* q_rows, const int64_t* q_tok, float* const* out_rows) {
#if defined(__AVX2__) && defined(__FMA__)
    attend_with<Avx2Kernels>(nq, q_rows, q_tok, out_rows);
#else
    attend_with<PortableKernels>(nq, q_rows, q_tok, out_rows);
#endif
}

void RelPosAttention::attend_portable(int64_t nq, const float* const* q_rows, const int64_t* q_tok,
                                      float* const* out_rows) {
    attend_with<PortableKernels>(nq, q_rows, q_tok, out_rows);
}

}  // namespace sam::ops
