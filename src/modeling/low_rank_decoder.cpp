#include "modeling/low_rank_decoder.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <vector>

#include "ops/ops.h"
#include "sam/error.h"
#include "ops/threads.h"
#include "ops/vector_math.h"

namespace sam {

namespace {

constexpr float kLayerNormEps = 1e-5f;    // nn.LayerNorm default
constexpr float kLayerNorm2dEps = 1e-6f;  // LayerNorm2d in the upscaling
// Thresholds below which work stays on one thread. Set high: a single prompt then opens only a
// few parallel regions (the GEMMs of >= 16M multiply-adds, the 1M-element passes), since each
// region costs much more than its work when the cores are shared with other jobs.
constexpr int64_t kParallelMin = int64_t{1} << 20;      // elements
constexpr int64_t kGemmParallelMin = int64_t{1} << 24;  // multiply-adds

using Buf = std::vector<float>;

// Freed float blocks of this thread, kept for the next prompt: a click's multi-megabyte
// buffers (the rows, the upscaled features, the logits) would otherwise come fresh from the
// system on every click, one page fault per 4 KiB on first touch.
class BlockCache {
  public:
    // A block of at least n floats (a cached one of at most twice that, else a new one).
    std::unique_ptr<float[]> take(int64_t n, int64_t& capacity) {
        size_t best = free_.size();
        for (size_t i = 0; i < free_.size(); ++i)
            if (free_[i].n >= n && free_[i].n <= 2 * n && (best == free_.size() || free_[i].n < free_[best].n)) best = i;
        if (best == free_.size()) {
            capacity = n;
            return std::unique_ptr<float[]>(new float[static_cast<size_t>(n)]);
        }
        Block b = std::move(free_[best]);
        free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
        cached_ -= b.n;
        capacity = b.n;
        return std::move(b.p);
    }
    void give(std::unique_ptr<float[]> p, int64_t n) {
        if (n < kMinFloats || cached_ + n > kMaxFloats) return;  // small ones: malloc does well
        cached_ += n;
        free_.push_back({std::move(p), n});
    }

  private:
    static constexpr int64_t kMinFloats = int64_t{1} << 14;  // 64 KiB
    static constexpr int64_t kMaxFloats = int64_t{1} << 24;  // 64 MiB per thread at most
    struct Block {
        std::unique_ptr<float[]> p;
        int64_t n;
    };
    std::vector<Block> free_;
    int64_t cached_ = 0;
};

BlockCache& block_cache() {
    thread_local BlockCache cache;
    return cache;
}

// Float storage left uninitialised, for the large buffers that are written in full before
// they are read (a std::vector would clear them first); from this thread's block cache, and
// back to the cache of the thread that frees it.
class Array {
  public:
    Array() = default;
    explicit Array(int64_t n) : p_(block_cache().take(n, capacity_)) {}
    Array(Array&& o) noexcept : p_(std::move(o.p_)), capacity_(o.capacity_) {}
    Array& operator=(Array&& o) noexcept {
        if (this != &o) {
            release();
            p_ = std::move(o.p_);
            capacity_ = o.capacity_;
        }
        return *this;
    }
    Array(const Array&) = delete;
    Array& operator=(const Array&) = delete;
    ~Array() { release(); }
    float* data() { return p_.get(); }
    const float* data() const { return p_.get(); }
    float& operator[](int64_t i) { return p_[static_cast<size_t>(i)]; }
    float operator[](int64_t i) const { return p_[static_cast<size_t>(i)]; }

  private:
    void release() {
        if (p_) block_cache().give(std::move(p_), capacity_);
    }
    std::unique_ptr<float[]> p_;
    int64_t capacity_ = 0;
};

// Whether a loop over `work` elements opens a parallel region: not for small work, and not
// inside one (prompts are then decoded one per thread).
bool par(int64_t work) { return work >= kParallelMin && !omp_in_parallel(); }

// The hot loops of a click (found with perf: layer norms, the image-token scores, the softmax,
// the per-row linear) are written for the compiler to vectorise and marked SAM_VECTOR_CLONES
// (ops/vector_math.h): built for baseline x86-64 they would use SSE2 only.

// Runs the enclosed calls on the calling thread alone: for small GEMMs a parallel region costs
// more than it saves (and much more when the cores are shared with other work).
struct SingleThreaded : ops::ThreadScope {
    SingleThreaded() : ops::ThreadScope(1) {}
};

// C (M, N) = A (M, K) op(B) (+ C when `acc`); K = 0 gives zeros (or leaves C).
void mm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, bool bt, float* C,
        int64_t ldc, bool acc = false) {
    if (K == 0) {
        if (!acc)
            for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
        return;
    }
    if (M * N * K < kGemmParallelMin) {
        SingleThreaded one;
        ops::gemm(M, N, K, A, lda, B, ldb, bt, C, ldc, 1.0f, acc ? 1.0f : 0.0f);
        return;
    }
    ops::gemm(M, N, K, A, lda, B, ldb, bt, C, ldc, 1.0f, acc ? 1.0f : 0.0f);
}

float dot(const float* a, const float* b, int64_t n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

// In place, over n values, numerically stable.
SAM_VECTOR_CLONES
void softmax(float* v, int64_t n) { ops::softmax_inplace(v, n); }

// y (rows, out) = x (rows, in) W^T + b, ReLU'd if asked, for a handful of token rows. Large
// weights (the token MLPs') are read from memory at every prompt, so their output columns are
// split over the threads; one row is a matrix-vector loop (the library's GEMM call costs more).
Buf lin(const Buf& x, const Linear& l, bool relu = false) {
    const int64_t in = l.w.dim(1), out = l.out_features(), rows = static_cast<int64_t>(x.size()) / in;
    Buf y(static_cast<size_t>(rows * out));
    for (int64_t i = 0; i < rows; ++i) std::copy(l.b.data(), l.b.data() + out, y.begin() + i * out);
    const int64_t parts = in * out >= (int64_t{1} << 18) && !omp_in_parallel() ? omp_get_max_threads() : 1;
    ops::for_each_item(parts, [&](int64_t i) {
        const int64_t o0 = out * i / parts, o1 = out * (i + 1) / parts;
        if (rows == 1) {
            for (int64_t o = o0; o < o1; ++o) y[static_cast<size_t>(o)] += dot(x.data(), l.w.data() + o * in, in);
        } else {
            SingleThreaded one;
            ops::gemm(rows, o1 - o0, in, x.data(), in, l.w.data() + o0 * in, in, true, y.data() + o0, out, 1.0f, 1.0f);
        }
    });
    if (relu)
        for (float& v : y) v = v > 0.0f ? v : 0.0f;
    return y;
}

Buf add(const Buf& a, const Buf& b) {
    Buf c(a.size());
    for (size_t i = 0; i < a.size(); ++i) c[i] = a[i] + b[i];
    return c;
}

void add_to(Buf& a, const Buf& b) {
    for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
}

void layer_norm_tokens(Buf& x, const LayerNorm& n) {
    const int64_t C = n.w.numel();
    ops::layer_norm(x.data(), static_cast<int64_t>(x.size()) / C, C, n.w.data(), n.b.data(), kLayerNormEps);
}

// Softmax down each column of X (rows, cols), in place: over `rows` tokens for every position.
SAM_VECTOR_CLONES
void softmax_columns(float* X, int64_t rows, int64_t cols) {
    Buf mx(X, X + cols), sum(static_cast<size_t>(cols), 0.0f);
    for (int64_t i = 1; i < rows; ++i) {
        const float* x = X + i * cols;
#pragma omp simd
        for (int64_t p = 0; p < cols; ++p) mx[p] = x[p] > mx[p] ? x[p] : mx[p];
    }
    for (int64_t i = 0; i < rows; ++i) {
        float* x = X + i * cols;
#pragma omp simd
        for (int64_t p = 0; p < cols; ++p) {
            x[p] = ops::exp_nonpositive(x[p] - mx[p]);
            sum[p] += x[p];
        }
    }
#pragma omp simd
    for (int64_t p = 0; p < cols; ++p) sum[p] = 1.0f / sum[p];
    for (int64_t i = 0; i < rows; ++i) {
        float* x = X + i * cols;
#pragma omp simd
        for (int64_t p = 0; p < cols; ++p) x[p] *= sum[p];
    }
}

// Token self-attention on one thread: out_proj(concat_h softmax(q_h k_h^T / sqrt(hd)) v_h)
// with q, k, v projected from q_in, k_in, v_in (T, C).
Buf token_attention(const AttentionWeights& a, const Buf& q_in, const Buf& k_in, const Buf& v_in) {
    const Buf q = lin(q_in, a.q_proj), k = lin(k_in, a.k_proj), v = lin(v_in, a.v_proj);
    const int64_t D = a.internal_dim(), T = static_cast<int64_t>(q.size()) / D, hd = D / a.num_heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    Buf o(q.size(), 0.0f), s(static_cast<size_t>(T));
    for (int64_t h = 0; h < a.num_heads; ++h)
        for (int64_t i = 0; i < T; ++i) {
            for (int64_t j = 0; j < T; ++j) s[static_cast<size_t>(j)] = dot(&q[i * D + h * hd], &k[j * D + h * hd], hd) * scale;
            softmax(s.data(), T);
            for (int64_t j = 0; j < T; ++j)
                for (int64_t d = 0; d < hd; ++d) o[i * D + h * hd + d] += s[static_cast<size_t>(j)] * v[j * D + h * hd + d];
        }
    return lin(o, a.out_proj);
}

// The image rows of one prompt: x[p] = alpha[p] * S[p] + coef[p] . basis + c (p < N).
// `full` keeps the rows themselves less c, as the reference forms them: each LayerNorm needs
// their statistics, and updating `full` by the new attention term alone (N x H*T x C) is
// cheaper than forming coef . basis (N x r x C) again.
struct Rows {
    int64_t N = 0, C = 0, r = 0;
    Buf alpha;  // (N)
    Array coef; // (N, r)
    Buf basis;  // (r, C)
    Buf c;      // (C)
    Array full; // (N, C)  alpha S + coef . basis
};

// Runs fn(h0, h1) over contiguous ranges of heads [h0, h1) that cover [0, heads): one range
// per thread when not already inside a parallel region (a single prompt: a click's heads are
// independent from their scores to their outputs, and the products of one head are too small
// to thread inside), one call for all heads otherwise (prompts decoded one per thread). A range
// lets its products that every head shares run as one GEMM over the range's rows. The first
// exception is rethrown here.
template <class Fn>
void for_head_ranges(int64_t heads, Fn&& fn) {
    const int64_t parts = omp_in_parallel() ? 1 : std::min<int64_t>(heads, omp_get_max_threads());
    ops::for_each_item(parts, [&](int64_t i) { fn(i * heads / parts, (i + 1) * heads / parts); });
}

// 16 floats as one value, for the register-tiled score kernel below: GCC lowers it to one
// AVX-512 register, two AVX2 or four SSE registers, in each SAM_VECTOR_CLONES clone.
// (No function takes or returns one: that would change the calling convention per clone.)
using Float16 = float __attribute__((vector_size(64)));
constexpr int64_t kPanel = 16;  // positions per panel of the scores' image sides (SharedKeys)

// X[t, p] = alpha[p] (sw[:, p] . tok[t]) + pe[:, p] . tok[t] + ct[t] for Tt <= 3 tokens and one
// panel of 16 positions: sw and pe point at a head's hd rows of 16 in that panel (SharedKeys),
// tok at the tile's tokens (ld ldt, already offset to the head). The tile's 2 Tt sums stay in
// registers while the panel's rows stream past, contiguous.
template <int Tt>
[[gnu::always_inline]] inline void score_tile(const float* sw, const float* pe, int64_t hd, const float* tok,
                                              int64_t ldt, const float* alpha, const float* ct, float* X, int64_t ldx) {
    Float16 s[Tt], e[Tt];
    for (int t = 0; t < Tt; ++t) s[t] = e[t] = Float16{};
    for (int64_t d = 0; d < hd; ++d) {
        Float16 a, b;
        std::memcpy(&a, sw + d * kPanel, sizeof a);
        std::memcpy(&b, pe + d * kPanel, sizeof b);
        for (int t = 0; t < Tt; ++t) {
            const float td = tok[t * ldt + d];
            s[t] += td * a;
            e[t] += td * b;
        }
    }
    Float16 al;
    std::memcpy(&al, alpha, sizeof al);
    for (int t = 0; t < Tt; ++t) {
        const Float16 xt = al * s[t] + (e[t] + ct[t]);
        std::memcpy(X + t * ldx, &xt, sizeof xt);
    }
}

// The per-head part of the scores below for head h: Zh (T, r), Zh[t] = (basis W_h^T) tok_h[t],
// and Xh (T, N) = e tok_h^T with e = alpha sw_h + pe_h + c W_h^T, W_h the head's rows of W,
// computed as alpha (sw_h tok_h^T) + pe_h tok_h^T + c W_h^T tok_h^T along the positions, from
// the paneled swP, peP (SharedKeys), in register tiles of 16 positions by up to 3 tokens (a
// GEMM library call costs more than this work at T ~ 7 and hd = 16).
SAM_VECTOR_CLONES
void head_scores(const Rows& x, const float* swP, const float* peP, const Tensor& W, const float* tok, int64_t T,
                 int64_t heads, int64_t h, float* Zh, float* Xh) {
    const int64_t N = x.N, C = x.C, r = x.r, D = W.dim(0), hd = D / heads;
    const float* Wh = W.data() + h * hd * C;
    Buf bw(static_cast<size_t>(r * hd)), cw(static_cast<size_t>(hd)), ct(static_cast<size_t>(T));
    mm(r, hd, C, x.basis.data(), C, Wh, C, true, bw.data(), hd);
    mm(1, hd, C, x.c.data(), C, Wh, C, true, cw.data(), hd);
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t j = 0; j < r; ++j) Zh[t * r + j] = dot(&bw[j * hd], tok + t * D + h * hd, hd);
        ct[static_cast<size_t>(t)] = dot(cw.data(), tok + t * D + h * hd, hd);
    }
    const int64_t panels = (N + kPanel - 1) / kPanel;
    alignas(64) float alpha_tail[kPanel] = {}, x_tail[3 * kPanel];
    for (int64_t b = 0; b < panels; ++b) {
        const int64_t p = b * kPanel, n = std::min(kPanel, N - p);
        const float* sw = swP + (h * panels + b) * hd * kPanel;
        const float* pe = peP + (h * panels + b) * hd * kPanel;
        const float* alpha = x.alpha.data() + p;
        if (n < kPanel) {  // the last, partial panel: through buffers of 16
            std::copy(alpha, alpha + n, alpha_tail);
            alpha = alpha_tail;
        }
        for (int64_t t0 = 0; t0 < T; t0 += 3) {
            const float* tt = tok + t0 * D + h * hd;
            const float* c0 = ct.data() + t0;
            const int64_t tn = std::min<int64_t>(3, T - t0);
            float* X = n < kPanel ? x_tail : Xh + t0 * N + p;
            const int64_t ldx = n < kPanel ? kPanel : N;
            if (tn == 3)
                score_tile<3>(sw, pe, hd, tt, D, alpha, c0, X, ldx);
            else if (tn == 2)
                score_tile<2>(sw, pe, hd, tt, D, alpha, c0, X, ldx);
            else
                score_tile<1>(sw, pe, hd, tt, D, alpha, c0, X, ldx);
            if (n < kPanel)
                for (int64_t t = 0; t < tn; ++t) std::copy(x_tail + t * kPanel, x_tail + t * kPanel + n, Xh + (t0 + t) * N + p);
        }
    }
}

// Scores of the image rows against token vectors tok (T, D), already scaled by 1/sqrt(hd),
// where the rows go through W (D, C) plus a bias; swP, peP the panels of S W^T and key_pe W^T + b:
//   score[p, h, t] = (alpha[p] sw[p] + pe[p] + coef[p] . basis W^T + c W^T)_h . tok_h[t].
// Writes rows [h0 T, h1 T) of X (H*T, N), X[h*T + t, p], for the heads h0 <= h < h1: their
// per-head parts, then their share of the coefficient product as one GEMM.
void image_token_scores(const Rows& x, const float* swP, const float* peP, const Tensor& W, const float* tok, int64_t T,
                        int64_t heads, int64_t h0, int64_t h1, float* X) {
    const int64_t N = x.N, r = x.r, rows = (h1 - h0) * T;
    Buf Z(static_cast<size_t>(rows * r));
    for (int64_t h = h0; h < h1; ++h) head_scores(x, swP, peP, W, tok, T, heads, h, Z.data() + (h - h0) * T * r, X + h * T * N);
    mm(rows, N, r, Z.data(), r, x.coef.data(), r, true, X + h0 * T * N, N, true);
}

// out[t, :] = sum_p P[t, p] alpha[p] v[p, :] for Tn tokens and v (N, 16): the tokens' sums stay
// in registers while v streams past, once.
template <int Tn>
[[gnu::always_inline]] inline void weighted_values16(const float* P, int64_t N, const float* alpha, const float* v,
                                                     float* out, int64_t ldo) {
    Float16 acc[Tn];
    for (int t = 0; t < Tn; ++t) acc[t] = Float16{};
    for (int64_t p = 0; p < N; ++p) {
        Float16 vp;
        std::memcpy(&vp, v + p * kPanel, sizeof vp);
        const float ap = alpha[p];
        for (int t = 0; t < Tn; ++t) acc[t] += (P[t * N + p] * ap) * vp;
    }
    for (int t = 0; t < Tn; ++t) std::memcpy(out + t * ldo, &acc[t], sizeof acc[t]);
}

// out (T, hd) with row stride ldo = P (T, N) diag(alpha) v for a head's values v (N, hd):
// the attention's value side without forming P diag(alpha). Heads of 16 channels (SAM's and
// SAM 2's) take the register kernel, 4 tokens at a time; others a GEMM.
SAM_VECTOR_CLONES
void weighted_values(const float* P, int64_t T, int64_t N, const float* alpha, const float* v, int64_t hd, float* out,
                     int64_t ldo) {
    if (hd != kPanel) {
        Array pa(T * N);
        for (int64_t t = 0; t < T; ++t)
            for (int64_t p = 0; p < N; ++p) pa[t * N + p] = P[t * N + p] * alpha[p];
        mm(T, hd, N, pa.data(), N, v, hd, false, out, ldo);
        return;
    }
    for (int64_t t0 = 0; t0 < T; t0 += 4) {
        const float* Pt = P + t0 * N;
        float* o = out + t0 * ldo;
        switch (std::min<int64_t>(4, T - t0)) {
            case 4: weighted_values16<4>(Pt, N, alpha, v, o, ldo); break;
            case 3: weighted_values16<3>(Pt, N, alpha, v, o, ldo); break;
            case 2: weighted_values16<2>(Pt, N, alpha, v, o, ldo); break;
            default: weighted_values16<1>(Pt, N, alpha, v, o, ldo); break;
        }
    }
}

// Tokens attending to the image rows: concat_h softmax_p(q_h . k_h[p] / sqrt(hd)) v_h[p] for
// query vectors q (T, D); the value rows are never formed:
//   sum_p P[p] v[p] = (P * alpha) (S Wv^T) + (P coef) (basis Wv^T) + c Wv^T + bv   (sum_p P = 1).
// Each range of heads does its scores, softmax and products start to end; it writes its heads'
// columns of the result. Returns (T, D), before out_proj.
Buf tokens_to_image(const Rows& x, const SharedKeys& sh, const AttentionWeights& a, const Buf& q) {
    const int64_t N = x.N, C = x.C, r = x.r, D = a.internal_dim(), H = a.num_heads, hd = D / H;
    const int64_t T = static_cast<int64_t>(q.size()) / D;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    Buf tok(q.size());
    for (size_t i = 0; i < q.size(); ++i) tok[i] = q[i] * scale;
    Array P(H * T * N);
    Buf out(static_cast<size_t>(T * D));
    for_head_ranges(H, [&](int64_t h0, int64_t h1) {
        image_token_scores(x, sh.k.data(), sh.k_pe.data(), a.k_proj.w, tok.data(), T, H, h0, h1, P.data());
        const int64_t rows = (h1 - h0) * T, cols = (h1 - h0) * hd;
        for (int64_t h = h0; h < h1; ++h) {
            for (int64_t t = 0; t < T; ++t) softmax(&P[(h * T + t) * N], N);
            weighted_values(&P[h * T * N], T, N, x.alpha.data(), sh.v.data() + h * N * hd, hd, &out[h * hd], D);
        }
        if (r == 0) return;
        // (P coef) (basis Wv^T) for these heads: their rows of P coef, their columns of basis Wv^T.
        Buf wc(static_cast<size_t>(rows * r)), bv(static_cast<size_t>(r * cols));
        mm(rows, r, N, &P[h0 * T * N], N, x.coef.data(), r, false, wc.data(), r);
        mm(r, cols, C, x.basis.data(), C, a.v_proj.w.data() + h0 * hd * C, C, true, bv.data(), cols);
        for (int64_t h = h0; h < h1; ++h)
            mm(T, hd, r, &wc[(h - h0) * T * r], r, &bv[(h - h0) * hd], cols, false, &out[h * hd], D, true);
    });
    Buf cv = lin(x.c, a.v_proj);  // c Wv^T + bv
    for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < D; ++d) out[t * D + d] += cv[static_cast<size_t>(d)];
    return out;
}

// out (N, r + k) = [coef | A^T] for coef (N, r) and A (k, N), one block of positions per
// thread, each output row written once and whole (a column-wise write would pull every row's
// cache line in once per column group).
SAM_VECTOR_CLONES
void append_columns(const float* coef, int64_t r, const float* A, int64_t k, int64_t N, float* out) {
    constexpr int64_t kBlock = 64;  // positions per block: A's k x 64 values stay in L1
    const int64_t blocks = (N + kBlock - 1) / kBlock, ld = r + k;
#pragma omp parallel for schedule(static) if (N * ld >= (int64_t{1} << 16) && !omp_in_parallel())
    for (int64_t b = 0; b < blocks; ++b)
        for (int64_t p = b * kBlock; p < std::min(N, (b + 1) * kBlock); ++p) {
            float* row = out + p * ld;
            std::copy(coef + p * r, coef + (p + 1) * r, row);
            for (int64_t j = 0; j < k; ++j) row[r + j] = A[j * N + p];
        }
}

// Image rows attending to the tokens (keys k, values v: (T, D) projected from the tokens),
// added to the rows: out_proj(attn) = A U + bo with A (N, H*T) the attention weights and
// U (H*T, C) the rows v_h[t] Wo_h^T. So coef gains the columns A, basis the rows U.
void image_to_tokens(Rows& x, const SharedKeys& sh, const AttentionWeights& a, const Buf& k, const Buf& v) {
    const int64_t N = x.N, C = x.C, r = x.r, D = a.internal_dim(), H = a.num_heads, hd = D / H;
    const int64_t T = static_cast<int64_t>(k.size()) / D, HT = H * T;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    Buf tok(k.size());
    for (size_t i = 0; i < k.size(); ++i) tok[i] = k[i] * scale;
    Array A(HT * N);
    // Each range of heads makes and normalises its rows of A.
    for_head_ranges(H, [&](int64_t h0, int64_t h1) {
        image_token_scores(x, sh.q.data(), sh.q_pe.data(), a.q_proj.w, tok.data(), T, H, h0, h1, A.data());
        for (int64_t h = h0; h < h1; ++h) softmax_columns(&A[h * T * N], T, N);
    });
    // New coefficients [coef | A^T], by blocks of positions: each row is written once, whole.
    Array coef(N * (r + HT));
    append_columns(x.coef.data(), r, A.data(), HT, N, coef.data());
    x.basis.resize(static_cast<size_t>((r + HT) * C));
    for (int64_t h = 0; h < H; ++h)
        mm(T, C, hd, &v[h * hd], D, a.out_proj.w.data() + h * hd, D, true, &x.basis[(r + h * T) * C], C);
    mm(N, C, HT, &coef[r], r + HT, &x.basis[r * C], C, false, x.full.data(), C, true);  // full += A U
    x.coef = std::move(coef);
    x.r = r + HT;
    for (int64_t c = 0; c < C; ++c) x.c[static_cast<size_t>(c)] += a.out_proj.b[c];
}

// x <- LayerNorm(x), with mean mu and std s of each row computed from `full` as nn.LayerNorm
// does (in float); then
//   (x - mu)/s * g + b = (alpha/s) (g S) + (coef/s) . (g basis) + (1/s) (g c) - (mu/s) g + b,
// and g S is the next shared matrix; `full` becomes (x - mu)/s * g.
SAM_VECTOR_CLONES
void layer_norm_rows(Rows& x, const LayerNorm& n) {
    const int64_t N = x.N, C = x.C, r = x.r, r2 = r + 2;
    Array coef(N * r2);
    const float* cc = x.c.data();
    const float* g = n.w.data();
#pragma omp parallel for if (par(N * C))
    for (int64_t p = 0; p < N; ++p) {
        float* row = &x.full[p * C];
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < C; ++c) {
            row[c] += cc[c];
            sum += row[c];
        }
        const float mu = sum / static_cast<float>(C);
        float var = 0.0f;
#pragma omp simd reduction(+ : var)
        for (int64_t c = 0; c < C; ++c) var += (row[c] - mu) * (row[c] - mu);
        const float inv = 1.0f / std::sqrt(var / static_cast<float>(C) + kLayerNormEps);
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) row[c] = (row[c] - mu) * inv * g[c];
        const float* src = &x.coef[p * r];
        float* dst = &coef[p * r2];
#pragma omp simd
        for (int64_t j = 0; j < r; ++j) dst[j] = src[j] * inv;
        dst[r] = inv;
        dst[r + 1] = -mu * inv;
        x.alpha[static_cast<size_t>(p)] *= inv;
    }
    Buf basis(static_cast<size_t>(r2 * C));
    for (int64_t j = 0; j < r; ++j)
        for (int64_t c = 0; c < C; ++c) basis[j * C + c] = x.basis[j * C + c] * g[c];
    for (int64_t c = 0; c < C; ++c) {
        basis[r * C + c] = x.c[static_cast<size_t>(c)] * g[c];
        basis[(r + 1) * C + c] = g[c];
        x.c[static_cast<size_t>(c)] = n.b[c];
    }
    x.coef = std::move(coef);
    x.basis = std::move(basis);
    x.r = r2;
}

// LayerNorm2d over each row of C4 channels, then GELU, in place on (rows, C4).
SAM_VECTOR_CLONES
void layer_norm_gelu(float* x, int64_t rows, int64_t C4, const LayerNorm& n) {
    const float* g = n.w.data();
    const float* b = n.b.data();
#pragma omp parallel for if (par(rows * C4))
    for (int64_t i = 0; i < rows; ++i) {
        float* v = x + i * C4;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < C4; ++c) sum += v[c];
        const float mu = sum / static_cast<float>(C4);
        float var = 0.0f;
#pragma omp simd reduction(+ : var)
        for (int64_t c = 0; c < C4; ++c) var += (v[c] - mu) * (v[c] - mu);
        const float inv = 1.0f / std::sqrt(var / static_cast<float>(C4) + kLayerNorm2dEps);
#pragma omp simd
        for (int64_t c = 0; c < C4; ++c) v[c] = ops::gelu_erf((v[c] - mu) * inv * g[c] + b[c]);
    }
}

Buf mlp(const MlpWeights& m, Buf x) {
    for (size_t i = 0; i < m.layers.size(); ++i)
        x = lin(x, m.layers[i], i + 1 < m.layers.size());
    return x;
}

// rows [p0, p1) of y (N, out) = rows W^T + b, given sw = S W^T (N, out), bw = basis W^T (r, out)
// and cw = c W^T + b (out); y points at row p0.
SAM_VECTOR_CLONES
void linear_rows_block(const Rows& x, const float* sw, const float* bw, const float* cw, int64_t out, int64_t p0,
                       int64_t p1, float* y) {
    const int64_t r = x.r;
    mm(p1 - p0, out, r, x.coef.data() + p0 * r, r, bw, out, false, y, out);
    for (int64_t p = p0; p < p1; ++p) {
        const float a = x.alpha[static_cast<size_t>(p)];
        float* yr = y + (p - p0) * out;
        const float* sr = sw + p * out;
#pragma omp simd
        for (int64_t o = 0; o < out; ++o) yr[o] += a * sr[o] + cw[o];
    }
}

// The mask logits of a block of n image positions from p0, from the second ConvTranspose's
// product before its bias and GELU, transposed: u2T (4 C8, 4 n), row k2 C8 + c holding channel c
// of sub-pixel k2 for every first-stage row r1 (position p0 + r1 / 4, sub-pixel r1 % 4). So
//   logits[m, pixel(r1, k2)] = sum_c hyper[m, c] gelu(u2T[k2 C8 + c, r1] + b2[k2 C8 + c])
// runs along r1 with the hypernetwork values broadcast: the GELU pass and the M products are
// one pass over u2T, with no horizontal sums (a GEMM with M ~ 3 columns runs far below the
// library's peak). Written straight to the (M, 4G, 4G) masks.
SAM_VECTOR_CLONES
void gelu_mask_logits_block(const float* u2T, const float* b2, const float* hyper, int64_t M, int64_t C8, int64_t p0,
                            int64_t n, int64_t G, float* out) {
    constexpr int64_t kLanes = 64;  // first-stage rows per pass: its GELU values and sums stay in L1
    constexpr int64_t kMaxM = 4;
    const int64_t S = 4 * G, n4 = 4 * n;
    alignas(64) float g[kLanes], acc[kMaxM][kLanes];
    for (int64_t m0 = 0; m0 < M; m0 += kMaxM) {
        const int64_t mn = std::min(kMaxM, M - m0);
        for (int64_t r0 = 0; r0 < n4; r0 += kLanes) {
            const int64_t L = std::min(kLanes, n4 - r0);
            for (int64_t k2 = 0; k2 < 4; ++k2) {
                for (int64_t m = 0; m < mn; ++m) std::fill_n(acc[m], kLanes, 0.0f);
                for (int64_t c = 0; c < C8; ++c) {
                    const float* row = u2T + (k2 * C8 + c) * n4 + r0;
                    const float bias = b2[k2 * C8 + c];
#pragma omp simd
                    for (int64_t i = 0; i < L; ++i) g[i] = ops::gelu_erf(row[i] + bias);
                    for (int64_t m = 0; m < mn; ++m) {
                        const float hm = hyper[(m0 + m) * C8 + c];
                        float* a = acc[m];
#pragma omp simd
                        for (int64_t i = 0; i < L; ++i) a[i] += hm * g[i];
                    }
                }
                for (int64_t i = 0; i < L; ++i) {
                    const int64_t r1 = r0 + i, q = p0 + r1 / 4, y = q / G, xx = q % G, k1 = r1 % 4;
                    const int64_t Y = 4 * y + 2 * (k1 / 2) + k2 / 2, X = 4 * xx + 2 * (k1 % 2) + k2 % 2;
                    for (int64_t m = 0; m < mn; ++m) out[(m0 + m) * S * S + Y * S + X] = acc[m][i];
                }
            }
        }
    }
}

// Upscales the rows (through the two ConvTransposes) and dots them with the hypernetwork
// outputs hyper (M, C/8); writes M masks of (4G, 4G) logits. One pass per block of image
// positions, start to end (first ConvTranspose from its shared product, LayerNorm2d, GELU,
// second ConvTranspose, GELU, the hypernetwork products, the scatter into the masks), so the
// block's intermediates stay in cache; a single prompt spreads its blocks over the threads.
void upscale_and_predict_low_rank(const MaskDecoderWeights& w, const LowRankImageState& st, const Rows& x, const Buf& hyper,
                         int64_t M, float* out) {
    const int64_t N = x.N, C = x.C, r = x.r, G = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(N))));
    const int64_t C4 = w.upscale2.w.dim(1), C8 = w.upscale2.w.dim(0) / 4, out1 = w.upscale1.out_features();
    // The prompt's part of the first ConvTranspose: basis W^T and c W^T + b, once.
    Buf bw(static_cast<size_t>(r * out1));
    mm(r, out1, C, x.basis.data(), C, w.upscale1.w.data(), C, true, bw.data(), out1);
    const Buf cw = lin(x.c, w.upscale1);
    constexpr int64_t kBlock = 256;  // image positions per block
    const int64_t blocks = (N + kBlock - 1) / kBlock;
    std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1 && !omp_in_parallel())
    for (int64_t blk = 0; blk < blocks; ++blk) {
        try {
            const int64_t p0 = blk * kBlock, p1 = std::min(N, p0 + kBlock), n = p1 - p0;
            // ConvTranspose 2x2 s2 -> LayerNorm2d -> GELU: (n * 4, C/4), one row per 2G x 2G pixel.
            Array u1(n * 4 * C4);
            linear_rows_block(x, st.upscale.data(), bw.data(), cw.data(), out1, p0, p1, u1.data());
            layer_norm_gelu(u1.data(), n * 4, C4, w.upscale_norm);
            // ConvTranspose 2x2 s2 (transposed: (4 * C/8, n * 4)), then its bias, GELU and the
            // mask logits in one pass, written to (4G, 4G).
            Array u2T(n * 16 * C8);
            mm(4 * C8, n * 4, C4, w.upscale2.w.data(), C4, u1.data(), C4, true, u2T.data(), n * 4);
            gelu_mask_logits_block(u2T.data(), w.upscale2.b.data(), hyper.data(), M, C8, p0, n, G, out);
        } catch (...) {
#pragma omp critical(low_rank_upscale_error)
            if (!error) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

// x W^T + b for x (N, C) and W (D, C), in the heads' panels of 16 positions (SharedKeys):
// computed transposed (W x^T, (D, N)), then each panel's 16 columns gathered; positions past N
// are 0.
Tensor linear_panels(const Tensor& x, const Tensor& w, const Tensor& b, int64_t heads) {
    const int64_t N = x.dim(0), C = x.dim(1), D = w.dim(0), hd = D / heads, panels = (N + kPanel - 1) / kPanel;
    Tensor yT = Tensor::empty({D, N});
    for (int64_t d = 0; d < D; ++d) std::fill_n(yT.data() + d * N, N, b.defined() ? b[d] : 0.0f);
    ops::gemm(D, N, C, w.data(), C, x.data(), C, true, yT.data(), N, 1.0f, 1.0f);
    Tensor y({heads, panels, hd, kPanel});  // zeros
    for (int64_t d = 0; d < D; ++d)
        for (int64_t pb = 0; pb < panels; ++pb) {
            const int64_t p = pb * kPanel, n = std::min(kPanel, N - p);
            std::copy_n(yT.data() + d * N + p, n, y.data() + (((d / hd) * panels + pb) * hd + d % hd) * kPanel);
        }
    return y;
}

// (N, H * hd) -> (H, N, hd): each head's values contiguous.
Tensor by_head(const Tensor& y, int64_t heads) {
    const int64_t N = y.dim(0), D = y.dim(1), hd = D / heads;
    Tensor out = Tensor::empty({heads, N, hd});
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t p = 0; p < N; ++p) std::copy_n(y.data() + p * D + h * hd, hd, out.data() + (h * N + p) * hd);
    return out;
}

// Fills st.shared and st.upscale from st.keys (src) and the image PE.
void prepare_shared_image_side(const MaskDecoderWeights& w, LowRankImageState& st, const Tensor& image_pe) {
    const TwoWayTransformerWeights& tw = w.transformer;
    const size_t L = tw.layers.size();
    const int64_t N = st.keys.dim(0), C = st.keys.dim(1);
    const Tensor none;
    // The PE projections: from the model's cache when made from this very PE tensor.
    std::vector<Tensor> k_pe, q_pe;
    {
        PeProjections& cache = *w.pe_projections;
        std::lock_guard<std::mutex> lock(cache.mutex);
        if (cache.image_pe.data() != image_pe.data() || cache.k_pe.size() != L + 1) {
            cache.k_pe.clear();
            cache.q_pe.clear();
            for (size_t l = 0; l <= L; ++l) {
                const Linear& k = (l < L ? tw.layers[l].cross_t2i : tw.final_t2i).k_proj;
                const int64_t hk = (l < L ? tw.layers[l].cross_t2i : tw.final_t2i).num_heads;
                cache.k_pe.push_back(linear_panels(image_pe, k.w, k.b, hk));
                if (l < L)
                    cache.q_pe.push_back(linear_panels(image_pe, tw.layers[l].cross_i2t.q_proj.w, tw.layers[l].cross_i2t.q_proj.b,
                                                           tw.layers[l].cross_i2t.num_heads));
            }
            cache.image_pe = image_pe;
        }
        k_pe = cache.k_pe;
        q_pe = cache.q_pe;
    }
    Tensor s = st.keys;  // S_0 = src
    st.shared.assign(L + 1, SharedKeys{});
    for (size_t l = 0; l <= L; ++l) {
        SharedKeys& sk = st.shared[l];
        const AttentionWeights& t2i = l < L ? tw.layers[l].cross_t2i : tw.final_t2i;
        sk.s = s;
        sk.k = linear_panels(s, t2i.k_proj.w, none, t2i.num_heads);
        sk.k_pe = k_pe[l];
        sk.v = by_head(ops::linear(s, t2i.v_proj.w, none), t2i.num_heads);
        if (l == L) break;
        sk.q = linear_panels(s, tw.layers[l].cross_i2t.q_proj.w, none, tw.layers[l].cross_i2t.num_heads);
        sk.q_pe = q_pe[l];
        // S_{l+1} = S_l * norm4.weight
        Tensor next = Tensor::empty({N, C});
        const float* g = tw.layers[l].norm4.w.data();
        for (int64_t p = 0; p < N; ++p)
            for (int64_t c = 0; c < C; ++c) next[p * C + c] = s[p * C + c] * g[c];
        s = next;
    }
    st.upscale = ops::linear(s, w.upscale1.w, none);
}

// Decodes one prompt against the shared image side.
//   tokens (T, C) [iou, mask tokens, sparse]; writes iou (num_mask_tokens) and the masks
//   first..first+M-1 as (M, 4G, 4G) logits.
// The two-way transformer of the prompt's tokens (T, C) against the image state: returns the
// queries after the final norm and leaves the image rows, in low-rank form, in x.
Buf transformer_low_rank(const MaskDecoderWeights& w, const LowRankImageState& st, const float* tokens, int64_t T,
                         Rows& x) {
    const TwoWayTransformerWeights& tw = w.transformer;
    const int64_t N = st.keys.dim(0), C = st.keys.dim(1);
    const Buf qpe(tokens, tokens + T * C);
    Buf queries = qpe;
    x = Rows{};  // keys = src: alpha 1, no basis
    x.N = N;
    x.C = C;
    x.alpha.assign(static_cast<size_t>(N), 1.0f);
    x.c.assign(static_cast<size_t>(C), 0.0f);
    x.full = Array(N * C);
    std::copy(st.keys.data(), st.keys.data() + N * C, x.full.data());

    for (size_t l = 0; l < tw.layers.size(); ++l) {
        const TwoWayBlockWeights& b = tw.layers[l];
        const SharedKeys& sh = st.shared[l];
        // Self attention block (the first layer skips the PE and the residual)
        if (b.skip_first_layer_pe) {
            queries = token_attention(b.self_attn, queries, queries, queries);
        } else {
            const Buf q = add(queries, qpe);
            add_to(queries, token_attention(b.self_attn, q, q, queries));
        }
        layer_norm_tokens(queries, b.norm1);
        // Cross attention block, tokens attending to image embedding
        add_to(queries, lin(tokens_to_image(x, sh, b.cross_t2i, lin(add(queries, qpe), b.cross_t2i.q_proj)),
                            b.cross_t2i.out_proj));
        layer_norm_tokens(queries, b.norm2);
        // MLP block
        add_to(queries, lin(lin(queries, b.mlp_lin1, true), b.mlp_lin2));
        layer_norm_tokens(queries, b.norm3);
        // Cross attention block, image embedding attending to tokens
        image_to_tokens(x, sh, b.cross_i2t, lin(add(queries, qpe), b.cross_i2t.k_proj), lin(queries, b.cross_i2t.v_proj));
        layer_norm_rows(x, b.norm4);
    }
    // Final attention layer from the points to the image
    const AttentionWeights& f = tw.final_t2i;
    add_to(queries, lin(tokens_to_image(x, st.shared.back(), f, lin(add(queries, qpe), f.q_proj)), f.out_proj));
    layer_norm_tokens(queries, tw.norm_final);
    return queries;
}

void decode_prompt_low_rank(const MaskDecoderWeights& w, const LowRankImageState& st, const float* tokens,
                            int64_t T, int64_t first, int64_t M, float* iou, float* masks) {
    const int64_t C = st.keys.dim(1), C8 = w.upscale2.w.dim(0) / 4;
    Rows x;
    const Buf queries = transformer_low_rank(w, st, tokens, T, x);
    // IoU head on the iou token, hypernetwork MLPs on the selected mask tokens.
    const Buf pred = mlp(w.iou_head, Buf(queries.begin(), queries.begin() + C));
    std::copy(pred.begin(), pred.end(), iou);
    Buf hyper(static_cast<size_t>(M * C8));
    for (int64_t m = 0; m < M; ++m) {
        const int64_t row = 1 + first + m;
        const Buf h = mlp(w.hypernetworks[static_cast<size_t>(first + m)],
                          Buf(queries.begin() + row * C, queries.begin() + (row + 1) * C));
        std::copy(h.begin(), h.end(), hyper.begin() + m * C8);
    }
    upscale_and_predict_low_rank(w, st, x, hyper, M, masks);
}

}  // namespace

LowRankImageState prepare_low_rank_image(const MaskDecoderWeights& w, const Tensor& embedding, const Tensor& dense,
                                         const Tensor& image_pe) {
    LowRankImageState s;
    s.keys = decoder_src(embedding, dense, image_pe);
    prepare_shared_image_side(w, s, image_pe);
    return s;
}

DecoderOutput low_rank_decoder_forward(const MaskDecoderWeights& w, const LowRankImageState& state,
                                       const Tensor& image_pe, const Tensor& sparse, bool multimask_output) {
    const int64_t B = sparse.dim(0), Ns = sparse.dim(1), C = sparse.dim(2), n = w.num_mask_tokens;
    const int64_t T = 1 + n + Ns, HW = image_pe.dim(0), S = 4 * static_cast<int64_t>(std::lround(std::sqrt(HW)));
    const int64_t M = multimask_output ? n - 1 : 1, first = multimask_output ? 1 : 0;
    if (state.keys.shape() != image_pe.shape() || C != image_pe.dim(1) || state.shared.empty())
        throw Error("low-rank decoder: image state " + shape_str(state.keys.shape()) + ", image PE " +
                    shape_str(image_pe.shape()) + ", prompts " + shape_str(sparse.shape()));
    DecoderOutput out{Tensor::empty({B, M, S, S}), Tensor::empty({B, M})};
    // One prompt per thread; a single prompt threads inside instead.
    ops::for_each_item(B, [&](int64_t b) {
        // Tokens: [iou_token, mask_tokens, sparse prompts], (T, C).
        std::vector<float> tokens(static_cast<size_t>(T * C)), iou(static_cast<size_t>(n));
        std::copy(w.iou_token.data(), w.iou_token.data() + C, tokens.begin());
        std::copy(w.mask_tokens.data(), w.mask_tokens.data() + n * C, tokens.begin() + C);
        std::copy(sparse.data() + b * Ns * C, sparse.data() + (b + 1) * Ns * C, tokens.begin() + (1 + n) * C);
        decode_prompt_low_rank(w, state, tokens.data(), T, first, M, iou.data(), out.masks.data() + b * M * S * S);
        for (int64_t m = 0; m < M; ++m) out.iou[b * M + m] = iou[static_cast<size_t>(first + m)];
    });
    return out;
}

void low_rank_transformer_forward(const MaskDecoderWeights& w, const LowRankImageState& st, const float* tokens,
                                  int64_t T, float* queries_out, float* upscaled) {
    const int64_t N = st.keys.dim(0), C = st.keys.dim(1);
    if (st.shared.size() != w.transformer.layers.size() + 1 || w.upscale1.w.dim(1) != C)
        throw Error("low-rank transformer: image state " + shape_str(st.keys.shape()) + " does not fit the weights");
    Rows x;
    const Buf queries = transformer_low_rank(w, st, tokens, T, x);
    std::copy(queries.begin(), queries.end(), queries_out);
    // The first ConvTranspose over every image row, from its shared product.
    const int64_t out1 = w.upscale1.out_features();
    Buf bw(static_cast<size_t>(x.r * out1));
    mm(x.r, out1, C, x.basis.data(), C, w.upscale1.w.data(), C, true, bw.data(), out1);
    const Buf cw = lin(x.c, w.upscale1);
    linear_rows_block(x, st.upscale.data(), bw.data(), cw.data(), out1, 0, N, upscaled);
}

}  // namespace sam
