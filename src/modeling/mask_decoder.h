// Mask decoder (segment_anything/modeling/mask_decoder.py): output tokens + prompt tokens
// through the two-way transformer, upscaled image features, hypernetwork MLPs per mask token
// and the IoU head. Decodes B prompts per call.
//
// Two implementations compute it. mask_decoder_forward below is the reference's algorithm
// (the transformer on explicit image rows of every prompt): it serves prompts whose image side
// differs (mask inputs) and is the oracle of the other. The low-rank decoder
// (modeling/low_rank_decoder.h) is an exact restructuring for prompts that share one image side
// (points and boxes): it serves every click and every segment-everything prompt.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "modeling/common.h"
#include "modeling/transformer.h"
#include "sam/config.h"

namespace sam {

struct MlpWeights {                 // <prefix>.layers.{0..n-1}; ReLU between layers, none after the last
    std::vector<Linear> layers;
};

// The image PE's projections used by the low-rank decoder (key_pe Wk^T + bk and
// key_pe Wq^T + bq of each attention that reads the image) depend on the model alone: computed
// for the first image and shared by every later one.
struct PeProjections {
    std::mutex mutex;
    Tensor image_pe;                 // the PE they were made from (held, so its address identifies it)
    std::vector<Tensor> k_pe, q_pe;  // per layer (and the final attention for k_pe), in SharedKeys panels
};

struct MaskDecoderWeights {         // mask_decoder
    TwoWayTransformerWeights transformer;  // .transformer
    Tensor iou_token;               // .iou_token.weight (1, C)
    Tensor mask_tokens;             // .mask_tokens.weight (num_mask_tokens, C)
    Linear upscale1;                // .output_upscaling.0 ConvTranspose (C, C/4, 2, 2) as (4 * C/4, C), rows (ky, kx, out)
    LayerNorm upscale_norm;         // .output_upscaling.1 LayerNorm2d (C/4)
    Linear upscale2;                // .output_upscaling.3 ConvTranspose (C/4, C/8, 2, 2) as (4 * C/8, C/4)
    std::vector<MlpWeights> hypernetworks;  // .output_hypernetworks_mlps.N: C -> C -> C -> C/8
    MlpWeights iou_head;            // .iou_prediction_head: C -> hidden -> hidden -> num_mask_tokens
    int num_mask_tokens = 0;        // num_multimask_outputs + 1
    std::shared_ptr<PeProjections> pe_projections = std::make_shared<PeProjections>();  // filled on first use
};

MaskDecoderWeights load_mask_decoder(const WeightLoader& w, const MaskDecoderConfig& cfg);

// src = embedding + dense prompt, channels-last (G*G, C); the image side of both decoders.
//   embedding (1, C, G, G); dense (G*G, C) channels-last, or (1, C) broadcast (no_mask_embed);
//   image_pe (G*G, C) (checked against the embedding).
Tensor decoder_src(const Tensor& embedding, const Tensor& dense, const Tensor& image_pe);

// mask_decoder_forward's per-image state: src and what the first transformer layer derives
// from it alone.
TransformerImageState prepare_decoder_image(const MaskDecoderWeights& w, const Tensor& embedding, const Tensor& dense,
                                            const Tensor& image_pe);

struct DecoderOutput {
    Tensor masks;  // (B, M, 4G, 4G) low-resolution mask logits
    Tensor iou;    // (B, M) predicted IoU
};

// Decodes B prompts as the reference does (MaskDecoder.forward), working through the batch in
// chunks so that memory stays bounded.
//   states: 1 entry shared by every prompt, or B entries (one per prompt, e.g. mask inputs);
//   image_pe (G*G, C); sparse (B, Ns, C);
//   multimask_output: M = 3 (masks 1..3), else M = 1 (mask 0).
DecoderOutput mask_decoder_forward(const MaskDecoderWeights& w, const std::vector<const TransformerImageState*>& states,
                                   const Tensor& image_pe, const Tensor& sparse, bool multimask_output);

}  // namespace sam
