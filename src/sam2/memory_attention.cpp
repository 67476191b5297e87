// SAM 2's memory attention (sam2/modeling/memory_attention.py, RoPEAttention in
// sam/transformer.py, compute_axial_cis / apply_rotary_enc in position_encoding.py): layers of
// self-attention over the current frame and cross-attention to the memory bank, both with 2-D
// axial rotary position encoding; the object-pointer tokens at the end of the memory are not
// rotated.
//
// Attention is softmax(q k^T / sqrt(d)) v through the encoders' fused kernel (key blocks with an
// online softmax) without relative-position tables, so that no score row of a full bank (4096
// queries x 7 * 4096 + 64 keys) is ever formed; the form written out with GEMMs over query
// blocks is kept as its oracle.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/attention_kernels.h"
#include "ops/ops.h"
#include "ops/vector_math.h"
#include "sam/error.h"
#include "sam2/video_model.h"

namespace sam {

namespace {

constexpr float kLayerNormEps = 1e-5f;  // nn.LayerNorm's default
constexpr int64_t kQueryBlock = 256;

// Rotates consecutive pairs (2i, 2i + 1) of each head's slice of rows [0, n) of x (n, D) by the
// table entry of position (row % table rows).
void apply_rope(Tensor& x, int64_t n, int heads, const Tensor& table) {
    const int64_t D = x.dim(1), hd = D / heads, half = hd / 2, P = table.dim(0);
#pragma omp parallel for
    for (int64_t r = 0; r < n; ++r) {
        const float* t = table.data() + (r % P) * half * 2;
        for (int h = 0; h < heads; ++h) {
            float* v = x.data() + r * D + h * hd;
            for (int64_t i = 0; i < half; ++i) {
                const float a = v[2 * i], b = v[2 * i + 1], c = t[2 * i], s = t[2 * i + 1];
                v[2 * i] = a * c - b * s;
                v[2 * i + 1] = a * s + b * c;
            }
        }
    }
}

// In place, numerically stable, vectorised (a full bank's scores are ~30000 per row).
SAM_VECTOR_CLONES
void softmax_row(float* v, int64_t n) { ops::softmax_inplace(v, n); }

// softmax(q k^T * scale) v per head: q (Nq, D), k, v (Nk, D) -> (Nq, D), written out with GEMMs
// over blocks of query rows. The oracle of the fused path below.
Tensor attention_gemm(const Tensor& q, const Tensor& k, const Tensor& v, int heads) {
    const int64_t Nq = q.dim(0), Nk = k.dim(0), D = q.dim(1), hd = D / heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    Tensor out = Tensor::empty({Nq, D});
    std::vector<float> scores(static_cast<size_t>(std::min(Nq, kQueryBlock) * Nk));
    for (int h = 0; h < heads; ++h)
        for (int64_t q0 = 0; q0 < Nq; q0 += kQueryBlock) {
            const int64_t m = std::min(kQueryBlock, Nq - q0);
            ops::gemm(m, Nk, hd, q.data() + q0 * D + h * hd, D, k.data() + h * hd, D, true, scores.data(), Nk, scale);
#pragma omp parallel for
            for (int64_t r = 0; r < m; ++r) softmax_row(scores.data() + r * Nk, Nk);
            ops::gemm(m, hd, Nk, scores.data(), Nk, v.data() + h * hd, D, false, out.data() + q0 * D + h * hd, D);
        }
    return out;
}

// The same attention through the encoders' fused kernel (ops/attention_kernels.h: key blocks
// with an online softmax, so no score row of a full memory bank, ~29k keys, goes through memory)
// without relative-position tables (the keys a 1 x Nk grid); tasks of (head, 256 queries) over
// the threads, each thread with its own packed keys and values.
Tensor attention_fused(const Tensor& q, const Tensor& k, const Tensor& v, int heads) {
    const int64_t Nq = q.dim(0), Nk = k.dim(0), D = q.dim(1), hd = D / heads;
    const ops::RelPosAttentionParams params = ops::RelPosAttentionParams::plain(hd, 1, Nk);  // no relative terms
    constexpr int64_t QT = 256;
    const int64_t nqt = (Nq + QT - 1) / QT, tasks = heads * nqt;
    Tensor out = Tensor::empty({Nq, D});
#pragma omp parallel
    {
        ops::RelPosAttention kernel(params);
        std::vector<const float*> k_rows(static_cast<size_t>(Nk)), v_rows(static_cast<size_t>(Nk)), q_rows(QT);
        std::vector<float*> out_rows(QT);
        int64_t loaded = -1;
#pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t h = task / nqt, q0 = (task % nqt) * QT, nq = std::min(QT, Nq - q0);
            if (loaded != h) {
                for (int64_t t = 0; t < Nk; ++t) {
                    k_rows[static_cast<size_t>(t)] = k.data() + t * D + h * hd;
                    v_rows[static_cast<size_t>(t)] = v.data() + t * D + h * hd;
                }
                kernel.set_keys_values(k_rows.data(), v_rows.data());
                loaded = h;
            }
            for (int64_t i = 0; i < nq; ++i) {
                q_rows[static_cast<size_t>(i)] = q.data() + (q0 + i) * D + h * hd;
                out_rows[static_cast<size_t>(i)] = out.data() + (q0 + i) * D + h * hd;
            }
            kernel.attend(nq, q_rows.data(), nullptr, out_rows.data());  // no tables: no query positions
        }
    }
    return out;
}

// RoPEAttention.forward: q from `qx` (Nq, C), k from `kx`, v from `vx` (Nk, kv_in); the first
// Nk - exclude keys rotated with the query grid's table repeated.
Tensor rope_attention(const RoPEAttentionWeights& w, const Tensor& qx, const Tensor& kx, const Tensor& vx,
                      int64_t exclude, const Tensor& table) {
    Tensor q = linear(qx, w.q), k = linear(kx, w.k), v = linear(vx, w.v);
    const int64_t Nq = q.dim(0), Nk = k.dim(0), rot = Nk - exclude;
    if (rot % Nq != 0)
        throw Error("SAM 2 memory attention: " + std::to_string(rot) + " rotated keys are not a multiple of " +
                    std::to_string(Nq) + " queries");
    apply_rope(q, Nq, w.num_heads, table);
    apply_rope(k, rot, w.num_heads, table);
    Tensor o = memory_attention_core(q, k, v, w.num_heads);
    return linear(o, w.out);
}

Tensor normed(const Tensor& x, const LayerNorm& n) {
    Tensor y = x.clone();
    layer_norm_inplace(y, n, kLayerNormEps);
    return y;
}

}  // namespace

Tensor memory_attention_core(const Tensor& q, const Tensor& k, const Tensor& v, int heads, bool fused) {
    if (k.dim(0) != v.dim(0) || q.dim(1) != k.dim(1) || k.dim(1) != v.dim(1) || q.dim(1) % heads != 0)
        throw Error("SAM 2 memory attention: q " + shape_str(q.shape()) + ", k " + shape_str(k.shape()) + ", v " +
                    shape_str(v.shape()) + ", " + std::to_string(heads) + " heads");
    if (k.dim(0) == 0) throw Error("SAM 2 memory attention: no keys");
    return fused ? attention_fused(q, k, v, heads) : attention_gemm(q, k, v, heads);
}

Tensor axial_rope_table(int64_t n, int64_t hd, float theta) {
    const int64_t side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
    if (side * side != n) throw Error("SAM 2 memory attention: " + std::to_string(n) + " tokens are not a square grid");
    const int64_t quarter = hd / 4;
    std::vector<float> freqs(static_cast<size_t>(quarter));
    for (int64_t i = 0; i < quarter; ++i)
        freqs[static_cast<size_t>(i)] =
            1.0f / std::pow(theta, static_cast<float>(4 * i) / static_cast<float>(hd));
    Tensor t = Tensor::empty({n, 2 * quarter * 2});  // (n, hd/2 pairs) x (cos, sin)
    for (int64_t p = 0; p < n; ++p) {
        const float tx = static_cast<float>(p % side), ty = static_cast<float>(p / side);
        float* row = t.data() + p * quarter * 4;
        for (int64_t i = 0; i < quarter; ++i) {
            const float ax = tx * freqs[static_cast<size_t>(i)], ay = ty * freqs[static_cast<size_t>(i)];
            row[2 * i] = std::cos(ax);
            row[2 * i + 1] = std::sin(ax);
            row[2 * (quarter + i)] = std::cos(ay);
            row[2 * (quarter + i) + 1] = std::sin(ay);
        }
    }
    return t;
}

Tensor sine_pe_1d(const std::vector<float>& pos, int64_t dim) {
    const int64_t half = dim / 2;
    Tensor pe = Tensor::empty({static_cast<int64_t>(pos.size()), dim});
    for (size_t r = 0; r < pos.size(); ++r)
        for (int64_t i = 0; i < half; ++i) {
            const float e = static_cast<float>(2 * (i / 2)) / static_cast<float>(half);
            const float x = pos[r] / std::pow(10000.0f, e);
            pe[static_cast<int64_t>(r) * dim + i] = std::sin(x);
            pe[static_cast<int64_t>(r) * dim + half + i] = std::cos(x);
        }
    return pe;
}

Tensor memory_attention_forward(const MemoryAttentionWeights& w, const Sam2VideoConfig& vc, const Tensor& curr,
                                const Tensor& curr_pos, const Tensor& memory, const Tensor& memory_pos,
                                int64_t num_obj_ptr_tokens) {
    const int64_t N = curr.dim(0), C = curr.dim(1);
    if (w.layers.empty()) throw Error("SAM 2 memory attention: no layers");
    const Tensor table = axial_rope_table(N, C / w.layers[0].self_attn.num_heads, vc.rope_theta);
    // pos_enc_at_input: output = curr + 0.1 * curr_pos
    Tensor x = Tensor::empty({N, C});
    for (int64_t i = 0; i < N * C; ++i) x[i] = curr[i] + 0.1f * curr_pos[i];
    // Cross-attention keys: memory + pos (pos_enc_at_cross_attn_keys); values: memory.
    Tensor mem_k = memory.clone();
    ops::add_inplace(mem_k.data(), memory_pos.data(), mem_k.numel());
    for (const MemoryAttentionLayerWeights& l : w.layers) {
        // Self-attention (no position added: pos_enc_at_attn is off).
        Tensor t = normed(x, l.norm1);
        Tensor sa = rope_attention(l.self_attn, t, t, t, 0, table);
        ops::add_inplace(x.data(), sa.data(), x.numel());
        // Cross-attention to the memory (queries without position).
        t = normed(x, l.norm2);
        Tensor ca = rope_attention(l.cross_attn, t, mem_k, memory, num_obj_ptr_tokens, table);
        ops::add_inplace(x.data(), ca.data(), x.numel());
        // MLP with ReLU.
        t = normed(x, l.norm3);
        Tensor hdn = linear(t, l.linear1, ops::Epilogue::Relu);
        Tensor o = linear(hdn, l.linear2);
        ops::add_inplace(x.data(), o.data(), x.numel());
    }
    layer_norm_inplace(x, w.norm, kLayerNormEps);
    return x;
}

}  // namespace sam
