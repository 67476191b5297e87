// The mask decoder with its image-side work shared by every prompt of an image.
//
// In the two-way transformer the image rows (HW = 4096 positions x C channels) of a prompt only
// ever change by attention outputs over its T (~7) tokens and by LayerNorms. So every image row
// is, exactly,
//     x[p] = alpha[p] * S[p] + coef[p] . basis + c          (p < HW)
// with S (HW, C) a matrix shared by all prompts (src scaled by the LayerNorm weights seen so far),
// alpha (HW) and coef (HW, r) per prompt, basis (r, C) and c (C) per prompt, r ~ 2 * heads * T.
// A linear map W of the rows is then alpha * (S W^T) + coef . (basis W^T) + c W^T: the first
// term is computed once per image (TransformerImageState::shared), the rest costs r instead of C
// per position. Attention scores and values are folded into the token side the same way, and a
// LayerNorm keeps the form (alpha /= std, basis gains the rows g*c and g, S becomes g*S).
//
// Only floating-point rounding (and the vectorisable exp and erf of src/ops/vector_math.h)
// differs from the reference's algorithm (mask_decoder_forward), which is its oracle in the
// tests (tests/test_mask_decoder.cpp: vit_b shapes, every output within stated tolerances).
#pragma once

#include <vector>

#include "modeling/mask_decoder.h"

namespace sam {

// The products of the shared part S_l of the image rows that enter layer l (l = depth: the
// final attention), with S_0 = src and S_{l+1} = S_l * layers[l].norm4.weight (per channel).
struct SharedKeys {
    Tensor s;          // (HW, C)  S_l
    // The attention scores' image sides are kept per head in panels of 16 positions,
    // (heads, P = ceil(HW/16), hd, 16): element (p, d) of head h at ((h P + p / 16) hd + d) 16 + p % 16,
    // zero past HW. The score kernel of a head then streams through one contiguous run.
    Tensor k, k_pe;    // panels of S_l Wk^T and key_pe Wk^T + bk, of the tokens-to-image attention
    Tensor v;          // (heads, HW, hd)  S_l Wv^T, each head's columns contiguous
    Tensor q, q_pe;    // panels of S_l Wq^T and key_pe Wq^T + bq, of the image-to-tokens attention (l < depth)
};

// The image side every prompt of an image shares (~35 MB, ~2.7 GFLOP once for vit_b).
struct LowRankImageState {
    Tensor keys;                     // (HW, C)  src, channels-last
    std::vector<SharedKeys> shared;  // depth + 1 entries
    Tensor upscale;                  // (HW, 4 * C/4)  S_depth times the first ConvTranspose's weight
};

// Same arguments as prepare_decoder_image (mask_decoder.h).
LowRankImageState prepare_low_rank_image(const MaskDecoderWeights& w, const Tensor& embedding, const Tensor& dense,
                                         const Tensor& image_pe);

// Decodes B prompts that share `state` (same arguments and result as mask_decoder_forward),
// one prompt per thread; a single prompt threads by attention head, by block of the upscaling
// and inside its larger products instead. Any number of threads may call it at once with the
// same state (it is only read).
DecoderOutput low_rank_decoder_forward(const MaskDecoderWeights& w, const LowRankImageState& state,
                                       const Tensor& image_pe, const Tensor& sparse, bool multimask_output);

// The two-way transformer alone, for one prompt against `state`, for decoders whose heads and
// upscaling differ from SAM's (SAM 2's adds high-resolution features): tokens (T, C) in any
// order (the transformer treats them as a set; they are also the query PE). Writes the final
// queries (T, C) and the final keys through w.upscale1 (keys W^T + b: (HW, 4 * C/4)).
// Threads inside its larger products unless called from a parallel region.
void low_rank_transformer_forward(const MaskDecoderWeights& w, const LowRankImageState& state, const float* tokens,
                                  int64_t T, float* queries, float* upscaled);

}  // namespace sam
