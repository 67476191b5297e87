#include "modeling/image_encoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/ops.h"
#include "sam/error.h"

namespace sam {

ImageEncoderWeights load_image_encoder(const WeightLoader& w, const ImageEncoderConfig& cfg) {
    const int64_t C = cfg.embed_dim, P = cfg.patch_size, G = cfg.img_size / cfg.patch_size;
    const int64_t hd = C / cfg.num_heads, out = cfg.out_chans;
    ImageEncoderWeights e;
    e.patch_embed = make_linear(w["patch_embed.proj"].tensor("weight", {C, 3, P, P}).reshape({C, 3 * P * P}),
                                w["patch_embed.proj"].tensor("bias", {C}));
    e.pos_embed = w.tensor("pos_embed", {1, G, G, C});
    for (int i = 0; i < cfg.depth; ++i) {
        WeightLoader b = w["blocks." + std::to_string(i)];
        EncoderBlockWeights blk;
        bool global = std::find(cfg.global_attn_indexes.begin(), cfg.global_attn_indexes.end(), i) !=
                      cfg.global_attn_indexes.end();
        blk.window_size = global ? 0 : cfg.window_size;
        const int64_t rel = 2 * (global ? G : cfg.window_size) - 1;
        blk.norm1 = b["norm1"].layer_norm(C);
        blk.norm2 = b["norm2"].layer_norm(C);
        blk.qkv = b["attn.qkv"].linear(3 * C, C);
        blk.proj = b["attn.proj"].linear(C, C);
        blk.rel_pos_h = b["attn"].tensor("rel_pos_h", {rel, hd});
        blk.rel_pos_w = b["attn"].tensor("rel_pos_w", {rel, hd});
        blk.lin1 = b["mlp.lin1"].linear(C * cfg.mlp_ratio, C);
        blk.lin2 = b["mlp.lin2"].linear(C, C * cfg.mlp_ratio);
        e.blocks.push_back(std::move(blk));
    }
    e.neck_conv1 = make_linear(w["neck.0"].tensor("weight", {out, C, 1, 1}).reshape({out, C}), Tensor());
    e.neck_norm1 = w["neck.1"].layer_norm(out);
    // Reorder the 3x3 conv to (out, ky, kx, in) so that im2col rows are contiguous channel runs.
    Tensor k3 = w["neck.2"].tensor("weight", {out, out, 3, 3});
    Tensor k3r = Tensor::empty({out, 9 * out});
    for (int64_t o = 0; o < out; ++o)
        for (int64_t i = 0; i < out; ++i)
            for (int64_t k = 0; k < 9; ++k) k3r[(o * 9 + k) * out + i] = k3[(o * out + i) * 9 + k];
    e.neck_conv2 = make_linear(k3r, Tensor());
    e.neck_norm2 = w["neck.3"].layer_norm(out);
    return e;
}

namespace {

// Patch embed: conv PxP stride P as im2col + GEMM. input (1, 3, S, S) -> (G*G, C) + pos_embed.
Tensor patch_embed(const ImageEncoderWeights& w, const ImageEncoderConfig& cfg, const Tensor& input) {
    const int64_t S = cfg.img_size, P = cfg.patch_size, G = S / P, K = 3 * P * P;
    Tensor cols = Tensor::empty({G * G, K});
    const float* in = input.data();
#pragma omp parallel for
    for (int64_t gy = 0; gy < G; ++gy)
        for (int64_t gx = 0; gx < G; ++gx) {
            float* row = cols.data() + (gy * G + gx) * K;
            for (int64_t c = 0; c < 3; ++c)
                for (int64_t ky = 0; ky < P; ++ky)
                    std::memcpy(row + (c * P + ky) * P, in + (c * S + gy * P + ky) * S + gx * P,
                                static_cast<size_t>(P) * sizeof(float));
        }
    Tensor x = linear(cols, w.patch_embed);
    ops::add_inplace(x.data(), w.pos_embed.data(), x.numel());
    return x;
}

// Neck: conv1x1 -> LayerNorm2d -> conv3x3 (pad 1) -> LayerNorm2d; (G*G, C) -> (1, out, G, G).
Tensor neck(const ImageEncoderWeights& w, const ImageEncoderConfig& cfg, const Tensor& x) {
    const int64_t G = cfg.img_size / cfg.patch_size, out = cfg.out_chans;
    const float eps = cfg.layer_norm_eps;
    Tensor y = linear(x, w.neck_conv1);
    layer_norm_inplace(y, w.neck_norm1, eps);
    Tensor cols({G * G, 9 * out});  // zeros: the padding
#pragma omp parallel for
    for (int64_t py = 0; py < G; ++py)
        for (int64_t px = 0; px < G; ++px)
            for (int64_t ky = 0; ky < 3; ++ky)
                for (int64_t kx = 0; kx < 3; ++kx) {
                    int64_t sy = py + ky - 1, sx = px + kx - 1;
                    if (sy < 0 || sy >= G || sx < 0 || sx >= G) continue;
                    std::memcpy(cols.data() + (py * G + px) * 9 * out + (ky * 3 + kx) * out,
                                y.data() + (sy * G + sx) * out, static_cast<size_t>(out) * sizeof(float));
                }
    Tensor z = linear(cols, w.neck_conv2);
    layer_norm_inplace(z, w.neck_norm2, eps);
    // Channels-last (G*G, out) -> (1, out, G, G).
    Tensor emb = Tensor::empty({1, out, G, G});
#pragma omp parallel for
    for (int64_t c = 0; c < out; ++c)
        for (int64_t p = 0; p < G * G; ++p) emb[c * G * G + p] = z[p * out + c];
    return emb;
}

}  // namespace

std::unique_ptr<EncoderBuffers> EncoderBufferPool::take() {
    std::lock_guard<std::mutex> lock(mutex_);
    return spare_ ? std::move(spare_) : std::make_unique<EncoderBuffers>();
}

void EncoderBufferPool::give_back(std::unique_ptr<EncoderBuffers> buffers) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!spare_) spare_ = std::move(buffers);
}

Tensor image_encoder_forward(const ImageEncoderWeights& w, const ImageEncoderConfig& cfg, const Tensor& input,
                             Precision precision, const ActivationObserver& observe, EncoderBuffers* buffers) {
    const int64_t S = cfg.img_size, G = S / cfg.patch_size, C = cfg.embed_dim;
    if (input.shape() != Shape{1, 3, S, S})
        throw InputError("image encoder input", "shape " + shape_str(input.shape()) + ", expected " +
                                                    shape_str({1, 3, S, S}));
    Tensor x = patch_embed(w, cfg, input);  // (G*G, C)
    if (observe) observe("patch_embed", x.reshape({1, G, G, C}));
    const float eps = cfg.layer_norm_eps;
    EncoderBuffers fresh;
    EncoderBuffers& buf = buffers ? *buffers : fresh;
    if (buf.h.shape() != Shape{G * G, C}) buf.h = Tensor::empty({G * G, C});
    if (buf.m.shape() != Shape{G * G, C * cfg.mlp_ratio}) buf.m = Tensor::empty({G * G, C * cfg.mlp_ratio});
    EncoderWorkspace& ws = buf.attention;
    Tensor &h = buf.h, &m = buf.m;
    for (size_t i = 0; i < w.blocks.size(); ++i) {
        const EncoderBlockWeights& b = w.blocks[i];
        // x = x + proj(attn(norm1(x)))
        layer_norm(x, h, b.norm1, eps);
        const Tensor& attn = encoder_attention(b, h, static_cast<int>(G), static_cast<int>(G), cfg.num_heads, ws, precision);
        linear_add(attn, b.proj, x, precision);
        // x = x + lin2(gelu(lin1(norm2(x))))
        layer_norm(x, h, b.norm2, eps);
        b.lin1.mm.forward(h.data(), G * G, m.data(), ops::Epilogue::Gelu, -1, -1, precision);
        linear_add(m, b.lin2, x, precision);
        if (observe) observe("block" + std::to_string(i), x.reshape({1, G, G, C}));
    }
    Tensor emb = neck(w, cfg, x);
    if (observe) observe("neck", emb);
    return emb;
}

}  // namespace sam
