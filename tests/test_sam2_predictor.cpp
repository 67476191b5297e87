// SAM2ImagePredictor parity with the official package on every case of the fixture
// (tests/data/sam2/predict: point multimask, single point with the dynamic multimask fallback,
// box, points + box, several points, mask input), on the truck image (1800x1200).
//
// Tolerances: IoU predictions within 1e-5 (sigmoid outputs in [0, 1]); low-res logits (magnitude
// ~8) and sampled full-resolution logits within 1e-4 absolute (measured: <= 7e-6; fp32 summation
// order is the only expected difference).
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "sam/image.h"
#include "sam/npy.h"
#include "sam/sam2.h"
#include "test_util.h"

namespace sam {
namespace {

std::string sam2_path(const std::string& name) { return test::data_path("sam2/" + name); }

nlohmann::json read_json(const std::string& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
}

struct Fixture {
    Sam2ImagePredictor predictor;
    nlohmann::json cases;
};

Fixture& fixture() {
    static Fixture* f = [] {
        Sam2LoadOptions o;
        o.config_path = sam2_path("config.json");
        auto* fx = new Fixture{Sam2ImagePredictor(Sam2::load(sam2_path("sam2_reduced.pt"), o)),
                               read_json(sam2_path("manifest.json"))["predict"]};
        fx->predictor.set_image(read_image(test::data_path("images/truck.png")));
        return fx;
    }();
    return *f;
}

Prompt prompt_of(const std::string& name, const nlohmann::json& c) {
    Prompt p;
    if (c.contains("point_coords"))
        for (const auto& xy : c["point_coords"]) p.point_coords.push_back({xy[0].get<float>(), xy[1].get<float>()});
    if (c.contains("point_labels")) p.point_labels = c["point_labels"].get<std::vector<int>>();
    if (c.contains("box")) {
        auto b = c["box"].get<std::vector<float>>();
        p.box = std::array<float, 4>{b[0], b[1], b[2], b[3]};
    }
    if (c.contains("mask_input")) p.mask_input = load_npy(sam2_path("predict/" + name + "/mask_in.npy"));
    p.multimask_output = c["multimask_output"].get<bool>();
    p.return_logits = true;
    return p;
}

void check_case(const std::string& name, const Prediction& r) {
    SCOPED_TRACE(name);
    const std::string dir = sam2_path("predict/" + name + "/");
    Tensor iou = load_npy(dir + "iou.npy"), low = load_npy(dir + "low_res.npy");
    ASSERT_EQ(r.num_masks, iou.numel());
    for (int i = 0; i < r.num_masks; ++i) EXPECT_NEAR(r.iou_predictions[static_cast<size_t>(i)], iou[i], 1e-5) << i;
    EXPECT_TRUE(test::close_to_reference(r.low_res_logits, low, 1e-4f / std::max(test::max_abs(low), 1e-6f)));
    nlohmann::json s = read_json(dir + "samples.json");
    ASSERT_EQ(r.height, s["height"].get<int>());
    ASSERT_EQ(r.width, s["width"].get<int>());
    float worst = 0.0f;
    for (const auto& row : s["samples"]) {
        const int y = row[0].get<int>(), x = row[1].get<int>();
        for (int m = 0; m < r.num_masks; ++m) {
            const float want = row[static_cast<size_t>(2 + m)].get<float>();
            const float got = r.logits[(static_cast<int64_t>(m) * r.height + y) * r.width + x];
            worst = std::max(worst, std::fabs(got - want));
        }
    }
    EXPECT_LE(worst, 1e-4f);
}

TEST(Sam2Predictor, EveryCaseMatchesReference) {
    Fixture& f = fixture();
    ASSERT_GE(f.cases.size(), 6u);
    for (const auto& [name, c] : f.cases.items()) check_case(name, f.predictor.predict(prompt_of(name, c)));
}

TEST(Sam2Predictor, BinaryMasksAreThresholdedLogits) {
    Fixture& f = fixture();
    Prompt p = prompt_of("point_multimask", f.cases["point_multimask"]);
    Prediction logits = f.predictor.predict(p);
    p.return_logits = false;
    Prediction masks = f.predictor.predict(p);
    ASSERT_EQ(masks.masks.size(), static_cast<size_t>(logits.logits.numel()));
    int64_t on = 0;
    for (int64_t i = 0; i < logits.logits.numel(); ++i) {
        ASSERT_EQ(masks.masks[static_cast<size_t>(i)], logits.logits[i] > 0.0f ? 1 : 0) << i;
        on += masks.masks[static_cast<size_t>(i)];
    }
    EXPECT_GT(on, 0);
    EXPECT_LT(on, logits.logits.numel());
}

// Hole filling (off by default, as the official package on CPU): changes the full-size masks,
// never the returned low-res logits.
TEST(Sam2Predictor, HoleFillingChangesMasksNotLowResLogits) {
    Fixture& f = fixture();
    Prompt p = prompt_of("points_single", f.cases["points_single"]);
    p.return_logits = false;
    const Prediction plain = f.predictor.predict(p);
    Sam2ImagePredictor filling(f.predictor.model(), {100.0, 100.0});
    filling.set_features(f.predictor.features(), f.predictor.orig_h(), f.predictor.orig_w());
    const Prediction filled = filling.predict(p);
    EXPECT_EQ(test::max_abs_diff(filled.low_res_logits, plain.low_res_logits), 0.0f);
    EXPECT_NE(filled.masks, plain.masks);
}

TEST(Sam2Predictor, ConcurrentPredictionsAgree) {
    Fixture& f = fixture();
    const Prediction want = f.predictor.predict(prompt_of("points_box", f.cases["points_box"]));
    std::vector<Prediction> got(4);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < got.size(); ++t)
        threads.emplace_back([&, t] { got[t] = f.predictor.predict(prompt_of("points_box", f.cases["points_box"])); });
    for (auto& t : threads) t.join();
    for (const Prediction& g : got) EXPECT_EQ(test::max_abs_diff(g.logits, want.logits), 0.0f);
}

TEST(Sam2Predictor, BadPromptsNameTheField) {
    Fixture& f = fixture();
    Prompt p;
    p.point_coords = {{1.0f, 2.0f}};
    EXPECT_THROW(
        try { f.predictor.predict(p); } catch (const InputError& e) {
            EXPECT_NE(std::string(e.what()).find("point_labels"), std::string::npos);
            throw;
        },
        InputError);
    p.point_labels = {1};
    p.mask_input = Tensor({1, 256, 256});
    EXPECT_THROW(
        try { f.predictor.predict(p); } catch (const InputError& e) {
            EXPECT_NE(std::string(e.what()).find("mask_input"), std::string::npos);
            throw;
        },
        InputError);
    Sam2ImagePredictor fresh(f.predictor.model());
    EXPECT_THROW(fresh.predict(Prompt{}), InputError);
}

}  // namespace
}  // namespace sam
