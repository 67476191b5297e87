// Segment everything with SAM 2 (sam2/automatic_mask_generator.py, SAM2AutomaticMaskGenerator):
// a grid of single-point prompts over the image and its crops, filtered by predicted IoU,
// stability and crop edges, deduplicated with NMS; optionally each mask refined once by
// prompting again with its own low-res logits as mask input (use_m2m).
//
//   sam::Sam2AutomaticMaskGenerator gen(sam::Sam2::load("sam2.1_hiera_tiny.pt"));
//   std::vector<sam::MaskRecord> masks = gen.generate(sam::read_image("truck.jpg"));
#pragma once

#include <functional>
#include <vector>

#include "sam/automatic_mask_generator.h"
#include "sam/sam2.h"

namespace sam {

// Every parameter of SAM2AutomaticMaskGenerator with its default (those shared with SAM's
// generator in AmgOptions; SAM 2's pred_iou_thresh default is 0.8).
//
// min_mask_region_area: the official generator hands it to its predictor as max_hole_area and
// max_sprinkle_area (Sam2PostprocessOptions), whose connected components need the package's GPU
// extension; on CPU the official code skips the step (with a warning). fill_holes chooses:
// false (the default) computes what the official package computes on CPU, true what it
// computes with its GPU extension.
struct Sam2AmgOptions : AmgOptions {
    bool use_m2m = false;           // one refinement step with the mask as mask input
    bool multimask_output = true;   // 3 masks per point, else 1 (with the stability fallback)
    double mask_threshold = 0.0;
    bool fill_holes = false;        // apply min_mask_region_area as the official GPU path does
    Sam2AmgOptions() { pred_iou_thresh = 0.8; }
};

// Thread safety: one generate() at a time per generator; generators on one shared Sam2 may run
// on separate threads.
class Sam2AutomaticMaskGenerator {
  public:
    // Throws sam::InputError naming the option for values out of range.
    explicit Sam2AutomaticMaskGenerator(Sam2 model, Sam2AmgOptions options = {});
    using Progress = std::function<void(int64_t done, int64_t total)>;
    // Records in the official order (descending score of the last NMS); empty when nothing
    // survives. whole_image: the features of this same image (Sam2ImagePredictor::features()),
    // used for the whole-image crop instead of encoding it again; crops are encoded.
    std::vector<MaskRecord> generate(const Image& image, const Progress& progress = nullptr,
                                     const Sam2Features* whole_image = nullptr);
    const Sam2AmgOptions& options() const { return options_; }

  private:
    Sam2 model_;
    Sam2AmgOptions options_;
    std::vector<std::vector<std::array<double, 2>>> grids_;
};

}  // namespace sam
