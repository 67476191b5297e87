// Decoder latency with real SAM shapes (prompt dim 256, 64x64 embedding, MLP 2048, 8 heads),
// as Google Benchmark cases: random weights built in memory, a random embedding, no checkpoint.
//
//   build/bench/bench_decoder [--threads T] [Google Benchmark flags]
//   build/bench/bench_decoder --threads 2 --benchmark_filter=LowRank --benchmark_repetitions=5
//
// Cases, for the low-rank decoder (the production path for points and boxes) and the
// reference's algorithm (mask_decoder_forward) on the same weights:
//   */Prepare     the once-per-image decoder state;
//   */Click       one click: 1 point + padding point, multimask (3 masks) at 256x256;
//   */Batch/64    64 prompts at once, as segment-everything decodes them (items = prompts);
//   Upsample/3    the click's 3 masks upsampled to 1200x1800 and thresholded;
//   Predictor/Click  a click through the public SamPredictor, as `sam bench` times it: prompt
//                 encoding, the low-rank decoder and the 3 masks at 1200x1800.
// Wall-clock time (UseRealTime), since the work runs on T threads (default: every core).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "modeling/low_rank_decoder.h"
#include "modeling/mask_decoder.h"
#include "modeling/prompt_encoder.h"
#include "ops/threads.h"
#include "postprocess.h"
#include "sam/config.h"
#include "sam/predictor.h"
#include "sam/sam.h"

using namespace sam;

namespace {

int g_threads = 0;  // --threads; 0: every core

// The model parts and inputs, made once for every case.
struct Decoder {
    SamConfig cfg = sam_config_vit_b();  // the decoder is the same for vit_b / l / h
    RandomSource src{7};
    PromptEncoderWeights pe;
    MaskDecoderWeights dec;
    Tensor emb;
    std::vector<float> batch_points;
    std::vector<int> batch_labels;

    Decoder() {
        WeightLoader root(src, "");
        pe = load_prompt_encoder(root["prompt_encoder"], cfg);
        dec = load_mask_decoder(root["mask_decoder"], cfg.decoder);
        const int64_t C = cfg.prompt.embed_dim, G = cfg.embedding_size();
        emb = Tensor::empty({1, C, G, G});
        uint64_t s = 1;
        for (int64_t i = 0; i < emb.numel(); ++i) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            emb[i] = static_cast<float>(static_cast<double>(s >> 40) / 16777216.0 * 2.0 - 1.0);
        }
        for (int i = 0; i < 64; ++i) {  // a grid of points in the 1024 frame, as the generator's
            batch_points.push_back(16.0f + 128.0f * static_cast<float>(i % 8));
            batch_points.push_back(16.0f + 128.0f * static_cast<float>(i / 8 % 8));
            batch_labels.push_back(1);
        }
    }
    Tensor click() const {
        const float point[2] = {400.0f, 300.0f};
        const int label = 1;
        return embed_sparse_prompts(pe, 1, 1, point, &label, nullptr);
    }
    Tensor batch(int n) const { return embed_sparse_prompts(pe, n, 1, batch_points.data(), batch_labels.data(), nullptr); }
};

const Decoder& decoder() {
    static const Decoder d;
    return d;
}

// Runs `decode(sparse)` with the state of the path under test.
template <bool kLowRank>
struct Path {
    const Decoder& d = decoder();
    LowRankImageState fast;
    TransformerImageState state;
    void prepare() {
        if constexpr (kLowRank)
            fast = prepare_low_rank_image(d.dec, d.emb, d.pe.no_mask_embed, d.pe.dense_pe);
        else
            state = prepare_decoder_image(d.dec, d.emb, d.pe.no_mask_embed, d.pe.dense_pe);
    }
    DecoderOutput decode(const Tensor& sparse) const {
        if constexpr (kLowRank)
            return low_rank_decoder_forward(d.dec, fast, d.pe.dense_pe, sparse, true);
        else
            return mask_decoder_forward(d.dec, {&state}, d.pe.dense_pe, sparse, true);
    }
};

template <bool kLowRank>
void Prepare(benchmark::State& st) {
    ops::ThreadScope threads(g_threads);
    Path<kLowRank> p;
    for (auto _ : st) p.prepare();
}

template <bool kLowRank>
void Click(benchmark::State& st) {
    ops::ThreadScope threads(g_threads);
    Path<kLowRank> p;
    p.prepare();
    for (auto _ : st) benchmark::DoNotOptimize(p.decode(p.d.click()));
}

template <bool kLowRank>
void Batch(benchmark::State& st) {
    ops::ThreadScope threads(g_threads);
    Path<kLowRank> p;
    p.prepare();
    const int n = static_cast<int>(st.range(0));
    for (auto _ : st) benchmark::DoNotOptimize(p.decode(p.d.batch(n)));
    st.SetItemsProcessed(st.iterations() * n);
}

void Upsample(benchmark::State& st) {
    ops::ThreadScope threads(g_threads);
    Path<true> p;
    p.prepare();
    const DecoderOutput out = p.decode(p.d.click());
    const int masks = static_cast<int>(st.range(0));
    const MaskPostprocessor post(256, 1024, 683, 1024, 1200, 1800);
    std::vector<uint8_t> full(static_cast<size_t>(masks) * 1200 * 1800);
    for (auto _ : st)
        for (int m = 0; m < masks; ++m)
            post.binary(out.masks.data() + m * 256 * 256, full.data() + static_cast<size_t>(m) * 1200 * 1800, 0.0f);
}

void PredictorClick(benchmark::State& st) {
    const Decoder& d = decoder();
    const Sam sam = Sam::random(d.cfg, 1).with_execution({g_threads, Precision::F32});
    SamPredictor predictor(sam);
    predictor.set_embedding(d.emb, 1200, 1800);
    Prompt p;
    p.point_coords = {{900.0f, 600.0f}};
    p.point_labels = {1};
    for (auto _ : st) benchmark::DoNotOptimize(predictor.predict(p));
}

BENCHMARK(Prepare<true>)->Name("LowRank/Prepare")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Click<true>)->Name("LowRank/Click")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Batch<true>)->Name("LowRank/Batch")->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Prepare<false>)->Name("Reference/Prepare")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Click<false>)->Name("Reference/Click")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Batch<false>)->Name("Reference/Batch")->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Upsample)->Arg(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(PredictorClick)->Name("Predictor/Click")->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
    // --threads T is ours; everything else goes to Google Benchmark.
    std::vector<char*> rest = {argv[0]};
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--threads") && i + 1 < argc)
            g_threads = std::atoi(argv[++i]);
        else
            rest.push_back(argv[i]);
    }
    int n = static_cast<int>(rest.size());
    benchmark::Initialize(&n, rest.data());
    if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 2;
    benchmark::AddCustomContext("threads", g_threads > 0 ? std::to_string(g_threads) : "all cores");
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
