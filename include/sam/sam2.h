// SAM 2 / SAM 2.1 for images (sam2/build_sam.py, sam2/sam2_image_predictor.py): the Hiera
// image encoder with its FPN neck, the SAM 2 prompt encoder and mask decoder, and the image
// predictor, from the official checkpoints (`sam2.1_hiera_{tiny,small,base_plus,large}.pt`,
// torch zip pickles with the weights under "model").
//
//   sam::Sam2 model = sam::Sam2::load("sam2.1_hiera_tiny.pt");
//   sam::Sam2ImagePredictor predictor(model);
//   predictor.set_image(sam::read_image("truck.jpg"));
//   sam::Prompt p;
//   p.point_coords = {{500, 375}};
//   p.point_labels = {1};
//   sam::Prediction r = predictor.predict(p);   // 3 masks; IoU predictions in [0, 1]
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "sam/error.h"
#include "sam/execution.h"
#include "sam/image.h"
#include "sam/predictor.h"
#include "sam/tensor.h"

namespace sam {

// The Hiera trunk (sam2/modeling/backbones/hieradet.py), with the official defaults.
struct HieraConfig {
    int embed_dim = 96;                               // stage 1 width; doubles at each stage
    int num_heads = 1;                                // stage 1 heads; doubles at each stage
    std::vector<int> stages = {1, 2, 7, 2};           // blocks per stage
    std::vector<int> global_att_blocks = {5, 7, 9};   // blocks with global attention
    std::vector<int> window_spec = {8, 4, 14, 7};     // window side per stage
    std::array<int, 2> pos_embed_bkg = {7, 7};        // background positional embedding grid
    int q_pool = 3;                                   // stage changes that pool queries (2x2)
    int depth() const;
    int num_stages() const { return static_cast<int>(stages.size()); }
};

// The image model's shape. Generator thresholds live elsewhere.
struct Sam2Config {
    std::string model_type = "tiny";  // tiny | small | base_plus | large | custom
    std::string version = "2.1";      // 2.1 | 2.0 (the image path is the same)
    HieraConfig trunk;
    int d_model = 256;                       // neck width = prompt and decoder width
    std::vector<int> fpn_top_down_levels = {2, 3};
    int scalp = 1;                           // lowest-resolution levels dropped
    int image_size = 1024;                   // model input side (no aspect-keeping)
    int mask_in_chans = 16;
    // Mask decoder (fixed by the official builder).
    int decoder_depth = 2, decoder_mlp_dim = 2048, decoder_heads = 8;
    int iou_head_depth = 3, iou_head_hidden_dim = 256, num_multimask_outputs = 3;
    bool iou_prediction_use_sigmoid = true;
    bool pred_obj_scores = true, pred_obj_scores_mlp = true;
    // build_sam's post-processing: a single mask falls back to the best of the three when its
    // stability (IoU of the mask at logit > delta and > -delta) is below the threshold.
    bool dynamic_multimask_via_stability = true;
    float dynamic_multimask_stability_delta = 0.05f;
    float dynamic_multimask_stability_thresh = 0.98f;
    float mask_threshold = 0.0f;

    int embedding_size() const { return image_size / 16; }  // 64: image embedding side
    int low_res_size() const { return image_size / 4; }     // 256: low-res mask side
};

Sam2Config sam2_config_for(const std::string& model_type);  // tiny | small | base_plus | large
// A JSON config for non-standard sizes: {"embed_dim", "num_heads", "stages", "global_att_blocks",
// "window_spec", "pos_embed_bkg", "d_model", "image_size"} (missing fields keep the tiny
// defaults). Throws sam::Error naming the file and field.
Sam2Config sam2_config_from_json(const std::string& path);
// Multiply-accumulates of the image encoder (Hiera trunk with its padded windows, FPN neck,
// conv_s0 / conv_s1) at the config's image size.
double sam2_image_encoder_macs(const Sam2Config& c);

struct Sam2Model;         // weights (src/sam2/model.h)
struct Sam2DecoderImage;  // the decoder's per-image state (src/sam2/model.h)

struct Sam2LoadOptions {
    std::string model_type = "auto";  // auto: read off the checkpoint's shapes
    std::string config_path;          // JSON config (overrides model_type)
};

// What the image encoder gives the decoder for one image (SAM2ImagePredictor._features).
struct Sam2Features {
    Tensor image_embed;                  // (1, C, G, G): the neck's level 2 + no_mem_embed
    std::array<Tensor, 2> high_res;      // (1, C/8, 4G, 4G) conv_s0(level 0), (1, C/4, 2G, 2G) conv_s1(level 1)
};

// Thread safety: an immutable handle on shared weights, as sam::Sam.
class Sam2 {
  public:
    // Throws sam::CheckpointError naming the file and key for a missing or ill-shaped tensor,
    // or a checkpoint that is no SAM 2 image model.
    static Sam2 load(const std::string& checkpoint_path, const Sam2LoadOptions& options = {});
    // Reads the model type off a checkpoint's shapes (Hiera width and depth) and version
    // (SAM 2.1 checkpoints have `no_obj_embed_spatial`).
    static Sam2Config detect_config(const std::string& checkpoint_path);
    // A model of the given shape with random weights (benchmarks; speed does not depend on values).
    static Sam2 random(const Sam2Config& config, uint64_t seed = 0);
    Sam2 with_execution(const ExecutionOptions& options) const;
    const ExecutionOptions& execution() const { return execution_; }
    const Sam2Config& config() const;
    const std::string& checkpoint_path() const;
    int64_t parameter_count() const;

    // SAM2Transforms: resize to image_size x image_size (bilinear, antialiased, as the
    // torchvision the package requires does), /255, normalise. (1, 3, S, S).
    Tensor preprocess(const Image& image) const;
    // Encodes a preprocessed input.
    Sam2Features encode(const Tensor& input) const;
    Sam2Features embed(const Image& image) const { return encode(preprocess(image)); }

  private:
    // Only load() and random() make one: a Sam2 always holds weights.
    explicit Sam2(std::shared_ptr<const Sam2Model> model) : model_(std::move(model)) {}
    friend struct Sam2Access;  // the library's own access to the weights (src/sam2/model.h)

    std::shared_ptr<const Sam2Model> model_;
    ExecutionOptions execution_;
};

// The official post-processing of low-res masks before upsampling (SAM2Transforms.postprocess_masks):
// background 8-connected components of area <= max_hole_area become foreground (logit
// threshold + 10), then foreground components of area <= max_sprinkle_area become background
// (threshold - 10). The official package computes the components with its GPU extension and
// skips the step on CPU, so its CPU results are those of the defaults (0: off); set these to
// get what it computes on GPU. The returned low-res logits are never changed.
struct Sam2PostprocessOptions {
    double max_hole_area = 0.0;
    double max_sprinkle_area = 0.0;
};
// In place on one (L, L) low-res mask.
void sam2_fill_holes_and_sprinkles(float* low_res, int L, float mask_threshold, const Sam2PostprocessOptions& o);

// SAM2ImagePredictor. Prompts are in original image pixels (normalize_coords=True). Boxes go
// first, as two corner points, then the points, then one padding point, as the official
// predictor orders them.
//
// Thread safety: predict() may run on any number of threads at once; set_image must not
// overlap any other call on the same predictor.
class Sam2ImagePredictor {
  public:
    explicit Sam2ImagePredictor(Sam2 model, Sam2PostprocessOptions postprocess = {});

    void set_image(const Image& image);
    void set_features(Sam2Features features, int orig_h, int orig_w);
    bool is_image_set() const { return features_.image_embed.defined(); }
    void reset_image();
    const Sam2Features& features() const;  // throws sam::InputError("image", ...) before set_image
    const Sam2& model() const { return model_; }
    int orig_h() const { return orig_h_; }
    int orig_w() const { return orig_w_; }

    // Masks at the original size (logits or 0/1), IoU predictions, low-res logits clamped to
    // [-32, 32] (L x L, L = image_size / 4). Throws sam::InputError naming the field for bad
    // prompts (as SamPredictor::predict); a mask input must be (1, L, L). With upsample = false
    // only iou_predictions and low_res_logits are filled (an interactive client that upsamples
    // and thresholds them itself skips the full-resolution masks).
    Prediction predict(const Prompt& prompt, bool upsample = true) const;

    // B prompts of one point each (the mask generator's call), with optional mask inputs
    // (B, L, L); returns low-res logits (B, M, L, L) unclamped and IoU (B, M).
    struct Batch {
        Tensor low_res;  // (B, M, L, L)
        Tensor iou;      // (B, M)
    };
    Batch predict_points(const std::vector<std::array<float, 2>>& points_input_frame, bool multimask_output,
                         const Tensor& mask_input = Tensor()) const;

  private:
    Sam2 model_;
    Sam2PostprocessOptions postprocess_;
    Sam2Features features_;
    std::shared_ptr<const Sam2DecoderImage> decoder_image_;  // made by set_features
    int orig_h_ = 0, orig_w_ = 0;
};

}  // namespace sam
