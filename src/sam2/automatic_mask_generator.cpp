// SAM2AutomaticMaskGenerator (sam2/automatic_mask_generator.py), on the helpers SAM's generator
// uses (amg_utils.h, rle.h).
#include "sam/sam2_automatic_mask_generator.h"

#include <algorithm>
#include <cmath>

#include "amg_utils.h"
#include "mask_records.h"
#include "ops/threads.h"
#include "postprocess.h"
#include "sam/error.h"
#include "sam/rle.h"

namespace sam {

using amg::MaskItem;

Sam2AutomaticMaskGenerator::Sam2AutomaticMaskGenerator(Sam2 model, Sam2AmgOptions o)
    : model_(std::move(model)), options_(std::move(o)), grids_(amg::checked_point_grids(options_)) {}

std::vector<MaskRecord> Sam2AutomaticMaskGenerator::generate(const Image& image, const Progress& progress,
                                                             const Sam2Features* whole_image) {
    ops::ThreadScope threads(model_.execution().threads);
    if (image.width <= 0 || image.height <= 0) throw InputError("image", "empty image");
    const int H = image.height, W = image.width;
    const Sam2AmgOptions& o = options_;
    const float thr = static_cast<float>(o.mask_threshold);
    const float S = static_cast<float>(model_.config().image_size);
    const int L = model_.config().low_res_size();
    const std::vector<amg::CropBox> crops = amg::generate_crop_boxes(H, W, o.crop_n_layers, o.crop_overlap_ratio);
    int64_t total = 0, done = 0;
    for (const auto& c : crops) total += static_cast<int64_t>(grids_[static_cast<size_t>(c.layer)].size());

    std::vector<MaskItem> all;
    Sam2ImagePredictor predictor(model_);
    for (const amg::CropBox& crop : crops) {
        const amg::BoxXyxy& cb = crop.box;
        const int ch = cb[3] - cb[1], cw = cb[2] - cb[0];
        if (whole_image && crop.layer == 0)
            predictor.set_features(*whole_image, ch, cw);
        else
            predictor.set_image(amg::crop_image(image, cb));
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
                    amg::StabilityCounts counts(o.mask_threshold, o.stability_score_offset);
                    for (size_t p = 0; p < logits.size(); ++p) {
                        counts.add(logits[p]);
                        mask[p] = logits[p] > thr;
                    }
                    const float stability = counts.score();
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
        items = amg::remove_duplicates_in_crop(std::move(items), o.box_nms_thresh);
        for (MaskItem& m : items) {
            m.box = amg::uncrop_box_xyxy(m.box, cb);
            m.point = {static_cast<double>(static_cast<float>(m.point[0]) + static_cast<float>(cb[0])),
                       static_cast<double>(static_cast<float>(m.point[1]) + static_cast<float>(cb[1]))};
            m.crop = cb;
        }
        all.insert(all.end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
    }
    // Duplicates between crops: smaller crops win.
    all = amg::remove_duplicates_between_crops(std::move(all), crops.size(), o.crop_nms_thresh);
    return amg::make_records(all, o.output_mode);
}

}  // namespace sam
