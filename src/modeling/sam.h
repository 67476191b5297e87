// The assembled model (segment_anything/modeling/sam.py): config plus the weights of its parts.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "modeling/image_encoder.h"
#include "modeling/mask_decoder.h"
#include "modeling/prompt_encoder.h"
#include "sam/config.h"
#include "sam/sam.h"

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
    // The encoder's activations kept between images (a unique_ptr: the model stays movable).
    std::unique_ptr<EncoderBufferPool> encoder_buffers = std::make_unique<EncoderBufferPool>();
};

// The library's access to what a public sam::Sam holds.
struct SamAccess {
    static const SamModel& model(const Sam& sam) { return *sam.model_; }
    static Sam make(std::shared_ptr<const SamModel> model) { return Sam(std::move(model)); }
};

// Every weight of a model of this shape, random (seeded) as Sam::random makes them, under its
// checkpoint key, in the order the model reads them (sam make-random-checkpoint writes these).
std::vector<std::pair<std::string, Tensor>> random_weights(const SamConfig& config, uint64_t seed);

// Fetches every part's weights from `src` (shapes checked against `config`).
void load_weights(SamModel& m, const TensorSource& src);

// Reads embed dim and depth off the checkpoint and matches them to vit_b / vit_l / vit_h.
SamConfig detect_config(const Checkpoint& ckpt);

}  // namespace sam
