// SA-1B's per-image JSON (the layout of the released SA-1B dataset's annotation files):
//   {"image": {"image_id", "width", "height", "file_name"},
//    "annotations": [{"id", "segmentation": {"size": [h, w], "counts": compressed RLE}, "bbox": XYWH,
//                     "area", "predicted_iou", "stability_score", "crop_box": XYWH,
//                     "point_coords": [[x, y]]}]}
// Written by `sam amg --output-mode sa1b` (one <stem>.json per image) and `sam export --format sa1b`.
// Thread safety: no state; any thread.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sam/automatic_mask_generator.h"
#include "sam/rle.h"

namespace sam::cli {

struct Sa1bAnnotation {
    int64_t id = 0;
    Rle rle;
    std::array<double, 4> bbox{};   // XYWH as the generator writes it (w = x1 - x0, inclusive x1)
    double predicted_iou = 0.0, stability_score = 0.0;
    std::array<int, 4> crop_box{};  // XYWH; the whole image when not from a crop
    std::vector<std::array<double, 2>> point_coords;
};

Sa1bAnnotation sa1b_annotation(const MaskRecord& m, int64_t id);

// An annotation of a mask drawn by hand (no crop: crop_box is the whole image), its box in the
// generator's convention.
Sa1bAnnotation sa1b_annotation(const Rle& rle, int64_t id, double predicted_iou, double stability_score,
                               const std::vector<std::array<double, 2>>& point_coords);

nlohmann::json sa1b_image_json(int64_t image_id, int width, int height, const std::string& file_name,
                               const std::vector<Sa1bAnnotation>& annotations);

// The record `sam amg --output-mode sa1b` writes for one image: annotation ids 0, 1, ... in the
// generator's order; image_id from the file name: its trailing digits ("sa_223750.jpg": 223750)
// or else the first 28 bits of the SHA-256 of the name, so shards of a batch agree without
// talking.
nlohmann::json sa1b_amg_record(const std::string& image_path, int width, int height,
                               const std::vector<MaskRecord>& masks);
int64_t sa1b_image_id(const std::string& file_name);

// Writes `path` atomically.
void write_sa1b_json(const std::string& path, const nlohmann::json& record);

}  // namespace sam::cli
