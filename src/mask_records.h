// What SAM's and SAM 2's automatic mask generators share (automatic_mask_generator.py of either
// package): the masks on their way to records, cropping, NMS between crops, the records
// themselves, and the options' point grids.
#pragma once

#include <array>
#include <vector>

#include "amg_utils.h"
#include "sam/automatic_mask_generator.h"
#include "sam/image.h"
#include "sam/rle.h"

namespace sam::amg {

// A mask on its way to becoming a record; boxes and points in the image frame once uncropped.
struct MaskItem {
    Rle rle;
    BoxXyxy box{};   // XYXY, max inclusive
    float iou = 0.0f;
    float stability = 0.0f;
    Point point{};
    BoxXyxy crop{};  // XYXY, max exclusive
};

// The point grid of each crop layer, from points_per_side or point_grids; throws
// sam::InputError naming the option for any option out of its range.
std::vector<std::vector<std::array<double, 2>>> checked_point_grids(const AmgOptions& options);

// The pixels of `box` (XYXY, max exclusive) of an image.
Image crop_image(const Image& image, const BoxXyxy& box);

// The items' boxes as floats, for NMS.
std::vector<BoxXyxyF> item_boxes(const std::vector<MaskItem>& items);

// The items at `keep`, in that order (moved out of `items`).
std::vector<MaskItem> select(std::vector<MaskItem>& items, const std::vector<int>& keep);

// NMS within one crop by predicted IoU (box_nms_thresh).
std::vector<MaskItem> remove_duplicates_in_crop(std::vector<MaskItem> items, double box_nms_thresh);

// NMS between crops: the smaller crop wins (crop_nms_thresh). Unchanged with a single crop.
std::vector<MaskItem> remove_duplicates_between_crops(std::vector<MaskItem> items, size_t crops,
                                                      double crop_nms_thresh);

// The generator's records, in the requested output mode (the items' RLEs are moved out).
std::vector<MaskRecord> make_records(std::vector<MaskItem>& items, OutputMode mode);

}  // namespace sam::amg
