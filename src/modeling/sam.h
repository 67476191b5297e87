// The assembled model (segment_anything/modeling/sam.py): config plus the weights of its parts.
#pragma once

#include <memory>
#include <string>

#include "io/checkpoint.h"
#include "modeling/image_encoder.h"
#include "modeling/mask_decoder.h"
#include "modeling/prompt_encoder.h"
#include "sam/config.h"

namespace sam {

struct SamModel {
    SamConfig config;
    std::string path;
    std::string dtype;
    int64_t parameter_count = 0;
    std::shared_ptr<const Checkpoint> checkpoint;  // keeps mapped weights alive; null for random weights
    ImageEncoderWeights image_encoder;
    PromptEncoderWeights prompt_encoder;
    MaskDecoderWeights mask_decoder;
};

// Fetches every part's weights from `src` (shapes checked against `config`).
void load_weights(SamModel& m, const TensorSource& src);

// Reads embed dim and depth off the checkpoint and matches them to vit_b / vit_l / vit_h.
SamConfig detect_config(const Checkpoint& ckpt);

}  // namespace sam
