// Decoder latency with real SAM shapes (prompt dim 256, 64x64 embedding, MLP 2048, 8 heads):
// random weights built in memory, a random embedding, no checkpoint needed.
//
//   bench_decoder [--iters N] [--threads T] [--batch B]
//
// Prints the time (min and median over the iterations) of one click (1 point + padding point,
// multimask: sparse prompt, two-way transformer, upscaling, 3 masks), of the once-per-image
// decoder preparation, of upsampling 3 masks to 1200x1800, and the per-prompt time of a batch
// of B prompts (segment-everything).
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
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--iters")) iters = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--batch")) batch = std::atoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: %s [--iters N] [--threads T] [--batch B]\n", argv[0]);
            return 2;
        }
    }
    ops::set_num_threads(threads);
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

    TransformerImageState state;
    const Timing prep = time_ms(iters, [&] { state = prepare_decoder_image(dec, emb, pe.no_mask_embed, pe.dense_pe); });

    // One click: 1 point (label 1) in the 1024 frame; the padding point is added by the encoder.
    const float point[2] = {400.0f, 300.0f};
    const int label = 1;
    DecoderOutput out;
    const Timing click = time_ms(iters, [&] {
        Tensor sparse = embed_sparse_prompts(pe, 1, 1, point, &label, nullptr);
        out = mask_decoder_forward(dec, {&state}, pe.dense_pe, sparse, true);
    });

    // Upsampling the 3 masks of a click to a 1200 x 1800 image (binary).
    MaskPostprocessor post(256, 1024, 683, 1024, 1200, 1800);
    std::vector<uint8_t> masks(size_t{3} * 1200 * 1800);
    const Timing upsample = time_ms(iters, [&] {
        for (int m = 0; m < 3; ++m) post.binary(out.masks.data() + m * 256 * 256, masks.data() + size_t(m) * 1200 * 1800, 0.0f);
    });

    // A batch of prompts, as the automatic mask generator decodes them.
    std::vector<float> pts(static_cast<size_t>(2 * batch));
    std::vector<int> labels(static_cast<size_t>(batch), 1);
    for (int i = 0; i < batch; ++i) {
        pts[static_cast<size_t>(2 * i)] = 16.0f + 128.0f * static_cast<float>(i % 8);
        pts[static_cast<size_t>(2 * i + 1)] = 16.0f + 128.0f * static_cast<float>(i / 8 % 8);
    }
    const Timing batched = time_ms(std::max(3, iters / 5), [&] {
        Tensor sparse = embed_sparse_prompts(pe, batch, 1, pts.data(), labels.data(), nullptr);
        mask_decoder_forward(dec, {&state}, pe.dense_pe, sparse, true);
    });

    std::printf("decoder (vit_b shapes, random weights), %d threads, min (median) of %d\n", ops::num_threads(), iters);
    std::printf("  per-image preparation (src + shared image-side products): %8.2f ms (%8.2f)\n", prep.min, prep.median);
    std::printf("  one click (1 point + pad, multimask, 3 low-res masks):    %8.2f ms (%8.2f)\n", click.min, click.median);
    std::printf("  upsample 3 masks to 1200x1800 (binary):                   %8.2f ms (%8.2f)\n", upsample.min,
                upsample.median);
    std::printf("  batch of %3d prompts (multimask):                         %8.2f ms (%8.2f)  min %.2f ms per prompt\n",
                batch, batched.min, batched.median, batched.min / batch);
    return 0;
}
