// sam bench-video: SAM 2 video tracking timings with random full-size weights made in memory,
// on synthetic frames: the time of the first prompt, then frames per second of propagation for
// the given number of objects, the tracking state kept per frame and object, and the process's
// peak RSS.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "cli/progress.h"
#include "sam/sam2_video.h"

namespace sam::cli {
namespace {

struct BenchVideoOptions {
    std::string model_type = "tiny";
    int frames = 8, objects = 1, threads = 0, width = 1280, height = 720;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int run_bench_video(const BenchVideoOptions& o) {
    const Sam2Config cfg = sam2_config_for(o.model_type);
    const Sam2Video model = Sam2Video::random(cfg, 1).with_execution({o.threads, Precision::F32});
    // Frames: a smooth pattern drifting to the right, so that consecutive frames differ.
    std::vector<Image> frames(static_cast<size_t>(o.frames));
    for (int f = 0; f < o.frames; ++f) {
        Image& im = frames[static_cast<size_t>(f)];
        im.width = o.width;
        im.height = o.height;
        im.rgb.resize(static_cast<size_t>(o.width) * static_cast<size_t>(o.height) * 3);
        for (int y = 0; y < o.height; ++y)
            for (int x = 0; x < o.width; ++x)
                for (int c = 0; c < 3; ++c)
                    im.rgb[(static_cast<size_t>(y) * static_cast<size_t>(o.width) + static_cast<size_t>(x)) * 3 +
                           static_cast<size_t>(c)] =
                        static_cast<uint8_t>(127.5 + 127.5 * std::sin(0.02 * (x - 8 * f) + 0.03 * y + 2.0 * c));
    }
    Sam2VideoPredictor predictor(model);
    auto t0 = std::chrono::steady_clock::now();
    predictor.init_state(frames);
    const double init_s = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < o.objects; ++k)
        predictor.add_new_points_or_box(0, k + 1, {{o.width * (k + 1.0f) / (o.objects + 1.0f), o.height / 2.0f}}, {1});
    const double prompt_s = seconds_since(t0);
    ProgressBar bar("bench-video");
    int done = 0;
    double first_s = 0.0;
    t0 = std::chrono::steady_clock::now();
    auto t_first = t0;
    predictor.propagate_in_video([&](const Sam2VideoFrame&) {
        if (++done == 1) {
            first_s = seconds_since(t0);  // frame 0: the prompted frame, plus the memory encoding of the prompts
            t_first = std::chrono::steady_clock::now();
        }
        bar.update(done, o.frames);
        return true;
    });
    bar.finish();
    const double tracked_s = seconds_since(t_first);
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    const int64_t G = cfg.embedding_size(), L = cfg.low_res_size();
    // Kept per tracked frame and object: the bf16 memory, the low-res logits, the pointer.
    const int64_t state_bytes = G * G * model.mem_dim() * 2 + L * L * 4 + cfg.d_model * 4;
    std::printf("{\"model\": \"%s\", \"objects\": %d, \"frames\": %d, \"threads\": %d, \"init_s\": %.3f, "
                "\"prompts_s\": %.3f, \"first_frame_s\": %.3f, \"tracked_frames\": %d, \"tracked_fps\": %.4f, "
                "\"state_bytes_per_frame_and_object\": %lld, \"peak_rss_gib\": %.3f}\n",
                o.model_type.c_str(), o.objects, o.frames, o.threads, init_s, prompt_s, first_s, done - 1,
                done > 1 ? (done - 1) / tracked_s : 0.0, static_cast<long long>(state_bytes),
                static_cast<double>(ru.ru_maxrss) / (1024.0 * 1024.0));
    return 0;
}

Registration reg("bench-video", "Benchmark SAM 2 video tracking with random full-size weights", [](CLI::App& cmd) {
    auto o = std::make_shared<BenchVideoOptions>();
    cmd.add_option("--model-type", o->model_type, "tiny | small | base_plus | large")
        ->check(CLI::IsMember({"tiny", "small", "base_plus", "large"}));
    cmd.add_option("--frames", o->frames, "Frames (default 8)")->check(CLI::Range(2, 100000));
    cmd.add_option("--objects", o->objects, "Objects, one click each on frame 0 (default 1)")->check(CLI::Range(1, 64));
    cmd.add_option("--threads,-t", o->threads, "Threads (default: all cores)");
    cmd.add_option("--width", o->width, "Frame width (default 1280)")->check(CLI::Range(16, 8192));
    cmd.add_option("--height", o->height, "Frame height (default 720)")->check(CLI::Range(16, 8192));
    return [o] { return run_bench_video(*o); };
});

}  // namespace
}  // namespace sam::cli
