// Helpers of the automatic mask generator, one for each in segment_anything/utils/amg.py:
// point grids, crop boxes, mask boxes, stability score, box NMS, small-region removal, and the
// shifts that carry crop coordinates into the image frame.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace sam::amg {

// A point (x, y); grids hold values in [0, 1], image points hold pixels.
using Point = std::array<double, 2>;
// Integer box (x0, y0, x1, y1); for masks the max is inclusive, for crops exclusive.
using BoxXyxy = std::array<int, 4>;
using BoxXyxyF = std::array<float, 4>;

// n * n points at linspace(1/(2n), 1 - 1/(2n), n) on each axis, row by row with x varying
// fastest, in float64 exactly as numpy computes them (build_point_grid).
std::vector<Point> build_point_grid(int n_per_side);

// One grid per layer 0..n_layers; layer i has int(n_per_side / scale_per_layer**i) points per side.
std::vector<std::vector<Point>> build_all_layer_point_grids(int n_per_side, int n_layers, int scale_per_layer);

struct CropBox {
    BoxXyxy box;  // (x0, y0, x1, y1), max exclusive
    int layer;
};

// Layer 0 is the whole (height, width) image; layer i >= 1 has 2**i crops per side that overlap
// by int(overlap_ratio * min(H, W) * 2 / 2**i) pixels; x0 in the outer loop, y0 in the inner one
// (generate_crop_boxes).
std::vector<CropBox> generate_crop_boxes(int height, int width, int n_layers, double overlap_ratio);

// Box of the set pixels of a row-major (height, width) mask: (min col, min row, max col, max row),
// max inclusive; [0, 0, 0, 0] for an empty mask (batched_mask_to_box).
BoxXyxy mask_to_box(const uint8_t* mask, int height, int width);

// Whether a box found inside crop_box (crop coordinates) lies, once shifted into the image frame,
// within atol of a crop edge that is not also an edge of orig_box (torch.isclose, rtol 0).
bool is_box_near_crop_edge(const BoxXyxy& box, const BoxXyxy& crop_box, const BoxXyxy& orig_box,
                           double atol = 20.0);

// The stability score, count(logit > threshold + offset) / count(logit > threshold - offset),
// accumulated over a mask's logits in parts (the generator adds one band of rows at a time).
// The reference compares a float32 tensor with Python floats: both thresholds are the double
// sums rounded to float32. score() divides in float32 as the reference does; 0/0 gives NaN,
// which passes no ">=" threshold.
struct StabilityCounts {
    StabilityCounts(double mask_threshold, double threshold_offset)
        : hi(static_cast<float>(mask_threshold + threshold_offset)),
          lo(static_cast<float>(mask_threshold - threshold_offset)) {}
    void add(float logit) {
        intersections += logit > hi;
        unions += logit > lo;
    }
    float score() const { return static_cast<float>(intersections) / static_cast<float>(unions); }

    float hi, lo;
    int64_t intersections = 0, unions = 0;
};


// torchvision.ops.nms: indices of the kept boxes in descending score order; a box is suppressed
// by a kept one when their IoU (float32, areas (x1-x0)*(y1-y0)) is > iou_threshold. Equal scores
// are visited lower index first.
std::vector<int> box_nms(const std::vector<BoxXyxyF>& boxes, const std::vector<float>& scores,
                         double iou_threshold);

// torchvision.ops.batched_nms: NMS within each category only; result in descending score order
// (lower index first on ties). Like torchvision, boxes of different categories are moved apart
// by category * (max coordinate + 1) before a single NMS when there are at most 1000 boxes, and
// NMS runs per category otherwise.
std::vector<int> batched_nms(const std::vector<BoxXyxyF>& boxes, const std::vector<float>& scores,
                             const std::vector<int64_t>& categories, double iou_threshold);

enum class RegionMode { kHoles, kIslands };

// remove_small_regions on a row-major (height, width) 0/1 mask, in place. 8-connected components
// of the mask (islands) or of its inverse (holes) with area < area_thresh are small. Holes: small
// components of the inverse are filled. Islands: small components are removed; if none would be
// left, the largest is kept (the first in OpenCV's label order on ties). Returns whether any
// component was small (the reference's "changed", true even when the mask ends up the same).
bool remove_small_regions(uint8_t* mask, int height, int width, double area_thresh, RegionMode mode);

// (x0, y0, x1, y1) -> (x0, y0, x1 - x0, y1 - y0), no +1 (box_xyxy_to_xywh).
BoxXyxy box_xyxy_to_xywh(const BoxXyxy& box);

// Crop coordinates to image coordinates: add the crop's (x0, y0).
BoxXyxy uncrop_box_xyxy(const BoxXyxy& box, const BoxXyxy& crop_box);
Point uncrop_point(const Point& point, const BoxXyxy& crop_box);

}  // namespace sam::amg
