// SAM 2 prompt embeddings and mask decoder (sam2/modeling/sam/prompt_encoder.py,
// mask_decoder.py). The two-way transformer is SAM's (modeling/transformer.h): the same
// computation, its MLP saved as mlp.layers.{0,1} instead of mlp.lin{1,2}.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/ops.h"
#include "sam/error.h"
#include "sam2/model.h"

namespace sam {

namespace {

constexpr float kLayerNorm2dEps = 1e-6f;

// x (rows, in) through an MLP: ReLU between layers, none after the last.
Tensor mlp_forward(const std::vector<Linear>& layers, const Tensor& x) {
    Tensor h = x;
    for (size_t i = 0; i < layers.size(); ++i)
        h = linear(h, layers[i], i + 1 < layers.size() ? ops::Epilogue::Relu : ops::Epilogue::None);
    return h;
}

}  // namespace

Tensor sam2_conv_transpose2(const Linear& l, const Tensor& bias, const Tensor& x, int64_t side, const float* skip) {
    const int64_t Cout = bias.numel(), S2 = 2 * side;
    Tensor y = linear(x, l);  // (side*side, 4 Cout)
    Tensor out = Tensor::empty({S2 * S2, Cout});
#pragma omp parallel for
    for (int64_t py = 0; py < side; ++py)
        for (int64_t px = 0; px < side; ++px)
            for (int64_t k = 0; k < 4; ++k) {
                const int64_t oy = 2 * py + k / 2, ox = 2 * px + k % 2;
                const float* s = y.data() + (py * side + px) * 4 * Cout + k * Cout;
                float* d = out.data() + (oy * S2 + ox) * Cout;
                const float* sk = skip + (oy * S2 + ox) * Cout;
                for (int64_t c = 0; c < Cout; ++c) d[c] = (s[c] + bias[c]) + sk[c];
            }
    return out;
}

float sam2_stability(const float* l, int64_t n, float delta) {
    int64_t inter = 0, uni = 0;
    for (int64_t i = 0; i < n; ++i) {
        inter += l[i] > delta;
        uni += l[i] > -delta;
    }
    return uni > 0 ? static_cast<float>(inter) / static_cast<float>(uni) : 1.0f;
}

Tensor sam2_sparse_embeddings(const PromptEncoderWeights& w, int64_t B, int64_t N, const float* points,
                              const int* labels) {
    const int64_t C = w.embed_dim, Ns = N + 1;
    Tensor out = Tensor::empty({B, Ns, C});
    const float size = static_cast<float>(w.input_size);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < Ns; ++i) {
            float* o = out.data() + (b * Ns + i) * C;
            // The padding point (0, 0) has label -1.
            const int label = i < N ? labels[b * N + i] : -1;
            if (label == -1) {
                std::memcpy(o, w.not_a_point_embed.data(), static_cast<size_t>(C) * sizeof(float));
                continue;
            }
            if (label < 0 || label > 3) throw InputError("point_labels", "label " + std::to_string(label) + " not in {-1, 0, 1}");
            // Shift to the pixel centre, normalise by the input size, PE + the label's embedding.
            const float xy[2] = {(points[(b * N + i) * 2] + 0.5f) / size, (points[(b * N + i) * 2 + 1] + 0.5f) / size};
            positional_encoding(w, xy, 1, o);
            const Tensor& e = w.point_embeddings[static_cast<size_t>(label)];
            for (int64_t c = 0; c < C; ++c) o[c] += e[c];
        }
    return out;
}

namespace {

Tensor channels_last(const Tensor& x) {
    const int64_t Cx = x.dim(1), P = x.dim(2) * x.dim(3);
    Tensor y = Tensor::empty({P, Cx});
#pragma omp parallel for
    for (int64_t p = 0; p < P; ++p)
        for (int64_t c = 0; c < Cx; ++c) y[p * Cx + c] = x[c * P + p];
    return y;
}

// src = embedding + dense prompt ((G*G, C), or (1, C) broadcast).
Tensor src_with(const Tensor& emb, const Tensor& d) {
    const int64_t C = emb.dim(1), P = emb.dim(0);
    Tensor src = emb.clone();
    for (int64_t p = 0; p < P; ++p)
        for (int64_t c = 0; c < C; ++c) src[p * C + c] += d.numel() == C ? d[c] : d[p * C + c];
    return src;
}

}  // namespace

std::shared_ptr<const Sam2DecoderImage> sam2_decoder_image(const Sam2Model& m, const Sam2Features& f,
                                                           Sam2DecoderPath path) {
    auto d = std::make_shared<Sam2DecoderImage>();
    d->embedding = f.image_embed;
    d->embed = channels_last(f.image_embed);
    d->s0 = channels_last(f.high_res[0]);
    d->s1 = channels_last(f.high_res[1]);
    if (path != Sam2DecoderPath::LowRank)
        d->no_mask = prepare_transformer_image(m.decoder.transformer, src_with(d->embed, m.prompt_encoder.no_mask_embed),
                                               m.prompt_encoder.dense_pe);
    if (path != Sam2DecoderPath::Reference) sam2_prepare_low_rank(m, *d);
    return d;
}

Sam2DecoderOutput sam2_mask_decoder_forward(const Sam2Model& m, const Sam2DecoderImage& image, const Tensor& sparse,
                                            const std::vector<Tensor>& dense, bool multimask_output) {
    const Sam2Config& cfg = m.config;
    const Sam2DecoderWeights& w = m.decoder;
    const int64_t B = sparse.dim(0), Ns = sparse.dim(1), C = cfg.d_model, G = cfg.embedding_size();
    const int64_t L = cfg.low_res_size(), NM = cfg.num_multimask_outputs + 1;
    const int64_t s = cfg.pred_obj_scores ? 1 : 0, T = s + 1 + NM + Ns;
    const PromptEncoderWeights& pe = m.prompt_encoder;
    const Tensor &s0 = image.s0, &s1 = image.s1;

    // Tokens: [obj_score, iou, mask tokens, sparse prompts] per prompt.
    Tensor tokens = Tensor::empty({B, T, C});
    for (int64_t b = 0; b < B; ++b) {
        float* t = tokens.data() + b * T * C;
        if (s) std::memcpy(t, w.obj_score_token.data(), static_cast<size_t>(C) * sizeof(float));
        std::memcpy(t + s * C, w.iou_token.data(), static_cast<size_t>(C) * sizeof(float));
        std::memcpy(t + (s + 1) * C, w.mask_tokens.data(), static_cast<size_t>(NM * C) * sizeof(float));
        std::memcpy(t + (s + 1 + NM) * C, sparse.data() + b * Ns * C, static_cast<size_t>(Ns * C) * sizeof(float));
    }

    // The image side: the shared no-mask state, or one state per prompt's mask input.
    std::vector<TransformerImageState> states;
    std::vector<const TransformerImageState*> state_ptrs;
    if (dense.empty()) {
        if (!image.no_mask.keys.defined()) throw Error("SAM 2 decoder: the image state was made without it");
        state_ptrs.push_back(&image.no_mask);
    } else {
        if (static_cast<int64_t>(dense.size()) != B) throw Error("SAM 2 decoder: dense prompts do not match the batch");
        for (const Tensor& d : dense)
            states.push_back(prepare_transformer_image(w.transformer, src_with(image.embed, d), pe.dense_pe));
        for (const auto& st : states) state_ptrs.push_back(&st);
    }
    Tensor queries, keys;
    two_way_transformer_forward(w.transformer, state_ptrs, pe.dense_pe, tokens, queries, keys);

    Tensor all_masks = Tensor::empty({B, NM, L * L}), all_iou = Tensor::empty({B, NM});
    const int64_t C8 = C / 8;
    for (int64_t b = 0; b < B; ++b) {
        // Upscaling with the high-resolution skip features:
        // act1(ln1(dc1(src) + feat_s1)), then act2(dc2(.) + feat_s0).
        Tensor src = Tensor::view({G * G, C}, keys.data() + b * G * G * C, nullptr);
        Tensor u1 = sam2_conv_transpose2(w.upscale1, w.upscale1_b, src, G, s1.data());
        layer_norm_inplace(u1, w.upscale_norm, kLayerNorm2dEps);
        ops::gelu_inplace(u1.data(), u1.numel());
        Tensor u2 = sam2_conv_transpose2(w.upscale2, w.upscale2_b, u1, 2 * G, s0.data());
        ops::gelu_inplace(u2.data(), u2.numel());  // (L*L, C/8)

        // Hypernetwork per mask token, then masks = hyper_in @ upscaled.
        const float* q = queries.data() + b * T * C;
        Tensor hyper = Tensor::empty({NM, C8});
        for (int64_t i = 0; i < NM; ++i) {
            Tensor tok = Tensor::view({1, C}, const_cast<float*>(q) + (s + 1 + i) * C, nullptr);
            Tensor h = mlp_forward(w.hypernetworks[static_cast<size_t>(i)], tok);
            std::memcpy(hyper.data() + i * C8, h.data(), static_cast<size_t>(C8) * sizeof(float));
        }
        ops::gemm(NM, L * L, C8, hyper.data(), C8, u2.data(), C8, true, all_masks.data() + b * NM * L * L, L * L);

        // IoU head on the IoU token (sigmoid where configured).
        Tensor iou_tok = Tensor::view({1, C}, const_cast<float*>(q) + s * C, nullptr);
        Tensor iou = mlp_forward(w.iou_head, iou_tok);
        for (int64_t i = 0; i < NM; ++i) {
            float v = iou[i];
            if (cfg.iou_prediction_use_sigmoid) v = 1.0f / (1.0f + std::exp(-v));
            all_iou[b * NM + i] = v;
        }
    }

    return sam2_select_outputs(cfg, all_masks, all_iou, multimask_output);
}

Sam2DecoderOutput sam2_select_outputs(const Sam2Config& cfg, const Tensor& all_masks, const Tensor& all_iou,
                                      bool multimask_output) {
    const int64_t B = all_masks.dim(0), NM = all_masks.dim(1), L = cfg.low_res_size();
    Sam2DecoderOutput out;
    const int64_t M = multimask_output ? NM - 1 : 1;
    out.masks = Tensor::empty({B, M, L, L});
    out.iou = Tensor::empty({B, M});
    for (int64_t b = 0; b < B; ++b) {
        const float* ml = all_masks.data() + b * NM * L * L;
        const float* il = all_iou.data() + b * NM;
        if (multimask_output) {
            std::memcpy(out.masks.data() + b * M * L * L, ml + L * L, static_cast<size_t>(M * L * L) * sizeof(float));
            for (int64_t i = 0; i < M; ++i) out.iou[b * M + i] = il[1 + i];
            continue;
        }
        int64_t pick = 0;
        if (cfg.dynamic_multimask_via_stability &&
            sam2_stability(ml, L * L, cfg.dynamic_multimask_stability_delta) < cfg.dynamic_multimask_stability_thresh) {
            pick = 1;  // argmax over the multimask IoUs, first on ties
            for (int64_t i = 2; i < NM; ++i)
                if (il[i] > il[pick]) pick = i;
        }
        std::memcpy(out.masks.data() + b * L * L, ml + pick * L * L, static_cast<size_t>(L * L) * sizeof(float));
        out.iou[b] = il[pick];
    }
    return out;
}

}  // namespace sam
