// SAM 2's low-rank decoder (src/sam2/low_rank_decoder.cpp) against the straightforward decoder
// (sam2_mask_decoder_forward, the official algorithm), its oracle: every predictor case of the
// fixture (tests/data/sam2/predict) in both output modes (multimask, and single with the dynamic
// fallback), the object-score token, mask inputs, batches decoded one prompt per thread, and
// the full-size tiny decoder's shapes.
//
// Tolerances: IoU within 1e-5 (sigmoid outputs in [0, 1]); low-res logits within 1e-4 x the
// reference's largest |logit|. The two paths compute the same expression with the sums in
// another order (the image rows kept as a shared matrix plus rank-r corrections, the skip
// features added in the GEMMs' row order) and the vectorisable exp/erf of src/ops/vector_math.h
// (|error| <= 1.5e-7): only float rounding differs, ~1e-6 relative (measured below 2e-6).
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "sam/npy.h"
#include "sam/sam2.h"
#include "sam2/model.h"
#include "test_util.h"

namespace sam {
namespace {

constexpr float kIouTol = 1e-5f, kLogitRelTol = 1e-4f;

std::string sam2_path(const std::string& name) { return test::data_path("sam2/" + name); }

const Sam2& reduced() {
    static const Sam2* s = [] {
        Sam2LoadOptions o;
        o.config_path = sam2_path("config.json");
        return new Sam2(Sam2::load(sam2_path("sam2_reduced.pt"), o));
    }();
    return *s;
}

// The fixture's truck features as the official package made them.
Sam2Features truck_features() {
    Sam2Features f;
    f.image_embed = load_npy(sam2_path("image_embed_truck.npy"));
    f.high_res = {load_npy(sam2_path("high_res_feat0_truck.npy")), load_npy(sam2_path("high_res_feat1_truck.npy"))};
    return f;
}

Tensor random_tensor(const Shape& shape, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    Tensor t = Tensor::empty(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = d(gen);
    return t;
}

void expect_same(const Sam2DecoderOutput& got, const Sam2DecoderOutput& want, const std::string& what) {
    SCOPED_TRACE(what);
    ASSERT_EQ(got.masks.shape(), want.masks.shape());
    ASSERT_EQ(got.iou.shape(), want.iou.shape());
    EXPECT_LE(test::max_abs_diff(got.iou, want.iou), kIouTol);
    EXPECT_TRUE(test::close_to_reference(got.masks, want.masks, kLogitRelTol));
    EXPECT_GT(test::max_abs(want.masks), 0.1f);  // non-degenerate
}

// Sparse embeddings as the predictor makes them: box corners (labels 2, 3) first, then the
// points, in the input frame.
Tensor sparse_of(const Sam2Model& m, const nlohmann::json& c, int h, int w) {
    const float S = static_cast<float>(m.config.image_size);
    std::vector<float> pts;
    std::vector<int> labels;
    if (c.contains("box")) {
        const auto b = c["box"].get<std::vector<float>>();
        pts.insert(pts.end(), {b[0] / w * S, b[1] / h * S, b[2] / w * S, b[3] / h * S});
        labels.insert(labels.end(), {2, 3});
    }
    if (c.contains("point_coords")) {
        for (const auto& xy : c["point_coords"]) pts.insert(pts.end(), {xy[0].get<float>() / w * S, xy[1].get<float>() / h * S});
        for (int l : c["point_labels"].get<std::vector<int>>()) labels.push_back(l);
    }
    return sam2_sparse_embeddings(m.prompt_encoder, 1, static_cast<int64_t>(labels.size()), pts.data(), labels.data());
}

TEST(Sam2LowRankDecoder, EveryPredictorCaseMatchesTheReferenceDecoder) {
    const Sam2Model& m = Sam2Access::model(reduced());
    ASSERT_TRUE(m.config.pred_obj_scores);  // the object-score token is among the tokens
    const auto image = sam2_decoder_image(m, truck_features(), Sam2DecoderPath::Both);
    std::ifstream in(sam2_path("manifest.json"));
    const nlohmann::json cases = nlohmann::json::parse(in)["predict"];
    ASSERT_GE(cases.size(), 6u);
    int with_mask = 0;
    for (const auto& [name, c] : cases.items()) {
        std::ifstream sin(sam2_path("predict/" + name + "/samples.json"));
        const nlohmann::json s = nlohmann::json::parse(sin);
        const Tensor sparse = sparse_of(m, c, s["height"].get<int>(), s["width"].get<int>());
        std::vector<Tensor> dense;
        if (c.contains("mask_input")) {
            dense.push_back(embed_mask_input(m.prompt_encoder, load_npy(sam2_path("predict/" + name + "/mask_in.npy")).data()));
            ++with_mask;
        }
        for (bool multimask : {true, false})
            expect_same(sam2_low_rank_decoder_forward(m, *image, sparse, dense, multimask),
                        sam2_mask_decoder_forward(m, *image, sparse, dense, multimask),
                        name + (multimask ? " multimask" : " single"));
    }
    EXPECT_EQ(with_mask, 1);
}

// The generator's use: many one-point prompts decoded one per thread on the shared state, and
// a batch with a mask input per prompt (use_m2m), against the reference on the same batch.
TEST(Sam2LowRankDecoder, BatchesMatchTheReferenceDecoder) {
    const Sam2Model& m = Sam2Access::model(reduced());
    const auto image = sam2_decoder_image(m, truck_features(), Sam2DecoderPath::Both);
    const int64_t B = 9, L = m.config.low_res_size();
    std::vector<float> pts;
    for (int64_t b = 0; b < B; ++b) pts.insert(pts.end(), {12.0f + 27.0f * static_cast<float>(b), 240.0f - 23.0f * static_cast<float>(b)});
    const std::vector<int> labels(B, 1);
    const Tensor sparse = sam2_sparse_embeddings(m.prompt_encoder, B, 1, pts.data(), labels.data());
    for (bool multimask : {true, false})
        expect_same(sam2_low_rank_decoder_forward(m, *image, sparse, {}, multimask),
                    sam2_mask_decoder_forward(m, *image, sparse, {}, multimask), multimask ? "multimask" : "single");
    // Mask inputs: the first pass's masks, clamped, each as its own prompt's mask input.
    const Sam2DecoderOutput first = sam2_mask_decoder_forward(m, *image, sparse, {}, false);
    std::vector<Tensor> dense;
    for (int64_t b = 0; b < B; ++b) {
        std::vector<float> mi(first.masks.data() + b * L * L, first.masks.data() + (b + 1) * L * L);
        for (float& v : mi) v = std::clamp(v, -32.0f, 32.0f);
        dense.push_back(embed_mask_input(m.prompt_encoder, mi.data()));
    }
    expect_same(sam2_low_rank_decoder_forward(m, *image, sparse, dense, false),
                sam2_mask_decoder_forward(m, *image, sparse, dense, false), "mask inputs");
}

// The full-size tiny decoder (C 256, a 64x64 image side, 8 heads) on random weights and
// features: the shapes the predictor and the generator run at.
TEST(Sam2LowRankDecoder, TinyShapesMatchTheReferenceDecoder) {
    const Sam2 tiny = Sam2::random(sam2_config_for("tiny"), 7);
    const Sam2Model& m = Sam2Access::model(tiny);
    const int64_t C = m.config.d_model, G = m.config.embedding_size();
    Sam2Features f;
    f.image_embed = random_tensor({1, C, G, G}, 11);
    f.high_res = {random_tensor({1, C / 8, 4 * G, 4 * G}, 12), random_tensor({1, C / 4, 2 * G, 2 * G}, 13)};
    const auto image = sam2_decoder_image(m, f, Sam2DecoderPath::Both);
    const float pts[] = {100.0f, 200.0f, 900.0f, 40.0f, 512.0f, 700.0f, 300.0f, 800.0f};
    const int labels[] = {1, 0, 2, 3};
    const Tensor one = sam2_sparse_embeddings(m.prompt_encoder, 1, 4, pts, labels);
    const Tensor two = sam2_sparse_embeddings(m.prompt_encoder, 2, 1, pts, labels);  // labels 1, 0
    expect_same(sam2_low_rank_decoder_forward(m, *image, one, {}, true), sam2_mask_decoder_forward(m, *image, one, {}, true),
                "one prompt");
    expect_same(sam2_low_rank_decoder_forward(m, *image, two, {}, false),
                sam2_mask_decoder_forward(m, *image, two, {}, false), "two prompts");
}

// The upscaling runs in blocks of 256 image positions, 4 columns each, in chunks of 64 columns:
// an 18 x 18 image side (input 288) has a whole block and a partial one of 68 positions, whose
// 272 columns end in a partial chunk. One prompt (its blocks spread over the threads) and a
// batch (one prompt per thread, its blocks in turn), in both output modes.
TEST(Sam2LowRankDecoder, PartialBlocksMatchTheReferenceDecoder) {
    Sam2Config cfg = sam2_config_for("tiny");
    cfg.image_size = 288;
    const Sam2 model = Sam2::random(cfg, 8);
    const Sam2Model& m = Sam2Access::model(model);
    const int64_t C = m.config.d_model, G = m.config.embedding_size();
    ASSERT_EQ(G * G, 256 + 68);
    Sam2Features f;
    f.image_embed = random_tensor({1, C, G, G}, 21);
    f.high_res = {random_tensor({1, C / 8, 4 * G, 4 * G}, 22), random_tensor({1, C / 4, 2 * G, 2 * G}, 23)};
    const auto image = sam2_decoder_image(m, f, Sam2DecoderPath::Both);
    const float pts[] = {40.0f, 250.0f, 270.0f, 20.0f, 150.0f, 160.0f};
    const int labels[] = {1, 0, 1};
    const Tensor one = sam2_sparse_embeddings(m.prompt_encoder, 1, 3, pts, labels);
    const Tensor three = sam2_sparse_embeddings(m.prompt_encoder, 3, 1, pts, labels);
    for (bool multimask : {true, false}) {
        const std::string mode = multimask ? " multimask" : " single";
        expect_same(sam2_low_rank_decoder_forward(m, *image, one, {}, multimask),
                    sam2_mask_decoder_forward(m, *image, one, {}, multimask), "one prompt" + mode);
        expect_same(sam2_low_rank_decoder_forward(m, *image, three, {}, multimask),
                    sam2_mask_decoder_forward(m, *image, three, {}, multimask), "three prompts" + mode);
    }
}

// Each decoder refuses an image state made without it, naming what is missing.
TEST(Sam2LowRankDecoder, StatesWithoutTheDecoderAreRefused) {
    const Sam2Model& m = Sam2Access::model(reduced());
    const float pt[] = {10.0f, 20.0f};
    const int label = 1;
    const Tensor sparse = sam2_sparse_embeddings(m.prompt_encoder, 1, 1, pt, &label);
    const auto fast = sam2_decoder_image(m, truck_features(), Sam2DecoderPath::LowRank);
    const auto ref = sam2_decoder_image(m, truck_features(), Sam2DecoderPath::Reference);
    EXPECT_THROW(sam2_mask_decoder_forward(m, *fast, sparse, {}, true), Error);
    EXPECT_THROW(sam2_low_rank_decoder_forward(m, *ref, sparse, {}, true), Error);
}

}  // namespace
}  // namespace sam
