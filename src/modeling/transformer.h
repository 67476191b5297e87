// Two-way transformer (segment_anything/modeling/transformer.py): prompt tokens and image
// pixels attend to each other, for B prompts at once.
//
// Shapes: B prompts, T tokens per prompt, HW = 64*64 image positions, C channels, D the
// attention's internal dim (C for token self-attention, C/2 for the cross attentions).
// Token-side tensors are (B*T, C) rows, image-side tensors (B*HW, C) rows.
#pragma once

#include <vector>

#include "modeling/common.h"
#include "sam/config.h"

namespace sam {

struct AttentionWeights {            // <prefix>
    Linear q_proj, k_proj, v_proj;   // .{q,k,v}_proj (D, C)
    Linear out_proj;                 // .out_proj (C, D)
    int num_heads = 0;
    int64_t internal_dim() const { return q_proj.w.dim(0); }
};

struct TwoWayBlockWeights {                    // mask_decoder.transformer.layers.N
    AttentionWeights self_attn;                // .self_attn (D = C)
    AttentionWeights cross_t2i;                // .cross_attn_token_to_image (D = C/2)
    AttentionWeights cross_i2t;                // .cross_attn_image_to_token (D = C/2)
    LayerNorm norm1, norm2, norm3, norm4;      // .norm{1..4} (C)
    Linear mlp_lin1, mlp_lin2;                 // .mlp.lin1 (mlp, C), .mlp.lin2 (C, mlp)
    bool skip_first_layer_pe = false;          // layer 0
};

struct TwoWayTransformerWeights {              // mask_decoder.transformer
    std::vector<TwoWayBlockWeights> layers;
    AttentionWeights final_t2i;                // .final_attn_token_to_image
    LayerNorm norm_final;                      // .norm_final_attn
};

TwoWayTransformerWeights load_two_way_transformer(const WeightLoader& w, const MaskDecoderConfig& cfg);

// What the transformer computes from the image side alone before any prompt is seen: the
// keys (src = embedding + dense prompt) and the first layer's projections of them. Shared by
// every prompt of an image when the dense prompt is the same (no mask input).
struct TransformerImageState {
    Tensor keys;   // (HW, C)  src, channels-last
    Tensor t2i_k;  // (HW, D)  layers[0].cross_t2i.k_proj(keys + key_pe)
    Tensor t2i_v;  // (HW, D)  layers[0].cross_t2i.v_proj(keys)
    Tensor i2t_q;  // (HW, D)  layers[0].cross_i2t.q_proj(keys + key_pe)
};

// src (HW, C) channels-last, key_pe (HW, C) -> the state above (takes ownership of src).
TransformerImageState prepare_transformer_image(const TwoWayTransformerWeights& w, Tensor src, const Tensor& key_pe);

// Runs the transformer for B prompts.
//   states:  1 (shared by all prompts) or B entries;
//   key_pe:  (HW, C) dense image PE;
//   tokens:  (B, T, C) [iou, mask tokens, sparse prompts], also the query PE.
// Returns queries (B, T, C) through `queries` and keys (B, HW, C) through `keys`.
void two_way_transformer_forward(const TwoWayTransformerWeights& w, const std::vector<const TransformerImageState*>& states,
                                 const Tensor& key_pe, const Tensor& tokens, Tensor& queries, Tensor& keys);

}  // namespace sam
