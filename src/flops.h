// Floating-point operation counts of the model's parts (multiply-add = 2), as the reference
// computes them (windowed attention over padded 14x14 windows included).
#pragma once

#include <cstdint>

#include "sam/config.h"

namespace sam {

double image_encoder_flops(const ImageEncoderConfig& c);
// One decoder call for `prompts` prompts with `tokens` sparse tokens each, multimask or not.
double mask_decoder_flops(const SamConfig& c, int prompts, int sparse_tokens);

}  // namespace sam
