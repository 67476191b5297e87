#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>

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

namespace {

// Typed, range-checked access to the fields of a config object. Every error names the file and
// the field: "<path>: field 'patch_size': 0 is not between 1 and 1024".
class Fields {
  public:
    Fields(const nlohmann::json& j, const std::string& path) : j_(j), path_(path) {}

    [[noreturn]] void fail(const std::string& key, const std::string& what) const {
        throw Error(path_ + ": field '" + key + "': " + what);
    }
    bool has(const char* key) const { return j_.contains(key); }
    void require(const char* key) const {
        if (!has(key)) throw Error(path_ + ": missing field '" + std::string(key) + "'");
    }

    // An integer in [lo, hi]; `fallback` when absent.
    int integer(const char* key, int fallback, int64_t lo, int64_t hi) const {
        if (!has(key)) return fallback;
        return integer_value(key, j_.at(key), lo, hi);
    }
    int integer_value(const std::string& key, const nlohmann::json& v, int64_t lo, int64_t hi) const {
        if (!v.is_number_integer()) fail(key, "must be an integer, got " + v.dump().substr(0, 40));
        const bool too_big = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi);
        const int64_t x = too_big ? hi : v.get<int64_t>();
        if (too_big || x < lo || x > hi)
            fail(key, v.dump() + " is not between " + std::to_string(lo) + " and " + std::to_string(hi));
        return static_cast<int>(x);
    }
    // A finite number, > 0 when `positive`; `fallback` when absent.
    float number(const char* key, float fallback, bool positive) const {
        if (!has(key)) return fallback;
        return number_value(key, j_.at(key), positive);
    }
    float number_value(const std::string& key, const nlohmann::json& v, bool positive) const {
        if (!v.is_number()) fail(key, "must be a number, got " + v.dump().substr(0, 40));
        const double x = v.get<double>();
        if (!std::isfinite(x) || std::fabs(x) > std::numeric_limits<float>::max())
            fail(key, v.dump() + " is not a finite float");
        if (positive && !(static_cast<float>(x) > 0.0f)) fail(key, v.dump() + " must be positive");
        return static_cast<float>(x);
    }
    // Three numbers (per RGB channel).
    std::array<float, 3> triple(const char* key, std::array<float, 3> fallback, bool positive) const {
        if (!has(key)) return fallback;
        const nlohmann::json& v = j_.at(key);
        if (!v.is_array() || v.size() != 3) fail(key, "must be a list of 3 numbers");
        for (size_t i = 0; i < 3; ++i) fallback[i] = number_value(key, v[i], positive);
        return fallback;
    }
    // A list of integers, each in [lo, hi].
    std::vector<int> integers(const char* key, int64_t lo, int64_t hi) const {
        const nlohmann::json& v = j_.at(key);
        if (!v.is_array()) fail(key, "must be a list of integers");
        std::vector<int> out;
        for (const auto& x : v) out.push_back(integer_value(key, x, lo, hi));
        return out;
    }

  private:
    const nlohmann::json& j_;
    const std::string& path_;
};

// Limits that keep every size the model derives from the config positive and allocatable.
constexpr int kMaxImgSize = 8192;
constexpr int kMaxDim = 8192;       // channels of any layer
constexpr int kMaxDepth = 256;      // blocks or layers
constexpr int64_t kMaxEncoderActivation = int64_t{1} << 30;  // floats in the encoder's MLP buffer

// The checks the model's shapes need: divisibility for heads, patches and the decoder's
// upscaling, and the size of the largest encoder buffer.
void check_consistency(const SamConfig& c, const Fields& f) {
    const ImageEncoderConfig& e = c.encoder;
    if (e.img_size % e.patch_size != 0)
        f.fail("patch_size", std::to_string(e.patch_size) + " does not divide img_size " + std::to_string(e.img_size));
    if (e.embed_dim % e.num_heads != 0)
        f.fail("encoder_num_heads", std::to_string(e.num_heads) + " does not divide encoder_embed_dim " +
                                        std::to_string(e.embed_dim));
    const int64_t G = c.embedding_size();
    if (G * G * e.embed_dim * e.mlp_ratio > kMaxEncoderActivation)
        f.fail("img_size", "a " + std::to_string(G) + "x" + std::to_string(G) + " grid of " +
                               std::to_string(e.embed_dim) + " channels with mlp_ratio " + std::to_string(e.mlp_ratio) +
                               " needs more than 2^30 floats per activation");
    const MaskDecoderConfig& d = c.decoder;
    // The decoder upsamples to C/4 then C/8 channels; its cross attentions use C/2 split by heads.
    if (d.transformer_dim % 8 != 0)
        f.fail("prompt_embed_dim", std::to_string(d.transformer_dim) + " is not a multiple of 8");
    if ((d.transformer_dim / d.attention_downsample) % d.num_heads != 0)
        f.fail("decoder_num_heads", std::to_string(d.num_heads) + " does not divide prompt_embed_dim / 2 = " +
                                        std::to_string(d.transformer_dim / d.attention_downsample));
    if (c.prompt.mask_in_chans % 4 != 0)
        f.fail("mask_in_chans", std::to_string(c.prompt.mask_in_chans) + " is not a multiple of 4");
}

}  // namespace

SamConfig sam_config_from_json_text(const std::string& text, const std::string& path) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw Error(path + ": invalid JSON: " + e.what());
    }
    if (!j.is_object()) throw Error(path + ": a config is a JSON object, got " + std::string(j.type_name()));
    const Fields f(j, path);
    for (const char* key : {"encoder_embed_dim", "encoder_depth", "encoder_num_heads", "encoder_global_attn_indexes"})
        f.require(key);
    SamConfig c;
    c.model_type = "custom";
    ImageEncoderConfig& e = c.encoder;
    e.img_size = f.integer("img_size", 1024, 1, kMaxImgSize);
    e.patch_size = f.integer("patch_size", 16, 1, kMaxImgSize);
    e.embed_dim = f.integer("encoder_embed_dim", 768, 1, kMaxDim);
    e.depth = f.integer("encoder_depth", 12, 1, kMaxDepth);
    e.num_heads = f.integer("encoder_num_heads", 12, 1, kMaxDim);
    e.window_size = f.integer("window_size", 14, 1, kMaxImgSize);
    e.mlp_ratio = f.integer("mlp_ratio", 4, 1, 64);
    e.global_attn_indexes = f.integers("encoder_global_attn_indexes", 0, e.depth - 1);
    e.out_chans = f.integer("prompt_embed_dim", 256, 1, kMaxDim);
    e.layer_norm_eps = f.number("layer_norm_eps_encoder", e.layer_norm_eps, true);
    c.prompt.embed_dim = e.out_chans;
    c.prompt.mask_in_chans = f.integer("mask_in_chans", 16, 1, kMaxDim);
    MaskDecoderConfig& d = c.decoder;
    d.transformer_dim = e.out_chans;
    d.depth = f.integer("decoder_depth", 2, 1, kMaxDepth);
    d.mlp_dim = f.integer("decoder_mlp_dim", 2048, 1, 8 * kMaxDim);
    d.num_heads = f.integer("decoder_num_heads", 8, 1, kMaxDim);
    d.num_multimask_outputs = f.integer("num_multimask_outputs", 3, 1, 64);
    d.iou_head_depth = f.integer("iou_head_depth", 3, 1, kMaxDepth);
    d.iou_head_hidden_dim = f.integer("iou_head_hidden_dim", 256, 1, 8 * kMaxDim);
    c.mask_threshold = f.number("mask_threshold", c.mask_threshold, false);
    c.pixel_mean = f.triple("pixel_mean", c.pixel_mean, false);
    c.pixel_std = f.triple("pixel_std", c.pixel_std, true);
    check_consistency(c, f);
    return c;
}

SamConfig sam_config_from_json(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return sam_config_from_json_text(text, path);
}

}  // namespace sam
