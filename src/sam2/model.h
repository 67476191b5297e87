// SAM 2's image model (sam2/modeling/sam2_base.py, image path only): weights of the Hiera trunk,
// FPN neck, prompt encoder and mask decoder, and the forward functions over them.
//
// Layout: activations are channels-last, (H*W, C) rows, batch 1.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "modeling/common.h"
#include "modeling/low_rank_decoder.h"
#include "modeling/prompt_encoder.h"
#include "modeling/transformer.h"
#include "sam/sam2.h"

namespace sam {

struct HieraBlockWeights {        // image_encoder.trunk.blocks.N
    LayerNorm norm1, norm2;       // .norm1 (dim), .norm2 (dim_out)
    Linear qkv, proj;             // .attn.qkv (3 dim_out, dim), .attn.proj (dim_out, dim_out)
    Linear mlp0, mlp1;            // .mlp.layers.0 (4 dim_out, dim_out), .mlp.layers.1 (dim_out, 4 dim_out)
    Linear skip;                  // .proj (dim_out, dim) when dim != dim_out, else undefined
    int dim = 0, dim_out = 0, num_heads = 0;
    int window_size = 0;          // 0: global attention
    bool q_pool = false;          // 2x2 max-pool of the queries and of the shortcut
};

struct HieraWeights {             // image_encoder.trunk
    Linear patch_embed;           // .patch_embed.proj (C, 3, 7, 7) viewed as (C, 147)
    Tensor pos_embed;             // .pos_embed (1, C, bh, bw)
    Tensor pos_embed_window;      // .pos_embed_window (1, C, w0, w0)
    std::vector<HieraBlockWeights> blocks;
    std::vector<int> stage_ends;  // index of each stage's last block
    Tensor pos;                   // computed at load: (S/4 * S/4, C) interpolated + tiled embedding
};

struct NeckWeights {              // image_encoder.neck
    std::vector<Linear> convs;    // .convs.N.conv (d_model, channels of level n-N, 1, 1)
};

struct Sam2DecoderWeights {       // sam_mask_decoder
    TwoWayTransformerWeights transformer;  // .transformer (mlp.layers.{0,1})
    Tensor obj_score_token;       // .obj_score_token.weight (1, C)
    Tensor iou_token;             // .iou_token.weight (1, C)
    Tensor mask_tokens;           // .mask_tokens.weight (4, C)
    Linear upscale1;              // .output_upscaling.0 ConvTranspose (C, C/4, 2, 2) as (4 * C/4, C), rows (ky, kx, out)
    Tensor upscale1_b;            // its bias (C/4)
    LayerNorm upscale_norm;       // .output_upscaling.1 LayerNorm2d (C/4)
    Linear upscale2;              // .output_upscaling.3 ConvTranspose (C/4, C/8, 2, 2) as (4 * C/8, C/4)
    Tensor upscale2_b;            // (C/8)
    Linear conv_s0, conv_s1;      // .conv_s0 (C/8, C, 1, 1), .conv_s1 (C/4, C, 1, 1)
    std::vector<std::vector<Linear>> hypernetworks;  // .output_hypernetworks_mlps.N.layers.{0,1,2}
    std::vector<Linear> iou_head;        // .iou_prediction_head.layers.{0..depth-1}
    std::vector<Linear> obj_score_head;  // .pred_obj_score_head(.layers.{0,1,2})
    std::shared_ptr<const MaskDecoderWeights> low_rank;  // sam2_low_rank_weights(*this), made at load
};

struct Sam2Model {
    Sam2Config config;
    std::string path;
    int64_t parameter_count = 0;
    std::shared_ptr<const Checkpoint> checkpoint;  // keeps mapped weights alive
    HieraWeights trunk;
    NeckWeights neck;
    Tensor no_mem_embed;          // no_mem_embed (1, 1, C)
    PromptEncoderWeights prompt_encoder;  // sam_prompt_encoder (same structure as SAM's)
    Sam2DecoderWeights decoder;
};

// The library's access to what a public sam::Sam2 holds.
struct Sam2Access {
    static const Sam2Model& model(const Sam2& sam) { return *sam.model_; }
};

// Model type and version read off a checkpoint's shapes (`shape_of` gives a key's shape, or null
// when the key is absent); `path` names the file in errors.
Sam2Config sam2_detect_config(const std::function<const Shape*(const std::string&)>& shape_of, const std::string& path);

// Fetches every image-path weight from `src`, checking shapes against `cfg`.
void load_sam2_weights(Sam2Model& m, const TensorSource& src);

// Called with ("patch_embed" | "block<i>" | "stage<i>" | "level<i>", activation), channels-last
// (1, H, W, C) for the trunk, (1, C, H, W) for the neck levels.
using Sam2Observer = std::function<void(const std::string&, const Tensor&)>;

// One MultiScaleBlock: x (H*W, dim) -> (H'*W', dim_out); H, W updated.
Tensor hiera_block(const HieraBlockWeights& b, Tensor x, int& H, int& W);
// input (1, 3, S, S) -> the trunk's stage outputs, each (H_i * W_i, C_i) channels-last.
std::vector<Tensor> hiera_forward(const HieraWeights& w, const Sam2Config& cfg, const Tensor& input,
                                  const Sam2Observer& observe = nullptr);
// The FPN levels (d_model channels, channels-last), highest resolution first, before scalp.
std::vector<Tensor> fpn_forward(const NeckWeights& w, const Sam2Config& cfg, const std::vector<Tensor>& stages);
// PositionEmbeddingSine(d_model) of an (H, W) grid: (1, d_model, H, W).
Tensor sine_position_encoding(int d_model, int H, int W);
// The predictor's features from an input image tensor (trunk, neck, conv_s0/s1, no_mem_embed).
Sam2Features sam2_image_features(const Sam2Model& m, const Tensor& input, const Sam2Observer& observe = nullptr);

// torch's F.interpolate(mode="bicubic", align_corners=False) of a (C, h, w) tensor to (C, H, W).
Tensor interpolate_bicubic(const Tensor& x, int H, int W);
// torchvision Resize((S, S)) with antialias on a float (3, h, w) tensor (torch's
// _upsample_bilinear2d_aa): separable, width first.
Tensor resize_bilinear_antialias(const Tensor& x, int H, int W);

// Sparse prompt embeddings of B prompts of N points each (boxes already turned into corner
// points with labels 2 and 3), plus the padding point: (B, N + 1, C).
//   points (B, N, 2) in the input frame, labels (B, N) in {-1, 0, 1, 2, 3}.
Tensor sam2_sparse_embeddings(const PromptEncoderWeights& w, int64_t B, int64_t N, const float* points,
                              const int* labels);

struct Sam2DecoderOutput {
    Tensor masks;  // (B, M, L, L) low-res logits, M = 3 (multimask) or 1
    Tensor iou;    // (B, M)
};

// Two decoders compute SAM 2's masks. The straightforward one (sam2_mask_decoder_forward) runs
// the two-way transformer on explicit image rows of every prompt, as the official code does;
// it is the oracle of the low-rank one (sam2_low_rank_decoder_forward, src/sam2/
// low_rank_decoder.cpp), which shares the image side's work among the prompts of an image and
// serves the predictor and the generator.
enum class Sam2DecoderPath { LowRank, Reference, Both };

// What the decoder reads of one image, computed once per image: the features channels-last
// and the image side of the decoder(s) asked for, without a mask input
// (embedding + no_mask_embed).
struct Sam2DecoderImage {
    Tensor embedding;              // (1, C, G, G) the features' image embedding
    Tensor embed;                  // (G*G, C)
    Tensor s0, s1;                 // (4G*4G, C/8), (2G*2G, C/4)
    TransformerImageState no_mask; // the straightforward decoder's: prepare_transformer_image(embed + no_mask_embed, dense PE)
    LowRankImageState low_rank;    // the low-rank decoder's
    Tensor s1_rows;                // (G*G*4, C/4)  s1 in the order of the first ConvTranspose's output rows
    Tensor s0_tiles;               // (4 * C/8 * G*G*4) s0 + the second ConvTranspose's bias, its output transposed, in tiles
};
std::shared_ptr<const Sam2DecoderImage> sam2_decoder_image(const Sam2Model& m, const Sam2Features& f,
                                                           Sam2DecoderPath path = Sam2DecoderPath::LowRank);

// The mask decoder for B prompts on one image. dense: (G*G, C) per prompt (B of them) or
// empty (no_mask_embed for every prompt: the image's no-mask state is used).
Sam2DecoderOutput sam2_mask_decoder_forward(const Sam2Model& m, const Sam2DecoderImage& image, const Tensor& sparse,
                                            const std::vector<Tensor>& dense, bool multimask_output);
// The same on the low-rank image side; one prompt per thread (a single prompt threads inside).
Sam2DecoderOutput sam2_low_rank_decoder_forward(const Sam2Model& m, const Sam2DecoderImage& image, const Tensor& sparse,
                                                const std::vector<Tensor>& dense, bool multimask_output);

// SAM's decoder weights for SAM's low-rank transformer: SAM 2's transformer and first
// ConvTranspose (its bias repeated per kernel position); made at load.
std::shared_ptr<const MaskDecoderWeights> sam2_low_rank_weights(const Sam2DecoderWeights& d);
// Fills image.low_rank, s1_rows and s0_tiles from image.embedding, s0 and s1.
void sam2_prepare_low_rank(const Sam2Model& m, Sam2DecoderImage& image);

// Output selection from every mask token's logits (B, NM, L*L) and IoU (B, NM): masks 1..3, or
// mask 0 with the dynamic fallback to the best of 1..3 when mask 0 is unstable.
Sam2DecoderOutput sam2_select_outputs(const Sam2Config& cfg, const Tensor& all_masks, const Tensor& all_iou,
                                      bool multimask_output);

// ConvTranspose2d(kernel 2, stride 2) on channels-last (side*side, Cin) as a GEMM whose rows are
// (ky, kx, out), then scattered to (2 side * 2 side, Cout) with the bias and `skip` added.
Tensor sam2_conv_transpose2(const Linear& l, const Tensor& bias, const Tensor& x, int64_t side, const float* skip);

// Stability of low-res logits: |l > delta| / |l > -delta|, 1 when the second is empty.
float sam2_stability(const float* l, int64_t n, float delta);

// The 8-connected components of the pixels of an (L, L) mask above thr (foreground) or at most
// thr (background) whose area is at most max_area get value_to: the official
// get_connected_components and torch.where, for hole filling and sprinkle removal.
void sam2_fill_small_components(float* m, int L, float thr, bool foreground, double max_area, float value_to);

}  // namespace sam
