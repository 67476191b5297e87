// Encoder attention with decomposed relative positions: the qkv projection, then tasks of
// (window, head, span of queries), each run by the fused kernel of ops/attention_kernels.h
// (key blocks with an online softmax, relative-position terms added in the kernel), so the
// full (T x T) score matrix of global attention is never materialised. The reduced-precision
// encoders (bf16, int8) take the kernel's products in bf16 where the CPU has AVX512-BF16 and
// they are faster than fp32 ones there.
// Windowed blocks never build the padded 70x70 grid: a padding token's q/k/v is the qkv bias
// (the reference pads with zeros before the qkv projection), and padding queries, which the
// reference crops away afterwards, are not computed.
#include <algorithm>
#include <cmath>
#include <vector>

#include "modeling/image_encoder.h"
#include "ops/attention_kernels.h"

namespace sam {

Tensor encoder_attention(const EncoderBlockWeights& w, const Tensor& x, int H, int W, int num_heads) {
    EncoderWorkspace work;
    return encoder_attention(w, x, H, W, num_heads, work);
}

const Tensor& encoder_attention(const EncoderBlockWeights& w, const Tensor& x, int H, int W, int num_heads,
                                EncoderWorkspace& work, Precision p) {
    const int64_t N = static_cast<int64_t>(H) * W, C = x.dim(1), hd = C / num_heads, C3 = 3 * C;
    if (work.qkv.shape() != Shape{N, C3}) work.qkv = Tensor::empty({N, C3});
    if (work.out.shape() != Shape{N, C}) work.out = Tensor::empty({N, C});
    const Tensor& qkv = work.qkv;  // (N, 3C): [q | k | v], heads contiguous inside each
    w.qkv.mm.forward(x.data(), N, work.qkv.data(), ops::Epilogue::None, -1, -1, p);
    const float* qkv_d = qkv.data();
    const float* pad_row = w.qkv.b.data();  // q/k/v of a zero padding token
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

    const int ws = w.window_size;
    const bool global = ws == 0;
    const int64_t wh = global ? H : ws, ww = global ? W : ws;  // window grid (query grid = key grid)
    const int64_t nwy = global ? 1 : (H + ws - 1) / ws, nwx = global ? 1 : (W + ws - 1) / ws;
    const int64_t T = wh * ww;
    // Queries per task: a task packs its head's keys and values unless the thread's previous
    // task had the same head, so a task must be long enough to amortise that (a global head
    // is 16 tasks, a window's head one).
    const int64_t QT = 256;
    const int64_t nqt = (T + QT - 1) / QT;
    const int64_t tasks = nwy * nwx * num_heads * nqt;

    float* out_d = work.out.data();
    ops::RelPosAttentionParams params;
    params.head_dim = hd;
    params.grid_h = wh;
    params.grid_w = ww;
    params.rel_pos_h = w.rel_pos_h.data();
    params.rel_pos_w = w.rel_pos_w.data();
    params.scale = scale;
    // bf16 and int8 encoders: attention's products in bf16 where the CPU has them and they are
    // faster there (ops/attention_kernels.h); fp32 stays fp32.
    params.bf16_products = p != Precision::F32 && ops::bf16_attention_preferred();
#pragma omp parallel
    {
        ops::RelPosAttention attention(params);
        std::vector<const float*> k_rows(T), v_rows(T), q_rows(QT);
        std::vector<float*> out_rows(QT);
        std::vector<int64_t> q_tok(QT);
        int64_t loaded = -1;  // (window, head) packed in `attention`
#pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t qt = task % nqt, h = (task / nqt) % num_heads, win = task / (nqt * num_heads);
            const int64_t wy = win / nwx, wx = win % nwx;
            // Global row of window token t, or -1 for a padding token.
            auto row_of = [&](int64_t t) -> int64_t {
                int64_t gy = wy * wh + t / ww, gx = wx * ww + t % ww;
                return (gy < H && gx < W) ? gy * W + gx : -1;
            };
            // Queries of this task that lie inside the image.
            int64_t nq = 0;
            for (int64_t t = qt * QT; t < std::min(T, (qt + 1) * QT); ++t) {
                const int64_t r = row_of(t);
                if (r < 0) continue;
                q_tok[nq] = t;
                q_rows[nq] = qkv_d + r * C3 + h * hd;
                out_rows[nq] = out_d + r * C + h * hd;
                ++nq;
            }
            if (nq == 0) continue;
            if (loaded != task / nqt) {
                for (int64_t t = 0; t < T; ++t) {
                    const int64_t r = row_of(t);
                    const float* src = r >= 0 ? qkv_d + r * C3 : pad_row;
                    k_rows[t] = src + C + h * hd;
                    v_rows[t] = src + 2 * C + h * hd;
                }
                attention.set_keys_values(k_rows.data(), v_rows.data());
                loaded = task / nqt;
            }
            attention.attend(nq, q_rows.data(), q_tok.data(), out_rows.data());
        }
    }
    return work.out;
}

}  // namespace sam
