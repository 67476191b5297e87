// Model shape: plain data with the reference's defaults (ViT-B). Generator thresholds live
// in automatic_mask_generator.h, not here.
// Thread safety: the functions here keep no state between calls; any number of threads may
// call them at once on different arguments.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace sam {

struct ImageEncoderConfig {
    int img_size    = 1024;
    int patch_size  = 16;
    int embed_dim   = 768;
    int depth       = 12;
    int num_heads   = 12;
    int mlp_ratio   = 4;
    int window_size = 14;
    int out_chans   = 256;  // neck output = prompt embed dim
    std::vector<int> global_attn_indexes = {2, 5, 8, 11};
    float layer_norm_eps = 1e-6f;
};

struct PromptEncoderConfig {
    int embed_dim     = 256;
    int mask_in_chans = 16;
};

struct MaskDecoderConfig {
    int transformer_dim       = 256;
    int depth                 = 2;
    int mlp_dim               = 2048;
    int num_heads             = 8;
    int attention_downsample  = 2;  // cross attentions project to dim / 2
    int num_multimask_outputs = 3;
    int iou_head_depth        = 3;
    int iou_head_hidden_dim   = 256;
};

struct SamConfig {
    std::string model_type = "vit_b";  // vit_b | vit_l | vit_h | custom
    ImageEncoderConfig encoder;
    PromptEncoderConfig prompt;
    MaskDecoderConfig decoder;
    std::array<float, 3> pixel_mean = {123.675f, 116.28f, 103.53f};
    std::array<float, 3> pixel_std  = {58.395f, 57.12f, 57.375f};
    float mask_threshold = 0.0f;

    int embedding_size() const { return encoder.img_size / encoder.patch_size; }  // 64
};

SamConfig sam_config_vit_b();  // 768, 12, 12, {2, 5, 8, 11}
SamConfig sam_config_vit_l();  // 1024, 24, 16, {5, 11, 17, 23}
SamConfig sam_config_vit_h();  // 1280, 32, 16, {7, 15, 23, 31}
// "vit_b" | "vit_l" | "vit_h"; throws sam::InputError otherwise.
SamConfig sam_config_for(const std::string& model_type);
// The fixture's config.json format (encoder_embed_dim, encoder_depth, ...). Throws sam::Error
// naming the file and field on a missing or ill-typed field, a size out of range (non-positive or
// absurd), or sizes the model cannot divide (heads, patches, the decoder's upscaling).
SamConfig sam_config_from_json(const std::string& path);
// The same from the JSON text; `path` names it in messages.
SamConfig sam_config_from_json_text(const std::string& text, const std::string& path);

}  // namespace sam
