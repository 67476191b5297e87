// Decoder latency with real SAM shapes (prompt dim 256, 64x64 embedding, MLP 2048, 8 heads):
// random weights built in memory, a random embedding, no checkpoint needed.
//
//   bench_decoder [--iters N] [--threads T] [--batch B] [--no-reference]
//
// Prints the time (min and median over the iterations) of one click (1 point + padding point,
// multimask: sparse prompt, two-way transformer, upscaling, 3 masks), of the once-per-image
// decoder preparation, of upsampling 3 masks to 1200x1800, and the per-prompt time of a batch
// of B prompts (segment-everything), for the low-rank decoder and, unless --no-reference, for
// the straightforward reference forward on the same weights, with the ratio of the minima.
// The low-rank preparation reuses the model's image-PE projections after the first image.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "modeling/mask_decoder.h"
#include "modeling/prompt_encoder.h"
#include "ops/ops.h"
#include "ops/threads.h"
#include "postprocess.h"
#include "sam/config.h"

using namespace sam;

namespace {

struct Timing {
    double min = 0.0, median = 0.0;  // ms
};

Timing time_ms(int iters, const std::function<void()>& fn) {
    fn();  // warm-up (GEMM primitives, caches)
    std::vector<double> t;
    for (int i = 0; i < iters; ++i) {
        auto a = std::chrono::steady_clock::now();
        fn();
        t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    return {t.front(), t[t.size() / 2]};
}

}  // namespace

int main(int argc, char** argv) {
    int iters = 20, threads = 0, batch = 64;
    bool reference = true;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--no-reference")) reference = false;
        else if (i + 1 < argc && !std::strcmp(argv[i], "--iters")) iters = std::atoi(argv[++i]);
        else if (i + 1 < argc && !std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[++i]);
        else if (i + 1 < argc && !std::strcmp(argv[i], "--batch")) batch = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: %s [--iters N] [--threads T] [--batch B] [--no-reference]\n", argv[0]);
            return 2;
        }
    }
    ops::ThreadScope scope(threads);
    const SamConfig cfg = sam_config_vit_b();  // the decoder is the same for vit_b / l / h
    RandomSource src(7);
    WeightLoader root(src, "");
    PromptEncoderWeights pe = load_prompt_encoder(root["prompt_encoder"], cfg);
    MaskDecoderWeights dec = load_mask_decoder(root["mask_decoder"], cfg.decoder);
    const int64_t C = cfg.prompt.embed_dim, G = cfg.embedding_size();

    Tensor emb = Tensor::empty({1, C, G, G});
    uint64_t s = 1;
    for (int64_t i = 0; i < emb.numel(); ++i) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        emb[i] = static_cast<float>(static_cast<double>(s >> 40) / 16777216.0 * 2.0 - 1.0);
    }
    // One click: 1 point (label 1) in the 1024 frame; the padding point is added by the encoder.
    const float point[2] = {400.0f, 300.0f};
    const int label = 1;
    // A batch of prompts, as the automatic mask generator decodes them.
    std::vector<float> pts(static_cast<size_t>(2 * batch));
    std::vector<int> labels(static_cast<size_t>(batch), 1);
    for (int i = 0; i < batch; ++i) {
        pts[static_cast<size_t>(2 * i)] = 16.0f + 128.0f * static_cast<float>(i % 8);
        pts[static_cast<size_t>(2 * i + 1)] = 16.0f + 128.0f * static_cast<float>(i / 8 % 8);
    }

    // The low-rank decoder (the default) and the straightforward reference forward, same weights.
    struct Result {
        Timing prep, click, batched;
    };
    DecoderOutput out;
    auto run = [&](bool low_rank) {
        Result r;
        TransformerImageState state;
        r.prep = time_ms(iters, [&] { state = prepare_decoder_image(dec, emb, pe.no_mask_embed, pe.dense_pe, low_rank); });
        auto decode = [&](const Tensor& sparse) {
            return low_rank ? mask_decoder_forward(dec, {&state}, pe.dense_pe, sparse, true)
                            : mask_decoder_forward_reference(dec, {&state}, pe.dense_pe, sparse, true);
        };
        r.click = time_ms(iters, [&] { out = decode(embed_sparse_prompts(pe, 1, 1, point, &label, nullptr)); });
        r.batched = time_ms(std::max(3, iters / 5),
                            [&] { decode(embed_sparse_prompts(pe, batch, 1, pts.data(), labels.data(), nullptr)); });
        return r;
    };
    const Result ref = reference ? run(false) : Result{};
    const Result fast = run(true);

    // Upsampling the 3 masks of a click to a 1200 x 1800 image (binary).
    MaskPostprocessor post(256, 1024, 683, 1024, 1200, 1800);
    std::vector<uint8_t> masks(size_t{3} * 1200 * 1800);
    const Timing upsample = time_ms(iters, [&] {
        for (int m = 0; m < 3; ++m) post.binary(out.masks.data() + m * 256 * 256, masks.data() + size_t(m) * 1200 * 1800, 0.0f);
    });

    std::printf("decoder (vit_b shapes, random weights), %d threads, min (median) over %d runs (batch: %d)\n",
                ops::current_threads(), iters, std::max(3, iters / 5));
    std::printf("%-52s %20s %20s %8s\n", "", "low-rank", "reference", "ratio");
    auto row = [&](const char* what, Timing f, Timing r, double div) {
        std::printf("%-52s %9.2f (%8.2f) ", what, f.min / div, f.median / div);
        if (reference) std::printf("%9.2f (%8.2f) %7.2fx\n", r.min / div, r.median / div, r.min / f.min);
        else std::printf("\n");
    };
    row("  per-image preparation, ms", fast.prep, ref.prep, 1.0);
    row("  one click (1 point + pad, multimask, 3 masks), ms", fast.click, ref.click, 1.0);
    char what[64];
    std::snprintf(what, sizeof what, "  batch of %d prompts (multimask), ms per prompt", batch);
    row(what, fast.batched, ref.batched, batch);
    std::printf("  upsample 3 masks to 1200x1800 (binary): %.2f ms (%.2f)\n", upsample.min, upsample.median);
    return 0;
}
