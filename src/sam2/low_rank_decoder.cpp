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
// order of the upscaling's GEMM outputs (conv_s1's as the first ConvTranspose's rows, one per
// input pixel and kernel position; conv_s0's and the bias as the second's output transposed),
// so a prompt adds them with contiguous loops and scatters to pixels only at the very end.
//
// Per prompt, the upscaling after the first ConvTranspose runs in one pass per block of 256
// image positions, start to end (conv_s1's features, LayerNorm2d, GELU, the second
// ConvTranspose, conv_s0's features, GELU, the hypernetwork dot products written straight to
// the masks), as SAM's low-rank decoder does: a block's intermediates (~0.8 MB at C 256) stay
// in cache, and a single prompt spreads its blocks over the threads. The second ConvTranspose's
// output is made transposed (channels x upscaled pixels), so that the hypernetwork products run
// along pixels as plain multiply-adds. The first ConvTranspose comes whole from
// low_rank_transformer_forward (the low-rank rows it is made from stay inside SAM's decoder).
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

// The upscaling's blocking: image positions per block, and columns (upscaled-pixel groups) per
// chunk of a block's transposed second ConvTranspose output. Four columns per position.
constexpr int64_t kBlock = 256;
constexpr int64_t kChunk = 64;  // a chunk's logits (4 masks x 4 x 64) stay in L1

// Where conv_s0's term of row r (of R = 4 C/8) and column `col` (of the image's `cols`) lies in
// Sam2DecoderImage::s0_tiles: blocks of 4 kBlock columns, each in chunks of kChunk columns, each
// chunk row-major (R x its width), so that a prompt reads it in one sequential stream.
int64_t s0_tile_offset(int64_t col, int64_t r, int64_t R, int64_t cols) {
    const int64_t b0 = col / (4 * kBlock) * (4 * kBlock), c0 = (col - b0) / kChunk * kChunk;
    const int64_t width = std::min(kChunk, std::min(cols - b0, 4 * kBlock) - c0);
    return (b0 + c0) * R + r * width + (col - b0 - c0);
}

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

// The mask logits of a block of n image positions from p0, from its second ConvTranspose's
// output u2t, transposed: rows (ky2, kx2, c) of n * 4 columns (position, ky1, kx1), before the
// skip features and GELU. Chunk by chunk of columns, each row gets conv_s0's features and the
// bias (s0: the block's tiles of s0_tiles) and GELU in place, then enters every mask's logits
// as one multiply-add along the columns: no dot product reduced across a vector, no product
// with M = 4 columns (which the library runs far below its peak). logits (M, 4, n * 4) is a
// block buffer; the scatter to the (M, 4G, 4G) masks comes last.
SAM_VECTOR_CLONES
void mask_logits_block(float* u2t, const float* s0, const float* hyper, int64_t M, int64_t C8, int64_t p0, int64_t n,
                       int64_t G, float* logits, float* masks) {
    const int64_t cols = n * 4, R = 4 * C8;
    std::fill_n(logits, M * 4 * cols, 0.0f);
    for (int64_t i0 = 0; i0 < cols; i0 += kChunk) {
        const int64_t i1 = std::min(cols, i0 + kChunk);
        for (int64_t k2 = 0; k2 < 4; ++k2)
            for (int64_t c = 0; c < C8; ++c) {
                float* row = u2t + (k2 * C8 + c) * cols;
                const float* skip = s0 + i0 * R + (k2 * C8 + c) * (i1 - i0) - i0;  // indexed by column
#pragma omp simd
                for (int64_t i = i0; i < i1; ++i) row[i] = ops::gelu_erf(row[i] + skip[i]);
                for (int64_t m = 0; m < M; ++m) {
                    const float h = hyper[m * C8 + c];
                    float* out = logits + (m * 4 + k2) * cols;
#pragma omp simd
                    for (int64_t i = i0; i < i1; ++i) out[i] += h * row[i];
                }
            }
    }
    // Column 4 j + k1 (k1 = 2 ky1 + kx1), row k2 = 2 ky2 + kx2 -> pixel (4y + 2 ky1 + ky2, 4x + 2 kx1 + kx2).
    const int64_t L = 4 * G;
    for (int64_t m = 0; m < M; ++m)
        for (int64_t j = 0; j < n; ++j) {
            const int64_t y = (p0 + j) / G, x = (p0 + j) % G;
            float* patch = masks + m * L * L + 4 * y * L + 4 * x;  // the position's 4 x 4 pixels
            for (int64_t k = 0; k < 16; ++k) {
                const int64_t k1 = k / 4, k2 = k % 4;
                patch[(2 * (k1 / 2) + k2 / 2) * L + 2 * (k1 % 2) + k2 % 2] = logits[(m * 4 + k2) * cols + 4 * j + k1];
            }
        }
}

// From the first ConvTranspose's rows u1 (G * G * 4, C4; overwritten) to the M masks' logits
// (M, 4G, 4G), in blocks of image positions (see the top of the file); hyper (M, C8).
void upscale_and_predict(const Sam2DecoderWeights& w, const Sam2DecoderImage& image, float* u1, const float* hyper,
                         int64_t M, int64_t G, float* masks) {
    const int64_t N = G * G, C4 = w.upscale2.w.dim(1), C8 = w.upscale2.w.dim(0) / 4;
    const int64_t blocks = (N + kBlock - 1) / kBlock, nb = std::min(N, kBlock);
    std::exception_ptr error;
#pragma omp parallel if (blocks > 1 && !omp_in_parallel())
    {
        try {
            // Per thread, reused by its blocks: the second ConvTranspose's output (transposed) and the logits.
            Array u2t = array(4 * C8 * nb * 4), logits = array(M * 4 * nb * 4);
#pragma omp for schedule(dynamic, 1)
            for (int64_t blk = 0; blk < blocks; ++blk) {
                const int64_t p0 = blk * kBlock, n = std::min(N, p0 + kBlock) - p0;
                // + conv_s1's features -> LayerNorm2d -> GELU: (n * 4, C/4), one row per 2G x 2G pixel.
                float* u = u1 + p0 * 4 * C4;
                skip_layer_norm_gelu(u, image.s1_rows.data() + p0 * 4 * C4, n * 4, C4, w.upscale_norm);
                // ConvTranspose 2x2 s2, transposed: (4 * C/8, n * 4) = W2 u^T, on this thread (the
                // blocks are the parallel work; with one block the region above is inactive, and a
                // region the library opened inside it would start fresh threads).
                {
                    ops::ThreadScope one(1);
                    ops::gemm(4 * C8, n * 4, C4, w.upscale2.w.data(), C4, u, C4, true, u2t.get(), n * 4);
                }
                // + conv_s0's features and the bias -> GELU -> . hypernetwork vectors -> masks.
                mask_logits_block(u2t.get(), image.s0_tiles.data() + p0 * 4 * 4 * C8, hyper, M, C8, p0, n, G,
                                  logits.get(), masks);
            }
        } catch (...) {
#pragma omp critical(sam2_upscale_error)
            if (!error) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

// One prompt: tokens (T, C) [obj_score?, iou, mask tokens, sparse]; writes every mask token's
// low-res logits (NM, L, L) and IoU (NM).
void decode_prompt(const Sam2Model& m, const LowRankImageState& st, const Sam2DecoderImage& image, const float* tokens,
                   int64_t T, float* masks, float* iou) {
    const Sam2Config& cfg = m.config;
    const Sam2DecoderWeights& w = m.decoder;
    const int64_t C = cfg.d_model, G = cfg.embedding_size(), N = G * G;
    const int64_t C4 = C / 4, C8 = C / 8, NM = cfg.num_multimask_outputs + 1, s = cfg.pred_obj_scores ? 1 : 0;

    std::vector<float> queries(static_cast<size_t>(T * C));
    Array u1 = array(N * 4 * C4);  // rows (pixel, ky, kx) of the first ConvTranspose
    low_rank_transformer_forward(*w.low_rank, st, tokens, T, queries.data(), u1.get());

    // Hypernetwork per mask token, then the upscaling and every mask's logits, block by block.
    std::vector<float> hyper(static_cast<size_t>(NM * C8));
    for (int64_t i = 0; i < NM; ++i) {
        const std::vector<float> h = token_mlp(w.hypernetworks[static_cast<size_t>(i)], &queries[(s + 1 + i) * C], 1);
        std::copy(h.begin(), h.end(), hyper.begin() + i * C8);
    }
    upscale_and_predict(w, image, u1.get(), hyper.data(), NM, G, masks);

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
    // s0 + the second ConvTranspose's bias, transposed: row (ky2, kx2, c), column (p, ky1, kx1)
    // -> pixel (4y + 2 ky1 + ky2, 4x + 2 kx1 + kx2) of 4G, channel c; in tiles (s0_tile_offset).
    image.s0_tiles = Tensor::empty({4 * C8 * N * 4});
    const float* b2 = m.decoder.upscale2_b.data();
#pragma omp parallel for
    for (int64_t p = 0; p < N; ++p) {
        const int64_t y = p / G, x = p % G;
        for (int64_t k = 0; k < 4; ++k) {
            const int64_t Y = 2 * y + k / 2, X = 2 * x + k % 2;
            std::copy_n(image.s1.data() + (Y * 2 * G + X) * C4, C4, image.s1_rows.data() + (p * 4 + k) * C4);
        }
        for (int64_t k = 0; k < 16; ++k) {
            const int64_t k1 = k / 4, k2 = k % 4;
            const int64_t Y = 4 * y + 2 * (k1 / 2) + k2 / 2, X = 4 * x + 2 * (k1 % 2) + k2 % 2;
            const float* s0 = image.s0.data() + (Y * 4 * G + X) * C8;
            for (int64_t c = 0; c < C8; ++c)
                image.s0_tiles[s0_tile_offset(p * 4 + k1, k2 * C8 + c, 4 * C8, N * 4)] = b2[c] + s0[c];
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
