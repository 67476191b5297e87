#include <fstream>

#include <nlohmann/json.hpp>

#include "sam/config.h"
#include "sam/error.h"

namespace sam {
namespace {

// The reference's _build_sam(encoder_embed_dim, encoder_depth, encoder_num_heads, global_attn_indexes).
SamConfig build_sam_config(const char* type, int embed_dim, int depth, int heads, std::vector<int> global) {
    SamConfig c;
    c.model_type = type;
    c.encoder.embed_dim = embed_dim;
    c.encoder.depth = depth;
    c.encoder.num_heads = heads;
    c.encoder.global_attn_indexes = std::move(global);
    return c;
}

}  // namespace

SamConfig sam_config_vit_b() { return build_sam_config("vit_b", 768, 12, 12, {2, 5, 8, 11}); }
SamConfig sam_config_vit_l() { return build_sam_config("vit_l", 1024, 24, 16, {5, 11, 17, 23}); }
SamConfig sam_config_vit_h() { return build_sam_config("vit_h", 1280, 32, 16, {7, 15, 23, 31}); }

SamConfig sam_config_for(const std::string& model_type) {
    if (model_type == "vit_b") return sam_config_vit_b();
    if (model_type == "vit_l") return sam_config_vit_l();
    if (model_type == "vit_h") return sam_config_vit_h();
    throw InputError("model type", "'" + model_type + "' is not one of vit_b, vit_l, vit_h");
}

SamConfig sam_config_from_json(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw Error(path + ": cannot open");
    nlohmann::json j;
    try {
        in >> j;
    } catch (const std::exception& e) {
        throw Error(path + ": invalid JSON: " + e.what());
    }
    auto get_int = [&](const char* key, int fallback) {
        if (!j.contains(key)) return fallback;
        if (!j[key].is_number_integer()) throw Error(path + ": field '" + std::string(key) + "' must be an integer");
        return j[key].get<int>();
    };
    SamConfig c;
    c.model_type = "custom";
    auto require = [&](const char* key) {
        if (!j.contains(key)) throw Error(path + ": missing field '" + std::string(key) + "'");
    };
    for (const char* key : {"encoder_embed_dim", "encoder_depth", "encoder_num_heads", "encoder_global_attn_indexes"})
        require(key);
    c.encoder.img_size = get_int("img_size", 1024);
    c.encoder.patch_size = get_int("patch_size", 16);
    c.encoder.embed_dim = get_int("encoder_embed_dim", 768);
    c.encoder.depth = get_int("encoder_depth", 12);
    c.encoder.num_heads = get_int("encoder_num_heads", 12);
    c.encoder.window_size = get_int("window_size", 14);
    c.encoder.mlp_ratio = get_int("mlp_ratio", 4);
    c.encoder.global_attn_indexes.clear();
    if (!j["encoder_global_attn_indexes"].is_array())
        throw Error(path + ": field 'encoder_global_attn_indexes' must be a list of integers");
    for (const auto& v : j["encoder_global_attn_indexes"]) c.encoder.global_attn_indexes.push_back(v.get<int>());
    c.encoder.out_chans = get_int("prompt_embed_dim", 256);
    c.prompt.embed_dim = c.encoder.out_chans;
    c.prompt.mask_in_chans = get_int("mask_in_chans", 16);
    c.decoder.transformer_dim = c.encoder.out_chans;
    c.decoder.depth = get_int("decoder_depth", 2);
    c.decoder.mlp_dim = get_int("decoder_mlp_dim", 2048);
    c.decoder.num_heads = get_int("decoder_num_heads", 8);
    c.decoder.num_multimask_outputs = get_int("num_multimask_outputs", 3);
    c.decoder.iou_head_depth = get_int("iou_head_depth", 3);
    c.decoder.iou_head_hidden_dim = get_int("iou_head_hidden_dim", 256);
    if (j.contains("layer_norm_eps_encoder")) c.encoder.layer_norm_eps = j["layer_norm_eps_encoder"].get<float>();
    if (j.contains("mask_threshold")) c.mask_threshold = j["mask_threshold"].get<float>();
    for (int i = 0; i < 3; ++i) {
        if (j.contains("pixel_mean")) c.pixel_mean[static_cast<size_t>(i)] = j["pixel_mean"].at(static_cast<size_t>(i)).get<float>();
        if (j.contains("pixel_std")) c.pixel_std[static_cast<size_t>(i)] = j["pixel_std"].at(static_cast<size_t>(i)).get<float>();
    }
    if (c.encoder.embed_dim % c.encoder.num_heads != 0)
        throw Error(path + ": encoder_embed_dim must be divisible by encoder_num_heads");
    return c;
}

}  // namespace sam
