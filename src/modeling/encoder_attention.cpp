// Encoder attention with decomposed relative positions, fused per (window, head, query block):
// the score block, its relative-position terms, softmax and the product with V stay in a
// thread's cache; the full (T x T) score matrix of global attention is never materialised.
// Windowed blocks never build the padded 70x70 grid: a padding token's q/k/v is the qkv bias
// (the reference pads with zeros before the qkv projection), and padding queries, which the
// reference crops away afterwards, are not computed.
#include <algorithm>
#include <cmath>
#include <vector>

#include "modeling/image_encoder.h"
#include "ops/ops.h"

namespace sam {

Tensor encoder_attention(const EncoderBlockWeights& w, const Tensor& x, int H, int W, int num_heads) {
    EncoderWorkspace work;
    return encoder_attention(w, x, H, W, num_heads, work);
}

const Tensor& encoder_attention(const EncoderBlockWeights& w, const Tensor& x, int H, int W, int num_heads,
                                EncoderWorkspace& work) {
    const int64_t N = static_cast<int64_t>(H) * W, C = x.dim(1), hd = C / num_heads, C3 = 3 * C;
    if (work.qkv.shape() != Shape{N, C3}) work.qkv = Tensor::empty({N, C3});
    if (work.out.shape() != Shape{N, C}) work.out = Tensor::empty({N, C});
    const Tensor& qkv = work.qkv;  // (N, 3C): [q | k | v], heads contiguous inside each
    w.qkv.mm.forward(x.data(), N, work.qkv.data());
    const float* qkv_d = qkv.data();
    const float* pad_row = w.qkv.b.data();  // q/k/v of a zero padding token
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

    const int ws = w.window_size;
    const bool global = ws == 0;
    const int wh = global ? H : ws, ww = global ? W : ws;  // window grid (query grid = key grid)
    const int nwy = global ? 1 : (H + ws - 1) / ws, nwx = global ? 1 : (W + ws - 1) / ws;
    const int64_t T = static_cast<int64_t>(wh) * ww;
    const int64_t QB = T <= 256 ? T : 128;  // query rows per task
    const int64_t nqb = (T + QB - 1) / QB;
    const int64_t rh_len = 2 * wh - 1, rw_len = 2 * ww - 1;
    const int64_t tasks = static_cast<int64_t>(nwy) * nwx * num_heads * nqb;

    Tensor& out = work.out;
#pragma omp parallel
    {
        std::vector<float> K(global ? 0 : T * hd), V(global ? 0 : T * hd), Q(QB * hd), O(QB * hd);
        std::vector<float> S(QB * T), RH(QB * rh_len), RW(QB * rw_len);
        std::vector<int64_t> q_tok(QB), q_row(QB);
        std::vector<float> rw_row(ww);
#pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t qb = task % nqb, h = (task / nqb) % num_heads, win = task / (nqb * num_heads);
            const int64_t wy = win / nwx, wx = win % nwx;
            // Global row of window token t, or -1 for a padding token.
            auto row_of = [&](int64_t t) -> int64_t {
                int64_t gy = wy * wh + t / ww, gx = wx * ww + t % ww;
                return (gy < H && gx < W) ? gy * W + gx : -1;
            };
            // Keys and values of the window for this head.
            const float *Kp, *Vp;
            int64_t ldk;
            if (global) {
                Kp = qkv_d + C + h * hd;
                Vp = qkv_d + 2 * C + h * hd;
                ldk = C3;
            } else {
                for (int64_t t = 0; t < T; ++t) {
                    int64_t r = row_of(t);
                    const float* src = r >= 0 ? qkv_d + r * C3 : pad_row;
                    std::copy_n(src + C + h * hd, hd, K.data() + t * hd);
                    std::copy_n(src + 2 * C + h * hd, hd, V.data() + t * hd);
                }
                Kp = K.data();
                Vp = V.data();
                ldk = hd;
            }
            // Queries of this block that lie inside the image.
            int64_t nq = 0;
            for (int64_t t = qb * QB; t < std::min(T, (qb + 1) * QB); ++t) {
                int64_t r = row_of(t);
                if (r < 0) continue;
                q_tok[nq] = t;
                q_row[nq] = r;
                std::copy_n(qkv_d + r * C3 + h * hd, hd, Q.data() + nq * hd);
                ++nq;
            }
            if (nq == 0) continue;
            // scores = (q * scale) k^T, plus rel_h[(qh,qw), kh] + rel_w[(qh,qw), kw] from the unscaled q.
            ops::gemm(nq, T, hd, Q.data(), hd, Kp, ldk, true, S.data(), T, scale);
            ops::gemm(nq, rh_len, hd, Q.data(), hd, w.rel_pos_h.data(), hd, true, RH.data(), rh_len);
            ops::gemm(nq, rw_len, hd, Q.data(), hd, w.rel_pos_w.data(), hd, true, RW.data(), rw_len);
            for (int64_t i = 0; i < nq; ++i) {
                const int64_t qh = q_tok[i] / ww, qw = q_tok[i] % ww;
                const float* rh = RH.data() + i * rh_len + qh + wh - 1;  // rh[-kh] = Rh[qh - kh + wh - 1]
                const float* rw = RW.data() + i * rw_len + qw + ww - 1;
                for (int64_t kw = 0; kw < ww; ++kw) rw_row[kw] = rw[-kw];  // forward order: the add vectorises
                float* s = S.data() + i * T;
                for (int64_t kh = 0; kh < wh; ++kh) {
                    const float bias_h = rh[-kh];
                    float* srow = s + kh * ww;
                    for (int64_t kw = 0; kw < ww; ++kw) srow[kw] += bias_h + rw_row[kw];
                }
            }
            for (int64_t i = 0; i < nq; ++i) ops::softmax_row(S.data() + i * T, T);
            ops::gemm(nq, hd, T, S.data(), T, Vp, ldk, false, O.data(), hd);
            for (int64_t i = 0; i < nq; ++i) std::copy_n(O.data() + i * hd, hd, out.data() + q_row[i] * C + h * hd);
        }
    }
    return work.out;
}

}  // namespace sam
