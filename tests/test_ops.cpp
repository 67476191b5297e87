// Fast kernels against plain reference loops, on random shapes including odd sizes.
#include <cmath>
#include <random>
#include <vector>

#include "modeling/image_encoder.h"
#include "ops/cpu.h"
#include "ops/matmul.h"
#include "ops/ops.h"
#include "ops/vector_math.h"
#include "sam/sam.h"
#include "test_util.h"

namespace sam {
namespace {

Tensor random_tensor(Shape shape, std::mt19937& rng, float scale = 1.0f) {
    Tensor t(std::move(shape));
    std::uniform_real_distribution<float> u(-scale, scale);
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = u(rng);
    return t;
}

double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

TEST(Ops, PackedLinearMatchesNaiveOnOddShapes) {
    std::mt19937 rng(1);
    for (auto [M, K, N] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {7, 13, 5}, {33, 64, 17}, {130, 31, 96}}) {
        Tensor x = random_tensor({M, K}, rng), w = random_tensor({N, K}, rng), b = random_tensor({N}, rng);
        Tensor res = random_tensor({M, N}, rng);
        ops::PackedLinear l(w, b);
        for (auto e : {ops::Epilogue::None, ops::Epilogue::Gelu, ops::Epilogue::Relu, ops::Epilogue::Residual}) {
            Tensor y = e == ops::Epilogue::Residual ? res.clone() : Tensor({M, N});
            l.forward(x.data(), M, y.data(), e);
            for (int64_t i = 0; i < M; ++i)
                for (int64_t j = 0; j < N; ++j) {
                    double acc = b[j];
                    for (int64_t k = 0; k < K; ++k) acc += double(x[i * K + k]) * w[j * K + k];
                    if (e == ops::Epilogue::Gelu) acc = gelu_ref(acc);
                    if (e == ops::Epilogue::Relu) acc = acc > 0 ? acc : 0;
                    if (e == ops::Epilogue::Residual) acc += res[i * N + j];
                    ASSERT_NEAR(y[i * N + j], acc, 1e-4 * (1 + std::fabs(acc))) << M << "x" << K << "x" << N;
                }
        }
    }
}

// From ops::kConvertF32WeightsRows rows on, fp32 calls use weights converted into the library's
// layout (on AVX-512; its AVX2 GEMM takes them in place): the same products as the in-place
// weights of smaller calls, and one copy per layout however many row counts and epilogues use it.
TEST(Ops, PackedLinearConvertedWeightsMatchInPlaceAndAreShared) {
    std::mt19937 rng(2);
    const int64_t M = 1024, K = 96, N = 80, chunk = 256;
    Tensor x = random_tensor({2 * M, K}, rng), w = random_tensor({N, K}, rng), b = random_tensor({N}, rng);
    ops::PackedLinear l(w, b);
    for (auto e : {ops::Epilogue::None, ops::Epilogue::Gelu, ops::Epilogue::Residual}) {
        for (int64_t rows : {M, 2 * M}) {
            Tensor whole({rows, N}), parts({rows, N});
            l.forward(x.data(), rows, whole.data(), e);
            for (int64_t r0 = 0; r0 < rows; r0 += chunk)  // in place: fewer rows than the threshold
                l.forward(x.data() + r0 * K, chunk, parts.data() + r0 * N, e);
            for (int64_t i = 0; i < rows * N; ++i)
                ASSERT_NEAR(whole[i], parts[i], 1e-5 * (1 + std::fabs(parts[i]))) << "rows " << rows << " at " << i;
        }
    }
    // AVX-512 and later: one copy in the batch-reduce kernels' layout; AVX2: none, in place.
    EXPECT_EQ(l.converted_weight_copies(), ops::gemm_library_isa().rfind("avx512", 0) == 0 ? 1u : 0u)
        << ops::gemm_library_isa();
}

TEST(Ops, LayerNormAndGeluMatchReference) {
    std::mt19937 rng(3);
    Tensor x = random_tensor({9, 37}, rng, 4.0f), g = random_tensor({37}, rng), b = random_tensor({37}, rng);
    Tensor y = x.clone();
    ops::layer_norm(y.data(), 9, 37, g.data(), b.data(), 1e-6f);
    for (int64_t r = 0; r < 9; ++r) {
        double mean = 0, var = 0;
        for (int64_t c = 0; c < 37; ++c) mean += x[r * 37 + c] / 37.0;
        for (int64_t c = 0; c < 37; ++c) var += std::pow(x[r * 37 + c] - mean, 2) / 37.0;
        for (int64_t c = 0; c < 37; ++c)
            ASSERT_NEAR(y[r * 37 + c], (x[r * 37 + c] - mean) / std::sqrt(var + 1e-6) * g[c] + b[c], 1e-5);
    }
    Tensor z = x.clone();
    ops::gelu_inplace(z.data(), z.numel());
    for (int64_t i = 0; i < z.numel(); ++i) ASSERT_NEAR(z[i], gelu_ref(x[i]), 1e-6);
}

// Portable oracle for the encoder attention: pad the grid with zero tokens, project, attend
// within each window with decomposed relative positions, crop: the reference's steps literally.
Tensor attention_reference(const EncoderBlockWeights& w, const Tensor& x, int H, int W, int heads) {
    const int64_t C = x.dim(1), hd = C / heads;
    const int ws = w.window_size, wh = ws ? ws : H, ww = ws ? ws : W;
    const int Hp = ws ? (H + ws - 1) / ws * ws : H, Wp = ws ? (W + ws - 1) / ws * ws : W;
    Tensor padded({int64_t(Hp) * Wp, C});
    for (int y = 0; y < H; ++y)
        for (int xx = 0; xx < W; ++xx)
            for (int64_t c = 0; c < C; ++c) padded[(int64_t(y) * Wp + xx) * C + c] = x[(int64_t(y) * W + xx) * C + c];
    Tensor qkv({int64_t(Hp) * Wp, 3 * C});
    for (int64_t t = 0; t < int64_t(Hp) * Wp; ++t)
        for (int64_t o = 0; o < 3 * C; ++o) {
            double acc = w.qkv.b[o];
            for (int64_t c = 0; c < C; ++c) acc += double(padded[t * C + c]) * w.qkv.w[o * C + c];
            qkv[t * 3 * C + o] = float(acc);
        }
    Tensor out({int64_t(H) * W, C});
    const double scale = 1.0 / std::sqrt(double(hd));
    for (int wy = 0; wy < Hp / wh; ++wy)
        for (int wx = 0; wx < Wp / ww; ++wx)
            for (int h = 0; h < heads; ++h)
                for (int qi = 0; qi < wh * ww; ++qi) {
                    const int qh = qi / ww, qw = qi % ww, gy = wy * wh + qh, gx = wx * ww + qw;
                    const float* q = qkv.data() + (int64_t(gy) * Wp + gx) * 3 * C + h * hd;
                    std::vector<double> s(size_t(wh) * ww);
                    for (int ki = 0; ki < wh * ww; ++ki) {
                        const int kh = ki / ww, kw = ki % ww;
                        const float* k = qkv.data() + (int64_t(wy * wh + kh) * Wp + wx * ww + kw) * 3 * C + C + h * hd;
                        double dot = 0, relh = 0, relw = 0;
                        for (int64_t c = 0; c < hd; ++c) {
                            dot += double(q[c]) * k[c];
                            relh += double(q[c]) * w.rel_pos_h[(qh - kh + wh - 1) * hd + c];
                            relw += double(q[c]) * w.rel_pos_w[(qw - kw + ww - 1) * hd + c];
                        }
                        s[size_t(ki)] = dot * scale + relh + relw;
                    }
                    double mx = *std::max_element(s.begin(), s.end()), sum = 0;
                    for (double& v : s) sum += (v = std::exp(v - mx));
                    if (gy >= H || gx >= W) continue;  // cropped away
                    for (int64_t c = 0; c < hd; ++c) {
                        double acc = 0;
                        for (int ki = 0; ki < wh * ww; ++ki) {
                            const int kh = ki / ww, kw = ki % ww;
                            acc += s[size_t(ki)] / sum *
                                   qkv[(int64_t(wy * wh + kh) * Wp + wx * ww + kw) * 3 * C + 2 * C + h * hd + c];
                        }
                        out[(int64_t(gy) * W + gx) * C + h * hd + c] = float(acc);
                    }
                }
    return out;
}

TEST(Ops, EncoderAttentionMatchesPortableReference) {
    std::mt19937 rng(4);
    struct Case { int H, W, window, heads, C; };
    for (Case cs : {Case{9, 9, 4, 2, 16}, Case{7, 5, 3, 1, 8}, Case{6, 6, 0, 2, 16}, Case{5, 9, 0, 4, 16}, Case{14, 14, 14, 2, 8}}) {
        const int64_t hd = cs.C / cs.heads;
        EncoderBlockWeights w;
        w.window_size = cs.window;
        w.qkv = make_linear(random_tensor({3 * cs.C, cs.C}, rng, 0.5f), random_tensor({3 * cs.C}, rng, 0.5f));
        const int rel_h = 2 * (cs.window ? cs.window : cs.H) - 1, rel_w = 2 * (cs.window ? cs.window : cs.W) - 1;
        w.rel_pos_h = random_tensor({rel_h, hd}, rng, 0.5f);
        w.rel_pos_w = random_tensor({rel_w, hd}, rng, 0.5f);
        Tensor x = random_tensor({int64_t(cs.H) * cs.W, cs.C}, rng);
        Tensor got = encoder_attention(w, x, cs.H, cs.W, cs.heads);
        Tensor want = attention_reference(w, x, cs.H, cs.W, cs.heads);
        EXPECT_LT(test::max_abs_diff(got, want), 1e-4f) << cs.H << "x" << cs.W << " window " << cs.window;
    }
}

// The vectorisable exp and GELU (ops/vector_math.h) against libm over their whole ranges.
TEST(Ops, VectorMathMatchesLibm) {
    float worst_exp = 0.0f;
    for (float x = -87.0f; x <= 0.0f; x += 0.0013f) {
        const float want = std::exp(x);
        worst_exp = std::max(worst_exp, std::fabs(ops::exp_nonpositive(x) - want) / want);
    }
    EXPECT_LE(worst_exp, 3e-7f);
    EXPECT_EQ(ops::exp_nonpositive(-200.0f), 0.0f);
    EXPECT_EQ(ops::exp_nonpositive(0.0f), 1.0f);

    double worst_gelu = 0.0;
    for (float x = -12.0f; x <= 12.0f; x += 0.0007f) {
        const double want = 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
        worst_gelu = std::max(worst_gelu, std::fabs(ops::gelu_erf(x) - want));
    }
    EXPECT_LE(worst_gelu, 2e-6);  // A&S 7.1.26: |erf error| <= 1.5e-7, times |x|/2 <= 6

    std::vector<float> v = {3.0f, -1.0f, 0.5f, 3.0f, -40.0f};
    std::vector<double> want(v.size());
    double sum = 0.0;
    for (size_t i = 0; i < v.size(); ++i) sum += want[i] = std::exp(double(v[i]) - 3.0);
    ops::softmax_inplace(v.data(), static_cast<int64_t>(v.size()));
    for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], want[i] / sum, 1e-7) << i;
}

}  // namespace
}  // namespace sam
