// The query-block driver of the fused attention kernel and its plain C++ kernels, included by
// each instruction-set version's source file after it has set its compile target (so everything
// here is compiled for that target). Everything here has internal linkage: the same inline
// function compiled for two targets under one external name would let the linker keep the
// AVX-512 copy for an AVX2 caller.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <limits>

#include "ops/attention_blocking.h"
#include "ops/exp2_approx.h"

namespace sam::ops::attention {
namespace {

// Starts loading a row that is read soon: a head's rows sit a page apart in the qkv buffer,
// where the hardware prefetchers do not follow, and they come from memory.
inline void prefetch_row(const float* row, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(row + i);
}

constexpr int64_t kPrefetchRows = 12;  // rows ahead: enough to cover memory latency

int64_t table_rows(const Packed& p) { return p.relative ? panels(2 * std::max(p.gh, p.gw) - 1) * kRowTile : 0; }

// Rows (of ldq floats) of the Block's float buffers qs, qu, rel, rh, rw, s, o, m, l, alpha,
// bmax, qp, sp, in this order; the relative terms' buffers are empty without tables.
std::array<int64_t, 13> block_rows(const Packed& p) {
    const int64_t r = p.relative ? 1 : 0;
    return {p.hd, r * p.hd, table_rows(p), r * p.gh, r * p.gw, kKeyBlock, p.hd, 1, 1, 1, 1, (p.hd + 1) / 2,
            kKeyBlock / 2};
}

Block carve(const Packed& p, int64_t nq, float* work, int32_t* positions) {
    Block b;
    b.nq = nq;
    b.nqp = (nq + kLanes - 1) / kLanes * kLanes;
    b.ldq = b.nqp;
    const std::array<int64_t, 13> rows = block_rows(p);
    float** dst[] = {&b.qs, &b.qu, &b.rel, &b.rh, &b.rw, &b.s, &b.o, &b.m, &b.l, &b.alpha, &b.bmax};
    for (size_t i = 0; i < std::size(dst); ++i) {  // each piece stays 64-byte aligned: ldq % 16 == 0
        *dst[i] = work;
        work += rows[i] * b.ldq;
    }
    b.qp = reinterpret_cast<uint32_t*>(work);  // one float's room per bf16 pair
    work += rows[11] * b.ldq;
    b.sp = reinterpret_cast<uint32_t*>(work);
    b.qh = positions;
    b.qw = positions + b.ldq;
    return b;
}

// Q^T scaled, and with relative terms Q^T unscaled and the queries' grid positions; padding
// queries are zero.
template <class Kernels, bool Relative>
void load_queries(const Packed& p, Block& b, const float* const* q_rows, const int64_t* q_tok) {
    float* q = Relative ? b.qu : b.qs;
    Kernels::rows_to_columns(q_rows, b.nq, p.hd, q, b.ldq);
    for (int64_t d = 0; d < p.hd; ++d) std::fill(q + d * b.ldq + b.nq, q + (d + 1) * b.ldq, 0.0f);
    for (int64_t k = 0; k < p.hd * b.ldq; ++k) b.qs[k] = q[k] * p.q_scale;
    if constexpr (!Relative) return;
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

    // Relative: with the relative terms RH[kh] + RW[kw] added (the tables' mode).
    template <bool Relative>
    static void scores(const Packed& p, const Block& b, int64_t j0, int64_t nk) {
        products(b, nk, p.hd, p.keys + j0 * p.hd, b.qs, b.s);
        std::fill(b.bmax, b.bmax + b.nqp, -std::numeric_limits<float>::infinity());
        for (int64_t j = 0; j < nk; ++j) {
            float* row = b.s + j * b.ldq;
            if constexpr (Relative) {
                const int64_t kh = (j0 + j) / p.gw, kw = (j0 + j) % p.gw;
                const float *bh = b.rh + kh * b.ldq, *bw = b.rw + kw * b.ldq;
                for (int64_t i = 0; i < b.nqp; ++i) row[i] += bh[i] + bw[i];
            }
            for (int64_t i = 0; i < b.nqp; ++i) b.bmax[i] = std::max(b.bmax[i], row[i]);
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

// Relative: p has tables (p.relative); without, no relative terms are computed at all.
template <class Kernels, bool Relative>
void attend_block(const Packed& p, Block& b, const float* const* q_rows, const int64_t* q_tok,
                  float* const* out_rows) {
    load_queries<Kernels, Relative>(p, b, q_rows, q_tok);
    if constexpr (requires { Kernels::prepare_queries(p, b); }) Kernels::prepare_queries(p, b);  // bf16 pairs
    if constexpr (Relative) {
        relative_terms<Kernels>(p, b, p.table_h, p.gh, b.qh, b.rh);
        relative_terms<Kernels>(p, b, p.table_w, p.gw, b.qw, b.rw);
    }
    for (int64_t j0 = 0; j0 < p.tokens; j0 += kKeyBlock) {
        const int64_t nk = std::min(kKeyBlock, p.tokens - j0);
        Kernels::template scores<Relative>(p, b, j0, nk);
        Kernels::softmax_update(b, nk, j0 == 0);
        Kernels::weighted_values(p, b, j0, nk, j0 == 0);
    }
    store_output<Kernels>(p, b, out_rows);
}

template <class Kernels>
void attend_blocks(const Packed& p, int64_t nq, const float* const* q_rows, const int64_t* q_tok,
                   float* const* out_rows, float* work, int32_t* positions) {
    for (int64_t i0 = 0; i0 < nq; i0 += kQueryBlock) {
        Block b = carve(p, std::min(kQueryBlock, nq - i0), work, positions);
        if (p.relative) attend_block<Kernels, true>(p, b, q_rows + i0, q_tok + i0, out_rows + i0);
        else attend_block<Kernels, false>(p, b, q_rows + i0, nullptr, out_rows + i0);
    }
}

}  // namespace
}  // namespace sam::ops::attention
