// SAM 2's mask decoder on the low-rank image side of SAM's (modeling/low_rank_decoder.h).
//
// SAM 2's two-way transformer is SAM's, with one more output token (the object-score token) in
// front; the transformer treats its tokens as a set, so SAM's low-rank transformer runs it
// unchanged (low_rank_transformer_forward): the image side's projections are made once per
// image (LowRankImageState), each prompt costs the token-side work plus rank-r corrections.
// What SAM 2 adds after the transformer is done here: the high-resolution features enter the
// upscaling (conv_s1's after the first ConvTranspose, before its LayerNorm2d; conv_s0's after
// the second, before its GELU), and the output is chosen by stability as build_sam configures.
//
// The skip features and the second ConvTranspose's bias are laid out once per image in the
// row order of the upscaling's GEMM outputs (one row per input pixel and kernel position), so
// a prompt adds them with contiguous loops and scatters to pixels only at the very end.
//
// The straightforward decoder (sam2_mask_decoder_forward) is this one's oracle
// (tests/test_sam2_low_rank_decoder.cpp).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <vector>

#include "ops/ops.h"
#include "ops/threads.h"
#include "ops/vector_math.h"
#include "sam/error.h"
#include "sam2/model.h"

namespace sam {

namespace {

constexpr float kLayerNorm2dEps = 1e-6f;
// Element loops below this stay on one thread (as in SAM's low-rank decoder: a parallel region
// costs more than small work, and prompts are decoded one per thread anyway).
constexpr int64_t kParallelMin = int64_t{1} << 20;

bool par(int64_t work) { return work >= kParallelMin && !omp_in_parallel(); }

// Float storage left uninitialised (written in full before it is read).
using Array = std::unique_ptr<float[]>;
Array array(int64_t n) { return Array(new float[static_cast<size_t>(n)]); }

// rows token vectors (rows, in) through an MLP on the calling thread: ReLU between layers.
std::vector<float> token_mlp(const std::vector<Linear>& layers, const float* x, int64_t rows) {
    std::vector<float> h(x, x + rows * layers.front().w.dim(1));
    ops::ThreadScope one(1);
    for (size_t i = 0; i < layers.size(); ++i) {
        const Linear& l = layers[i];
        const int64_t in = l.w.dim(1), out = l.out_features();
        std::vector<float> y(static_cast<size_t>(rows * out));
        for (int64_t r = 0; r < rows; ++r) std::copy(l.b.data(), l.b.data() + out, y.begin() + r * out);
        ops::gemm(rows, out, in, h.data(), in, l.w.data(), in, true, y.data(), out, 1.0f, 1.0f);
        if (i + 1 < layers.size())
            for (float& v : y) v = v > 0.0f ? v : 0.0f;
        h = std::move(y);
    }
    return h;
}

// u1 (rows, C4) += s1 rows, then LayerNorm2d and GELU, in place.
SAM_VECTOR_CLONES
void skip_layer_norm_gelu(float* u, const float* skip, int64_t rows, int64_t C4, const LayerNorm& n) {
    const float* g = n.w.data();
    const float* b = n.b.data();
#pragma omp parallel for if (par(rows * C4))
    for (int64_t i = 0; i < rows; ++i) {
        float* v = u + i * C4;
        const float* s = skip + i * C4;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < C4; ++c) {
            v[c] += s[c];
            sum += v[c];
        }
        const float mu = sum / static_cast<float>(C4);
        float var = 0.0f;
#pragma omp simd reduction(+ : var)
        for (int64_t c = 0; c < C4; ++c) var += (v[c] - mu) * (v[c] - mu);
        const float inv = 1.0f / std::sqrt(var / static_cast<float>(C4) + kLayerNorm2dEps);
#pragma omp simd
        for (int64_t c = 0; c < C4; ++c) v[c] = ops::gelu_erf((v[c] - mu) * inv * g[c] + b[c]);
    }
}

// u (n) = GELU(u + skip), in place.
SAM_VECTOR_CLONES
void skip_gelu(float* u, const float* skip, int64_t n) {
    constexpr int64_t kBlock = 4096;
#pragma omp parallel for if (par(n))
    for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
        const int64_t i1 = std::min(n, i0 + kBlock);
#pragma omp simd
        for (int64_t i = i0; i < i1; ++i) u[i] = ops::gelu_erf(u[i] + skip[i]);
    }
}

// One prompt: tokens (T, C) [obj_score?, iou, mask tokens, sparse]; writes every mask token's
// low-res logits (NM, L, L) and IoU (NM).
void decode_prompt(const Sam2Model& m, const LowRankImageState& st, const Sam2DecoderImage& image, const float* tokens,
                   int64_t T, float* masks, float* iou) {
    const Sam2Config& cfg = m.config;
    const Sam2DecoderWeights& w = m.decoder;
    const int64_t C = cfg.d_model, G = cfg.embedding_size(), N = G * G, L = 4 * G;
    const int64_t C4 = C / 4, C8 = C / 8, NM = cfg.num_multimask_outputs + 1, s = cfg.pred_obj_scores ? 1 : 0;

    std::vector<float> queries(static_cast<size_t>(T * C));
    Array u1 = array(N * 4 * C4);  // rows (pixel, ky, kx) of the first ConvTranspose
    low_rank_transformer_forward(*w.low_rank, st, tokens, T, queries.data(), u1.get());
    skip_layer_norm_gelu(u1.get(), image.s1_rows.data(), N * 4, C4, w.upscale_norm);
    Array u2 = array(N * 16 * C8);  // rows (pixel, ky1, kx1, ky2, kx2) of the second
    w.upscale2.mm.forward(u1.get(), N * 4, u2.get());
    u1.reset();
    skip_gelu(u2.get(), image.s0_rows.data(), N * 16 * C8);

    // Hypernetwork per mask token, then every mask in one product, scattered to pixels.
    std::vector<float> hyper(static_cast<size_t>(NM * C8));
    for (int64_t i = 0; i < NM; ++i) {
        const std::vector<float> h = token_mlp(w.hypernetworks[static_cast<size_t>(i)], &queries[(s + 1 + i) * C], 1);
        std::copy(h.begin(), h.end(), hyper.begin() + i * C8);
    }
    Array logits = array(N * 16 * NM);
    ops::gemm(N * 16, NM, C8, u2.get(), C8, hyper.data(), C8, true, logits.get(), NM);
#pragma omp parallel for if (par(N * 16 * NM))
    for (int64_t p = 0; p < N; ++p) {
        const int64_t y = p / G, x = p % G;
        for (int64_t k = 0; k < 16; ++k) {
            const int64_t Y = 4 * y + 2 * (k / 8) + (k / 2) % 2, X = 4 * x + 2 * ((k / 4) % 2) + k % 2;
            for (int64_t i = 0; i < NM; ++i) masks[i * L * L + Y * L + X] = logits[(p * 16 + k) * NM + i];
        }
    }

    const std::vector<float> pred = token_mlp(w.iou_head, &queries[s * C], 1);
    for (int64_t i = 0; i < NM; ++i) {
        float v = pred[static_cast<size_t>(i)];
        if (cfg.iou_prediction_use_sigmoid) v = 1.0f / (1.0f + std::exp(-v));
        iou[i] = v;
    }
}

}  // namespace

std::shared_ptr<const MaskDecoderWeights> sam2_low_rank_weights(const Sam2DecoderWeights& d) {
    auto w = std::make_shared<MaskDecoderWeights>();
    w->transformer = d.transformer;
    const int64_t C4 = d.upscale1_b.numel();
    Tensor b = Tensor::empty({4 * C4});
    for (int64_t k = 0; k < 4; ++k)
        for (int64_t c = 0; c < C4; ++c) b[k * C4 + c] = d.upscale1_b[c];
    w->upscale1 = make_linear(d.upscale1.w, b);
    return w;
}

void sam2_prepare_low_rank(const Sam2Model& m, Sam2DecoderImage& image) {
    const Sam2Config& cfg = m.config;
    const int64_t G = cfg.embedding_size(), N = G * G, C4 = cfg.d_model / 4, C8 = cfg.d_model / 8;
    image.low_rank = prepare_low_rank_image(*m.decoder.low_rank, image.embedding, m.prompt_encoder.no_mask_embed,
                                            m.prompt_encoder.dense_pe);
    // s1 in the first ConvTranspose's rows (pixel p, ky, kx) -> pixel (2y + ky, 2x + kx) of 2G.
    image.s1_rows = Tensor::empty({N * 4, C4});
    // s0 + the second ConvTranspose's bias in its rows (p, ky1, kx1, ky2, kx2) -> pixel
    // (4y + 2 ky1 + ky2, 4x + 2 kx1 + kx2) of 4G.
    image.s0_rows = Tensor::empty({N * 16, C8});
    const float* b2 = m.decoder.upscale2_b.data();
#pragma omp parallel for
    for (int64_t p = 0; p < N; ++p) {
        const int64_t y = p / G, x = p % G;
        for (int64_t k = 0; k < 4; ++k) {
            const int64_t Y = 2 * y + k / 2, X = 2 * x + k % 2;
            std::copy_n(image.s1.data() + (Y * 2 * G + X) * C4, C4, image.s1_rows.data() + (p * 4 + k) * C4);
        }
        for (int64_t k = 0; k < 16; ++k) {
            const int64_t Y = 4 * y + 2 * (k / 8) + (k / 2) % 2, X = 4 * x + 2 * ((k / 4) % 2) + k % 2;
            const float* s0 = image.s0.data() + (Y * 4 * G + X) * C8;
            float* d = image.s0_rows.data() + (p * 16 + k) * C8;
            for (int64_t c = 0; c < C8; ++c) d[c] = b2[c] + s0[c];
        }
    }
}

Sam2DecoderOutput sam2_low_rank_decoder_forward(const Sam2Model& m, const Sam2DecoderImage& image, const Tensor& sparse,
                                                const std::vector<Tensor>& dense, bool multimask_output) {
    const Sam2Config& cfg = m.config;
    const Sam2DecoderWeights& w = m.decoder;
    const int64_t B = sparse.dim(0), Ns = sparse.dim(1), C = cfg.d_model, L = cfg.low_res_size();
    const int64_t NM = cfg.num_multimask_outputs + 1, s = cfg.pred_obj_scores ? 1 : 0, T = s + 1 + NM + Ns;
    if (!w.low_rank || !image.low_rank.keys.defined())
        throw Error("SAM 2 low-rank decoder: the image state was made without it");
    if (sparse.dim(2) != C) throw Error("SAM 2 decoder: prompts " + shape_str(sparse.shape()) + " do not fit the model");
    if (!dense.empty() && static_cast<int64_t>(dense.size()) != B)
        throw Error("SAM 2 decoder: dense prompts do not match the batch");

    Tensor all_masks = Tensor::empty({B, NM, L * L}), all_iou = Tensor::empty({B, NM});
    auto decode = [&](int64_t b, const LowRankImageState& st) {
        // Tokens: [obj_score, iou, mask tokens, sparse prompts].
        std::vector<float> tokens(static_cast<size_t>(T * C));
        float* t = tokens.data();
        if (s) std::copy_n(w.obj_score_token.data(), C, t);
        std::copy_n(w.iou_token.data(), C, t + s * C);
        std::copy_n(w.mask_tokens.data(), NM * C, t + (s + 1) * C);
        std::copy_n(sparse.data() + b * Ns * C, Ns * C, t + (s + 1 + NM) * C);
        decode_prompt(m, st, image, t, T, all_masks.data() + b * NM * L * L, all_iou.data() + b * NM);
    };
    if (dense.empty()) {
        // One prompt per thread on the shared state; a single prompt threads inside instead.
        ops::for_each_item(B, [&](int64_t b) { decode(b, image.low_rank); });
    } else {
        // A mask input changes the image side: a state per prompt, made and used in turn.
        for (int64_t b = 0; b < B; ++b) {
            const LowRankImageState st =
                prepare_low_rank_image(*w.low_rank, image.embedding, dense[static_cast<size_t>(b)], m.prompt_encoder.dense_pe);
            decode(b, st);
        }
    }
    return sam2_select_outputs(cfg, all_masks, all_iou, multimask_output);
}

}  // namespace sam
