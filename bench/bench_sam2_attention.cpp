// SAM 2's attention-heavy parts, each timed alone on full-size shapes with random weights:
// the memory attention's core (softmax(q k^T / sqrt(d)) v, `memory_attention_core`) for the
// self-attention of a 64 x 64 frame and for cross-attention to one and to seven memories (with
// object-pointer tokens), and whole Hiera blocks of the tiny trunk at 1024 (a windowed block of
// each stage that has one, and a global block).
// Times are the calling thread's CPU time with one thread, best of `reps` (default 3), so that
// other load on the machine distorts them little.
//   build/bench/bench_sam2_attention [reps] [--gemm]
// --gemm: the memory attention as GEMMs (the fused kernel's oracle) instead of the kernel.
#include <ctime>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "modeling/common.h"
#include "ops/threads.h"
#include "sam/sam2.h"
#include "sam2/model.h"
#include "sam2/video_model.h"

namespace sam {
void load_hiera(HieraWeights& h, const WeightLoader& w, const Sam2Config& cfg);  // src/sam2/hiera.cpp
}

using namespace sam;

namespace {

template <class F>
double cpu_seconds(int reps, F&& f) {
    f();
    double best = 1e30;
    for (int i = 0; i < reps; ++i) {
        timespec a{}, b{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        f();
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        best = std::min(best, double(b.tv_sec - a.tv_sec) + 1e-9 * double(b.tv_nsec - a.tv_nsec));
    }
    return best;
}

Tensor random_rows(int64_t n, int64_t d, float scale, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0.0f, scale);
    Tensor t({n, d});
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = g(rng);
    return t;
}

}  // namespace

int main(int argc, char** argv) {
    int reps = 3;
    bool gemm = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--gemm") == 0) gemm = true;
        else reps = std::max(1, std::atoi(argv[i]));
    }
    ops::ThreadScope one_thread(1);
    std::printf("1 thread, CPU time, best of %d\n", reps);

    // Memory attention: C = 256, one head (sam2.1_hiera_*.yaml), 64 x 64 frame tokens; memories of
    // 4096 tokens each, object pointers as 4 tokens each.
    const int64_t D = 256, N = 4096;
    const Tensor q = random_rows(N, D, 1.5f, 1);
    struct Core { const char* name; int64_t keys; };
    for (Core c : {Core{"memory self-attention (4096 keys)", N}, Core{"cross-attention, 1 memory + 1 pointer (4100)", N + 4},
                   Core{"cross-attention, 7 memories + 16 pointers (28736)", 7 * N + 64}}) {
        const Tensor k = random_rows(c.keys, D, 1.5f, 2), v = random_rows(c.keys, D, 1.0f, 3);
        const double s = cpu_seconds(reps, [&] { (void)memory_attention_core(q, k, v, 1, !gemm); });
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
        const Tensor x = random_rows(int64_t(side) * side, b.dim, 1.0f, 4);
        const double s = cpu_seconds(reps, [&] {
            int H = side, W = side;
            (void)hiera_block(b, x.clone(), H, W);  // the block adds into its input: a fresh copy
        });
        char name[96];
        std::snprintf(name, sizeof name, "Hiera-T block %d (%dx%d, dim %d, %d head%s, %s)", i, side, side, b.dim,
                      b.num_heads, b.num_heads > 1 ? "s" : "",
                      b.window_size ? ("window " + std::to_string(b.window_size)).c_str() : "global");
        std::printf("%-52s %8.3f s\n", name, s);
    }
    return 0;
}
