// Where the image encoder's time goes, part by part, on vit_b shapes (random weights).
// With one thread (the default) times are the calling thread's CPU time, best of 3, so that
// other load on the machine does not distort them; with more, wall time, best of 3, which
// includes the threads' waits for each other. GFLOP/s are against the part's own FLOP count.
// The linear layers run in the precision given (f32, or int8 as the encoder blocks use it);
// attention and layer norm are fp32 in every precision.
//   build/bench/bench_encoder_parts [model_type] [f32|int8] [threads]
// A report rather than a set of Google Benchmark cases (bench_decoder is one): its point is
// each part's share of one image, which needs every part timed the same way in one table.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "modeling/image_encoder.h"
#include "cpu_time.h"
#include "ops/matmul.h"
#include "ops/ops.h"
#include "ops/threads.h"

using namespace sam;

int main(int argc, char** argv) {
    const int threads = argc > 3 ? std::atoi(argv[3]) : 1;
    if (threads < 1) {
        std::fprintf(stderr, "threads must be a positive number, not %s\n", argv[3]);
        return 2;
    }
    ops::ThreadScope thread_scope(threads);
    auto best_seconds = [&](auto&& f) {
        return threads == 1 ? bench::best_cpu_seconds(3, f) : bench::best_wall_seconds(3, f);
    };
    SamConfig cfg;
    try {
        cfg = sam_config_for(argc > 1 ? argv[1] : "vit_b");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\nusage: bench_encoder_parts [vit_b|vit_l|vit_h] [f32|int8] [threads]\n", e.what());
        return 2;
    }
    const std::string precision = argc > 2 ? argv[2] : "f32";
    if (precision != "f32" && precision != "int8") {
        std::fprintf(stderr, "precision must be f32 or int8, not %s\n", precision.c_str());
        return 2;
    }
    const Precision prec = precision == "int8" ? Precision::INT8 : Precision::F32;
    const int64_t C = cfg.encoder.embed_dim, N = 4096, hd = C / cfg.encoder.num_heads;
    const int depth = cfg.encoder.depth, n_global = static_cast<int>(cfg.encoder.global_attn_indexes.size());
    RandomSource src(1);
    WeightLoader w(src, "");
    Tensor x({N, C});
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(i % 100) / 50.0f - 1.0f;

    struct Part {
        std::string name;
        double flop_per_call, seconds_per_call;
        int calls;
    };
    std::vector<Part> parts;
    auto add_linear = [&](const char* name, int64_t out, int64_t in, ops::Epilogue e) {
        Linear l = w[name].linear(out, in);
        Tensor a({N, in}), y({N, out});
        double s = best_seconds([&] { l.mm.forward(a.data(), N, y.data(), e, -1, -1, prec); });
        parts.push_back({name, 2.0 * N * in * out, s, depth});
    };
    add_linear("qkv", 3 * C, C, ops::Epilogue::None);
    add_linear("proj (+ residual)", C, C, ops::Epilogue::Residual);
    add_linear("mlp.lin1 (+ GELU)", 4 * C, C, ops::Epilogue::Gelu);
    add_linear("mlp.lin2 (+ residual)", C, 4 * C, ops::Epilogue::Residual);

    // Attention alone (scores, relative positions, softmax, weighted values): time with the
    // qkv projection minus the qkv projection.
    Linear qkv = w["attn.qkv"].linear(3 * C, C);
    Tensor q_only({N, 3 * C});
    const double qkv_s = best_seconds([&] { qkv.mm.forward(x.data(), N, q_only.data(), ops::Epilogue::None, -1, -1, prec); });
    for (bool global : {false, true}) {
        EncoderBlockWeights b;
        b.qkv = qkv;
        b.window_size = global ? 0 : cfg.encoder.window_size;
        const int64_t rel = 2 * (global ? 64 : cfg.encoder.window_size) - 1;
        b.rel_pos_h = w.tensor(global ? "gh" : "wh", {rel, hd});
        b.rel_pos_w = w.tensor(global ? "gw" : "ww", {rel, hd});
        EncoderWorkspace work;  // reused as the encoder does: fresh buffers would add page faults
        const double s = best_seconds([&] { encoder_attention(b, x, 64, 64, cfg.encoder.num_heads, work, prec); }) - qkv_s;
        const double T = global ? 4096.0 : 196.0, windows = global ? 1.0 : 25.0;
        parts.push_back({global ? "attention, global" : "attention, windowed", windows * 4.0 * T * T * C, s,
                         global ? n_global : depth - n_global});
    }
    LayerNorm ln = w["norm"].layer_norm(C);
    Tensor y = x.clone();
    parts.push_back({"layer norm", 0.0, best_seconds([&] { layer_norm_inplace(y, ln, 1e-6f); }), 2 * depth});

    double total = 0;
    for (const Part& p : parts) total += p.seconds_per_call * p.calls;
    std::printf("%s encoder blocks, linear layers in %s, %d thread%s, %s time per image\n", cfg.model_type.c_str(),
                precision.c_str(), threads, threads == 1 ? "" : "s", threads == 1 ? "CPU" : "wall");
    std::printf("%-24s %8s %10s %8s %7s\n", "part", "calls", "seconds", "share", "GFLOP/s");
    for (const Part& p : parts)
        std::printf("%-24s %8d %10.3f %7.1f%% %7.1f\n", p.name.c_str(), p.calls, p.seconds_per_call * p.calls,
                    100.0 * p.seconds_per_call * p.calls / total,
                    p.flop_per_call > 0 ? p.flop_per_call / p.seconds_per_call / 1e9 : 0.0);
    std::printf("%-24s %8s %10.3f\n", "sum", "", total);
    return 0;
}
