#include "modeling/transformer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/ops.h"
#include "sam/error.h"

namespace sam {

namespace {

constexpr float kLayerNormEps = 1e-5f;  // nn.LayerNorm default

AttentionWeights load_attention(const WeightLoader& w, int64_t C, int64_t D, int heads) {
    AttentionWeights a;
    a.q_proj = w["q_proj"].linear(D, C);
    a.k_proj = w["k_proj"].linear(D, C);
    a.v_proj = w["v_proj"].linear(D, C);
    a.out_proj = w["out_proj"].linear(C, D);
    a.num_heads = heads;
    return a;
}

// Per-prompt pointers to projected rows, for attention over a batch.
struct BatchedAttention {
    std::vector<const float*> q, k, v;  // (Tq, D), (Tk, D), (Tk, D) per prompt
    std::vector<float*> out;            // (Tq, D) per prompt
    int64_t Tq = 0, Tk = 0, D = 0;
    int heads = 0;
};

// One head for query rows [r0, r1): softmax(q k^T / sqrt(hd)) v. `s` is scratch of Tk floats.
void attend_rows(const float* q, const float* k, const float* v, float* out, int64_t r0, int64_t r1, int64_t Tk,
                 int64_t D, int64_t h, int64_t hd, float* s) {
    const float scale = std::sqrt(static_cast<float>(hd));
    for (int64_t i = r0; i < r1; ++i) {
        const float* qi = q + i * D + h * hd;
        float mx = -INFINITY;
        for (int64_t j = 0; j < Tk; ++j) {
            const float* kj = k + j * D + h * hd;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int64_t d = 0; d < hd; ++d) dot += qi[d] * kj[d];
            s[j] = dot / scale;
            mx = std::max(mx, s[j]);
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < Tk; ++j) {
            s[j] = std::exp(s[j] - mx);
            sum += s[j];
        }
        const float inv = 1.0f / sum;
        float* o = out + i * D + h * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] = 0.0f;
        for (int64_t j = 0; j < Tk; ++j) {
            const float p = s[j] * inv;
            const float* vj = v + j * D + h * hd;
#pragma omp simd
            for (int64_t d = 0; d < hd; ++d) o[d] += p * vj[d];
        }
    }
}

// Multi-head attention for every prompt of a batch, threaded over (prompt, head, block of query rows).
void attention_batched(const BatchedAttention& a) {
    const int64_t B = static_cast<int64_t>(a.q.size()), H = a.heads, hd = a.D / H;
    const int64_t rows_per_task = 64, blocks = (a.Tq + rows_per_task - 1) / rows_per_task;
    const int64_t tasks = B * H * blocks;
#pragma omp parallel
    {
        std::vector<float> s(static_cast<size_t>(a.Tk));
#pragma omp for schedule(dynamic)
        for (int64_t t = 0; t < tasks; ++t) {
            const int64_t b = t / (H * blocks), h = (t / blocks) % H, blk = t % blocks;
            const int64_t r0 = blk * rows_per_task, r1 = std::min(a.Tq, r0 + rows_per_task);
            attend_rows(a.q[b], a.k[b], a.v[b], a.out[b], r0, r1, a.Tk, a.D, h, hd, s.data());
        }
    }
}

// x (B*rows, C) + pe (rows, C) broadcast over the batch.
Tensor add_broadcast(const Tensor& x, const Tensor& pe) {
    Tensor y = Tensor::empty(x.shape());
    const int64_t n = pe.numel(), B = x.numel() / n;
    const float* xd = x.data();
    const float* pd = pe.data();
    float* yd = y.data();
#pragma omp parallel for
    for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < n; ++i) yd[b * n + i] = xd[b * n + i] + pd[i];
    return y;
}

Tensor add(const Tensor& x, const Tensor& y) {
    Tensor z = x.clone();
    ops::add_inplace(z.data(), y.data(), z.numel());
    return z;
}

// Pointers to rows [b * stride, ...) of t for each of B prompts (stride 0: shared).
std::vector<const float*> per_prompt(const Tensor& t, int64_t B, int64_t stride) {
    std::vector<const float*> p(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) p[static_cast<size_t>(b)] = t.data() + b * stride;
    return p;
}
std::vector<float*> per_prompt_out(Tensor& t, int64_t B, int64_t stride) {
    std::vector<float*> p(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) p[static_cast<size_t>(b)] = t.data() + b * stride;
    return p;
}

// The image-side inputs of a block, per prompt: keys (HW, C) and their projections (HW, D).
struct ImageSide {
    std::vector<const float*> keys, t2i_k, t2i_v, i2t_q;
};

// Token attention over the batch: out_proj(attn(q_in, k_in, v_in)) with q, k, v the tokens of
// each prompt. All inputs (B*T, C); returns (B*T, C).
Tensor token_self_attention(const AttentionWeights& w, const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                            int64_t B, int64_t T) {
    Tensor q = linear(q_in, w.q_proj), k = linear(k_in, w.k_proj), v = linear(v_in, w.v_proj);
    const int64_t D = w.internal_dim();
    Tensor o = Tensor::empty({B * T, D});
    attention_batched({per_prompt(q, B, T * D), per_prompt(k, B, T * D), per_prompt(v, B, T * D),
                       per_prompt_out(o, B, T * D), T, T, D, w.num_heads});
    return linear(o, w.out_proj);
}

// Tokens attending to the image: queries (B*T, C) already with PE, k and v given per prompt.
Tensor token_to_image_attention(const AttentionWeights& w, const Tensor& q_in, const std::vector<const float*>& k,
                                const std::vector<const float*>& v, int64_t B, int64_t T, int64_t HW) {
    Tensor q = linear(q_in, w.q_proj);
    const int64_t D = w.internal_dim();
    Tensor o = Tensor::empty({B * T, D});
    attention_batched({per_prompt(q, B, T * D), k, v, per_prompt_out(o, B, T * D), T, HW, D, w.num_heads});
    return linear(o, w.out_proj);
}

// One two-way block; updates `queries` (B*T, C) and returns the new keys (B*HW, C).
Tensor block_forward(const TwoWayBlockWeights& w, Tensor& queries, const Tensor& qpe, const ImageSide& side, int64_t B,
                     int64_t T, int64_t HW) {
    const int64_t C = queries.dim(-1);
    // Self attention block (the first layer skips the PE and the residual)
    if (w.skip_first_layer_pe) {
        queries = token_self_attention(w.self_attn, queries, queries, queries, B, T);
    } else {
        Tensor q = add(queries, qpe);
        Tensor a = token_self_attention(w.self_attn, q, q, queries, B, T);
        ops::add_inplace(queries.data(), a.data(), queries.numel());
    }
    layer_norm_inplace(queries, w.norm1, kLayerNormEps);

    // Cross attention block, tokens attending to image embedding
    Tensor a = token_to_image_attention(w.cross_t2i, add(queries, qpe), side.t2i_k, side.t2i_v, B, T, HW);
    ops::add_inplace(queries.data(), a.data(), queries.numel());
    layer_norm_inplace(queries, w.norm2, kLayerNormEps);

    // MLP block
    Tensor h = linear(queries, w.mlp_lin1, ops::Epilogue::Relu);
    Tensor m = linear(h, w.mlp_lin2);
    ops::add_inplace(queries.data(), m.data(), queries.numel());
    layer_norm_inplace(queries, w.norm3, kLayerNormEps);

    // Cross attention block, image embedding attending to tokens
    const AttentionWeights& x = w.cross_i2t;
    const int64_t D = x.internal_dim();
    Tensor kt = linear(add(queries, qpe), x.k_proj), vt = linear(queries, x.v_proj);  // (B*T, D)
    Tensor o = Tensor::empty({B * HW, D});
    attention_batched({side.i2t_q, per_prompt(kt, B, T * D), per_prompt(vt, B, T * D), per_prompt_out(o, B, HW * D), HW, T,
                       D, x.num_heads});
    Tensor keys = linear(o, x.out_proj);  // (B*HW, C)
#pragma omp parallel for
    for (int64_t b = 0; b < B; ++b) {
        float* dst = keys.data() + b * HW * C;
        const float* src = side.keys[static_cast<size_t>(b)];
        for (int64_t i = 0; i < HW * C; ++i) dst[i] += src[i];
    }
    layer_norm_inplace(keys, w.norm4, kLayerNormEps);
    return keys;
}

}  // namespace

TwoWayTransformerWeights load_two_way_transformer(const WeightLoader& w, const MaskDecoderConfig& cfg) {
    const int64_t C = cfg.transformer_dim, Dc = C / cfg.attention_downsample;
    TwoWayTransformerWeights t;
    for (int i = 0; i < cfg.depth; ++i) {
        WeightLoader l = w["layers." + std::to_string(i)];
        TwoWayBlockWeights b;
        b.self_attn = load_attention(l["self_attn"], C, C, cfg.num_heads);
        b.norm1 = l["norm1"].layer_norm(C);
        b.cross_t2i = load_attention(l["cross_attn_token_to_image"], C, Dc, cfg.num_heads);
        b.norm2 = l["norm2"].layer_norm(C);
        b.mlp_lin1 = l["mlp.lin1"].linear(cfg.mlp_dim, C);
        b.mlp_lin2 = l["mlp.lin2"].linear(C, cfg.mlp_dim);
        b.norm3 = l["norm3"].layer_norm(C);
        b.norm4 = l["norm4"].layer_norm(C);
        b.cross_i2t = load_attention(l["cross_attn_image_to_token"], C, Dc, cfg.num_heads);
        b.skip_first_layer_pe = (i == 0);
        t.layers.push_back(std::move(b));
    }
    t.final_t2i = load_attention(w["final_attn_token_to_image"], C, Dc, cfg.num_heads);
    t.norm_final = w["norm_final_attn"].layer_norm(C);
    return t;
}

TransformerImageState prepare_transformer_image(const TwoWayTransformerWeights& w, Tensor src, const Tensor& key_pe) {
    if (w.layers.empty()) throw Error("two-way transformer: no layers");
    const TwoWayBlockWeights& l0 = w.layers.front();
    TransformerImageState s;
    Tensor kp = add(src, key_pe);
    s.t2i_k = linear(kp, l0.cross_t2i.k_proj);
    s.i2t_q = linear(kp, l0.cross_i2t.q_proj);
    s.t2i_v = linear(src, l0.cross_t2i.v_proj);
    s.keys = std::move(src);
    return s;
}

void two_way_transformer_forward(const TwoWayTransformerWeights& w, const std::vector<const TransformerImageState*>& states,
                                 const Tensor& key_pe, const Tensor& tokens, Tensor& queries, Tensor& keys) {
    const int64_t B = tokens.dim(0), T = tokens.dim(1), C = tokens.dim(2), HW = key_pe.dim(0);
    if (states.size() != 1 && static_cast<int64_t>(states.size()) != B)
        throw Error("two-way transformer: " + std::to_string(states.size()) + " image states for " + std::to_string(B) +
                    " prompts");
    Tensor qpe = tokens.reshape({B * T, C});
    queries = qpe.clone();

    // Layer 0 reads the precomputed image state(s).
    ImageSide side;
    for (int64_t b = 0; b < B; ++b) {
        const TransformerImageState* s = states[states.size() == 1 ? 0 : static_cast<size_t>(b)];
        side.keys.push_back(s->keys.data());
        side.t2i_k.push_back(s->t2i_k.data());
        side.t2i_v.push_back(s->t2i_v.data());
        side.i2t_q.push_back(s->i2t_q.data());
    }
    keys = block_forward(w.layers[0], queries, qpe, side, B, T, HW);

    // Later layers project the updated keys of every prompt in one GEMM each.
    for (size_t i = 1; i < w.layers.size(); ++i) {
        const TwoWayBlockWeights& l = w.layers[i];
        const int64_t D = l.cross_t2i.internal_dim();
        Tensor t2i_k, t2i_v, i2t_q;
        {
            Tensor kp = add_broadcast(keys, key_pe);
            t2i_k = linear(kp, l.cross_t2i.k_proj);
            i2t_q = linear(kp, l.cross_i2t.q_proj);
        }
        t2i_v = linear(keys, l.cross_t2i.v_proj);
        ImageSide si{per_prompt(keys, B, HW * C), per_prompt(t2i_k, B, HW * D), per_prompt(t2i_v, B, HW * D),
                     per_prompt(i2t_q, B, HW * D)};
        keys = block_forward(l, queries, qpe, si, B, T, HW);
    }

    // Final attention layer from the points to the image
    const int64_t D = w.final_t2i.internal_dim();
    Tensor k, v;
    {
        Tensor kp = add_broadcast(keys, key_pe);
        k = linear(kp, w.final_t2i.k_proj);
    }
    v = linear(keys, w.final_t2i.v_proj);
    Tensor a = token_to_image_attention(w.final_t2i, add(queries, qpe), per_prompt(k, B, HW * D),
                                        per_prompt(v, B, HW * D), B, T, HW);
    ops::add_inplace(queries.data(), a.data(), queries.numel());
    layer_norm_inplace(queries, w.norm_final, kLayerNormEps);
    queries = queries.reshape({B, T, C});
    keys = keys.reshape({B, HW, C});
}

}  // namespace sam
