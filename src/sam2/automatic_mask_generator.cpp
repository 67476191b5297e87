// SAM2AutomaticMaskGenerator (sam2/automatic_mask_generator.py), on the helpers SAM's generator
// uses (amg_utils.h, rle.h).
#include "sam/sam2_automatic_mask_generator.h"

#include <algorithm>
#include <cmath>

#include "amg_utils.h"
#include "ops/threads.h"
#include "postprocess.h"
#include "sam/error.h"
#include "sam/rle.h"

namespace sam {
namespace {

struct MaskItem {
    Rle rle;
    amg::BoxXyxy box{};   // XYXY, max inclusive
    float iou = 0.0f;
    float stability = 0.0f;
    amg::Point point{};
    amg::BoxXyxy crop{};  // XYXY, max exclusive
};

Image crop_image(const Image& img, const amg::BoxXyxy& b) {
    Image out;
    out.width = b[2] - b[0];
    out.height = b[3] - b[1];
    out.rgb.resize(static_cast<size_t>(out.width) * out.height * 3);
    for (int y = 0; y < out.height; ++y)
        std::copy_n(img.rgb.data() + (static_cast<size_t>(y + b[1]) * img.width + b[0]) * 3,
                    static_cast<size_t>(out.width) * 3, out.rgb.data() + static_cast<size_t>(y) * out.width * 3);
    return out;
}

std::vector<amg::BoxXyxyF> float_boxes(const std::vector<MaskItem>& items, bool crop_boxes = false) {
    std::vector<amg::BoxXyxyF> boxes;
    for (const MaskItem& m : items) {
        const amg::BoxXyxy& b = crop_boxes ? m.crop : m.box;
        boxes.push_back({float(b[0]), float(b[1]), float(b[2]), float(b[3])});
    }
    return boxes;
}

std::vector<MaskItem> select(std::vector<MaskItem>& items, const std::vector<int>& keep) {
    std::vector<MaskItem> out;
    for (int i : keep) out.push_back(std::move(items[static_cast<size_t>(i)]));
    return out;
}

}  // namespace

Sam2AutomaticMaskGenerator::Sam2AutomaticMaskGenerator(Sam2 model, Sam2AmgOptions o)
    : model_(std::move(model)), options_(std::move(o)) {
    if ((options_.points_per_side > 0) == !options_.point_grids.empty())
        throw InputError("points_per_side", "exactly one of points_per_side or point_grids must be provided");
    if (options_.points_per_batch < 1) throw InputError("points_per_batch", "must be at least 1");
    if (options_.crop_n_layers < 0) throw InputError("crop_n_layers", "must not be negative");
    if (options_.crop_n_points_downscale_factor < 1) throw InputError("crop_n_points_downscale_factor", "must be at least 1");
    if (options_.min_mask_region_area < 0) throw InputError("min_mask_region_area", "must not be negative");
    if (!(options_.crop_overlap_ratio >= 0.0 && options_.crop_overlap_ratio < 1.0))
        throw InputError("crop_overlap_ratio", "must be in [0, 1)");
    if (options_.points_per_side > 0) {
        for (const auto& g : amg::build_all_layer_point_grids(options_.points_per_side, options_.crop_n_layers,
                                                              options_.crop_n_points_downscale_factor))
            grids_.emplace_back(g.begin(), g.end());
    } else {
        grids_ = options_.point_grids;
    }
    if (static_cast<int>(grids_.size()) != options_.crop_n_layers + 1)
        throw InputError("point_grids", std::to_string(grids_.size()) + " grids for " +
                                            std::to_string(options_.crop_n_layers + 1) + " crop layers");
}

std::vector<MaskRecord> Sam2AutomaticMaskGenerator::generate(const Image& image, const Progress& progress) {
    ops::ThreadScope threads(model_.execution().threads);
    if (image.width <= 0 || image.height <= 0) throw InputError("image", "empty image");
    const int H = image.height, W = image.width;
    const Sam2AmgOptions& o = options_;
    const float thr = static_cast<float>(o.mask_threshold), offset = static_cast<float>(o.stability_score_offset);
    const float S = static_cast<float>(model_.config().image_size);
    const int L = model_.config().low_res_size();
    const std::vector<amg::CropBox> crops = amg::generate_crop_boxes(H, W, o.crop_n_layers, o.crop_overlap_ratio);
    int64_t total = 0, done = 0;
    for (const auto& c : crops) total += static_cast<int64_t>(grids_[static_cast<size_t>(c.layer)].size());

    std::vector<MaskItem> all;
    Sam2ImagePredictor predictor(model_);
    for (const amg::CropBox& crop : crops) {
        const amg::BoxXyxy& cb = crop.box;
        predictor.set_image(crop_image(image, cb));
        const int ch = cb[3] - cb[1], cw = cb[2] - cb[0];
        MaskPostprocessor post(L, L, L, L, ch, cw);
        const auto& grid = grids_[static_cast<size_t>(crop.layer)];
        std::vector<MaskItem> items;
        for (size_t start = 0; start < grid.size(); start += static_cast<size_t>(o.points_per_batch)) {
            const size_t n = std::min(grid.size() - start, static_cast<size_t>(o.points_per_batch));
            // Points in crop pixels (float32, as the official tensors), then in the input frame.
            std::vector<std::array<float, 2>> pts(n), in(n);
            for (size_t i = 0; i < n; ++i) {
                pts[i] = {static_cast<float>(grid[start + i][0] * cw), static_cast<float>(grid[start + i][1] * ch)};
                in[i] = {pts[i][0] / static_cast<float>(cw) * S, pts[i][1] / static_cast<float>(ch) * S};
            }
            Sam2ImagePredictor::Batch r = predictor.predict_points(in, o.multimask_output);
            const int64_t per = r.iou.dim(1), count = static_cast<int64_t>(n) * per;
            Tensor low = r.low_res.reshape({count, L, L});
            Tensor iou = r.iou.reshape({count});
            if (o.use_m2m) {
                // One refinement step: every mask (clamped, as the predictor returns it) as the
                // mask input of its own point, single-mask output.
                for (int64_t i = 0, ne = low.numel(); i < ne; ++i) low[i] = std::clamp(low[i], -32.0f, 32.0f);
                Tensor new_low = Tensor::empty({count, L, L}), new_iou = Tensor::empty({count});
                for (int64_t b0 = 0; b0 < count; b0 += o.points_per_batch) {
                    const int64_t nb = std::min<int64_t>(count - b0, o.points_per_batch);
                    std::vector<std::array<float, 2>> rp;
                    for (int64_t i = b0; i < b0 + nb; ++i) rp.push_back(in[static_cast<size_t>(i / per)]);
                    Tensor mi = Tensor::view({nb, L, L}, low.data() + b0 * L * L, nullptr);
                    Sam2ImagePredictor::Batch rr = predictor.predict_points(rp, false, mi.clone());
                    std::copy_n(rr.low_res.data(), nb * L * L, new_low.data() + b0 * L * L);
                    std::copy_n(rr.iou.data(), nb, new_iou.data() + b0);
                }
                low = new_low;
                iou = new_iou;
            }
            std::vector<MaskItem> kept(static_cast<size_t>(count));
            std::vector<char> ok(static_cast<size_t>(count), 0);
#pragma omp parallel
            {
                std::vector<float> logits(static_cast<size_t>(ch) * cw);
                std::vector<uint8_t> mask(static_cast<size_t>(ch) * cw);
                std::vector<float> filtered;
                const bool filter = o.fill_holes && o.min_mask_region_area > 0;
                const Sam2PostprocessOptions pp{static_cast<double>(o.min_mask_region_area),
                                                static_cast<double>(o.min_mask_region_area)};
#pragma omp for schedule(dynamic)
                for (int64_t i = 0; i < count; ++i) {
                    if (o.pred_iou_thresh > 0.0 && !(iou[i] > static_cast<float>(o.pred_iou_thresh))) continue;
                    const float* lr = low.data() + i * L * L;
                    if (filter) {
                        filtered.assign(lr, lr + L * L);
                        sam2_fill_holes_and_sprinkles(filtered.data(), L, thr, pp);
                        lr = filtered.data();
                    }
                    post.logits(lr, logits.data());
                    int64_t hi = 0, lo = 0;
                    for (size_t p = 0; p < logits.size(); ++p) {
                        hi += logits[p] > thr + offset;
                        lo += logits[p] > thr - offset;
                        mask[p] = logits[p] > thr;
                    }
                    const float stability = static_cast<float>(hi) / static_cast<float>(lo);
                    if (o.stability_score_thresh > 0.0 && !(stability >= static_cast<float>(o.stability_score_thresh)))
                        continue;
                    const amg::BoxXyxy box = amg::mask_to_box(mask.data(), ch, cw);
                    if (amg::is_box_near_crop_edge(box, cb, {0, 0, W, H})) continue;
                    MaskItem& m = kept[static_cast<size_t>(i)];
                    m.rle = rle_encode_placed(mask.data(), ch, cw, cb[0], cb[1], H, W);
                    m.box = box;
                    m.iou = iou[i];
                    m.stability = stability;
                    m.point = {pts[static_cast<size_t>(i / per)][0], pts[static_cast<size_t>(i / per)][1]};
                    ok[static_cast<size_t>(i)] = 1;
                }
            }
            for (int64_t i = 0; i < count; ++i)
                if (ok[static_cast<size_t>(i)]) items.push_back(std::move(kept[static_cast<size_t>(i)]));
            done += static_cast<int64_t>(n);
            if (progress) progress(done, total);
        }
        // Duplicates within the crop, then boxes and points into the image frame.
        std::vector<float> scores;
        for (const MaskItem& m : items) scores.push_back(m.iou);
        items = select(items, amg::box_nms(float_boxes(items), scores, o.box_nms_thresh));
        for (MaskItem& m : items) {
            m.box = amg::uncrop_box_xyxy(m.box, cb);
            m.point = {static_cast<double>(static_cast<float>(m.point[0]) + static_cast<float>(cb[0])),
                       static_cast<double>(static_cast<float>(m.point[1]) + static_cast<float>(cb[1]))};
            m.crop = cb;
        }
        all.insert(all.end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
    }
    // Duplicates between crops: smaller crops win.
    if (crops.size() > 1) {
        std::vector<float> scores;
        for (const MaskItem& m : all)
            scores.push_back(1.0f / static_cast<float>((m.crop[2] - m.crop[0]) * (m.crop[3] - m.crop[1])));
        all = select(all, amg::batched_nms(float_boxes(all), scores, std::vector<int64_t>(all.size(), 0),
                                           o.crop_nms_thresh));
    }
    std::vector<MaskRecord> records(all.size());
    for (size_t i = 0; i < all.size(); ++i) {
        MaskItem& m = all[i];
        MaskRecord& r = records[i];
        r.area = rle_area(m.rle);
        r.bbox = amg::box_xyxy_to_xywh(m.box);
        r.predicted_iou = m.iou;
        r.point = m.point;
        r.stability_score = m.stability;
        r.crop_box = amg::box_xyxy_to_xywh(m.crop);
        if (o.output_mode == OutputMode::BinaryMask) r.mask = rle_decode(m.rle);
        if (o.output_mode == OutputMode::CocoRle) r.coco_counts = rle_to_coco_string(m.rle);
        r.rle = std::move(m.rle);
    }
    return records;
}

}  // namespace sam
