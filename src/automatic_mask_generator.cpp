#include "sam/automatic_mask_generator.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "amg_utils.h"
#include "ops/threads.h"
#include "postprocess.h"
#include "sam/error.h"
#include "sam/predictor.h"

namespace sam {
namespace {

using clock_type = std::chrono::steady_clock;
double since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

// A mask on its way to becoming a record; boxes and points in the image frame once uncropped.
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
    out.reserve(keep.size());
    for (int i : keep) out.push_back(std::move(items[static_cast<size_t>(i)]));
    return out;
}

// Upsamples one low-res mask to the crop, row band by row band, and computes in the same pass
// what the reference computes from the full-size float logits: the stability counts, the
// binary mask and its box. No full-size float mask is ever stored.
struct UpsampledMask {
    int64_t count_hi = 0, count_lo = 0;  // logits > thr + offset, > thr - offset
};
UpsampledMask upsample_mask(const MaskPostprocessor& post, const float* low, float thr, float offset,
                            std::vector<float>& band, uint8_t* mask) {
    const int H = post.out_h(), W = post.out_w(), rows = 32;
    const float hi = thr + offset, lo = thr - offset;
    band.resize(static_cast<size_t>(rows) * W);
    UpsampledMask u;
    for (int y0 = 0; y0 < H; y0 += rows) {
        const int y1 = std::min(H, y0 + rows);
        post.logits(low, band.data(), PixelRegion{y0, y1, 0, W});
        const int64_t n = static_cast<int64_t>(y1 - y0) * W;
        uint8_t* m = mask + static_cast<int64_t>(y0) * W;
        int64_t chi = 0, clo = 0;
        for (int64_t i = 0; i < n; ++i) {
            const float v = band[static_cast<size_t>(i)];
            chi += v > hi;
            clo += v > lo;
            m[i] = v > thr;
        }
        u.count_hi += chi;
        u.count_lo += clo;
    }
    return u;
}

}  // namespace

OutputMode output_mode_from_string(const std::string& s) {
    if (s == "binary_mask") return OutputMode::BinaryMask;
    if (s == "uncompressed_rle") return OutputMode::UncompressedRle;
    if (s == "coco_rle") return OutputMode::CocoRle;
    throw InputError("output_mode", "'" + s + "' is not one of binary_mask, uncompressed_rle, coco_rle");
}

SamAutomaticMaskGenerator::SamAutomaticMaskGenerator(Sam model, AmgOptions o)
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

std::vector<MaskRecord> SamAutomaticMaskGenerator::generate(const Image& image, const Progress& progress,
                                                            const Tensor& embedding) {
    const auto t_start = clock_type::now();
    ops::ThreadScope threads(model_.execution().threads);
    timings_ = {};
    if (image.width <= 0 || image.height <= 0) throw InputError("image", "empty image");
    const int H = image.height, W = image.width;
    const AmgOptions& o = options_;
    const float thr = model_.config().mask_threshold;
    const std::vector<amg::CropBox> crops = amg::generate_crop_boxes(H, W, o.crop_n_layers, o.crop_overlap_ratio);
    int64_t total_prompts = 0, done_prompts = 0;
    for (const auto& c : crops) total_prompts += static_cast<int64_t>(grids_[static_cast<size_t>(c.layer)].size());
    timings_.crops = static_cast<int>(crops.size());
    timings_.prompts = static_cast<int>(total_prompts);

    std::vector<MaskItem> all;
    SamPredictor predictor(model_);
    for (const amg::CropBox& crop : crops) {
        // Embed the crop
        const amg::BoxXyxy& cb = crop.box;
        auto t0 = clock_type::now();
        const bool whole = cb[0] == 0 && cb[1] == 0 && cb[2] == W && cb[3] == H;
        if (whole && embedding.defined())
            predictor.set_embedding(embedding, H, W);
        else
            predictor.set_image(crop_image(image, cb));
        timings_.encoder += since(t0);
        const ImageGeometry g = predictor.geometry();
        const int ch = g.orig_h, cw = g.orig_w;
        MaskPostprocessor post(static_cast<int>(256), model_.config().encoder.img_size, g.input_h, g.input_w, ch, cw);

        // Decode the grid in batches; keep masks that pass the IoU, stability and edge filters
        const auto& grid = grids_[static_cast<size_t>(crop.layer)];
        std::vector<MaskItem> items;
        for (size_t start = 0; start < grid.size(); start += static_cast<size_t>(o.points_per_batch)) {
            const size_t n = std::min(grid.size() - start, static_cast<size_t>(o.points_per_batch));
            std::vector<amg::Point> points(n);
            BatchPrompt bp;
            bp.batch = static_cast<int64_t>(n);
            bp.points_per_prompt = 1;
            bp.multimask_output = true;
            bp.point_labels.assign(n, 1);
            for (size_t i = 0; i < n; ++i) {
                points[i] = {grid[start + i][0] * cw, grid[start + i][1] * ch};
                bp.point_coords.push_back(static_cast<float>(points[i][0]));
                bp.point_coords.push_back(static_cast<float>(points[i][1]));
            }
            t0 = clock_type::now();
            BatchPrediction r = predictor.predict_batch(bp, /*upsample=*/false);
            timings_.decoder += since(t0);

            t0 = clock_type::now();
            const int64_t per = r.num_masks, side = r.low_res_logits.dim(-1);
            std::vector<int64_t> cand;  // (point, mask) indices passing the IoU filter
            for (int64_t i = 0; i < bp.batch * per; ++i)
                if (!(o.pred_iou_thresh > 0.0) || r.iou_predictions[i] > static_cast<float>(o.pred_iou_thresh))
                    cand.push_back(i);
            timings_.masks_decoded += static_cast<int>(bp.batch * per);
            timings_.masks_upsampled += static_cast<int>(cand.size());
            std::vector<MaskItem> kept(cand.size());
            std::vector<char> ok(cand.size(), 0);
#pragma omp parallel
            {
                std::vector<float> band;
                std::vector<uint8_t> mask(static_cast<size_t>(ch) * cw);
#pragma omp for schedule(dynamic)
                for (int64_t j = 0; j < static_cast<int64_t>(cand.size()); ++j) {
                    const int64_t i = cand[static_cast<size_t>(j)];
                    UpsampledMask u = upsample_mask(post, r.low_res_logits.data() + i * side * side, thr,
                                                    static_cast<float>(o.stability_score_offset), band, mask.data());
                    const float stability = static_cast<float>(u.count_hi) / static_cast<float>(u.count_lo);
                    if (o.stability_score_thresh > 0.0 && !(stability >= static_cast<float>(o.stability_score_thresh)))
                        continue;
                    const amg::BoxXyxy box = amg::mask_to_box(mask.data(), ch, cw);
                    if (amg::is_box_near_crop_edge(box, cb, {0, 0, W, H})) continue;
                    MaskItem& m = kept[static_cast<size_t>(j)];
                    m.rle = rle_encode_placed(mask.data(), ch, cw, cb[0], cb[1], H, W);
                    m.box = box;
                    m.iou = r.iou_predictions[i];
                    m.stability = stability;
                    m.point = points[static_cast<size_t>(i / per)];
                    ok[static_cast<size_t>(j)] = 1;
                }
            }
            for (size_t j = 0; j < cand.size(); ++j)
                if (ok[j]) items.push_back(std::move(kept[j]));
            timings_.postprocess += since(t0);
            done_prompts += bp.batch;
            if (progress) progress(done_prompts, total_prompts);
        }

        // Remove duplicates within this crop, then move boxes and points into the image frame
        t0 = clock_type::now();
        std::vector<float> scores;
        for (const MaskItem& m : items) scores.push_back(m.iou);
        items = select(items, amg::box_nms(float_boxes(items), scores, o.box_nms_thresh));
        for (MaskItem& m : items) {
            m.box = amg::uncrop_box_xyxy(m.box, cb);
            m.point = amg::uncrop_point(m.point, cb);
            m.crop = cb;
        }
        all.insert(all.end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
        timings_.postprocess += since(t0);
    }

    auto t0 = clock_type::now();
    // Remove duplicate masks between crops: smaller crops win
    if (crops.size() > 1) {
        std::vector<float> scores;
        for (const MaskItem& m : all)
            scores.push_back(1.0f / static_cast<float>((m.crop[2] - m.crop[0]) * (m.crop[3] - m.crop[1])));
        all = select(all, amg::batched_nms(float_boxes(all), scores, std::vector<int64_t>(all.size(), 0),
                                           o.crop_nms_thresh));
    }

    // Fill small holes and remove small islands; masks that changed lose NMS ties to those that did not
    if (o.min_mask_region_area > 0 && !all.empty()) {
        std::vector<std::vector<uint8_t>> masks(all.size());
        std::vector<float> scores(all.size());
        std::vector<amg::BoxXyxyF> boxes(all.size());
#pragma omp parallel for schedule(dynamic)
        for (int64_t i = 0; i < static_cast<int64_t>(all.size()); ++i) {
            std::vector<uint8_t>& m = masks[static_cast<size_t>(i)];
            m = rle_decode(all[static_cast<size_t>(i)].rle);
            const double area = o.min_mask_region_area;
            bool changed = amg::remove_small_regions(m.data(), H, W, area, amg::RegionMode::kHoles);
            changed = amg::remove_small_regions(m.data(), H, W, area, amg::RegionMode::kIslands) || changed;
            scores[static_cast<size_t>(i)] = changed ? 0.0f : 1.0f;
            const amg::BoxXyxy b = amg::mask_to_box(m.data(), H, W);
            boxes[static_cast<size_t>(i)] = {float(b[0]), float(b[1]), float(b[2]), float(b[3])};
        }
        std::vector<int> keep = amg::batched_nms(boxes, scores, std::vector<int64_t>(all.size(), 0),
                                                 std::max(o.box_nms_thresh, o.crop_nms_thresh));
        for (int i : keep) {
            const size_t k = static_cast<size_t>(i);
            if (scores[k] != 0.0f) continue;
            all[k].rle = rle_encode(masks[k].data(), H, W);
            all[k].box = amg::mask_to_box(masks[k].data(), H, W);
        }
        all = select(all, keep);
    }

    // Records
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
    timings_.postprocess += since(t0);
    timings_.total = since(t_start);
    return records;
}

}  // namespace sam
