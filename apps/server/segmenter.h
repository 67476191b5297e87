// The model behind `sam serve`: SAM (sam::Sam, SamPredictor, SamAutomaticMaskGenerator) or SAM 2
// (sam::Sam2, Sam2ImagePredictor, Sam2AutomaticMaskGenerator), behind one small interface.
//
// The routes, the image cache and the click answers are written once against this interface;
// each model family supplies the few things that differ: how an image is encoded, how a prompt
// is decoded to low-res logits, how those logits become the image's mask (MaskGeometry), and its
// generator with its own options. An interface rather than std::variant<Sam, Sam2>: the
// differences stay in one class per family (segmenter.cpp) instead of a std::visit in every
// route, and a route cannot forget a family.
//
// Thread safety: a Segmenter is immutable and shared by every request thread; an ImagePredictor
// is made once per image (encode), then predict_low_res and geometry run on any threads at once.
// An EverythingJob runs on the thread that made it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sam/automatic_mask_generator.h"
#include "sam/image.h"
#include "sam/predictor.h"
#include "sam/sam.h"
#include "sam/sam2.h"
#include "server/request_parsing.h"

namespace sam::server {

// How a candidate's low-res logits become the image's mask: MaskPostprocessor(low_size, img_size,
// input_h, input_w, height, width), then logit > threshold. SAM upsamples low_size -> img_size
// (256 -> 1024), crops the input_h x input_w that holds the image resized along its longest side,
// and upsamples that to height x width. SAM 2 resizes the image to its square input without
// keeping the aspect ratio, so its masks go from low_size straight to height x width: its
// geometry is img_size = input_h = input_w = low_size, whose first step is exactly the identity
// (every output cell takes weight 1 on its own cell, 0 on the next).
struct MaskGeometry {
    int low_size = 256, img_size = 1024, input_h = 0, input_w = 0, height = 0, width = 0;
    float threshold = 0.0f;
};

// Records of one "segment everything" request, with the prompts it runs (checked against the
// server's limits before the work starts). run() encodes what it needs: call it holding the
// encoder (ImageStore::with_encoder).
struct EverythingJob {
    int64_t prompts = 0;
    std::function<std::vector<MaskRecord>(const std::function<void(int64_t, int64_t)>& progress)> run;
};

// One image, encoded.
class ImagePredictor {
  public:
    virtual ~ImagePredictor() = default;
    // The decoder's answer: iou_predictions and low_res_logits (M, L, L) only, no upsampling.
    // Throws sam::InputError naming the prompt field at fault.
    virtual Prediction predict_low_res(const Prompt& prompt) const = 0;
    virtual MaskGeometry geometry() const = 0;
    // Parses the request's generator options ({"points_per_side", ...}, the family's own set and
    // defaults; throws sam::InputError naming the field) and prepares the run on `image` (this
    // predictor's image: the whole-image crop reuses its embedding where the family allows).
    virtual EverythingJob everything(const Image& image, const nlohmann::json& options, const AmgLimits& limits) const = 0;
};

class Segmenter {
  public:
    virtual ~Segmenter() = default;
    virtual std::string family() const = 0;      // "sam" | "sam2"
    virtual std::string model_type() const = 0;  // vit_b, ..., tiny, ..., custom
    virtual int threads() const = 0;             // 0: every core
    // Runs the image encoder. Throws sam::InputError for an image the model cannot take.
    virtual std::unique_ptr<const ImagePredictor> encode(const Image& image) const = 0;
};

std::shared_ptr<const Segmenter> make_segmenter(Sam model);
std::shared_ptr<const Segmenter> make_segmenter(Sam2 model);

}  // namespace sam::server
