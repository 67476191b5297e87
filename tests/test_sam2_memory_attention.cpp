// SAM 2's memory attention core: the fused kernel (key blocks with an online softmax, no
// relative-position tables) against the GEMM form it replaced, on the shapes of a full-size
// model's memory bank and on key counts of any size (the fixture's small model, tests/data/
// sam2_video, runs the fused kernel on its few keys in the parity tests).
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

// Any key count takes the kernel, which needs no key grid: primes (4099, 509, 7), one key, a
// memory and one object pointer (4100 = 4096 + 4), the fixture's sizes (a 16 x 16 frame: 256;
// two memories and pointers), counts just past a key block (253). Small enough to run under every
// kernel set (tests/CMakeLists.txt: IsaLevel.*).
TEST(Sam2MemoryAttention, AnyKeyCountTakesTheKernel) {
    struct Case { int64_t Nq, Nk, D; int heads; };
    for (Case c : {Case{300, 4099, 64, 1}, Case{64, 4100, 256, 1}, Case{100, 509, 64, 2}, Case{33, 7, 32, 1},
                   Case{17, 1, 16, 1}, Case{256, 256, 64, 1}, Case{256, 2 * 256 + 8, 64, 1}, Case{70, 253, 256, 8}}) {
        const Tensor q = random_rows(c.Nq, c.D, 1.5f, 4), k = random_rows(c.Nk, c.D, 1.5f, 5), v = random_rows(c.Nk, c.D, 1.0f, 6);
        const Tensor got = memory_attention_core(q, k, v, c.heads, true), want = memory_attention_core(q, k, v, c.heads, false);
        const float diff = test::max_abs_diff(got, want), scale = test::max_abs(want);
        EXPECT_LE(diff, 1e-4f * scale) << "Nq " << c.Nq << ", Nk " << c.Nk << ", D " << c.D << ", " << c.heads << " head(s)";
        if (c.Nk == 1) {  // a single key: every output row is its value
            for (int64_t i = 0; i < c.Nq * c.D; ++i) ASSERT_NEAR(got[i], v[i % c.D], 1e-6f * scale) << i;
        }
    }
}

TEST(Sam2MemoryAttention, MismatchedShapesAreAnError) {
    const Tensor q = random_rows(16, 64, 1.0f, 7), k = random_rows(32, 64, 1.0f, 8), v = random_rows(31, 64, 1.0f, 9);
    EXPECT_THROW(memory_attention_core(q, k, v, 1), Error);
    EXPECT_THROW(memory_attention_core(q, k, k, 3), Error);
    const Tensor none({0, 64});
    EXPECT_THROW(memory_attention_core(q, none, none, 1), Error);
}

}  // namespace
}  // namespace sam
