// The fused relative-position attention kernels (ops/attention_kernels.h) against a
// straightforward double-precision loop, on random shapes including odd sizes: head_dim
// 1, 5, 13 as well as 64 and 80, grids like 3x7 and 17x9, key counts that are no multiple of
// the kernels' blocks, queries in any order and number.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "modeling/image_encoder.h"
#include "ops/attention_kernels.h"
#include "sam/error.h"
#include "test_util.h"

namespace sam {
namespace {

std::vector<float> random_floats(size_t n, std::mt19937& rng, float scale) {
    std::uniform_real_distribution<float> u(-scale, scale);
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
}

// One head over a (gh, gw) grid, rows scattered through a larger buffer as in the qkv tensor.
struct HeadCase {
    int64_t hd, gh, gw;
    std::vector<float> storage, rel_h, rel_w;
    std::vector<const float*> q, k, v;
    float scale;

    HeadCase(int64_t hd_, int64_t gh_, int64_t gw_, std::mt19937& rng, float spread = 1.0f)
        : hd(hd_), gh(gh_), gw(gw_), scale(1.0f / std::sqrt(static_cast<float>(hd_))) {
        const int64_t T = gh * gw, stride = 3 * hd + 7;  // odd row stride: no alignment to rely on
        storage = random_floats(static_cast<size_t>(T * stride + 3 * hd), rng, spread);
        rel_h = random_floats(static_cast<size_t>((2 * gh - 1) * hd), rng, 0.5f * spread);
        rel_w = random_floats(static_cast<size_t>((2 * gw - 1) * hd), rng, 0.5f * spread);
        for (int64_t t = 0; t < T; ++t) {
            const float* row = storage.data() + t * stride;
            q.push_back(row);
            k.push_back(row + hd);
            v.push_back(row + 2 * hd);
        }
    }

    ops::RelPosAttentionParams params() const {
        ops::RelPosAttentionParams p;
        p.head_dim = hd;
        p.grid_h = gh;
        p.grid_w = gw;
        p.rel_pos_h = rel_h.data();
        p.rel_pos_w = rel_w.data();
        p.scale = scale;
        return p;
    }
};

// The definition, in double: softmax over keys of scale q.k + q.Rh[qh - kh + gh - 1] +
// q.Rw[qw - kw + gw - 1], times v.
std::vector<double> naive_attention(const HeadCase& c, const float* q, int64_t tok) {
    const int64_t T = c.gh * c.gw, qh = tok / c.gw, qw = tok % c.gw;
    std::vector<double> s(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
        const int64_t kh = t / c.gw, kw = t % c.gw;
        const float* rh = c.rel_h.data() + (qh - kh + c.gh - 1) * c.hd;
        const float* rw = c.rel_w.data() + (qw - kw + c.gw - 1) * c.hd;
        double dot = 0, rel = 0;
        for (int64_t d = 0; d < c.hd; ++d) {
            dot += double(q[d]) * c.k[size_t(t)][d];
            rel += double(q[d]) * (double(rh[d]) + rw[d]);
        }
        s[size_t(t)] = dot * c.scale + rel;
    }
    const double mx = *std::max_element(s.begin(), s.end());
    double sum = 0;
    for (double& x : s) sum += (x = std::exp(x - mx));
    std::vector<double> out(size_t(c.hd), 0.0);
    for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < c.hd; ++d) out[size_t(d)] += s[size_t(t)] / sum * c.v[size_t(t)][d];
    return out;
}

// Attends `tokens` of c with the given params (tables or none) and kernels; q_tok is passed only
// with tables, so that a kernel reading positions without them would crash the test.
std::vector<float> attend_all(const HeadCase& c, const ops::RelPosAttentionParams& params, const std::vector<int64_t>& tokens,
                              ops::KernelIsa isa) {
    const int64_t nq = static_cast<int64_t>(tokens.size());
    std::vector<const float*> q_rows;
    for (int64_t t : tokens) q_rows.push_back(c.q[size_t(t)]);
    std::vector<float> out(size_t(nq * c.hd), -1.0f);
    std::vector<float*> out_rows;
    for (int64_t i = 0; i < nq; ++i) out_rows.push_back(out.data() + i * c.hd);
    ops::RelPosAttention attention(params);
    attention.set_keys_values(c.k.data(), c.v.data());
    attention.attend(nq, q_rows.data(), params.rel_pos_h ? tokens.data() : nullptr, out_rows.data(), isa);
    return out;
}

// Attends the given tokens (any order, any count) and compares with the definition:
// max abs difference <= rel x the largest output magnitude.
::testing::AssertionResult matches_naive(const HeadCase& c, const std::vector<int64_t>& tokens, ops::KernelIsa isa,
                                         double rel = 1e-5) {
    const int64_t nq = static_cast<int64_t>(tokens.size());
    const std::vector<float> out = attend_all(c, c.params(), tokens, isa);
    double max_diff = 0, max_mag = 0;
    for (int64_t i = 0; i < nq; ++i) {
        const std::vector<double> want = naive_attention(c, c.q[size_t(tokens[size_t(i)])], tokens[size_t(i)]);
        for (int64_t d = 0; d < c.hd; ++d) {
            max_diff = std::max(max_diff, std::fabs(out[size_t(i * c.hd + d)] - want[size_t(d)]));
            max_mag = std::max(max_mag, std::fabs(want[size_t(d)]));
        }
    }
    if (!(max_diff <= rel * max_mag))
        return ::testing::AssertionFailure() << ops::to_string(isa) << ": hd " << c.hd << " grid " << c.gh << "x" << c.gw << " nq " << nq
                                             << ": max abs diff " << max_diff << " > " << rel << " x " << max_mag;
    return ::testing::AssertionSuccess();
}

std::vector<int64_t> all_tokens(const HeadCase& c) {
    std::vector<int64_t> t(static_cast<size_t>(c.gh * c.gw));
    for (size_t i = 0; i < t.size(); ++i) t[i] = int64_t(i);
    return t;
}

std::vector<int64_t> random_tokens(const HeadCase& c, int64_t n, std::mt19937& rng) {
    std::uniform_int_distribution<int64_t> u(0, c.gh * c.gw - 1);
    std::vector<int64_t> t(static_cast<size_t>(n));
    for (int64_t& x : t) x = u(rng);
    return t;
}

// Every kernel set (portable, AVX2, AVX-512) runs every case; a set this CPU cannot run is
// reported as skipped, with the reason.
class AttentionKernels : public ::testing::TestWithParam<ops::KernelIsa> {
  protected:
    void SetUp() override {
        if (!ops::cpu_runs(GetParam()))
            GTEST_SKIP() << "skipped: CPU lacks " << ops::to_string(GetParam()) << " (it has: "
                         << ops::cpu_features().summary() << ")";
    }
};

INSTANTIATE_TEST_SUITE_P(Isa, AttentionKernels,
                         ::testing::Values(ops::KernelIsa::Portable, ops::KernelIsa::Avx2, ops::KernelIsa::Avx512),
                         [](const auto& p) { return std::string(ops::to_string(p.param)); });

TEST_P(AttentionKernels, MatchNaiveOnOddShapes) {
    std::mt19937 rng(11);
    struct Shape { int64_t hd, gh, gw; };
    for (Shape s : {Shape{1, 1, 1}, Shape{5, 3, 7}, Shape{13, 17, 9}, Shape{8, 14, 14}, Shape{7, 2, 65},
                    Shape{64, 14, 14}, Shape{80, 14, 14}, Shape{6, 11, 23}}) {
        HeadCase c(s.hd, s.gh, s.gw, rng);
        EXPECT_TRUE(matches_naive(c, all_tokens(c), GetParam()));
        EXPECT_TRUE(matches_naive(c, random_tokens(c, 1 + int64_t(rng() % 150), rng), GetParam()));
    }
}

TEST_P(AttentionKernels, MatchNaiveOnGlobalGrid) {
    std::mt19937 rng(12);
    for (int64_t hd : {64, 80, 13}) {  // 4096 keys: 33 key blocks with a short last one
        HeadCase c(hd, 64, 64, rng);
        EXPECT_TRUE(matches_naive(c, random_tokens(c, 83, rng), GetParam()));
    }
}

// Scores spread over hundreds: exponentials underflow, and the running maximum grows from key
// block to key block, so the output accumulator is rescaled many times.
TEST_P(AttentionKernels, MatchNaiveWithLargeGrowingScores) {
    std::mt19937 rng(13);
    HeadCase c(16, 40, 37, rng);
    const int64_t T = c.gh * c.gw;
    std::vector<float> keys(size_t(T * c.hd));
    for (int64_t t = 0; t < T; ++t)  // k_t = (t / T) * 200 * (1, 1, ...) + noise: later keys score higher
        for (int64_t d = 0; d < c.hd; ++d)
            keys[size_t(t * c.hd + d)] = 200.0f * float(t) / float(T) + c.k[size_t(t)][d];
    for (int64_t t = 0; t < T; ++t) c.k[size_t(t)] = keys.data() + t * c.hd;
    std::vector<float> queries(size_t(T * c.hd));
    for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < c.hd; ++d) queries[size_t(t * c.hd + d)] = 0.5f + 0.5f * c.q[size_t(t)][d];
    for (int64_t t = 0; t < T; ++t) c.q[size_t(t)] = queries.data() + t * c.hd;
    // Logits of magnitude ~600 carry float rounding of ~1e-4 (absolute), which the outputs
    // inherit: the tolerance is looser than elsewhere, and still far below any slip in the
    // rescaling, which would be of order one.
    const double rel = 1e-3;
    EXPECT_TRUE(matches_naive(c, random_tokens(c, 70, rng), GetParam(), rel));
    // The same keys in reverse order: the maximum comes first, later blocks underflow.
    HeadCase r = c;
    std::reverse(r.k.begin(), r.k.end());
    std::reverse(r.v.begin(), r.v.end());
    EXPECT_TRUE(matches_naive(r, random_tokens(r, 70, rng), GetParam(), rel));
}

// Windows point their padding tokens at one shared row; heads reuse one object.
TEST_P(AttentionKernels, SharedRowsAndReusedObject) {
    std::mt19937 rng(14);
    HeadCase a(13, 5, 5, rng), b(13, 5, 5, rng);
    b.rel_h = a.rel_h;  // one layer: the tables are shared by its heads
    b.rel_w = a.rel_w;
    for (int64_t t = 17; t < 25; ++t) {  // the last tokens are padding: one row for all of them
        b.k[size_t(t)] = b.k[16];
        b.v[size_t(t)] = b.v[16];
    }
    const std::vector<int64_t> tokens = all_tokens(a);
    std::vector<const float*> qa, qb;
    for (int64_t t : tokens) {
        qa.push_back(a.q[size_t(t)]);
        qb.push_back(b.q[size_t(t)]);
    }
    std::vector<float> out_a(25 * 13), out_b(25 * 13);
    std::vector<float*> rows_a, rows_b;
    for (int64_t i = 0; i < 25; ++i) {
        rows_a.push_back(out_a.data() + i * 13);
        rows_b.push_back(out_b.data() + i * 13);
    }
    ops::RelPosAttention attention(a.params());
    attention.set_keys_values(a.k.data(), a.v.data());
    attention.attend(25, qa.data(), tokens.data(), rows_a.data(), GetParam());
    attention.set_keys_values(b.k.data(), b.v.data());
    attention.attend(25, qb.data(), tokens.data(), rows_b.data(), GetParam());
    EXPECT_TRUE(matches_naive(b, tokens, GetParam()));
    for (int64_t i = 0; i < 25; ++i) {
        const std::vector<double> want_a = naive_attention(a, qa[size_t(i)], i), want_b = naive_attention(b, qb[size_t(i)], i);
        for (int64_t d = 0; d < 13; ++d) {
            EXPECT_NEAR(out_a[size_t(i * 13 + d)], want_a[size_t(d)], 1e-5);
            EXPECT_NEAR(out_b[size_t(i * 13 + d)], want_b[size_t(d)], 1e-5);
        }
    }
}

// ---- Without relative-position tables (SAM 2's Hiera and memory attention) ----

// The no-table mode against zero tables: the same scores (adding q . 0 changes no score), so
// the same outputs bit for bit; and against the definition with zero tables within 1e-5 of the
// largest output. Key counts from 1 to past two key blocks (252 keys each), including primes,
// which no grid but 1 x n holds; head sizes odd and even.
TEST_P(AttentionKernels, NoTablesEqualZeroTables) {
    std::mt19937 rng(16);
    struct Shape { int64_t hd, keys; };
    for (Shape s : {Shape{1, 1}, Shape{5, 7}, Shape{13, 251}, Shape{64, 253}, Shape{8, 504}, Shape{96, 64},
                    Shape{80, 509}, Shape{256, 1031}, Shape{6, 16}}) {
        HeadCase c(s.hd, 1, s.keys, rng);
        std::fill(c.rel_h.begin(), c.rel_h.end(), 0.0f);
        std::fill(c.rel_w.begin(), c.rel_w.end(), 0.0f);
        std::vector<std::vector<int64_t>> queries = {random_tokens(c, 1 + int64_t(rng() % 150), rng)};
        if (s.keys <= 300) queries.push_back(all_tokens(c));
        for (const std::vector<int64_t>& tokens : queries) {
            ops::RelPosAttentionParams none = c.params();
            none.rel_pos_h = none.rel_pos_w = nullptr;
            const std::vector<float> got = attend_all(c, none, tokens, GetParam()), want = attend_all(c, c.params(), tokens, GetParam());
            EXPECT_EQ(got, want) << "hd " << s.hd << " keys " << s.keys << " nq " << tokens.size();
            EXPECT_TRUE(matches_naive(c, tokens, GetParam()));  // the zero tables' result is right
        }
    }
}

// Without tables the grid only counts the keys: a 7 x 9 grid and a 1 x 63 grid give the same
// outputs bit for bit (as in a Hiera window, whose keys are a grid).
TEST_P(AttentionKernels, NoTablesIgnoreTheGridShape) {
    std::mt19937 rng(17);
    HeadCase c(24, 7, 9, rng);
    ops::RelPosAttentionParams grid = c.params(), line = c.params();
    grid.rel_pos_h = grid.rel_pos_w = line.rel_pos_h = line.rel_pos_w = nullptr;
    line.grid_h = 1;
    line.grid_w = 63;
    const std::vector<int64_t> tokens = random_tokens(c, 40, rng);
    EXPECT_EQ(attend_all(c, grid, tokens, GetParam()), attend_all(c, line, tokens, GetParam()));
}

TEST(AttentionKernels, OneTableAloneIsAnError) {
    std::mt19937 rng(18);
    HeadCase c(8, 3, 3, rng);
    ops::RelPosAttentionParams params = c.params();
    params.rel_pos_w = nullptr;
    EXPECT_THROW(ops::RelPosAttention{params}, Error);
}

// ---- bf16 products (the bf16 and int8 encoders' kernels) ----

// Attends the given tokens with bf16 products and with the portable fp32 kernels; the largest
// difference over the outputs, as a fraction of the largest |value| component (outputs are
// convex combinations of the values).
double bf16_vs_portable(const HeadCase& c, const std::vector<int64_t>& tokens) {
    const int64_t nq = static_cast<int64_t>(tokens.size());
    std::vector<const float*> q_rows;
    for (int64_t t : tokens) q_rows.push_back(c.q[size_t(t)]);
    auto run = [&](bool bf16) {
        std::vector<float> out(size_t(nq * c.hd), -1.0f);
        std::vector<float*> out_rows;
        for (int64_t i = 0; i < nq; ++i) out_rows.push_back(out.data() + i * c.hd);
        ops::RelPosAttentionParams params = c.params();
        params.bf16_products = bf16;
        ops::RelPosAttention attention(params);
        attention.set_keys_values(c.k.data(), c.v.data());
        attention.attend(nq, q_rows.data(), tokens.data(), out_rows.data(), ops::KernelIsa::Portable);
        return out;
    };
    const std::vector<float> got = run(true), want = run(false);
    double max_diff = 0, max_v = 0;
    for (size_t i = 0; i < got.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(got[i] - want[i])));
    for (const float* v : c.v)
        for (int64_t d = 0; d < c.hd; ++d) max_v = std::max(max_v, double(std::fabs(v[d])));
    return max_diff / max_v;
}

// The bound: bf16 keeps 8 significant bits (relative rounding <= 2^-9 ~ 2e-3) in the queries,
// keys, probabilities and values; the output, a weighted mean of values, moves by about one
// such rounding of the largest value (measured: at most 1.4e-3 over the cases below). Two
// roundings' worth:
constexpr double kBf16Tolerance = 4e-3;

class AttentionKernelsBf16 : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!ops::bf16_attention_supported())
            GTEST_SKIP() << "skipped: CPU lacks AVX512-BF16 (or AVX-512 F/BW/DQ/VL) for the bf16 products (it has: "
                         << ops::cpu_features().summary() << ")";
    }
};

TEST_F(AttentionKernelsBf16, MatchPortableOnOddShapes) {
    std::mt19937 rng(21);
    struct Shape { int64_t hd, gh, gw; };
    for (Shape s : {Shape{1, 1, 1}, Shape{5, 3, 7}, Shape{13, 17, 9}, Shape{8, 14, 14}, Shape{7, 2, 65},
                    Shape{64, 14, 14}, Shape{80, 14, 14}, Shape{6, 11, 23}}) {
        HeadCase c(s.hd, s.gh, s.gw, rng);
        for (const std::vector<int64_t>& tokens : {all_tokens(c), random_tokens(c, 1 + int64_t(rng() % 150), rng)}) {
            const double err = bf16_vs_portable(c, tokens);
            EXPECT_LE(err, kBf16Tolerance) << "hd " << s.hd << " grid " << s.gh << "x" << s.gw << " nq " << tokens.size();
            std::printf("hd %2lld grid %2lldx%-2lld nq %3zu: max diff / max |v| %.2e\n", (long long)s.hd,
                        (long long)s.gh, (long long)s.gw, tokens.size(), err);
        }
    }
}

TEST_F(AttentionKernelsBf16, MatchPortableOnGlobalGrid) {
    std::mt19937 rng(22);
    for (int64_t hd : {64, 80, 13}) {  // 4096 keys: 17 key blocks with a short last one
        HeadCase c(hd, 64, 64, rng);
        const double err = bf16_vs_portable(c, random_tokens(c, 83, rng));
        EXPECT_LE(err, kBf16Tolerance) << "hd " << hd;
        std::printf("hd %2lld grid 64x64: max diff / max |v| %.2e\n", (long long)hd, err);
    }
}

// Scores of magnitude hundreds, growing from key block to key block (the running maximum and
// the accumulator's rescaling), then falling. The large part comes from the relative-position
// terms, which stay fp32: bf16 products of logits that large would round them by whole units,
// while the encoder's products are of order one.
TEST_F(AttentionKernelsBf16, MatchPortableWithLargeGrowingScores) {
    std::mt19937 rng(23);
    HeadCase c(16, 40, 37, rng);
    const int64_t T = c.gh * c.gw;
    std::vector<float> queries(size_t(T * c.hd));
    for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < c.hd; ++d) queries[size_t(t * c.hd + d)] = 0.5f + 0.5f * c.q[size_t(t)][d];
    for (int64_t t = 0; t < T; ++t) c.q[size_t(t)] = queries.data() + t * c.hd;
    for (bool growing : {true, false}) {
        // rel_h[r] = +-(r - gh + 1) * 20 / hd: the term q . rel_h[qh - kh + gh - 1] ~ -+(kh - qh) * 15
        for (int64_t r = 0; r < 2 * c.gh - 1; ++r)
            for (int64_t d = 0; d < c.hd; ++d)
                c.rel_h[size_t(r * c.hd + d)] = (growing ? -20.0f : 20.0f) * float(r - c.gh + 1) / float(c.hd);
        const double err = bf16_vs_portable(c, random_tokens(c, 70, rng));
        EXPECT_LE(err, kBf16Tolerance) << (growing ? "growing" : "falling");
        std::printf("%s scores: max diff / max |v| %.2e\n", growing ? "growing" : "falling", err);
    }
}

// Heads reuse one object (keys and values repacked) and padding tokens share one row.
TEST_F(AttentionKernelsBf16, SharedRowsAndReusedObject) {
    std::mt19937 rng(24);
    HeadCase a(13, 5, 5, rng), b(13, 5, 5, rng);
    b.rel_h = a.rel_h;
    b.rel_w = a.rel_w;
    for (int64_t t = 17; t < 25; ++t) {
        b.k[size_t(t)] = b.k[16];
        b.v[size_t(t)] = b.v[16];
    }
    const std::vector<int64_t> tokens = all_tokens(a);
    std::vector<const float*> qa, qb;
    for (int64_t t : tokens) {
        qa.push_back(a.q[size_t(t)]);
        qb.push_back(b.q[size_t(t)]);
    }
    std::vector<float> out_a(25 * 13), out_b(25 * 13);
    std::vector<float*> rows_a, rows_b;
    for (int64_t i = 0; i < 25; ++i) {
        rows_a.push_back(out_a.data() + i * 13);
        rows_b.push_back(out_b.data() + i * 13);
    }
    ops::RelPosAttentionParams params = a.params();
    params.bf16_products = true;
    ops::RelPosAttention attention(params);
    attention.set_keys_values(a.k.data(), a.v.data());
    attention.attend(25, qa.data(), tokens.data(), rows_a.data(), ops::KernelIsa::Avx512);
    attention.set_keys_values(b.k.data(), b.v.data());
    attention.attend(25, qb.data(), tokens.data(), rows_b.data(), ops::KernelIsa::Avx512);
    for (int64_t i = 0; i < 25; ++i) {
        const std::vector<double> want_a = naive_attention(a, qa[size_t(i)], i), want_b = naive_attention(b, qb[size_t(i)], i);
        for (int64_t d = 0; d < 13; ++d) {
            EXPECT_NEAR(out_a[size_t(i * 13 + d)], want_a[size_t(d)], kBf16Tolerance);
            EXPECT_NEAR(out_b[size_t(i * 13 + d)], want_b[size_t(d)], kBf16Tolerance);
        }
    }
}

// Without tables, bf16 products: bit for bit the zero tables' result, and within the bf16
// tolerance of the portable fp32 kernels.
TEST_F(AttentionKernelsBf16, NoTablesEqualZeroTables) {
    std::mt19937 rng(26);
    struct Shape { int64_t hd, keys; };
    for (Shape s : {Shape{1, 1}, Shape{5, 7}, Shape{13, 251}, Shape{64, 253}, Shape{96, 64}, Shape{256, 1031}}) {
        HeadCase c(s.hd, 1, s.keys, rng);
        std::fill(c.rel_h.begin(), c.rel_h.end(), 0.0f);
        std::fill(c.rel_w.begin(), c.rel_w.end(), 0.0f);
        const std::vector<int64_t> tokens = random_tokens(c, 1 + int64_t(rng() % 150), rng);
        ops::RelPosAttentionParams zero = c.params(), none = c.params();
        zero.bf16_products = none.bf16_products = true;
        none.rel_pos_h = none.rel_pos_w = nullptr;
        const std::vector<float> got = attend_all(c, none, tokens, ops::KernelIsa::Avx512);
        EXPECT_EQ(got, attend_all(c, zero, tokens, ops::KernelIsa::Avx512)) << "hd " << s.hd << " keys " << s.keys;
        EXPECT_LE(bf16_vs_portable(c, tokens), kBf16Tolerance) << "hd " << s.hd << " keys " << s.keys;
    }
}

// The encoders take bf16 products only where the CPU runs them, the AVX-512 kernels are in use
// and they measured faster than fp32 ones; an override forces either way.
TEST(AttentionKernels, Bf16ChoiceFollowsTheCpu) {
    const double ratio = ops::bf16_attention_speed_ratio();
    std::printf("CPU: %s; vdpbf16ps / fp32 FMA multiply-add rate %.2f; bf16 products chosen: %s\n",
                ops::cpu_features().summary().c_str(), ratio, ops::bf16_attention_preferred() ? "yes" : "no");
    if (!ops::bf16_attention_supported()) {
        EXPECT_EQ(ratio, 0.0);
        EXPECT_FALSE(ops::bf16_attention_preferred());
        EXPECT_THROW(ops::set_bf16_attention_override(1), Error);
        return;
    }
    EXPECT_GT(ratio, 0.0);
    if (!std::getenv("SAM_ATTENTION_BF16")) {
        EXPECT_EQ(ops::bf16_attention_preferred(), ops::kernel_isa() == ops::KernelIsa::Avx512 && ratio > 1.25);
    }
    ops::set_bf16_attention_override(1);
    EXPECT_TRUE(ops::bf16_attention_preferred());
    ops::set_bf16_attention_override(0);
    EXPECT_FALSE(ops::bf16_attention_preferred());
    ops::set_bf16_attention_override(-1);
}

// Asking for bf16 products where the CPU lacks them is an error, not a wrong result.
TEST(AttentionKernels, Bf16ProductsNeedTheInstructions) {
    std::mt19937 rng(25);
    HeadCase c(8, 3, 3, rng);
    ops::RelPosAttentionParams params = c.params();
    params.bf16_products = true;
    if (ops::bf16_attention_supported()) EXPECT_NO_THROW(ops::RelPosAttention{params});
    else EXPECT_THROW(ops::RelPosAttention{params}, Error);
}

// encoder_attention on odd grids, windowed (with padding) and global, odd head sizes: the
// qkv projection and the window bookkeeping around the kernel, against the reference's steps
// (zero-pad the grid, project, attend within each window, crop).
Tensor encoder_attention_naive(const EncoderBlockWeights& w, const Tensor& x, int H, int W, int heads) {
    const int64_t C = x.dim(1), hd = C / heads;
    const int ws = w.window_size, wh = ws ? ws : H, ww = ws ? ws : W;
    const int Hp = ws ? (H + ws - 1) / ws * ws : H, Wp = ws ? (W + ws - 1) / ws * ws : W;
    std::vector<float> qkv(size_t(int64_t(Hp) * Wp * 3 * C));
    for (int y = 0; y < Hp; ++y)
        for (int xx = 0; xx < Wp; ++xx)
            for (int64_t o = 0; o < 3 * C; ++o) {
                double acc = w.qkv.b[o];
                if (y < H && xx < W)
                    for (int64_t c = 0; c < C; ++c) acc += double(x[(int64_t(y) * W + xx) * C + c]) * w.qkv.w[o * C + c];
                qkv[size_t((int64_t(y) * Wp + xx) * 3 * C + o)] = float(acc);
            }
    Tensor out({int64_t(H) * W, C});
    for (int wy = 0; wy < Hp / wh; ++wy)
        for (int wx = 0; wx < Wp / ww; ++wx)
            for (int h = 0; h < heads; ++h) {
                std::mt19937 unused(0);
                HeadCase c(hd, wh, ww, unused);
                c.rel_h.assign(w.rel_pos_h.data(), w.rel_pos_h.data() + w.rel_pos_h.numel());
                c.rel_w.assign(w.rel_pos_w.data(), w.rel_pos_w.data() + w.rel_pos_w.numel());
                for (int t = 0; t < wh * ww; ++t) {
                    const int64_t row = int64_t(wy * wh + t / ww) * Wp + wx * ww + t % ww;
                    c.q[size_t(t)] = qkv.data() + row * 3 * C + h * hd;
                    c.k[size_t(t)] = qkv.data() + row * 3 * C + C + h * hd;
                    c.v[size_t(t)] = qkv.data() + row * 3 * C + 2 * C + h * hd;
                }
                for (int t = 0; t < wh * ww; ++t) {
                    const int gy = wy * wh + t / ww, gx = wx * ww + t % ww;
                    if (gy >= H || gx >= W) continue;
                    const std::vector<double> o = naive_attention(c, c.q[size_t(t)], t);
                    for (int64_t d = 0; d < hd; ++d) out[(int64_t(gy) * W + gx) * C + h * hd + d] = float(o[size_t(d)]);
                }
            }
    return out;
}

TEST(AttentionKernels, EncoderAttentionOnOddGrids) {
    std::mt19937 rng(15);
    struct Case { int H, W, window, heads, hd; };
    for (Case cs : {Case{3, 7, 0, 2, 5}, Case{17, 9, 0, 1, 13}, Case{17, 9, 5, 3, 5}, Case{3, 7, 4, 2, 13},
                    Case{16, 16, 14, 2, 8}, Case{9, 11, 3, 4, 1}}) {
        const int64_t C = int64_t(cs.heads) * cs.hd;
        auto tensor = [&](Shape shape, float scale) {
            Tensor t(std::move(shape));
            std::uniform_real_distribution<float> u(-scale, scale);
            for (int64_t i = 0; i < t.numel(); ++i) t[i] = u(rng);
            return t;
        };
        EncoderBlockWeights w;
        w.window_size = cs.window;
        w.qkv = make_linear(tensor({3 * C, C}, 0.5f), tensor({3 * C}, 0.5f));
        const int gh = cs.window ? cs.window : cs.H, gw = cs.window ? cs.window : cs.W;
        w.rel_pos_h = tensor({2 * gh - 1, cs.hd}, 0.5f);
        w.rel_pos_w = tensor({2 * gw - 1, cs.hd}, 0.5f);
        const Tensor x = tensor({int64_t(cs.H) * cs.W, C}, 1.0f);
        const Tensor got = encoder_attention(w, x, cs.H, cs.W, cs.heads);
        const Tensor want = encoder_attention_naive(w, x, cs.H, cs.W, cs.heads);
        EXPECT_TRUE(test::close_to_reference(got, want, 1e-5f))
            << cs.H << "x" << cs.W << " window " << cs.window << " heads " << cs.heads << " hd " << cs.hd;
    }
}

}  // namespace
}  // namespace sam
