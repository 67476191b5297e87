// Prompted segmentation of one image (segment_anything/predictor.py, SamPredictor).
//
//   sam::SamPredictor predictor(sam::Sam::load("sam_vit_b_01ec64.pth"));
//   predictor.set_image(sam::read_image("truck.jpg"));          // runs the image encoder once
//   sam::Prompt p;
//   p.point_coords = {{500, 375}};                               // original pixels (x, y)
//   p.point_labels = {1};                                        // 1 foreground, 0 background, -1 ignore
//   sam::Prediction r = predictor.predict(p);                    // 3 masks (multimask_output)
//
// Embedding files: save_embedding("e.npy") writes the (1, C, 64, 64) embedding as float32 .npy
// and the original image size beside it as "e.npy.json": {"orig_h": H, "orig_w": W}.
// load_embedding reads both (or takes the size as arguments for a bare .npy, e.g. one written
// by `sam embed` or by the reference).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sam/image.h"
#include "sam/sam.h"
#include "sam/tensor.h"

namespace sam {

struct LowRankImageState;  // the decoder's per-image cache (src/modeling/low_rank_decoder.h)

// One prompt, in original image pixels. Every part is optional; with none at all the model
// still answers (the reference allows it).
struct Prompt {
    std::vector<std::array<float, 2>> point_coords;  // (N, 2) x, y
    std::vector<int> point_labels;                   // (N) in {1, 0, -1}
    std::optional<std::array<float, 4>> box;         // x0, y0, x1, y1
    Tensor mask_input;  // (1, 256, 256) low-res logits from a previous prediction, or undefined
    bool multimask_output = true;  // 3 masks (the caller picks, e.g. by iou_predictions), else 1
    bool return_logits = false;    // masks as float logits instead of 0/1
};

struct Prediction {
    int num_masks = 0, height = 0, width = 0;  // N masks of the original size H x W
    std::vector<uint8_t> masks;                // (N, H, W) 0/1; empty when return_logits or not upsampled
    Tensor logits;                             // (N, H, W) when return_logits (and upsampled); else undefined
    std::vector<float> iou_predictions;        // (N)
    Tensor low_res_logits;                     // (N, 256, 256)
};

// B prompts decoded together (SamPredictor.predict_torch). Every prompt has the same number
// of points; boxes, when given, one per prompt; mask inputs, when given, one per prompt.
struct BatchPrompt {
    int64_t batch = 0;                   // B
    int64_t points_per_prompt = 0;       // N (0: no points)
    std::vector<float> point_coords;     // (B, N, 2) original pixels
    std::vector<int> point_labels;       // (B, N)
    std::vector<std::array<float, 4>> boxes;  // B boxes or none
    Tensor mask_input;                   // (B, 1, 256, 256) or (B, 256, 256), or undefined
    bool multimask_output = true;
    bool return_logits = false;
};

struct BatchPrediction {
    int64_t batch = 0;
    int num_masks = 0, height = 0, width = 0;  // per prompt: M masks of H x W
    std::vector<uint8_t> masks;          // (B, M, H, W) 0/1; empty when return_logits or not upsampled
    Tensor logits;                       // (B, M, H, W) when return_logits
    Tensor iou_predictions;              // (B, M)
    Tensor low_res_logits;               // (B, M, 256, 256)
};

// Computes with its model's execution options (Sam::with_execution), on the calling thread.
//
// Thread safety: the const methods (predict, predict_batch, embedding, geometry,
// save_embedding) may run on any number of threads at once, also while other predictors use
// the same Sam. set_image, set_embedding, load_embedding and reset_image change the image and
// must not overlap any other call on the same predictor (one predictor per image and thread of
// control that changes it; predictors are cheap besides their image's embedding).
class SamPredictor {
  public:
    explicit SamPredictor(Sam model);

    // Encodes the image (resize, normalise, pad, image encoder) and keeps its embedding.
    void set_image(const Image& image);
    // Uses a precomputed (1, C, 64, 64) embedding of an orig_h x orig_w image.
    void set_embedding(const Tensor& embedding, int orig_h, int orig_w);
    bool is_image_set() const;
    void reset_image();

    const Tensor& embedding() const;   // throws sam::InputError("image", ...) before an image is set
    ImageGeometry geometry() const;    // original and resized sizes of the current image
    const Sam& model() const { return model_; }

    // Writes the embedding (.npy) and "<path>.json" with the original size. Atomic.
    void save_embedding(const std::string& path) const;
    // Reads an embedding file; the size comes from orig_h / orig_w when both are > 0, else
    // from "<path>.json" (sam::InputError if it is absent).
    void load_embedding(const std::string& path, int orig_h = 0, int orig_w = 0);

    // Predicts masks for one prompt. Throws sam::InputError naming the field for: no image set,
    // mismatched point/label counts, labels outside {-1, 0, 1}, non-finite coordinates, a box
    // with x1 < x0 or y1 < y0, a mask input that is not 1 x 256 x 256.
    // With upsample = false only iou_predictions and low_res_logits are filled: an interactive
    // client that upsamples and thresholds them itself skips the full-resolution masks.
    Prediction predict(const Prompt& prompt, bool upsample = true) const;

    // Predicts masks for B prompts in one batched decoder call. With upsample = false only
    // iou_predictions and low_res_logits are filled (the mask generator upsamples itself).
    BatchPrediction predict_batch(const BatchPrompt& prompt, bool upsample = true) const;

  private:
    void require_image() const;
    Sam model_;
    Tensor embedding_;
    ImageGeometry geom_;
    std::shared_ptr<const LowRankImageState> state_;  // no-mask decoder state of the image
};

}  // namespace sam
