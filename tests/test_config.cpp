// Model configs from JSON (the fixture's config.json format): the fixture parses, and every
// field that would give the model a zero, negative, indivisible or absurd size is refused with
// an error naming the file and the field.
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "sam/config.h"
#include "sam/error.h"
#include "test_util.h"

namespace sam {
namespace {

nlohmann::json fixture() {
    std::ifstream in(test::data_path("config.json"));
    return nlohmann::json::parse(in);
}

// Parses `j` as the file "bad_config.json" and expects an error containing every one of `parts`.
void expect_error(const nlohmann::json& j, const std::vector<std::string>& parts) {
    try {
        sam_config_from_json_text(j.dump(), "bad_config.json");
        ADD_FAILURE() << "no error for " << j.dump();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("bad_config.json: "), std::string::npos) << e.what();
        for (const std::string& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
}

nlohmann::json with(const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = fixture();
    j[key] = value;
    return j;
}

TEST(Config, ReadsTheFixture) {
    const SamConfig c = sam_config_from_json(test::data_path("config.json"));
    EXPECT_EQ(c.model_type, "custom");
    EXPECT_EQ(c.encoder.embed_dim, 32);
    EXPECT_EQ(c.encoder.num_heads, 2);
    EXPECT_EQ(c.encoder.global_attn_indexes, std::vector<int>{1});
    EXPECT_EQ(c.decoder.transformer_dim, 32);
    EXPECT_EQ(c.embedding_size(), 64);
    EXPECT_FLOAT_EQ(c.pixel_std[2], 57.375f);
    const std::string path = test::data_path("config.json");
    std::ifstream in(path);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(sam_config_from_json_text(text, "mem").encoder.depth, 2);
}

TEST(Config, ZeroHeadsOrPatchSizeIsRefused) {
    expect_error(with("encoder_num_heads", 0), {"field 'encoder_num_heads'", "0 is not between 1 and"});
    expect_error(with("patch_size", 0), {"field 'patch_size'", "0 is not between 1 and"});
    expect_error(with("decoder_num_heads", 0), {"field 'decoder_num_heads'"});
}

TEST(Config, NonPositiveSizesAreRefused) {
    for (const char* key : {"img_size", "encoder_embed_dim", "encoder_depth", "window_size", "mlp_ratio",
                            "prompt_embed_dim", "mask_in_chans", "decoder_depth", "decoder_mlp_dim",
                            "num_multimask_outputs", "iou_head_depth", "iou_head_hidden_dim"}) {
        expect_error(with(key, -4), {std::string("field '") + key + "'", "-4 is not between"});
        expect_error(with(key, 0), {std::string("field '") + key + "'"});
    }
}

TEST(Config, IndivisibleSizesAreRefused) {
    expect_error(with("encoder_num_heads", 3), {"field 'encoder_num_heads'", "3 does not divide encoder_embed_dim 32"});
    expect_error(with("patch_size", 24), {"field 'patch_size'", "24 does not divide img_size 1024"});
    expect_error(with("prompt_embed_dim", 36), {"field 'prompt_embed_dim'", "not a multiple of 8"});
    expect_error(with("decoder_num_heads", 32), {"field 'decoder_num_heads'", "does not divide prompt_embed_dim / 2 = 16"});
    expect_error(with("mask_in_chans", 6), {"field 'mask_in_chans'", "not a multiple of 4"});
}

TEST(Config, AbsurdSizesAreRefused) {
    expect_error(with("img_size", 1 << 20), {"field 'img_size'", "is not between 1 and 8192"});
    expect_error(with("encoder_embed_dim", 4294967296LL + 32), {"field 'encoder_embed_dim'"});  // 32 as int
    expect_error(with("encoder_depth", 18446744073709551615ULL), {"field 'encoder_depth'"});
    nlohmann::json j = with("img_size", 8192);
    j["patch_size"] = 1;
    j["encoder_embed_dim"] = 8192;
    j["encoder_num_heads"] = 8;
    expect_error(j, {"field 'img_size'", "more than 2^30 floats"});
}

TEST(Config, IllTypedFieldsAreRefused) {
    expect_error(with("encoder_depth", "2"), {"field 'encoder_depth'", "must be an integer"});
    expect_error(with("encoder_depth", 2.5), {"field 'encoder_depth'", "must be an integer"});
    expect_error(with("encoder_global_attn_indexes", {1, "x"}), {"field 'encoder_global_attn_indexes'"});
    expect_error(with("encoder_global_attn_indexes", {2}), {"field 'encoder_global_attn_indexes'", "2 is not between 0 and 1"});
    expect_error(with("encoder_global_attn_indexes", 1), {"must be a list of integers"});
    expect_error(with("pixel_mean", {1.0, 2.0}), {"field 'pixel_mean'", "list of 3 numbers"});
    expect_error(with("pixel_std", {1.0, 0.0, 1.0}), {"field 'pixel_std'", "must be positive"});
    expect_error(with("pixel_std", {1.0, 1e39, 1.0}), {"field 'pixel_std'", "not a finite float"});
    expect_error(with("layer_norm_eps_encoder", -1e-6), {"field 'layer_norm_eps_encoder'"});
    expect_error(with("mask_threshold", "high"), {"field 'mask_threshold'", "must be a number"});
    nlohmann::json missing = fixture();
    missing.erase("encoder_depth");
    expect_error(missing, {"missing field 'encoder_depth'"});
    expect_error(nlohmann::json::array({1, 2}), {"a config is a JSON object"});
    EXPECT_THROW(sam_config_from_json_text("{\"img_size\": ", "cut.json"), Error);
    EXPECT_THROW(sam_config_from_json(test::data_path("no_such_config.json")), Error);
}

}  // namespace
}  // namespace sam
