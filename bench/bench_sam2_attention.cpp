// SAM 2's attention-heavy parts, each timed alone on full-size shapes with random weights:
// the memory attention's core (softmax(q k^T / sqrt(d)) v, `memory_attention_core`) for the
// self-attention of a 64 x 64 frame and for cross-attention to one and to seven memories (with
// object-pointer tokens), and whole Hiera blocks of the tiny trunk at 1024 (a windowed block of
// each stage that has one, and a global block).
// Times are the calling thread's CPU time with one thread, best of `reps` (default 3), so that
// other load on the machine distorts them little.
//   build/bench/bench_sam2_attention [reps] [--gemm] [--only TEXT]
// --gemm: the memory attention as GEMMs (the fused kernel's oracle) instead of the kernel;
// --only (repeatable): just the parts whose name contains TEXT (e.g. "self", "block 0 ");
// --tables: the fused kernel alone on SAM 2's shapes, with zero relative-position tables (what
// SAM 2's callers passed before the kernel had a mode without tables) against none, the two
// alternated call by call (best of `reps` pairs), so that the machine's load falls on both alike.
#include <cmath>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu_time.h"
#include "modeling/common.h"
#include "ops/attention_kernels.h"
#include "ops/threads.h"
#include "sam/sam2.h"
#include "sam2/model.h"
#include "sam2/video_model.h"

namespace sam {
void load_hiera(HieraWeights& h, const WeightLoader& w, const Sam2Config& cfg);  // src/sam2/hiera.cpp
}

using namespace sam;

namespace {

Tensor random_rows(int64_t n, int64_t d, float scale, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0.0f, scale);
    Tensor t({n, d});
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = g(rng);
    return t;
}

// Seconds of one thread's CPU time for f().
template <class F>
double cpu_once(F&& f) {
    timespec a{}, b{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    f();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    return double(b.tv_sec - a.tv_sec) + 1e-9 * double(b.tv_nsec - a.tv_nsec);
}

// One head of `windows` windows of a gh x gw key grid, every token a query, through the fused
// kernel with zero tables and with none, alternated; prints the best of `reps` of each.
void tables_ab(const char* name, int64_t hd, int64_t gh, int64_t gw, int64_t windows, int reps) {
    const int64_t T = gh * gw;
    const Tensor qkv = random_rows(T, 3 * hd, 1.0f, 5);
    std::vector<const float*> q(static_cast<size_t>(T)), k(q), v(q);
    for (int64_t t = 0; t < T; ++t) {
        q[static_cast<size_t>(t)] = qkv.data() + t * 3 * hd;
        k[static_cast<size_t>(t)] = q[static_cast<size_t>(t)] + hd;
        v[static_cast<size_t>(t)] = q[static_cast<size_t>(t)] + 2 * hd;
    }
    Tensor out({T, hd});
    std::vector<float*> o(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) o[static_cast<size_t>(t)] = out.data() + t * hd;
    const std::vector<int64_t> tok(static_cast<size_t>(T), 0);  // as the callers passed them
    const Tensor zeros({2 * std::max(gh, gw) - 1, hd});
    ops::RelPosAttentionParams zero;
    zero.head_dim = hd;
    zero.grid_h = gh;
    zero.grid_w = gw;
    zero.rel_pos_h = zero.rel_pos_w = zeros.data();
    zero.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    ops::RelPosAttentionParams none = zero;
    none.rel_pos_h = none.rel_pos_w = nullptr;
    ops::RelPosAttention with(zero), without(none);
    auto run = [&](ops::RelPosAttention& a, bool tables) {
        for (int64_t w = 0; w < windows; ++w) {
            a.set_keys_values(k.data(), v.data());
            a.attend(T, q.data(), tables ? tok.data() : nullptr, o.data());
        }
    };
    run(with, true);
    run(without, false);
    double best_with = 1e30, best_without = 1e30;
    for (int i = 0; i < reps; ++i) {
        best_with = std::min(best_with, cpu_once([&] { run(with, true); }));
        best_without = std::min(best_without, cpu_once([&] { run(without, false); }));
    }
    std::printf("%-52s zero tables %7.4f s  none %7.4f s  (%.3fx)\n", name, best_with, best_without,
                best_with / best_without);
}

}  // namespace

int main(int argc, char** argv) {
    int reps = 3;
    bool gemm = false, tables = false;
    std::vector<std::string> only;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--gemm") == 0) gemm = true;
        else if (std::strcmp(argv[i], "--tables") == 0) tables = true;
        else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) only.emplace_back(argv[++i]);
        else reps = std::max(1, std::atoi(argv[i]));
    }
    auto wanted = [&](const std::string& name) {
        if (only.empty()) return true;
        for (const std::string& o : only)
            if (name.find(o) != std::string::npos) return true;
        return false;
    };
    ops::ThreadScope one_thread(1);
    std::printf("1 thread, CPU time, best of %d\n", reps);
    if (tables) {  // the shapes of the parts below, one head; Hiera windows as many as one image has
        tables_ab("memory self-attention (64x64 grid, hd 256)", 256, 64, 64, 1, reps);
        tables_ab("Hiera-T stage 1 windows (8x8, hd 96, 1024 windows)", 96, 8, 8, 1024, reps);
        tables_ab("Hiera-T stage 2 windows (4x4, hd 96, 1024 windows)", 96, 4, 4, 1024, reps);
        tables_ab("Hiera-T stage 3 windows (14x14, hd 96, 25 windows)", 96, 14, 14, 25, reps);
        tables_ab("Hiera-T global (64x64, hd 96)", 96, 64, 64, 1, reps);
        return 0;
    }

    // Memory attention: C = 256, one head (sam2.1_hiera_*.yaml), 64 x 64 frame tokens; memories of
    // 4096 tokens each, object pointers as 4 tokens each.
    const int64_t D = 256, N = 4096;
    const Tensor q = random_rows(N, D, 1.5f, 1);
    struct Core { const char* name; int64_t keys; };
    for (Core c : {Core{"memory self-attention (4096 keys)", N}, Core{"cross-attention, 1 memory + 1 pointer (4100)", N + 4},
                   Core{"cross-attention, 7 memories + 16 pointers (28736)", 7 * N + 64}}) {
        if (!wanted(c.name)) continue;
        const Tensor k = random_rows(c.keys, D, 1.5f, 2), v = random_rows(c.keys, D, 1.0f, 3);
        const double s = bench::best_cpu_seconds(reps, [&] { (void)memory_attention_core(q, k, v, 1, !gemm); });
        std::printf("%-52s %8.3f s  %6.1f GFLOP/s\n", c.name, s, 4.0 * N * double(c.keys) * D / s / 1e9);
    }

    // Hiera blocks of the tiny trunk (input 1024: stage grids 256, 128, 64, 32).
    const Sam2Config cfg = sam2_config_for("tiny");
    RandomSource src(1);
    HieraWeights trunk;
    load_hiera(trunk, WeightLoader(src, "image_encoder.trunk"), cfg);
    for (int i : {0, 2, 4, 5, 11}) {
        const HieraBlockWeights& b = trunk.blocks[static_cast<size_t>(i)];
        int side = cfg.image_size / 4;
        for (int j = 0; j < i; ++j) side /= trunk.blocks[static_cast<size_t>(j)].q_pool ? 2 : 1;
        char name[96];
        std::snprintf(name, sizeof name, "Hiera-T block %d (%dx%d, dim %d, %d head%s, %s)", i, side, side, b.dim,
                      b.num_heads, b.num_heads > 1 ? "s" : "",
                      b.window_size ? ("window " + std::to_string(b.window_size)).c_str() : "global");
        if (!wanted(name)) continue;
        const Tensor x = random_rows(int64_t(side) * side, b.dim, 1.0f, 4);
        const double s = bench::best_cpu_seconds(reps, [&] {
            int H = side, W = side;
            (void)hiera_block(b, x.clone(), H, W);  // the block adds into its input: a fresh copy
        });
        std::printf("%-52s %8.3f s\n", name, s);
    }
    return 0;
}
