// SAM 2's memory attention core: the fused kernel (key blocks with an online softmax) against
// the GEMM form it replaced, on the shapes of a full-size model's memory bank. The fixture's small
// model (tests/data/sam2_video) has too few keys for the fused path, so its parity tests run the
// GEMM form; this test is what covers the fused one.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "sam/error.h"
#include "sam2/video_model.h"
#include "test_util.h"

namespace sam {
namespace {

Tensor random_rows(int64_t n, int64_t d, float scale, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0.0f, scale);
    Tensor t({n, d});
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = g(rng);
    return t;
}

double seconds(const std::chrono::steady_clock::time_point& t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// q (Nq, D), k and v (Nk, D); the scores' spread (scale 1.5 per component: logits of several
// units) makes the softmax peaky, as trained attention is, and the online rescaling matter.
void expect_fused_equals_gemm(int64_t Nq, int64_t Nk, int64_t D, int heads) {
    const Tensor q = random_rows(Nq, D, 1.5f, 1), k = random_rows(Nk, D, 1.5f, 2), v = random_rows(Nk, D, 1.0f, 3);
    auto t0 = std::chrono::steady_clock::now();
    const Tensor want = memory_attention_core(q, k, v, heads, false);
    const double gemm_s = seconds(t0);
    t0 = std::chrono::steady_clock::now();
    const Tensor got = memory_attention_core(q, k, v, heads, true);
    const double fused_s = seconds(t0);
    const float diff = test::max_abs_diff(got, want), scale = test::max_abs(want);
    std::printf("Nq %lld, Nk %lld, D %lld, %d head(s): max |fused - gemm| %.2e of max %.2e; gemm %.3f s, fused %.3f s\n",
                static_cast<long long>(Nq), static_cast<long long>(Nk), static_cast<long long>(D), heads, diff, scale,
                gemm_s, fused_s);
    // The fused kernel's exponential is a polynomial (ops/exp2_approx.h) and its sums run in
    // another order; the encoder's attention is held to the same 1e-4 of the largest value.
    EXPECT_LE(diff, 1e-4f * scale);
}

TEST(Sam2MemoryAttention, FusedEqualsGemmOnAFullBank) {
    expect_fused_equals_gemm(4096, 4096, 256, 1);          // self-attention of a 64 x 64 frame
    expect_fused_equals_gemm(1024, 3 * 4096 + 12, 256, 1);  // cross-attention: 3 memories + 3 pointers x 4 tokens
}

TEST(Sam2MemoryAttention, FusedEqualsGemmWithSeveralHeads) { expect_fused_equals_gemm(512, 2 * 4096 + 8, 256, 4); }

TEST(Sam2MemoryAttention, KeyCountsWithoutAGridTakeTheGemmForm) {
    // 4099 is prime: no key grid keeps the kernel's relative terms small, so both calls are
    // the GEMM form, bit for bit.
    const Tensor q = random_rows(300, 64, 1.0f, 4), k = random_rows(4099, 64, 1.0f, 5), v = random_rows(4099, 64, 1.0f, 6);
    const Tensor a = memory_attention_core(q, k, v, 1, true), b = memory_attention_core(q, k, v, 1, false);
    EXPECT_EQ(test::max_abs_diff(a, b), 0.0f);
}

TEST(Sam2MemoryAttention, MismatchedShapesAreAnError) {
    const Tensor q = random_rows(16, 64, 1.0f, 7), k = random_rows(32, 64, 1.0f, 8), v = random_rows(31, 64, 1.0f, 9);
    EXPECT_THROW(memory_attention_core(q, k, v, 1), Error);
    EXPECT_THROW(memory_attention_core(q, k, k, 3), Error);
}

}  // namespace
}  // namespace sam
