#include "mask_records.h"

#include <algorithm>
#include <string>

#include "sam/error.h"

namespace sam::amg {

std::vector<std::vector<std::array<double, 2>>> checked_point_grids(const AmgOptions& o) {
    if ((o.points_per_side > 0) == !o.point_grids.empty())
        throw InputError("points_per_side", "exactly one of points_per_side or point_grids must be provided");
    if (o.points_per_batch < 1) throw InputError("points_per_batch", "must be at least 1");
    if (o.crop_n_layers < 0) throw InputError("crop_n_layers", "must not be negative");
    if (o.crop_n_points_downscale_factor < 1) throw InputError("crop_n_points_downscale_factor", "must be at least 1");
    if (o.min_mask_region_area < 0) throw InputError("min_mask_region_area", "must not be negative");
    if (!(o.crop_overlap_ratio >= 0.0 && o.crop_overlap_ratio < 1.0))
        throw InputError("crop_overlap_ratio", "must be in [0, 1)");
    std::vector<std::vector<std::array<double, 2>>> grids;
    if (o.points_per_side > 0) {
        for (const auto& g : build_all_layer_point_grids(o.points_per_side, o.crop_n_layers,
                                                         o.crop_n_points_downscale_factor))
            grids.emplace_back(g.begin(), g.end());
    } else {
        grids = o.point_grids;
    }
    if (static_cast<int>(grids.size()) != o.crop_n_layers + 1)
        throw InputError("point_grids", std::to_string(grids.size()) + " grids for " +
                                            std::to_string(o.crop_n_layers + 1) + " crop layers");
    return grids;
}

Image crop_image(const Image& img, const BoxXyxy& b) {
    Image out;
    out.width = b[2] - b[0];
    out.height = b[3] - b[1];
    out.rgb.resize(static_cast<size_t>(out.width) * out.height * 3);
    for (int y = 0; y < out.height; ++y)
        std::copy_n(img.rgb.data() + (static_cast<size_t>(y + b[1]) * img.width + b[0]) * 3,
                    static_cast<size_t>(out.width) * 3, out.rgb.data() + static_cast<size_t>(y) * out.width * 3);
    return out;
}

std::vector<BoxXyxyF> item_boxes(const std::vector<MaskItem>& items) {
    std::vector<BoxXyxyF> boxes;
    boxes.reserve(items.size());
    for (const MaskItem& m : items) boxes.push_back({float(m.box[0]), float(m.box[1]), float(m.box[2]), float(m.box[3])});
    return boxes;
}

std::vector<MaskItem> select(std::vector<MaskItem>& items, const std::vector<int>& keep) {
    std::vector<MaskItem> out;
    out.reserve(keep.size());
    for (int i : keep) out.push_back(std::move(items[static_cast<size_t>(i)]));
    return out;
}

std::vector<MaskItem> remove_duplicates_in_crop(std::vector<MaskItem> items, double box_nms_thresh) {
    std::vector<float> scores;
    scores.reserve(items.size());
    for (const MaskItem& m : items) scores.push_back(m.iou);
    return select(items, box_nms(item_boxes(items), scores, box_nms_thresh));
}

std::vector<MaskItem> remove_duplicates_between_crops(std::vector<MaskItem> items, size_t crops,
                                                      double crop_nms_thresh) {
    if (crops <= 1) return items;
    std::vector<float> scores;
    scores.reserve(items.size());
    for (const MaskItem& m : items)
        scores.push_back(1.0f / static_cast<float>((m.crop[2] - m.crop[0]) * (m.crop[3] - m.crop[1])));
    return select(items, batched_nms(item_boxes(items), scores, std::vector<int64_t>(items.size(), 0),
                                     crop_nms_thresh));
}

std::vector<MaskRecord> make_records(std::vector<MaskItem>& items, OutputMode mode) {
    std::vector<MaskRecord> records(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        MaskItem& m = items[i];
        MaskRecord& r = records[i];
        r.area = rle_area(m.rle);
        r.bbox = box_xyxy_to_xywh(m.box);
        r.predicted_iou = m.iou;
        r.point = m.point;
        r.stability_score = m.stability;
        r.crop_box = box_xyxy_to_xywh(m.crop);
        if (mode == OutputMode::BinaryMask) r.mask = rle_decode(m.rle);
        if (mode == OutputMode::CocoRle) r.coco_counts = rle_to_coco_string(m.rle);
        r.rle = std::move(m.rle);
    }
    return records;
}

}  // namespace sam::amg
