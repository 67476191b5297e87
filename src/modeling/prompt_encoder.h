// Prompt encoder (segment_anything/modeling/prompt_encoder.py): random-Fourier positional
// encoding, sparse embeddings of points and box corners, dense embeddings of a mask input.
//
// Layout: everything the decoder consumes is channels-last, (H*W, C) for 64x64 grids.
#pragma once

#include <array>
#include <cstdint>

#include "modeling/common.h"
#include "sam/config.h"

namespace sam {

struct PromptEncoderWeights {             // prompt_encoder
    Tensor pe_gaussian;                   // .pe_layer.positional_encoding_gaussian_matrix (2, C/2)
    std::array<Tensor, 4> point_embeddings;  // .point_embeddings.{0..3}.weight (1, C): neg, pos, box tl, box br
    Tensor not_a_point_embed;             // .not_a_point_embed.weight (1, C)
    Tensor no_mask_embed;                 // .no_mask_embed.weight (1, C)
    Tensor mask_conv1_w, mask_conv1_b;    // .mask_downscaling.0 (m/4, 1, 2, 2), (m/4)
    LayerNorm mask_norm1;                 // .mask_downscaling.1 (m/4), LayerNorm2d
    Tensor mask_conv2_w, mask_conv2_b;    // .mask_downscaling.3 (m, m/4, 2, 2) reordered to (m, ky, kx, m/4), (m)
    LayerNorm mask_norm2;                 // .mask_downscaling.4 (m), LayerNorm2d
    Linear mask_conv3;                    // .mask_downscaling.6 (C, m, 1, 1) viewed as (C, m)
    Tensor dense_pe;                      // computed at load: image PE, (G*G, C) channels-last

    int embed_dim = 0;        // C
    int grid = 0;             // G: image embedding side (64)
    int input_size = 0;       // padded model input side (1024)
    int mask_in_chans = 0;    // m
    int64_t mask_side() const { return 4 * grid; }  // 256: side of a mask input
};

PromptEncoderWeights load_prompt_encoder(const WeightLoader& w, const SamConfig& cfg);

// Random-Fourier PE of n points with coordinates already in [0, 1] (x, y interleaved):
// 2c - 1 -> @ G -> * 2pi -> [sin, cos]; writes (n, C) to `out`.
void positional_encoding(const PromptEncoderWeights& w, const float* xy01, int64_t n, float* out);

// Sparse prompt embeddings for B prompts, each with Np points and an optional box.
//   points (B, Np, 2) in the resized input frame (may be null when Np == 0), labels (B, Np) in {-1, 0, 1};
//   boxes (B, 4) x0, y0, x1, y1 in the input frame, or null.
// A padding point (label -1) is appended when there are points and no boxes, as the reference
// does. Returns (B, Ns, C) with Ns = Np + pad + 2 * has_box, points first then box corners.
Tensor embed_sparse_prompts(const PromptEncoderWeights& w, int64_t B, int64_t Np, const float* points,
                            const int* labels, const float* boxes);

// Dense prompt of one mask input (256 x 256 logits): conv 2x2 s2 -> LayerNorm2d -> GELU ->
// conv 2x2 s2 -> LayerNorm2d -> GELU -> conv 1x1. Returns (G*G, C) channels-last.
Tensor embed_mask_input(const PromptEncoderWeights& w, const float* mask256);

}  // namespace sam
