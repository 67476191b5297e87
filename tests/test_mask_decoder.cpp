// The low-rank mask decoder (shared image side, per-prompt basis) against the straightforward
// forward, mask_decoder_forward, on random weights: vit_b decoder shapes and a small
// odd-sized model, several batches, multimask on and off, 1 and 2 threads.
//
// Tolerance: the two compute the same algebra in a different order (the image rows are never
// formed in the low-rank path; its GELU after the first upscaling uses a polynomial erf with
// |error| <= 1.5e-7), so only rounding differs. IoU predictions within 1e-3 (the fixture
// tolerance); low-res logits within 1e-4 x (1 + max |reference logit|): the logits are dot
// products of ~C/8 terms of size ~1, whose float rounding in either path is ~1e-6 relative,
// amplified by the two attention softmaxes and LayerNorms; the worst case seen is printed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "modeling/low_rank_decoder.h"
#include "modeling/mask_decoder.h"
#include "ops/ops.h"
#include "ops/threads.h"
#include "sam/config.h"

namespace sam {
namespace {

constexpr float kIouTol = 1e-3f, kLogitRelTol = 1e-4f;

// Every tensor uniform random (1-D weights around 1, biases around 0, matrices scaled by
// 1/sqrt(fan_in)), so that LayerNorm weights and biases are exercised too.
class UniformSource : public TensorSource {
  public:
    explicit UniformSource(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}
    Tensor tensor(const std::string& key, const Shape& shape) const override {
        Tensor t = Tensor::empty(shape);
        const bool bias = key.size() >= 5 && key.compare(key.size() - 5, 5, ".bias") == 0;
        const int64_t fan_in = shape.size() > 1 ? t.numel() / shape[0] : 1;
        const float a = shape.size() > 1 ? 1.0f / std::sqrt(static_cast<float>(fan_in)) : 0.5f;
        for (int64_t i = 0; i < t.numel(); ++i) {
            const float u = 2.0f * next() - 1.0f;
            t[i] = shape.size() == 1 && !bias ? 1.0f + a * u : a * u;
        }
        return t;
    }
    float next() const {
        state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<float>(state_ >> 40) / 16777216.0f;
    }

  private:
    mutable uint64_t state_;
};

Tensor random_tensor(const UniformSource& r, Shape shape, float scale) {
    Tensor t = Tensor::empty(std::move(shape));
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = scale * (2.0f * r.next() - 1.0f);
    return t;
}

struct Case {
    MaskDecoderConfig cfg;
    int64_t grid = 0;
};

// Decodes `batch` random prompts of `ns` sparse tokens both ways and compares.
void compare(const Case& c, int64_t batch, int64_t ns, bool multimask, int threads, uint64_t seed) {
    ops::ThreadScope scope(threads);
    const int64_t C = c.cfg.transformer_dim, G = c.grid;
    UniformSource src(seed);
    const MaskDecoderWeights w = load_mask_decoder(WeightLoader(src, "mask_decoder"), c.cfg);
    const Tensor emb = random_tensor(src, {1, C, G, G}, 1.0f), dense = random_tensor(src, {1, C}, 0.5f);
    const Tensor pe = random_tensor(src, {G * G, C}, 1.0f), sparse = random_tensor(src, {batch, ns, C}, 1.0f);

    const LowRankImageState fast = prepare_low_rank_image(w, emb, dense, pe);
    const TransformerImageState ref = prepare_decoder_image(w, emb, dense, pe);
    const DecoderOutput got = low_rank_decoder_forward(w, fast, pe, sparse, multimask);
    const DecoderOutput want = mask_decoder_forward(w, {&ref}, pe, sparse, multimask);
    ASSERT_EQ(got.masks.shape(), want.masks.shape());
    ASSERT_EQ(got.iou.shape(), want.iou.shape());

    float iou_err = 0.0f, logit_err = 0.0f, logit_max = 0.0f;
    for (int64_t i = 0; i < got.iou.numel(); ++i) iou_err = std::max(iou_err, std::fabs(got.iou[i] - want.iou[i]));
    for (int64_t i = 0; i < got.masks.numel(); ++i) {
        logit_err = std::max(logit_err, std::fabs(got.masks[i] - want.masks[i]));
        logit_max = std::max(logit_max, std::fabs(want.masks[i]));
    }
    std::printf("[ C %d, heads %d, grid %lld, B %lld, Ns %lld, %s, %d thr ] iou err %.3g, logit err %.3g (max |logit| %.3g)\n",
                c.cfg.transformer_dim, c.cfg.num_heads, static_cast<long long>(G), static_cast<long long>(batch),
                static_cast<long long>(ns), multimask ? "multimask" : "single", threads, iou_err, logit_err, logit_max);
    EXPECT_LE(iou_err, kIouTol);
    EXPECT_LE(logit_err, kLogitRelTol * (1.0f + logit_max));
}

Case small_odd() {
    Case c;
    c.cfg.transformer_dim = 40;
    c.cfg.num_heads = 4;  // head dims 10 (self) and 5 (cross)
    c.cfg.mlp_dim = 24;
    c.cfg.iou_head_hidden_dim = 20;
    c.grid = 7;
    return c;
}

Case vit_b(int64_t grid) {
    Case c;  // MaskDecoderConfig defaults are the vit_b/l/h decoder
    c.grid = grid;
    return c;
}

TEST(MaskDecoderLowRank, SmallOddShapes) {
    compare(small_odd(), 1, 2, true, 1, 1);
    compare(small_odd(), 5, 3, false, 1, 2);
    compare(small_odd(), 9, 1, true, 2, 3);
    compare(small_odd(), 2, 0, true, 2, 4);  // no sparse prompt at all
}

TEST(MaskDecoderLowRank, VitBShapes) {
    compare(vit_b(16), 3, 2, true, 1, 5);
    compare(vit_b(16), 4, 4, false, 2, 6);
    compare(vit_b(64), 2, 2, true, 2, 7);
}

TEST(MaskDecoderLowRank, PerPromptStatesMatchTheSharedStatePath) {
    const Case c = small_odd();
    const int64_t C = c.cfg.transformer_dim, G = c.grid;
    UniformSource src(8);
    const MaskDecoderWeights w = load_mask_decoder(WeightLoader(src, "mask_decoder"), c.cfg);
    const Tensor emb = random_tensor(src, {1, C, G, G}, 1.0f), pe = random_tensor(src, {G * G, C}, 1.0f);
    const Tensor d0 = random_tensor(src, {G * G, C}, 0.5f), d1 = random_tensor(src, {G * G, C}, 0.5f);
    const Tensor sparse = random_tensor(src, {2, 2, C}, 1.0f);
    const TransformerImageState s0 = prepare_decoder_image(w, emb, d0, pe);
    const TransformerImageState s1 = prepare_decoder_image(w, emb, d1, pe);
    const DecoderOutput both = mask_decoder_forward(w, {&s0, &s1}, pe, sparse, true);
    // Prompt 1 alone against its own state, through the low-rank path.
    const LowRankImageState f1 = prepare_low_rank_image(w, emb, d1, pe);
    const Tensor one = Tensor::view({1, 2, C}, const_cast<float*>(sparse.data()) + 2 * C, nullptr);
    const DecoderOutput alone = low_rank_decoder_forward(w, f1, pe, one, true);
    const int64_t n = alone.masks.numel();
    float err = 0.0f, mx = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        err = std::max(err, std::fabs(alone.masks[i] - both.masks[n + i]));
        mx = std::max(mx, std::fabs(both.masks[n + i]));
    }
    EXPECT_LE(err, kLogitRelTol * (1.0f + mx));
    for (int m = 0; m < 3; ++m) EXPECT_NEAR(alone.iou[m], both.iou[3 + m], kIouTol);
}

}  // namespace
}  // namespace sam
