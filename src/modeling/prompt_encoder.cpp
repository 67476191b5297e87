#include "modeling/prompt_encoder.h"

#include <cmath>
#include <cstring>

#include "ops/ops.h"

namespace sam {

namespace {
constexpr float kTwoPi = 6.283185307179586f;
constexpr float kLayerNorm2dEps = 1e-6f;
}  // namespace

void positional_encoding(const PromptEncoderWeights& w, const float* xy01, int64_t n, float* out) {
    const int64_t C = w.embed_dim, half = C / 2;
    const float* g = w.pe_gaussian.data();  // (2, C/2)
    for (int64_t i = 0; i < n; ++i) {
        const float x = 2.0f * xy01[2 * i] - 1.0f, y = 2.0f * xy01[2 * i + 1] - 1.0f;
        float* o = out + i * C;
        for (int64_t j = 0; j < half; ++j) {
            const float v = (x * g[j] + y * g[half + j]) * kTwoPi;
            o[j] = std::sin(v);
            o[half + j] = std::cos(v);
        }
    }
}

PromptEncoderWeights load_prompt_encoder(const WeightLoader& w, const SamConfig& cfg) {
    PromptEncoderWeights p;
    const int64_t C = cfg.prompt.embed_dim, m = cfg.prompt.mask_in_chans, m4 = m / 4;
    p.embed_dim = static_cast<int>(C);
    p.grid = cfg.embedding_size();
    p.input_size = cfg.encoder.img_size;
    p.mask_in_chans = static_cast<int>(m);
    p.pe_gaussian = w["pe_layer"].tensor("positional_encoding_gaussian_matrix", {2, C / 2});
    for (int i = 0; i < 4; ++i) p.point_embeddings[i] = w["point_embeddings." + std::to_string(i)].tensor("weight", {1, C});
    p.not_a_point_embed = w["not_a_point_embed"].tensor("weight", {1, C});
    WeightLoader md = w["mask_downscaling"];
    p.mask_conv1_w = md["0"].tensor("weight", {m4, 1, 2, 2});
    p.mask_conv1_b = md["0"].tensor("bias", {m4});
    p.mask_norm1 = md["1"].layer_norm(m4);
    // Reorder conv 2 to (out, ky, kx, in) so that an im2col row is two runs of 2 * m/4 floats.
    Tensor k2 = md["3"].tensor("weight", {m, m4, 2, 2});
    p.mask_conv2_w = Tensor::empty({m, 4 * m4});
    for (int64_t o = 0; o < m; ++o)
        for (int64_t i = 0; i < m4; ++i)
            for (int64_t k = 0; k < 4; ++k) p.mask_conv2_w[(o * 4 + k) * m4 + i] = k2[(o * m4 + i) * 4 + k];
    p.mask_conv2_b = md["3"].tensor("bias", {m});
    p.mask_norm2 = md["4"].layer_norm(m);
    p.mask_conv3 = make_linear(md["6"].tensor("weight", {C, m, 1, 1}).reshape({C, m}), md["6"].tensor("bias", {C}));
    p.no_mask_embed = w["no_mask_embed"].tensor("weight", {1, C});

    // Dense image PE: grid position (i + 0.5) / G on both axes, (G*G, C).
    const int64_t G = p.grid;
    std::vector<float> xy(static_cast<size_t>(2 * G * G));
    for (int64_t r = 0; r < G; ++r)
        for (int64_t c = 0; c < G; ++c) {
            xy[static_cast<size_t>(2 * (r * G + c))] = (static_cast<float>(c) + 0.5f) / static_cast<float>(G);
            xy[static_cast<size_t>(2 * (r * G + c) + 1)] = (static_cast<float>(r) + 0.5f) / static_cast<float>(G);
        }
    p.dense_pe = Tensor::empty({G * G, C});
    positional_encoding(p, xy.data(), G * G, p.dense_pe.data());
    return p;
}

Tensor embed_sparse_prompts(const PromptEncoderWeights& w, int64_t B, int64_t Np, const float* points,
                            const int* labels, const float* boxes) {
    const int64_t C = w.embed_dim;
    const bool pad = Np > 0 && boxes == nullptr;
    const int64_t Npp = Np + (pad ? 1 : 0), Ns = Npp + (boxes ? 2 : 0);
    Tensor out = Tensor::empty({B, Ns, C});
    const float inv = 1.0f / static_cast<float>(w.input_size);
    auto add_row = [C](float* dst, const Tensor& e) {
        for (int64_t c = 0; c < C; ++c) dst[c] += e[c];
    };
    for (int64_t b = 0; b < B; ++b) {
        float* tok = out.data() + b * Ns * C;
        // Points: shift to the pixel centre, normalise by the padded input size, PE + label embedding.
        for (int64_t i = 0; i < Np; ++i) {
            float* o = tok + i * C;
            const int label = labels[b * Np + i];
            if (label == -1) {
                std::memcpy(o, w.not_a_point_embed.data(), static_cast<size_t>(C) * sizeof(float));
                continue;
            }
            const float xy[2] = {(points[(b * Np + i) * 2] + 0.5f) * inv, (points[(b * Np + i) * 2 + 1] + 0.5f) * inv};
            positional_encoding(w, xy, 1, o);
            add_row(o, w.point_embeddings[label == 1 ? 1 : 0]);
        }
        // Padding point (0, 0) with label -1: its embedding is not_a_point_embed.
        if (pad) std::memcpy(tok + Np * C, w.not_a_point_embed.data(), static_cast<size_t>(C) * sizeof(float));
        // Box corners: shifted by 0.5, PE, plus the top-left / bottom-right embeddings.
        if (boxes) {
            const float* bx = boxes + b * 4;
            const float xy[4] = {(bx[0] + 0.5f) * inv, (bx[1] + 0.5f) * inv, (bx[2] + 0.5f) * inv, (bx[3] + 0.5f) * inv};
            float* o = tok + Npp * C;
            positional_encoding(w, xy, 2, o);
            add_row(o, w.point_embeddings[2]);
            add_row(o + C, w.point_embeddings[3]);
        }
    }
    return out;
}

Tensor embed_mask_input(const PromptEncoderWeights& w, const float* mask) {
    const int64_t S = w.mask_side(), S2 = S / 2, G = w.grid, m = w.mask_in_chans, m4 = m / 4;
    // Conv 2x2 s2, 1 -> m/4 channels: (S/2 * S/2, m/4) channels-last.
    Tensor t1 = Tensor::empty({S2 * S2, m4});
    const float* k1 = w.mask_conv1_w.data();
#pragma omp parallel for
    for (int64_t y = 0; y < S2; ++y)
        for (int64_t x = 0; x < S2; ++x) {
            const float* in0 = mask + (2 * y) * S + 2 * x;
            const float* in1 = in0 + S;
            float* o = t1.data() + (y * S2 + x) * m4;
            for (int64_t c = 0; c < m4; ++c) {
                const float* k = k1 + c * 4;
                o[c] = w.mask_conv1_b[c] + (in0[0] * k[0] + in0[1] * k[1]) + (in1[0] * k[2] + in1[1] * k[3]);
            }
        }
    layer_norm_inplace(t1, w.mask_norm1, kLayerNorm2dEps);
    ops::gelu_inplace(t1.data(), t1.numel());
    // Conv 2x2 s2, m/4 -> m channels, as im2col (G*G, 4 * m/4) + GEMM.
    Tensor cols = Tensor::empty({G * G, 4 * m4});
#pragma omp parallel for
    for (int64_t y = 0; y < G; ++y)
        for (int64_t x = 0; x < G; ++x)
            for (int64_t ky = 0; ky < 2; ++ky)
                std::memcpy(cols.data() + (y * G + x) * 4 * m4 + ky * 2 * m4,
                            t1.data() + ((2 * y + ky) * S2 + 2 * x) * m4, static_cast<size_t>(2 * m4) * sizeof(float));
    Tensor t2 = ops::linear(cols, w.mask_conv2_w, w.mask_conv2_b);
    layer_norm_inplace(t2, w.mask_norm2, kLayerNorm2dEps);
    ops::gelu_inplace(t2.data(), t2.numel());
    // Conv 1x1, m -> C.
    return linear(t2, w.mask_conv3);
}

}  // namespace sam
