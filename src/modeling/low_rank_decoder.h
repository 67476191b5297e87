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
// Only floating-point rounding differs from the straightforward forward
// (mask_decoder_forward_reference), which stays the oracle for tests.
#pragma once

#include <cstdint>

#include "modeling/mask_decoder.h"

namespace sam {

// Fills state.shared and state.upscale from state.keys (src) and the image PE, and the
// reference forward's layer-0 projections (t2i_k, t2i_v, i2t_q) from them.
void prepare_shared_image_side(const MaskDecoderWeights& w, TransformerImageState& state, const Tensor& image_pe);

// Decodes one prompt against a state with shared image-side products.
//   tokens (T, C) [iou, mask tokens, sparse]; writes iou (num_mask_tokens) and the masks
//   first..first+M-1 as (M, 4G, 4G) logits.
void decode_prompt_low_rank(const MaskDecoderWeights& w, const TransformerImageState& state, const float* tokens,
                            int64_t T, int64_t first, int64_t M, float* iou, float* masks);

}  // namespace sam
