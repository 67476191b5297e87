// sam bench: encoder (and, where built, decoder and generator) timings with random full-size
// weights made in memory, beside a GEMM microbenchmark of the library in use on the encoder's
// own shapes, so every figure comes with its ratio to the machine's measured peak.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "flops.h"
#include "ops/matmul.h"
#include "ops/ops.h"
#include "ops/threads.h"
#include "sam/automatic_mask_generator.h"
#include "sam/image.h"
#include "sam/predictor.h"
#include "sam/sam.h"
#include "sam/sam2.h"
#include "sam/sam2_automatic_mask_generator.h"

namespace sam::cli {
namespace {

struct BenchOptions {
    std::vector<std::string> model_types = {"vit_b"};
    std::vector<std::string> precisions = {"f32"};
    int repetitions = 3;
    int threads = 0;
    bool decoder = true;
    std::string amg_image;
};

double peak_rss_gib() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_maxrss) / (1024.0 * 1024.0);
}

// Best GFLOP/s of the library's matmul in precision p over the encoder's linear-layer shapes.
double matmul_peak_gflops(Precision p, int64_t C, int reps) {
    double best = 0.0;
    for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{{3 * C, C}, {4 * C, C}, {C, 4 * C}})
        best = std::max(best, ops::matmul_peak_gflops(p, 4096, N, K, reps));
    return best;
}

double relative_l2(const Tensor& got, const Tensor& want) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < want.numel(); ++i) {
        const double d = static_cast<double>(got[i]) - want[i];
        num += d * d;
        den += static_cast<double>(want[i]) * want[i];
    }
    return std::sqrt(num / den);
}

// Best sgemm GFLOP/s over the encoder's linear-layer shapes (M = 4096 tokens).
double gemm_peak_gflops(int C, int reps) {
    const int64_t M = 4096;
    const std::vector<std::pair<int64_t, int64_t>> nk = {{3 * C, C}, {4 * C, C}, {C, 4 * C}};
    double best = 0.0;
    for (auto [N, K] : nk) {
        Tensor a({M, K}), b({N, K}), c({M, N});
        for (int64_t i = 0; i < a.numel(); ++i) a[i] = static_cast<float>(i % 7) * 0.1f;
        for (int64_t i = 0; i < b.numel(); ++i) b[i] = static_cast<float>(i % 5) * 0.1f;
        double timed = 0.0;  // at least `reps` runs and ops::kPeakMinSeconds of them, as for the other precisions
        for (int r = 0; r < reps + 1 || timed < ops::kPeakMinSeconds; ++r) {
            auto t0 = std::chrono::steady_clock::now();
            ops::gemm(M, N, K, a.data(), K, b.data(), K, true, c.data(), N);
            double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (r == 0) continue;  // the first run warms up
            best = std::max(best, 2.0 * M * N * K / s / 1e9);
            timed += s;
        }
    }
    return best;
}

struct Stats {
    double min_s, median_s;
};
template <class F>
Stats time_runs(int reps, F&& f) {
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return {t.front(), t[t.size() / 2]};
}

bool is_sam2_type(const std::string& t) { return t == "tiny" || t == "small" || t == "base_plus" || t == "large"; }

// SAM 2: the image encoder (Hiera + neck), one click, segment-everything; the sgemm peak is
// measured on the widest-used stage's shapes (stage 3 holds most of the work).
void bench_sam2(const std::string& type, const BenchOptions& o) {
    const Sam2Config cfg = sam2_config_for(type);
    auto t0 = std::chrono::steady_clock::now();
    const Sam2 sam = Sam2::random(cfg, 1).with_execution({o.threads, Precision::F32});
    const double make_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int stage3 = cfg.trunk.embed_dim * 4;
    const double peak = gemm_peak_gflops(stage3, 3);
    const int S = cfg.image_size;
    Tensor input({1, 3, S, S});
    for (int64_t i = 0; i < input.numel(); ++i) input[i] = static_cast<float>((i * 7919) % 255) / 64.0f - 2.0f;
    const double gflop = 2.0 * sam2_image_encoder_macs(cfg) / 1e9;
    std::printf("\nSAM 2.1 hiera %s (%lld parameters, made in %.2f s)\n", type.c_str(),
                static_cast<long long>(sam.parameter_count()), make_s);
    std::printf("  sgemm peak on stage-3 shapes   %8.1f GFLOP/s\n", peak);
    sam.encode(input);  // warm-up
    Stats enc = time_runs(o.repetitions, [&] { sam.encode(input); });
    std::printf("  encoder  f32  %.1f GFLOP  min %.3f s  median %.3f s  %6.1f GFLOP/s  %.0f%% of sgemm peak\n", gflop,
                enc.min_s, enc.median_s, gflop / enc.min_s, 100.0 * gflop / enc.min_s / peak);
    if (o.decoder) {
        Sam2ImagePredictor predictor(sam);
        predictor.set_features(sam.encode(input), 1200, 1800);
        Prompt p;
        p.point_coords = {{900.0f, 600.0f}};
        p.point_labels = {1};
        predictor.predict(p);  // warm-up
        Stats click = time_runs(std::max(o.repetitions, 20), [&] { predictor.predict(p); });  // clicks are short: 20 for a steady minimum
        std::printf("  one click (multimask, masks at 1800 x 1200)  min %.1f ms  median %.1f ms\n", click.min_s * 1e3,
                    click.median_s * 1e3);
    }
    if (!o.amg_image.empty()) {
        Image img = read_image(o.amg_image);
        Sam2AutomaticMaskGenerator gen(sam);
        t0 = std::chrono::steady_clock::now();
        const size_t n = gen.generate(img).size();
        std::printf("  amg (defaults)  %.2f s, %zu masks kept\n",
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), n);
    }
    std::printf("  peak RSS so far                %8.2f GiB\n", peak_rss_gib());
}

int run_bench(const BenchOptions& o) {
    ops::ThreadScope threads(o.threads);  // for the peak measurements; the models carry their own
    std::printf("sam bench: %d threads, %d repetitions (random weights, made in memory)\n", ops::current_threads(),
                o.repetitions);
    for (const std::string& type : o.model_types) {
        if (is_sam2_type(type)) {
            bench_sam2(type, o);
            continue;
        }
        SamConfig cfg = sam_config_for(type);
        auto t0 = std::chrono::steady_clock::now();
        const Sam sam = Sam::random(cfg, 1).with_execution({o.threads, Precision::F32});
        double make_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        // Each peak is measured before and after the encoder runs it is compared with, and the
        // higher reading kept: on a shared VM a peak measured during a slow phase reads low (an
        // int8 peak once read half its usual value), which would flatter the ratio.
        double peak = gemm_peak_gflops(cfg.encoder.embed_dim, 3);
        Tensor input({1, 3, cfg.encoder.img_size, cfg.encoder.img_size});
        for (int64_t i = 0; i < input.numel(); ++i) input[i] = static_cast<float>((i * 7919) % 255) / 64.0f - 2.0f;
        const double gflop = image_encoder_flops(cfg.encoder) / 1e9;
        std::printf("\n%s (%lld parameters, made in %.2f s)\n", type.c_str(),
                    static_cast<long long>(sam.parameter_count()), make_s);
        std::fflush(stdout);
        struct EncoderRun {
            std::string name;
            Stats enc;
            double low_peak = 0.0;  // its own matmul peak (bf16, int8)
            double error = -1.0;    // embedding relative L2 against f32
            bool available = true;  // this CPU has fast instructions for the precision
        };
        std::vector<EncoderRun> runs;
        Tensor f32_embedding;
        for (const std::string& name : o.precisions) {
            const Precision want = precision_from_string(name);
            if (!precision_supported(want)) {
                runs.push_back({name, {0.0, 0.0}, 0.0, -1.0, false});
                continue;
            }
            const Sam model = sam.with_execution({o.threads, want});
            const double low_before = want != Precision::F32 ? matmul_peak_gflops(want, cfg.encoder.embed_dim, 3) : 0.0;
            Tensor embedding = model.encode(input);  // warm-up (and weights converted, for bf16 / int8)
            EncoderRun run{name, time_runs(o.repetitions, [&] { model.encode(input); })};
            if (want != Precision::F32)
                run.low_peak = std::max(low_before, matmul_peak_gflops(want, cfg.encoder.embed_dim, 3));
            if (want == Precision::F32) f32_embedding = embedding;
            else if (f32_embedding.defined()) run.error = relative_l2(embedding, f32_embedding);
            runs.push_back(run);
        }
        const bool timed = std::any_of(runs.begin(), runs.end(), [](const EncoderRun& r) { return r.available; });
        if (timed) peak = std::max(peak, gemm_peak_gflops(cfg.encoder.embed_dim, 3));
        std::printf("  sgemm peak on encoder shapes   %8.1f GFLOP/s\n", peak);
        for (const EncoderRun& r : runs) {
            if (!r.available) {
                std::printf("  encoder  %s: not available on this CPU, skipped\n", r.name.c_str());
                continue;
            }
            std::printf("  encoder  %-4s %.1f GFLOP  min %.3f s  median %.3f s  %6.1f GFLOP/s  %.0f%% of sgemm peak",
                        r.name.c_str(), gflop, r.enc.min_s, r.enc.median_s, gflop / r.enc.min_s,
                        100.0 * gflop / r.enc.min_s / peak);
            if (r.low_peak > 0.0)
                std::printf(", %.0f%% of %s matmul peak (%.1f GFLOP/s)", 100.0 * gflop / r.enc.min_s / r.low_peak,
                            r.name.c_str(), r.low_peak);
            std::printf("\n");
            if (r.error >= 0.0)
                std::printf("           %s embedding vs f32: relative L2 error %.2e\n", r.name.c_str(), r.error);
        }
        if (timed) std::printf("  (each peak: the higher of a measurement before and after its encoder runs)\n");
        if (o.decoder) {
            // One click: 1 point (+ padding), multimask, upsampled to a 1200 x 1800 image.
            SamPredictor predictor(sam);
            predictor.set_embedding(sam.encode(input), 1200, 1800);
            Prompt p;
            p.point_coords = {{900.0f, 600.0f}};
            p.point_labels = {1};
            predictor.predict(p);  // warm-up
            Stats click = time_runs(std::max(o.repetitions, 20), [&] { predictor.predict(p); });  // clicks are short: 20 for a steady minimum
            const double dec = mask_decoder_flops(cfg, 1, 2) / 1e9;
            std::printf("  decoder  %.2f GFLOP per click     min %.1f ms  median %.1f ms  (%.1f GFLOP/s)\n", dec,
                        click.min_s * 1e3, click.median_s * 1e3, dec / click.min_s);
        }
        if (!o.amg_image.empty()) {
            Image img = read_image(o.amg_image);
            for (bool seed_settings : {false, true}) {
                AmgOptions a;
                if (seed_settings) a.pred_iou_thresh = 0.7, a.stability_score_thresh = 0.8, a.stability_score_offset = 0.9;
                SamAutomaticMaskGenerator gen(sam, a);
                size_t n = gen.generate(img).size();
                const AmgTimings& t = gen.last_timings();
                std::printf("  amg (%s)  %.2f s: encoder %.2f s, decoder %.2f s, post-processing %.2f s; %d masks decoded, "
                            "%d upsampled, %zu kept\n",
                            seed_settings ? "pred_iou 0.7, stability 0.8, offset 0.9" : "defaults", t.total, t.encoder,
                            t.decoder, t.postprocess, t.masks_decoded, t.masks_upsampled, n);
            }
        }
        std::printf("  peak RSS so far                %8.2f GiB\n", peak_rss_gib());
    }
    return 0;
}

Registration reg("bench", "Benchmark encoder, decoder and generator with random full-size weights", [](CLI::App& cmd) {
    auto o = std::make_shared<BenchOptions>();
    cmd.add_option("--model-type", o->model_types,
                   "Model types to run (vit_b vit_l vit_h; SAM 2.1: tiny small base_plus large)")
        ->check(CLI::IsMember({"vit_b", "vit_l", "vit_h", "tiny", "small", "base_plus", "large"}));
    cmd.add_option("--precision", o->precisions, "Encoder precisions to time (f32 bf16 int8); error vs f32 when f32 comes first")
        ->check(CLI::IsMember({"f32", "bf16", "int8"}));
    cmd.add_option("--repetitions,-r", o->repetitions, "Timed repetitions per figure")->check(CLI::PositiveNumber);
    cmd.add_option("--threads,-t", o->threads, "Threads (default: all cores)");
    cmd.add_flag("!--no-decoder", o->decoder, "Skip the per-click decoder benchmark");
    cmd.add_option("--amg", o->amg_image, "Also time segment-everything on this image (default and seed settings)")
        ->check(CLI::ExistingFile);
    return [o] { return run_bench(*o); };
});

}  // namespace
}  // namespace sam::cli
