// Segment everything (segment_anything/automatic_mask_generator.py, SamAutomaticMaskGenerator):
// prompts the model with a grid of points over the image (and over crops of it), filters the
// masks by predicted IoU and stability, removes duplicates with NMS, and returns records.
//
//   sam::SamAutomaticMaskGenerator gen(sam::Sam::load("sam_vit_b_01ec64.pth"));
//   std::vector<sam::MaskRecord> masks = gen.generate(sam::read_image("truck.jpg"));
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sam/image.h"
#include "sam/rle.h"
#include "sam/sam.h"

namespace sam {

enum class OutputMode { BinaryMask, UncompressedRle, CocoRle };
OutputMode output_mode_from_string(const std::string& s);  // "binary_mask" | "uncompressed_rle" | "coco_rle"

// Every parameter of the reference, with its default.
struct AmgOptions {
    int points_per_side = 32;           // 0: use point_grids instead
    int points_per_batch = 64;
    double pred_iou_thresh = 0.88;
    double stability_score_thresh = 0.95;
    double stability_score_offset = 1.0;
    double box_nms_thresh = 0.7;
    int crop_n_layers = 0;
    double crop_nms_thresh = 0.7;
    double crop_overlap_ratio = 512.0 / 1500.0;
    int crop_n_points_downscale_factor = 1;
    // Explicit grids in [0, 1] (x, y), one per crop layer; used when points_per_side is 0.
    std::vector<std::vector<std::array<double, 2>>> point_grids;
    int min_mask_region_area = 0;
    OutputMode output_mode = OutputMode::BinaryMask;
};

// One mask, as the reference's records: segmentation, area, bbox, predicted_iou,
// point_coords, stability_score, crop_box.
struct MaskRecord {
    Rle rle;                          // always set (uncompressed COCO RLE, column-major)
    std::vector<uint8_t> mask;        // binary_mask mode: row-major H x W 0/1
    std::string coco_counts;          // coco_rle mode: the compressed counts string
    int64_t area = 0;                 // pixels
    std::array<int, 4> bbox{};        // XYWH (w = x1 - x0, no +1)
    double predicted_iou = 0.0;
    std::array<double, 2> point{};    // the prompt point (x, y), image pixels
    double stability_score = 0.0;
    std::array<int, 4> crop_box{};    // XYWH
};

// Where the time of the last generate() went (seconds).
struct AmgTimings {
    double encoder = 0, decoder = 0, postprocess = 0, total = 0;
    int crops = 0, prompts = 0, masks_decoded = 0, masks_upsampled = 0;
};

// Computes with its model's execution options (Sam::with_execution), on the calling thread and
// the threads it opens.
//
// Thread safety: generate() records last_timings(), so one generator runs one generate() at a
// time; to segment images in parallel, give each thread its own generator (on one shared Sam).
class SamAutomaticMaskGenerator {
  public:
    // Throws sam::InputError naming the option for values out of range.
    explicit SamAutomaticMaskGenerator(Sam model, AmgOptions options = {});

    // Called after every decoded batch: (prompts done, prompts in all). To cancel, throw from
    // it: generate() stops before the next batch (or crop) and lets the exception through; the
    // generator stays usable.
    using Progress = std::function<void(int64_t done, int64_t total)>;

    // Records in the reference's order (descending score of the last NMS). An image where no
    // mask survives gives an empty list. `embedding`, when given, is the image's own
    // (1, C, 64, 64) embedding (e.g. from SamPredictor::embedding()); it is used for the
    // whole-image crop instead of encoding the image again.
    std::vector<MaskRecord> generate(const Image& image, const Progress& progress = nullptr,
                                     const Tensor& embedding = Tensor());

    const AmgOptions& options() const { return options_; }
    const AmgTimings& last_timings() const { return timings_; }

  private:
    Sam model_;
    AmgOptions options_;
    std::vector<std::vector<std::array<double, 2>>> grids_;
    AmgTimings timings_;
};

}  // namespace sam
