#include "modeling/mask_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/ops.h"
#include "sam/error.h"

namespace sam {

namespace {

constexpr float kLayerNorm2dEps = 1e-6f;
constexpr int64_t kPromptsPerChunk = 8;  // bounds the transformer's memory: ~22 MB per vit prompt

MlpWeights load_mlp(const WeightLoader& w, int64_t in, int64_t hidden, int64_t out, int depth) {
    MlpWeights m;
    for (int i = 0; i < depth; ++i)
        m.layers.push_back(w["layers." + std::to_string(i)].linear(i == depth - 1 ? out : hidden, i == 0 ? in : hidden));
    return m;
}

Tensor mlp_forward(const MlpWeights& m, Tensor x) {
    for (size_t i = 0; i < m.layers.size(); ++i)
        x = linear(x, m.layers[i], i + 1 < m.layers.size() ? ops::Epilogue::Relu : ops::Epilogue::None);
    return x;
}

// ConvTranspose2d(in, out, 2, stride 2) weight (in, out, 2, 2) + bias (out) as a Linear whose
// output row for an input pixel holds its 4 output pixels (ky, kx) of `out` channels each.
Linear load_conv_transpose_2x2(const WeightLoader& w, int64_t in, int64_t out) {
    Tensor k = w.tensor("weight", {in, out, 2, 2});
    Tensor b = w.tensor("bias", {out});
    Tensor lw = Tensor::empty({4 * out, in}), lb = Tensor::empty({4 * out});
    for (int64_t kk = 0; kk < 4; ++kk)
        for (int64_t o = 0; o < out; ++o) {
            lb[kk * out + o] = b[o];
            for (int64_t i = 0; i < in; ++i) lw[(kk * out + o) * in + i] = k[(i * out + o) * 4 + kk];
        }
    return make_linear(lw, lb);
}

// Upscales one prompt's keys (G*G, C) and dots them with the selected hypernetwork outputs.
//   hyper (M, C/8); writes M masks of (4G, 4G) logits to `out`.
void upscale_and_predict(const MaskDecoderWeights& w, const float* keys, int64_t G, const float* hyper, int64_t M,
                         float* out) {
    const int64_t C = w.upscale1.w.dim(1), C4 = w.upscale2.w.dim(1), C8 = w.upscale2.w.dim(0) / 4, S = 4 * G;
    // ConvTranspose 2x2 s2 -> LayerNorm2d -> GELU: (G*G * 4, C/4), one row per 2G x 2G pixel.
    Tensor u1 = ops::linear(Tensor::view({G * G, C}, const_cast<float*>(keys), nullptr), w.upscale1.w, w.upscale1.b);
    u1 = u1.reshape({G * G * 4, C4});
    layer_norm_inplace(u1, w.upscale_norm, kLayerNorm2dEps);
    ops::gelu_inplace(u1.data(), u1.numel());
    // ConvTranspose 2x2 s2 -> GELU: (G*G * 4, 4 * C/8), four 4G x 4G pixels per row.
    Tensor u2 = linear(u1, w.upscale2, ops::Epilogue::Gelu);
    // Mask logits: hypernetwork vector . upscaled features, scattered to (4G, 4G).
#pragma omp parallel for
    for (int64_t r1 = 0; r1 < G * G * 4; ++r1) {
        const int64_t r = r1 / 4, y = r / G, x = r % G, ky1 = (r1 % 4) / 2, kx1 = r1 % 2;
        for (int64_t k2 = 0; k2 < 4; ++k2) {
            const float* f = u2.data() + (r1 * 4 + k2) * C8;
            const int64_t Y = 4 * y + 2 * ky1 + k2 / 2, X = 4 * x + 2 * kx1 + k2 % 2;
            for (int64_t m = 0; m < M; ++m) {
                const float* hv = hyper + m * C8;
                float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                for (int64_t c = 0; c < C8; ++c) dot += hv[c] * f[c];
                out[m * S * S + Y * S + X] = dot;
            }
        }
    }
}

}  // namespace

MaskDecoderWeights load_mask_decoder(const WeightLoader& w, const MaskDecoderConfig& cfg) {
    const int64_t C = cfg.transformer_dim, n = cfg.num_multimask_outputs + 1;
    MaskDecoderWeights d;
    d.num_mask_tokens = static_cast<int>(n);
    d.transformer = load_two_way_transformer(w["transformer"], cfg);
    d.iou_token = w["iou_token"].tensor("weight", {1, C});
    d.mask_tokens = w["mask_tokens"].tensor("weight", {n, C});
    d.upscale1 = load_conv_transpose_2x2(w["output_upscaling.0"], C, C / 4);
    d.upscale_norm = w["output_upscaling.1"].layer_norm(C / 4);
    d.upscale2 = load_conv_transpose_2x2(w["output_upscaling.3"], C / 4, C / 8);
    for (int64_t i = 0; i < n; ++i)
        d.hypernetworks.push_back(load_mlp(w["output_hypernetworks_mlps." + std::to_string(i)], C, C, C / 8, 3));
    d.iou_head = load_mlp(w["iou_prediction_head"], C, cfg.iou_head_hidden_dim, n, cfg.iou_head_depth);
    return d;
}

Tensor decoder_src(const Tensor& embedding, const Tensor& dense, const Tensor& image_pe) {
    const int64_t C = image_pe.dim(1), HW = image_pe.dim(0);
    if (embedding.ndim() != 4 || embedding.dim(0) != 1 || embedding.dim(1) != C ||
        embedding.dim(2) * embedding.dim(3) != HW)
        throw InputError("image embedding", "shape " + shape_str(embedding.shape()) + ", expected " +
                                                shape_str({1, C, 64, 64}));
    if (dense.numel() != C && dense.numel() != HW * C)
        throw InputError("dense prompt", "shape " + shape_str(dense.shape()) + ", expected " + shape_str({HW, C}) +
                                             " or " + shape_str({1, C}));
    const bool broadcast = dense.numel() == C;
    Tensor src = Tensor::empty({HW, C});
    const float* e = embedding.data();
    const float* d = dense.data();
#pragma omp parallel for
    for (int64_t p = 0; p < HW; ++p)
        for (int64_t c = 0; c < C; ++c) src[p * C + c] = e[c * HW + p] + (broadcast ? d[c] : d[p * C + c]);
    return src;
}

TransformerImageState prepare_decoder_image(const MaskDecoderWeights& w, const Tensor& embedding, const Tensor& dense,
                                            const Tensor& image_pe) {
    return prepare_transformer_image(w.transformer, decoder_src(embedding, dense, image_pe), image_pe);
}

DecoderOutput mask_decoder_forward(const MaskDecoderWeights& w, const std::vector<const TransformerImageState*>& states,
                                   const Tensor& image_pe, const Tensor& sparse, bool multimask_output) {
    const int64_t B = sparse.dim(0), Ns = sparse.dim(1), C = sparse.dim(2), n = w.num_mask_tokens;
    const int64_t T = 1 + n + Ns, HW = image_pe.dim(0), G = static_cast<int64_t>(std::lround(std::sqrt(HW)));
    const int64_t S = 4 * G, C8 = w.upscale2.w.dim(0) / 4;
    const int64_t M = multimask_output ? n - 1 : 1, first = multimask_output ? 1 : 0;
    if (states.size() != 1 && static_cast<int64_t>(states.size()) != B)
        throw Error("mask decoder: " + std::to_string(states.size()) + " image states for " + std::to_string(B) +
                    " prompts");
    DecoderOutput out{Tensor::empty({B, M, S, S}), Tensor::empty({B, M})};

    for (int64_t b0 = 0; b0 < B; b0 += kPromptsPerChunk) {
        const int64_t nb = std::min(kPromptsPerChunk, B - b0);
        // Tokens: [iou_token, mask_tokens, sparse prompts], (nb, T, C).
        Tensor tokens = Tensor::empty({nb, T, C});
        for (int64_t b = 0; b < nb; ++b) {
            float* t = tokens.data() + b * T * C;
            std::memcpy(t, w.iou_token.data(), static_cast<size_t>(C) * sizeof(float));
            std::memcpy(t + C, w.mask_tokens.data(), static_cast<size_t>(n * C) * sizeof(float));
            std::memcpy(t + (1 + n) * C, sparse.data() + (b0 + b) * Ns * C, static_cast<size_t>(Ns * C) * sizeof(float));
        }
        std::vector<const TransformerImageState*> st =
            states.size() == 1 ? states
                               : std::vector<const TransformerImageState*>(states.begin() + b0, states.begin() + b0 + nb);
        // Run the transformer
        Tensor hs, keys;
        two_way_transformer_forward(w.transformer, st, image_pe, tokens, hs, keys);

        // IoU head on the iou token, hypernetwork MLPs on the mask tokens.
        Tensor iou_tok = Tensor::empty({nb, C});
        for (int64_t b = 0; b < nb; ++b)
            std::memcpy(iou_tok.data() + b * C, hs.data() + b * T * C, static_cast<size_t>(C) * sizeof(float));
        Tensor iou = mlp_forward(w.iou_head, iou_tok);  // (nb, n)
        Tensor hyper = Tensor::empty({nb, M, C8});
        for (int64_t m = 0; m < M; ++m) {
            Tensor tok = Tensor::empty({nb, C});
            for (int64_t b = 0; b < nb; ++b)
                std::memcpy(tok.data() + b * C, hs.data() + (b * T + 1 + first + m) * C,
                            static_cast<size_t>(C) * sizeof(float));
            Tensor h = mlp_forward(w.hypernetworks[static_cast<size_t>(first + m)], tok);  // (nb, C/8)
            for (int64_t b = 0; b < nb; ++b)
                std::memcpy(hyper.data() + (b * M + m) * C8, h.data() + b * C8, static_cast<size_t>(C8) * sizeof(float));
        }
        // Upscale the image features and predict masks, one prompt at a time (bounded memory).
        for (int64_t b = 0; b < nb; ++b) {
            for (int64_t m = 0; m < M; ++m) out.iou[(b0 + b) * M + m] = iou[b * n + first + m];
            upscale_and_predict(w, keys.data() + b * HW * C, G, hyper.data() + b * M * C8, M,
                                out.masks.data() + (b0 + b) * M * S * S);
        }
    }
    return out;
}

}  // namespace sam
