// SAM 2's video model (sam2/modeling/sam2_base.py, memory_encoder.py, memory_attention.py): the
// weights that the image path does not use, and the forward functions of the memory encoder,
// the memory attention and the SAM heads as the video predictor calls them.
//
// Layout: activations are channels-last, (H*W, C) rows, batch 1 (one object at a time, as the
// official predictor runs each object's slice).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sam/image.h"
#include "sam/sam2_video.h"
#include "sam2/model.h"

namespace sam {

// A convolution as a GEMM over (Cin, ky, kx) patches: w (out, in * k * k).
struct Conv2dWeights {
    Linear l;
    int in = 0, out = 0, k = 1, stride = 1, pad = 0;
};

struct CXBlockWeights {           // memory_encoder.fuser.layers.N
    Tensor dw_w, dw_b;            // .dwconv (C, 1, k, k) as (C, k*k), (C)
    int k = 7;
    LayerNorm norm;               // .norm LayerNorm2d (eps 1e-6)
    Linear pw1, pw2;              // .pwconv1 (4C, C), .pwconv2 (C, 4C)
    Tensor gamma;                 // .gamma (C)
};

struct MemoryEncoderWeights {     // memory_encoder
    std::vector<Conv2dWeights> down;     // .mask_downsampler.encoder.{0,3,6,...}: k 3, pad 1
    std::vector<LayerNorm> down_norm;    // .mask_downsampler.encoder.{1,4,7,...} (eps 1e-6)
    Linear down_out;                     // the last 1x1 conv to C
    Linear pix_feat_proj;                // .pix_feat_proj 1x1 (C, C)
    std::vector<CXBlockWeights> fuser;   // .fuser.layers.N
    Linear out_proj;                     // .out_proj 1x1 (mem_dim, C); undefined when mem_dim == C
};

struct RoPEAttentionWeights {     // .self_attn / .cross_attn_image
    Linear q, k, v, out;
    int num_heads = 1;
};

struct MemoryAttentionLayerWeights {
    RoPEAttentionWeights self_attn, cross_attn;
    Linear linear1, linear2;
    LayerNorm norm1, norm2, norm3;
};

struct MemoryAttentionWeights {   // memory_attention
    std::vector<MemoryAttentionLayerWeights> layers;
    LayerNorm norm;
};

// The video settings of the official SAM 2.1 configs (sam2.1_hiera_*.yaml, build_sam's
// video overrides); sizes are read off the checkpoint.
struct Sam2VideoConfig {
    int num_maskmem = 7;          // memory frames: the conditioning frames' slot + 6 previous
    int mem_dim = 64;             // memory channels
    int max_obj_ptrs_in_encoder = 16;
    int mask_down_layers = 4;     // mask downsampler: total stride 16, stride 16^(1/layers)
    int fuser_layers = 2;
    int attn_layers = 4;
    int attn_heads = 1;
    int dim_feedforward = 2048;
    float rope_theta = 10000.0f;
    float sigmoid_scale_for_mem_enc = 20.0f;
    float sigmoid_bias_for_mem_enc = -10.0f;
    bool binarize_mask_from_pts_for_mem_enc = true;  // build_sam2_video_predictor's override
};

struct Sam2VideoWeights {
    Sam2VideoConfig config;
    MemoryEncoderWeights memory_encoder;
    MemoryAttentionWeights memory_attention;
    Tensor maskmem_tpos_enc;      // (num_maskmem, 1, 1, mem_dim) as (num_maskmem, mem_dim)
    Tensor no_mem_pos_enc;        // (1, 1, C), unused with directly_add_no_mem_embed
    Tensor no_obj_ptr;            // (1, C)
    std::vector<Linear> obj_ptr_proj;  // MLP C -> C -> C -> C
    Linear obj_ptr_tpos_proj;     // (mem_dim, C)
    Tensor no_obj_embed_spatial;  // (1, mem_dim)
    Tensor mask_downsample_w;     // mask_downsample: Conv2d(1, 1, 4, stride 4) (1, 1, 4, 4) as (16)
    float mask_downsample_b = 0;
};

// The library's access to what a public sam::Sam2Video holds.
struct Sam2VideoAccess {
    static const Sam2VideoWeights& weights(const Sam2Video& m) { return *m.video_; }
};

// What a predictor holds for an object on a frame (its conditioning or tracked output): the
// object pointer (C) and the stored memory as floats (G*G, mem_dim); undefined when absent.
struct Sam2VideoPredictorAccess {
    static Tensor obj_ptr(const Sam2VideoPredictor& p, int obj_id, int frame);
    static Tensor maskmem(const Sam2VideoPredictor& p, int obj_id, int frame);
};

// Reads the video settings off a checkpoint's shapes (`shape_of` gives a key's shape or null).
Sam2VideoConfig sam2_video_detect_config(const std::function<const Shape*(const std::string&)>& shape_of,
                                         const Sam2Config& image, const std::string& path);
void load_sam2_video_weights(Sam2VideoWeights& v, const TensorSource& src, const Sam2Config& image);

// x rounded to bfloat16 (nearest, ties to even; NaN kept), as torch's .to(torch.bfloat16).
float round_to_bf16(float x);

// MemoryEncoder.forward with skip_mask_sigmoid: pix_feat (G*G, C) channels-last, mask (S*S) the
// already scaled mask -> (G*G, mem_dim) channels-last (before no_obj_embed_spatial).
Tensor memory_encoder_forward(const MemoryEncoderWeights& w, const Sam2VideoConfig& vc, const Sam2Config& cfg,
                              const Tensor& pix_feat, const float* mask);

// MemoryAttention.forward for one object: curr, curr_pos (G*G, C); memory, memory_pos
// (M, mem_dim) with the last `num_obj_ptr_tokens` rows object pointers (not rotated).
// Returns the normed output (G*G, C).
Tensor memory_attention_forward(const MemoryAttentionWeights& w, const Sam2VideoConfig& vc, const Tensor& curr,
                                const Tensor& curr_pos, const Tensor& memory, const Tensor& memory_pos,
                                int64_t num_obj_ptr_tokens);

// softmax(q k^T / sqrt(hd)) v per head for q (Nq, D), k and v (Nk, D), Nk >= 1 -> (Nq, D), as the
// memory attention computes it: through the encoders' fused kernel without relative-position
// tables (fused, any key count), or written out with GEMMs over blocks of queries (the fused
// path's oracle in the tests).
Tensor memory_attention_core(const Tensor& q, const Tensor& k, const Tensor& v, int heads, bool fused = true);

// 2-D axial RoPE of a square grid of n tokens, head dimension hd: (n, hd / 2) (cos, sin) pairs.
Tensor axial_rope_table(int64_t n, int64_t hd, float theta);

// get_1d_sine_pe(pos, dim): (n, dim) [sin | cos].
Tensor sine_pe_1d(const std::vector<float>& pos, int64_t dim);

// Pillow's Image.resize((w, h)) (bicubic) of an RGB image, bit for bit.
Image resize_bicubic_pillow(const Image& img, int new_w, int new_h);
// The JPEG frames of a folder (<index>.jpg, .jpeg, .JPG, .JPEG) ordered by index.
std::vector<std::string> list_jpeg_frames(const std::string& folder);

// Channels-last (H*W, C) -> (C, H, W) and back.
Tensor chw_from_rows(const Tensor& rows, int64_t H, int64_t W);
Tensor rows_from_chw(const Tensor& chw);

}  // namespace sam
