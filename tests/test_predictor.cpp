// SamPredictor parity with the reference (fixture sam-tiny, predict/<case>/) and prompt errors.
//
// Tolerances (fixture README): IoU predictions within 1e-3, low-res logits within 1e-2,
// masks IoU >= 0.99 with the reference PNGs, sampled full-resolution logits within 1e-2.
//
// Low-res logits: the tiny random model is ill-conditioned at a few pixels. Multiplying the
// fixture embedding by (1 + 2e-7 * noise), i.e. one float ulp, moves the worst low-res logit
// of points_pos_neg by 0.018 while >99.9% of the pixels move by < 1e-3; computing the attention
// dot products in double moves it by 0.03. Rounding order alone therefore cannot be held to
// 1e-2 at every pixel: across kernel variants the worst case seen was point_with_mask_input
// (logits up to 100) with 99.5% within 1e-2 and a max of 0.049; typically >= 99.97%, max < 0.04.
// The check is: >= 99% of low-res logits within 1e-2 and all within kLowResMaxTol; the max
// error and the fraction are printed for each case.
//
// The reference itself, measured (scripts/sam_tiny_sensitivity.py: the official predictor on
// this fixture, torch 2.15, 10 seeds of one-ulp noise on the embedding): its low-res logits
// move by up to 0.075 (point_with_mask_input; 99.79% within 1e-2 at worst, points_pos_neg),
// its sampled full-resolution logits by up to 7.9e-3 (point_with_mask_input); with no noise,
// that torch build differs from the fixture's by up to 0.039 (low-res) and 5.6e-3 (sampled
// full-res). Ours read 7.3e-3 on point_with_mask_input's sampled logits with the AVX-512
// kernels and 9.7e-3 with the AVX2 ones (under qemu -cpu Haswell): within what the reference
// itself moves by (one ulp plus another build, up to 1.35e-2), so the sampled logits keep the
// fixture's 1e-2, knowing this case sits near it; every other case reads < 4e-3.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "postprocess.h"
#include "sam/error.h"
#include "sam/image.h"
#include "sam/npy.h"
#include "sam/predictor.h"
#include "test_util.h"

namespace sam {
namespace {

using nlohmann::json;

constexpr float kIouTol = 1e-3f, kLowResTol = 1e-2f, kLowResMaxTol = 0.1f, kLogitTol = 1e-2f, kMinMaskIou = 0.99f;
constexpr double kLowResWithinFraction = 0.99;

const Sam& tiny_model() {
    static const Sam model = [] {
        LoadOptions o;
        o.config_path = test::data_path("config.json");
        return Sam::load(test::data_path("sam_tiny.pth"), o);
    }();
    return model;
}

json read_json(const std::string& path) {
    std::ifstream f(path);
    return json::parse(f);
}

const json& manifest() {
    static const json m = read_json(test::data_path("manifest.json"));
    return m;
}

const json& find_case(const std::string& name) {
    for (const json& c : manifest()["predict"])
        if (c["name"] == name) return c;
    throw std::runtime_error("no predict case " + name);
}

SamPredictor predictor_for(const std::string& image) {
    const json& info = manifest()["images"][image];
    SamPredictor p(tiny_model());
    p.set_embedding(load_npy(test::data_path(info["embedding"].get<std::string>())), info["height"].get<int>(),
                    info["width"].get<int>());
    return p;
}

// The mask input of a case that names another case: that case's low-res logits of its best
// mask (highest predicted IoU), as the reference's notebook feeds a previous result back.
Tensor mask_input_from(const std::string& case_name) {
    const std::string dir = test::data_path("predict/" + case_name + "/");
    Tensor low = load_npy(dir + "low_res.npy"), iou = load_npy(dir + "iou.npy");
    int64_t best = 0;
    for (int64_t i = 1; i < iou.numel(); ++i)
        if (iou[i] > iou[best]) best = i;
    const int64_t S = low.dim(-1);
    Tensor m({1, S, S});
    std::copy(low.data() + best * S * S, low.data() + (best + 1) * S * S, m.data());
    return m;
}

Prompt prompt_from(const json& j) {
    Prompt p;
    if (j.contains("point_coords"))
        for (const json& xy : j["point_coords"]) p.point_coords.push_back({xy[0].get<float>(), xy[1].get<float>()});
    if (j.contains("point_labels")) p.point_labels = j["point_labels"].get<std::vector<int>>();
    if (j.contains("box")) p.box = j["box"].get<std::array<float, 4>>();
    if (j.contains("mask_input")) p.mask_input = mask_input_from(j["mask_input"].get<std::string>());
    p.multimask_output = j["multimask_output"].get<bool>();
    return p;
}

// IoU of a predicted 0/1 mask with a reference 0/255 PNG.
double mask_iou(const uint8_t* mask, const std::string& png, int h, int w) {
    Image ref = read_image(png);
    EXPECT_EQ(ref.height, h);
    EXPECT_EQ(ref.width, w);
    int64_t inter = 0, uni = 0;
    for (int64_t i = 0; i < int64_t{h} * w; ++i) {
        const bool a = mask[i] != 0, b = ref.rgb[static_cast<size_t>(3 * i)] > 127;
        inter += a && b;
        uni += a || b;
    }
    return uni == 0 ? 1.0 : static_cast<double>(inter) / static_cast<double>(uni);
}

// Checks IoU predictions, low-res logits and mask PNGs of one case's output; returns the
// max abs errors seen (iou, low res) for the report.
void expect_matches_case(const std::string& name, const std::vector<float>& iou, const Tensor& low_res,
                         const std::vector<uint8_t>& masks, int h, int w) {
    const std::string dir = test::data_path("predict/" + name + "/");
    Tensor ref_iou = load_npy(dir + "iou.npy"), ref_low = load_npy(dir + "low_res.npy");
    const json info = read_json(dir + "prompt.json");
    const int n = info["num_masks"].get<int>();
    ASSERT_EQ(static_cast<int>(iou.size()), n) << name;
    ASSERT_EQ(ref_iou.numel(), n) << name;
    float iou_err = 0.0f;
    for (int i = 0; i < n; ++i) iou_err = std::max(iou_err, std::fabs(iou[static_cast<size_t>(i)] - ref_iou[i]));
    EXPECT_LE(iou_err, kIouTol) << name;
    ASSERT_EQ(low_res.numel(), ref_low.numel()) << name;
    const float low_err = test::max_abs_diff(low_res, ref_low);
    int64_t within = 0;
    for (int64_t i = 0; i < ref_low.numel(); ++i) within += std::fabs(low_res[i] - ref_low[i]) <= kLowResTol;
    const double frac = static_cast<double>(within) / static_cast<double>(ref_low.numel());
    EXPECT_GE(frac, kLowResWithinFraction) << name;
    EXPECT_LE(low_err, kLowResMaxTol) << name;
    double worst_iou = 1.0;
    for (int i = 0; i < n; ++i)
        worst_iou = std::min(worst_iou, mask_iou(masks.data() + static_cast<int64_t>(i) * h * w,
                                                 dir + info["mask_pngs"][static_cast<size_t>(i)].get<std::string>(), h, w));
    EXPECT_GE(worst_iou, kMinMaskIou) << name;
    std::printf("[ %-22s ] iou err %.3g, low-res max err %.3g (%.4f%% within 1e-2), worst mask IoU %.5f\n",
                name.c_str(), iou_err, low_err, 100.0 * frac, worst_iou);
}

// Sampled full-resolution logits [row, col, v_0 .. v_{n-1}] against the predicted logits.
void expect_logit_samples(const std::string& name, const Tensor& logits, int h, int w) {
    const json info = read_json(test::data_path("predict/" + name + "/prompt.json"));
    if (!info.contains("logit_samples_row_col_values")) return;
    float err = 0.0f;
    int count = 0;
    for (const json& s : info["logit_samples_row_col_values"]) {
        const int64_t r = s[0].get<int64_t>(), c = s[1].get<int64_t>();
        for (size_t i = 2; i < s.size(); ++i) {
            const float want = s[i].get<float>(), got = logits[(static_cast<int64_t>(i - 2) * h + r) * w + c];
            err = std::max(err, std::fabs(got - want));
            ++count;
        }
    }
    EXPECT_GT(count, 0);
    EXPECT_LE(err, kLogitTol) << name;
    std::printf("[ %-22s ] %d sampled full-res logits, max err %.3g\n", name.c_str(), count, err);
}

void check_single_case(const std::string& name) {
    const json& c = find_case(name);
    SamPredictor p = predictor_for(c["image"].get<std::string>());
    Prompt prompt = prompt_from(c["prompt"]);
    Prediction r = p.predict(prompt);
    expect_matches_case(name, r.iou_predictions, r.low_res_logits, r.masks, r.height, r.width);
    prompt.return_logits = true;
    Prediction l = p.predict(prompt);
    ASSERT_TRUE(l.logits.defined());
    EXPECT_TRUE(l.masks.empty());
    expect_logit_samples(name, l.logits, l.height, l.width);
}

TEST(Predictor, PointMultimask) { check_single_case("point_multimask"); }
TEST(Predictor, PointsPosNeg) { check_single_case("points_pos_neg"); }
TEST(Predictor, Box) { check_single_case("box"); }
TEST(Predictor, BoxAndPoint) { check_single_case("box_and_point"); }
TEST(Predictor, PointWithMaskInput) { check_single_case("point_with_mask_input"); }
TEST(Predictor, DogPoint) { check_single_case("dog_point"); }
TEST(Predictor, SyntheticBox) { check_single_case("synthetic_box"); }

TEST(Predictor, EveryFixtureCaseIsCovered) {
    const std::vector<std::string> covered = {"point_multimask", "points_pos_neg", "box",         "box_and_point",
                                              "point_with_mask_input", "dog_point", "synthetic_box", "batched_boxes"};
    for (const json& c : manifest()["predict"])
        EXPECT_NE(std::find(covered.begin(), covered.end(), c["name"].get<std::string>()), covered.end()) << c["name"];
}

TEST(Predictor, BatchedBoxes) {
    const json& c = find_case("batched_boxes");
    SamPredictor p = predictor_for(c["image"].get<std::string>());
    BatchPrompt b;
    for (const json& box : c["prompt"]["boxes"]) b.boxes.push_back(box.get<std::array<float, 4>>());
    b.batch = static_cast<int64_t>(b.boxes.size());
    b.multimask_output = c["prompt"]["multimask_output"].get<bool>();
    BatchPrediction r = p.predict_batch(b);
    ASSERT_EQ(r.batch, 4);
    ASSERT_EQ(r.num_masks, 1);
    std::vector<float> iou(r.iou_predictions.data(), r.iou_predictions.data() + r.iou_predictions.numel());
    expect_matches_case("batched_boxes", iou, r.low_res_logits, r.masks, r.height, r.width);

    // Each prompt of the batch decodes as it would alone.
    for (int64_t i = 0; i < r.batch; ++i) {
        Prompt one;
        one.box = b.boxes[static_cast<size_t>(i)];
        one.multimask_output = false;
        Prediction s = p.predict(one);
        EXPECT_NEAR(s.iou_predictions[0], iou[static_cast<size_t>(i)], 1e-4f);
        const int64_t S2 = s.low_res_logits.numel();
        float d = 0.0f;
        for (int64_t k = 0; k < S2; ++k) d = std::max(d, std::fabs(s.low_res_logits[k] - r.low_res_logits[i * S2 + k]));
        EXPECT_LE(d, kLowResMaxTol) << "prompt " << i;
    }
}

TEST(Predictor, LargeBatchSpansChunksAndMatchesSingles) {
    // More prompts than one decoder chunk, with points and mask inputs mixed in.
    SamPredictor p = predictor_for("truck");
    BatchPrompt b;
    b.batch = 11;
    b.points_per_prompt = 1;
    for (int64_t i = 0; i < b.batch; ++i) {
        b.point_coords.push_back(100.0f + 150.0f * static_cast<float>(i));
        b.point_coords.push_back(80.0f + 90.0f * static_cast<float>(i));
        b.point_labels.push_back(1);
    }
    b.multimask_output = true;
    BatchPrediction r = p.predict_batch(b, /*upsample=*/false);
    EXPECT_TRUE(r.masks.empty());
    ASSERT_EQ(r.low_res_logits.dim(0), 11);
    ASSERT_EQ(r.low_res_logits.dim(1), 3);
    for (int64_t i : {0, 7, 8, 10}) {
        Prompt one;
        one.point_coords = {{b.point_coords[static_cast<size_t>(2 * i)], b.point_coords[static_cast<size_t>(2 * i + 1)]}};
        one.point_labels = {1};
        Prediction s = p.predict(one);
        for (int m = 0; m < 3; ++m) EXPECT_NEAR(s.iou_predictions[static_cast<size_t>(m)], r.iou_predictions[i * 3 + m], 1e-4f);
        const int64_t n = s.low_res_logits.numel();
        float d = 0.0f;
        for (int64_t k = 0; k < n; ++k) d = std::max(d, std::fabs(s.low_res_logits[k] - r.low_res_logits[i * n + k]));
        EXPECT_LE(d, kLowResMaxTol) << "prompt " << i;
    }
}

TEST(Predictor, SetImageRunsTheEncoder) {
    // Through the image encoder instead of the fixture's embedding.
    SamPredictor p(tiny_model());
    p.set_image(read_image(test::data_path("images/truck.png")));
    EXPECT_EQ(p.geometry().orig_h, 1200);
    EXPECT_EQ(p.geometry().input_w, 1024);
    Prediction r = p.predict(prompt_from(find_case("point_multimask")["prompt"]));
    expect_matches_case("point_multimask", r.iou_predictions, r.low_res_logits, r.masks, r.height, r.width);
}

TEST(Predictor, NoPromptIsAllowed) {
    SamPredictor p = predictor_for("dog");
    Prompt none;
    none.multimask_output = false;
    Prediction r = p.predict(none);
    EXPECT_EQ(r.num_masks, 1);
    EXPECT_EQ(r.height, 534);
    EXPECT_EQ(r.width, 800);
    EXPECT_EQ(r.masks.size(), size_t{534} * 800);
    EXPECT_TRUE(std::isfinite(r.iou_predictions[0]));
}

TEST(Predictor, EmbeddingRoundTripsThroughFiles) {
    SamPredictor p = predictor_for("synthetic");
    const std::string path = (std::filesystem::temp_directory_path() / "sam_pred_emb_test.npy").string();
    p.save_embedding(path);
    SamPredictor q(tiny_model());
    q.load_embedding(path);
    EXPECT_EQ(q.geometry().orig_h, 173);
    EXPECT_EQ(q.geometry().orig_w, 301);
    EXPECT_EQ(test::max_abs_diff(q.embedding(), p.embedding()), 0.0f);
    SamPredictor r(tiny_model());
    r.load_embedding(test::data_path("embedding_synthetic.npy"), 173, 301);  // bare .npy + size
    EXPECT_EQ(test::max_abs_diff(r.embedding(), p.embedding()), 0.0f);
    std::filesystem::remove(path);
    std::filesystem::remove(path + ".json");
    EXPECT_THROW(r.load_embedding(test::data_path("embedding_synthetic.npy")), InputError);  // no sidecar
}

TEST(Predictor, PostprocessRegionMatchesFullOutput) {
    MaskPostprocessor post(256, 1024, 683, 1024, 1200, 1800);
    Tensor low = load_npy(test::data_path("predict/box/low_res.npy"));
    std::vector<float> full(size_t{1200} * 1800), part(size_t{100} * 300);
    post.logits(low.data(), full.data());
    post.logits(low.data(), part.data(), {1100, 1200, 1500, 1800});
    for (int y = 0; y < 100; ++y)
        for (int x = 0; x < 300; ++x)
            ASSERT_EQ(part[static_cast<size_t>(y * 300 + x)], full[static_cast<size_t>((1100 + y) * 1800 + 1500 + x)]);
}

// Expects predict to throw sam::InputError whose message starts with `field`.
void expect_input_error(const SamPredictor& p, const Prompt& prompt, const std::string& field) {
    try {
        p.predict(prompt);
        ADD_FAILURE() << "no error for bad " << field;
    } catch (const InputError& e) {
        EXPECT_EQ(std::string(e.what()).rfind(field + ":", 0), 0u) << e.what();
    }
}

TEST(Predictor, PredictBeforeImageIsSetFails) {
    SamPredictor p(tiny_model());
    Prompt prompt;
    prompt.point_coords = {{10, 10}};
    prompt.point_labels = {1};
    expect_input_error(p, prompt, "image");
    EXPECT_THROW(p.embedding(), InputError);
}

TEST(Predictor, BadPromptsNameTheField) {
    SamPredictor p = predictor_for("truck");
    Prompt mismatch;
    mismatch.point_coords = {{10, 10}, {20, 20}};
    mismatch.point_labels = {1};
    expect_input_error(p, mismatch, "point_labels");

    Prompt bad_label;
    bad_label.point_coords = {{10, 10}};
    bad_label.point_labels = {2};
    expect_input_error(p, bad_label, "point_labels");

    Prompt nan_point;
    nan_point.point_coords = {{std::numeric_limits<float>::quiet_NaN(), 10}};
    nan_point.point_labels = {1};
    expect_input_error(p, nan_point, "point_coords");

    Prompt inf_point;
    inf_point.point_coords = {{10, std::numeric_limits<float>::infinity()}};
    inf_point.point_labels = {1};
    expect_input_error(p, inf_point, "point_coords");

    Prompt flipped_x;
    flipped_x.box = std::array<float, 4>{200, 10, 100, 50};
    expect_input_error(p, flipped_x, "box");

    Prompt flipped_y;
    flipped_y.box = std::array<float, 4>{10, 200, 100, 50};
    expect_input_error(p, flipped_y, "box");

    Prompt nan_box;
    nan_box.box = std::array<float, 4>{10, 20, std::numeric_limits<float>::quiet_NaN(), 50};
    expect_input_error(p, nan_box, "box");

    Prompt bad_mask;
    bad_mask.point_coords = {{10, 10}};
    bad_mask.point_labels = {1};
    bad_mask.mask_input = Tensor({1, 128, 128});
    expect_input_error(p, bad_mask, "mask_input");

    BatchPrompt bad_batch;
    bad_batch.batch = 2;
    bad_batch.boxes = {{0, 0, 10, 10}};
    EXPECT_THROW(p.predict_batch(bad_batch), InputError);
    EXPECT_THROW(p.set_embedding(Tensor({1, 32, 32, 32}), 10, 10), InputError);
}

}  // namespace
}  // namespace sam
