// SAM 2 loading and image encoder parity with the official package (fixture tests/data/sam2,
// made by scripts/make_sam2_fixture.py: a reduced SAM 2.1 config with image size 256).
//
// Tolerances: activations and features within 1e-4 x the reference's largest magnitude (fp32,
// summation order being the only expected difference; measured <= 6e-6 x); the preprocessed
// input within 1e-5 x (measured 3e-7 x).
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <cstdio>
#include <set>

#include "sam/image.h"
#include "sam/npy.h"
#include "sam/sam2.h"
#include "sam2/model.h"
#include "test_util.h"

namespace sam {
namespace {

std::string sam2_path(const std::string& name) { return test::data_path("sam2/" + name); }

Sam2 reduced_model() {
    Sam2LoadOptions o;
    o.config_path = sam2_path("config.json");
    return Sam2::load(sam2_path("sam2_reduced.pt"), o);
}

TEST(Sam2Load, ReducedCheckpointNeedsItsConfig) {
    try {
        Sam2::load(sam2_path("sam2_reduced.pt"));
        FAIL() << "expected an error";
    } catch (const CheckpointError& e) {
        EXPECT_NE(std::string(e.what()).find("sam2_reduced.pt"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--config"), std::string::npos) << e.what();
    }
    Sam2 m = reduced_model();
    EXPECT_EQ(m.config().model_type, "custom");
    EXPECT_GT(m.parameter_count(), 100000);
}

TEST(Sam2Load, SamCheckpointIsNotSam2) {
    try {
        Sam2::load(test::data_path("sam_tiny.pth"));
        FAIL() << "expected an error";
    } catch (const CheckpointError& e) {
        EXPECT_NE(std::string(e.what()).find("patch_embed"), std::string::npos) << e.what();
    }
}

TEST(Sam2Load, UnexpectedImageKeyIsNamed) {
    Checkpoint ckpt = Checkpoint::open(sam2_path("sam2_reduced.pt"));
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const TensorRecord& r : ckpt.records()) tensors.emplace_back(r.key, ckpt.tensor(r.key));
    tensors.emplace_back("image_encoder.trunk.blocks.6.norm1.weight", Tensor({12}));
    const std::string path = ::testing::TempDir() + "sam2_extra_key.pt";
    write_checkpoint(path, tensors);
    Sam2LoadOptions o;
    o.config_path = sam2_path("config.json");
    try {
        Sam2::load(path, o);
        FAIL() << "expected an error";
    } catch (const CheckpointError& e) {
        EXPECT_NE(std::string(e.what()).find("blocks.6.norm1.weight"), std::string::npos) << e.what();
    }
    std::remove(path.c_str());
}

// Key lists of the official full-size configs: shapes only, served as zero tensors.
class KeyListSource : public TensorSource {
  public:
    explicit KeyListSource(const std::string& path) {
        std::ifstream in(path);
        nlohmann::json j = nlohmann::json::parse(in);
        for (const auto& e : j) shapes_[e[0].get<std::string>()] = e[1].get<Shape>();
        int64_t largest = 0;
        for (const auto& [k, s] : shapes_) largest = std::max(largest, shape_numel(s));
        zeros_ = std::make_shared<std::vector<float>>(static_cast<size_t>(largest), 0.0f);
    }
    Tensor tensor(const std::string& key, const Shape& shape) const override {
        auto it = shapes_.find(key);
        if (it == shapes_.end()) throw CheckpointError("key list", key, "missing key");
        if (it->second != shape)
            throw CheckpointError("key list", key, "shape " + shape_str(it->second) + ", expected " + shape_str(shape));
        used_.insert(key);
        return Tensor::view(shape, zeros_->data(), zeros_);
    }
    const Shape* shape_of(const std::string& key) const {
        auto it = shapes_.find(key);
        return it == shapes_.end() ? nullptr : &it->second;
    }
    std::vector<std::string> unused_image_keys() const {
        std::vector<std::string> out;
        for (const auto& [k, s] : shapes_) {
            const bool image = k.rfind("image_encoder.", 0) == 0 || k.rfind("sam_prompt_encoder.", 0) == 0 ||
                               k.rfind("sam_mask_decoder.", 0) == 0 || k == "no_mem_embed";
            if (image && !used_.count(k)) out.push_back(k);
        }
        return out;
    }

  private:
    std::map<std::string, Shape> shapes_;
    std::shared_ptr<std::vector<float>> zeros_;
    mutable std::set<std::string> used_;
};

TEST(Sam2Load, FullSizeConfigsMatchTheOfficialKeysAndShapes) {
    const std::map<std::string, std::pair<std::string, std::string>> cases = {
        {"tiny", {"tiny", "2.1"}},           {"small", {"small", "2.1"}}, {"base_plus", {"base_plus", "2.1"}},
        {"large", {"large", "2.1"}},         {"tiny_2.0", {"tiny", "2.0"}}, {"large_2.0", {"large", "2.0"}}};
    for (const auto& [file, want] : cases) {
        KeyListSource src(sam2_path("keys_" + file + ".json"));
        Sam2Model m;
        m.config = sam2_detect_config([&](const std::string& k) { return src.shape_of(k); }, file);
        EXPECT_EQ(m.config.model_type, want.first) << file;
        EXPECT_EQ(m.config.version, want.second) << file;
        ASSERT_NO_THROW(load_sam2_weights(m, src)) << file;
        EXPECT_EQ(src.unused_image_keys(), std::vector<std::string>{}) << file;
        EXPECT_EQ(m.trunk.pos.shape(), (Shape{256 * 256, m.config.trunk.embed_dim})) << file;
    }
}

TEST(Sam2ImageEncoder, PreprocessingMatchesSam2Transforms) {
    Sam2 m = reduced_model();
    // 1800x1200 -> 256x256: a downscale, where antialiasing matters.
    Tensor got = m.preprocess(read_image(test::data_path("images/truck.png")));
    EXPECT_TRUE(test::close_to_reference(got, load_npy(sam2_path("input_truck.npy")), 1e-5f));
}

TEST(Sam2ImageEncoder, TrunkStagesAndNeckLevelsMatchReference) {
    Sam2 m = reduced_model();
    std::map<std::string, Tensor> seen;
    Sam2Features f = sam2_image_features(Sam2Access::model(m), load_npy(sam2_path("input_truck.npy")),
                                         [&](const std::string& name, const Tensor& t) { seen[name] = t.clone(); });
    for (int i = 0; i < 4; ++i) {
        const std::string stage = "stage" + std::to_string(i), level = "level" + std::to_string(i);
        ASSERT_TRUE(seen.count(stage) && seen.count(level)) << i;
        EXPECT_TRUE(test::close_to_reference(seen[stage], load_npy(sam2_path("trunk_" + stage + "_truck.npy")))) << stage;
        EXPECT_TRUE(test::close_to_reference(seen[level], load_npy(sam2_path("neck_" + level + "_truck.npy")))) << level;
    }
    EXPECT_TRUE(test::close_to_reference(f.image_embed, load_npy(sam2_path("image_embed_truck.npy"))));
}

TEST(Sam2ImageEncoder, SinePositionEncodingMatchesReference) {
    for (int i = 1; i < 4; ++i) {
        const int side = 64 >> i;
        EXPECT_TRUE(test::close_to_reference(sine_position_encoding(32, side, side),
                                             load_npy(sam2_path("neck_pos" + std::to_string(i) + "_truck.npy"))))
            << i;
    }
}

TEST(Sam2ImageEncoder, FeaturesMatchReferenceOnAllImages) {
    Sam2 m = reduced_model();
    for (const char* image : {"truck", "dog", "synthetic"}) {
        Sam2Features f = m.embed(read_image(test::data_path(std::string("images/") + image + ".png")));
        const std::string s = image;
        EXPECT_TRUE(test::close_to_reference(f.image_embed, load_npy(sam2_path("image_embed_" + s + ".npy")))) << s;
        EXPECT_TRUE(test::close_to_reference(f.high_res[0], load_npy(sam2_path("high_res_feat0_" + s + ".npy")))) << s;
        EXPECT_TRUE(test::close_to_reference(f.high_res[1], load_npy(sam2_path("high_res_feat1_" + s + ".npy")))) << s;
    }
}

}  // namespace
}  // namespace sam
