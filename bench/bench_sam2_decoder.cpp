// SAM 2's click decoder alone (sam2_low_rank_decoder_forward: one point + padding, all four
// mask tokens' 256 x 256 logits, output selection), tiny's decoder on random weights and random
// image features, no encoder and no upsampling to the image. Prints the best of `reps` clicks
// as one thread's CPU time (1 thread, so that other load on the machine distorts it little) and
// as wall time on `threads` threads; then a batch of 32 one-point prompts as segment-everything
// decodes them (one prompt per thread), best of `reps` / 10 batches, as the process's CPU time
// and wall time per prompt.
//   build/bench/bench_sam2_decoder [reps] [threads]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <vector>

#include "ops/threads.h"
#include "sam/sam2.h"
#include "sam2/model.h"

using namespace sam;

namespace {

Tensor random_tensor(const Shape& shape, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    Tensor t = Tensor::empty(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = d(gen);
    return t;
}

double cpu_now(clockid_t clock) {
    timespec t{};
    clock_gettime(clock, &t);
    return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}
double thread_cpu_now() { return cpu_now(CLOCK_THREAD_CPUTIME_ID); }

}  // namespace

int main(int argc, char** argv) {
    const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 30;
    const int threads = argc > 2 ? std::atoi(argv[2]) : 0;
    const Sam2 tiny = Sam2::random(sam2_config_for("tiny"), 7);
    const Sam2Model& m = Sam2Access::model(tiny);
    const int64_t C = m.config.d_model, G = m.config.embedding_size();
    Sam2Features f;
    f.image_embed = random_tensor({1, C, G, G}, 11);
    f.high_res = {random_tensor({1, C / 8, 4 * G, 4 * G}, 12), random_tensor({1, C / 4, 2 * G, 2 * G}, 13)};
    const auto image = sam2_decoder_image(m, f, Sam2DecoderPath::LowRank);
    const float pts[] = {500.0f, 300.0f};
    const int labels[] = {1};
    const Tensor sparse = sam2_sparse_embeddings(m.prompt_encoder, 1, 1, pts, labels);
    auto click = [&] { (void)sam2_low_rank_decoder_forward(m, *image, sparse, {}, true); };
    double cpu = 1e30, wall = 1e30;
    {
        ops::ThreadScope one(1);
        click();
        for (int i = 0; i < reps; ++i) {
            const double t0 = thread_cpu_now();
            click();
            cpu = std::min(cpu, thread_cpu_now() - t0);
        }
    }
    {
        ops::ThreadScope all(threads);
        click();
        for (int i = 0; i < reps; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            click();
            wall = std::min(wall, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        std::printf("SAM 2.1 tiny decoder, one click (multimask), best of %d: 1 thread %.2f ms CPU; %d threads %.2f ms wall\n",
                    reps, cpu * 1e3, ops::current_threads(), wall * 1e3);
        constexpr int64_t B = 32;
        std::vector<float> bp;
        for (int64_t b = 0; b < B; ++b) bp.insert(bp.end(), {float(31 * b % 1024), float(97 * b % 1024)});
        const std::vector<int> bl(B, 1);
        const Tensor batch = sam2_sparse_embeddings(m.prompt_encoder, B, 1, bp.data(), bl.data());
        auto decode_batch = [&] { (void)sam2_low_rank_decoder_forward(m, *image, batch, {}, true); };
        decode_batch();
        double bcpu = 1e30, bwall = 1e30;
        for (int i = 0; i < std::max(1, reps / 10); ++i) {
            const double c0 = cpu_now(CLOCK_PROCESS_CPUTIME_ID);
            const auto t0 = std::chrono::steady_clock::now();
            decode_batch();
            bwall = std::min(bwall, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            bcpu = std::min(bcpu, cpu_now(CLOCK_PROCESS_CPUTIME_ID) - c0);
        }
        std::printf("batch of %lld prompts (multimask), best of %d: %.2f ms CPU, %.2f ms wall per prompt\n",
                    static_cast<long long>(B), std::max(1, reps / 10), bcpu / B * 1e3, bwall / B * 1e3);
    }
    return 0;
}
