// The model: load an official checkpoint and compute image embeddings.
//
//   sam::Sam model = sam::Sam::load("sam_vit_b_01ec64.pth");
//   sam::Tensor emb = model.embed(sam::read_image("truck.jpg"));   // (1, 256, 64, 64)
//
// Prompting the embedding is done through sam::SamPredictor (predictor.h), segmenting
// everything through sam::SamAutomaticMaskGenerator (automatic_mask_generator.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "sam/config.h"
#include "sam/error.h"
#include "sam/execution.h"
#include "sam/image.h"
#include "sam/tensor.h"

namespace sam {

struct SamModel;  // weights and config (src/modeling/sam.h)

struct LoadOptions {
    // "auto" reads embed dim and depth off the checkpoint's shapes; or vit_b | vit_l | vit_h.
    std::string model_type = "auto";
    // A JSON config (config.json format) for non-standard sizes; overrides model_type.
    std::string config_path;
};

// Sizes of an image as the model sees it.
struct ImageGeometry {
    int orig_h = 0, orig_w = 0;    // original image
    int input_h = 0, input_w = 0;  // after resizing the longest side to img_size
};

// Thread safety: a Sam is an immutable handle on shared weights. Any number of threads may call
// its const methods at once, on one handle or on copies.
class Sam {
  public:
    // Loads and checks every expected key and shape; throws sam::CheckpointError naming the
    // file and key for anything missing, unexpected or ill-shaped.
    static Sam load(const std::string& checkpoint_path, const LoadOptions& options = {});

    // A model of the given shape with random weights, the same for the same seed (benchmarks:
    // speed does not depend on values; its masks mean nothing).
    static Sam random(const SamConfig& config, uint64_t seed = 0);

    // A handle on the same weights (nothing copied) that computes with `options`. A precision
    // this CPU has no fast instructions for becomes F32: compare execution().precision.
    Sam with_execution(const ExecutionOptions& options) const;
    const ExecutionOptions& execution() const { return execution_; }

    const SamConfig& config() const;
    const std::string& checkpoint_path() const;
    std::string checkpoint_dtype() const;  // "float32" | "float16" | "bfloat16"
    int64_t parameter_count() const;

    // Preprocess (resize, normalise, pad) and encode: (1, out_chans, 64, 64).
    Tensor embed(const Image& image) const;
    // Encode an already preprocessed (1, 3, img_size, img_size) input. The weights keep one set
    // of the encoder's activation buffers from image to image (113 MB for vit_b, 189 MB for
    // vit_h), so that the next image does not page-fault them in again.
    Tensor encode(const Tensor& input) const;
    ImageGeometry geometry(int orig_h, int orig_w) const;

  private:
    // Only load() and random() make one: a Sam always holds weights.
    explicit Sam(std::shared_ptr<const SamModel> model) : model_(std::move(model)) {}
    friend struct SamAccess;  // the library's own access to the weights (src/modeling/sam.h)

    std::shared_ptr<const SamModel> model_;
    ExecutionOptions execution_;
};

}  // namespace sam
