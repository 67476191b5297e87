#include "sam/automatic_mask_generator.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>

#include "amg_utils.h"
#include "mask_records.h"
#include "ops/threads.h"
#include "ops/vector_math.h"
#include "postprocess.h"
#include "sam/error.h"
#include "sam/predictor.h"

namespace sam {
namespace {

using amg::MaskItem;

using clock_type = std::chrono::steady_clock;
double since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

constexpr int kBandRows = 32;  // rows of the crop upsampled at a time

// Thresholds one band of upsampled logits into `mask` and counts what the stability score needs;
// returns the number of pixels set.
SAM_VECTOR_CLONES
int64_t threshold_band(const float* v, int64_t n, float thr, float hi, float lo, uint8_t* mask, int64_t& above_hi,
                       int64_t& above_lo) {
    int32_t h = 0, l = 0, set = 0;  // n <= kBandRows * width fits
    for (int64_t i = 0; i < n; ++i) {
        h += v[i] > hi ? 1 : 0;
        l += v[i] > lo ? 1 : 0;
        set += v[i] > thr ? 1 : 0;
        mask[i] = v[i] > thr ? 1 : 0;
    }
    above_hi += h;
    above_lo += l;
    return set;
}

// Upsamples one low-res mask to the crop, row band by row band, and computes in the same pass
// what the reference computes from the full-size float logits: the stability counts, the
// binary mask's box and, where `mask` is given, the binary mask itself (else each band is
// thresholded into `band_mask` and dropped). No full-size float mask is ever stored.
struct UpsampledMask {
    amg::StabilityCounts stability;
    amg::BoxXyxy box{0, 0, 0, 0};  // as amg::mask_to_box
};
UpsampledMask upsample_mask(const MaskPostprocessor& post, const float* low, double mask_threshold,
                            double stability_offset, std::vector<float>& band, std::vector<uint8_t>& band_mask,
                            uint8_t* mask) {
    const int H = post.out_h(), W = post.out_w();
    const auto thr = static_cast<float>(mask_threshold);
    band.resize(static_cast<size_t>(kBandRows) * W);
    if (!mask) band_mask.resize(static_cast<size_t>(kBandRows) * W);
    UpsampledMask out{amg::StabilityCounts(mask_threshold, stability_offset)};
    bool any = false;
    for (int y0 = 0; y0 < H; y0 += kBandRows) {
        const int y1 = std::min(H, y0 + kBandRows);
        post.logits(low, band.data(), PixelRegion{y0, y1, 0, W});
        uint8_t* m = mask ? mask + static_cast<int64_t>(y0) * W : band_mask.data();
        const int64_t set = threshold_band(band.data(), static_cast<int64_t>(y1 - y0) * W, thr, out.stability.hi,
                                           out.stability.lo, m, out.stability.intersections, out.stability.unions);
        if (set == 0) continue;
        const amg::BoxXyxy b = amg::mask_to_box(m, y1 - y0, W);  // rows within the band
        if (!any) {
            out.box = {b[0], b[1] + y0, b[2], b[3] + y0};
            any = true;
        } else {
            out.box = {std::min(out.box[0], b[0]), out.box[1], std::max(out.box[2], b[2]), b[3] + y0};
        }
    }
    return out;
}

// One generate() call, along the reference's methods: _generate_masks (every crop, then NMS
// between crops), _process_crop (embed a crop, decode its grid in batches, NMS within it,
// uncrop) and _process_batch (decode, filter by predicted IoU, upsample, filter by stability
// and crop edges, encode).
class MaskGeneration {
  public:
    MaskGeneration(const Sam& model, const AmgOptions& options, const std::vector<std::vector<std::array<double, 2>>>& grids,
                   const SamAutomaticMaskGenerator::Progress& progress, AmgTimings& timings)
        : model_(model), o_(options), grids_(grids), progress_(progress), timings_(timings) {}

    // _generate_masks
    std::vector<MaskItem> generate_masks(const Image& image, const Tensor& embedding) {
        const int H = image.height, W = image.width;
        const std::vector<amg::CropBox> crops = amg::generate_crop_boxes(H, W, o_.crop_n_layers, o_.crop_overlap_ratio);
        for (const auto& c : crops) total_prompts_ += static_cast<int64_t>(grids_[static_cast<size_t>(c.layer)].size());
        timings_.crops = static_cast<int>(crops.size());
        timings_.prompts = static_cast<int>(total_prompts_);

        std::vector<MaskItem> all;
        SamPredictor predictor(model_);
        for (const amg::CropBox& crop : crops) {
            std::vector<MaskItem> items = process_crop(image, crop, predictor, embedding);
            all.insert(all.end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
        }

        // Remove duplicate masks between crops: smaller crops win
        const auto t0 = clock_type::now();
        all = amg::remove_duplicates_between_crops(std::move(all), crops.size(), o_.crop_nms_thresh);
        timings_.postprocess += since(t0);
        return all;
    }

  private:
    // _process_crop
    std::vector<MaskItem> process_crop(const Image& image, const amg::CropBox& crop, SamPredictor& predictor,
                                       const Tensor& embedding) {
        const int H = image.height, W = image.width;
        const amg::BoxXyxy& cb = crop.box;
        auto t0 = clock_type::now();
        const bool whole = cb[0] == 0 && cb[1] == 0 && cb[2] == W && cb[3] == H;
        if (whole && embedding.defined())
            predictor.set_embedding(embedding, H, W);
        else
            predictor.set_image(amg::crop_image(image, cb));
        timings_.encoder += since(t0);
        const ImageGeometry g = predictor.geometry();
        const SamConfig& config = model_.config();
        const MaskPostprocessor post(4 * config.embedding_size(), config.encoder.img_size, g.input_h, g.input_w,
                                     g.orig_h, g.orig_w);

        // Decode the crop's grid in batches; the masks that pass every filter wait as their
        // low-res logits (the rows `post` reads), not as full-size masks.
        const auto& grid = grids_[static_cast<size_t>(crop.layer)];
        std::vector<MaskItem> items;
        std::vector<std::vector<float>> lows;
        for (size_t start = 0; start < grid.size(); start += static_cast<size_t>(o_.points_per_batch)) {
            const size_t n = std::min(grid.size() - start, static_cast<size_t>(o_.points_per_batch));
            std::vector<amg::Point> points(n);
            for (size_t i = 0; i < n; ++i) points[i] = {grid[start + i][0] * g.orig_w, grid[start + i][1] * g.orig_h};
            process_batch(points, predictor, post, cb, {0, 0, W, H}, items, lows);
            done_prompts_ += static_cast<int64_t>(n);
            if (progress_) progress_(done_prompts_, total_prompts_);
        }

        // Remove duplicates within this crop (NMS on the boxes, by predicted IoU), encode the
        // masks that are left, then move boxes and points into the image frame
        t0 = clock_type::now();
        std::vector<float> scores;
        scores.reserve(items.size());
        for (const MaskItem& m : items) scores.push_back(m.iou);
        const std::vector<int> keep = amg::box_nms(amg::item_boxes(items), scores, o_.box_nms_thresh);
        items = amg::select(items, keep);
        encode_masks(items, lows, keep, post, cb, {0, 0, W, H});
        for (MaskItem& m : items) {
            m.box = amg::uncrop_box_xyxy(m.box, cb);
            m.point = amg::uncrop_point(m.point, cb);
            m.crop = cb;
        }
        timings_.postprocess += since(t0);
        return items;
    }

    // The RLE (image frame) of each kept item, from the low-res logits lows[keep[k]] (released).
    void encode_masks(std::vector<MaskItem>& items, std::vector<std::vector<float>>& lows, const std::vector<int>& keep,
                      const MaskPostprocessor& post, const amg::BoxXyxy& crop_box, const amg::BoxXyxy& orig_box) {
        const int ch = post.out_h(), cw = post.out_w();
        const double thr = model_.config().mask_threshold;
#pragma omp parallel
        {
            std::vector<float> band;
            std::vector<uint8_t> unused, mask(static_cast<size_t>(ch) * cw);
#pragma omp for schedule(dynamic)
            for (int64_t k = 0; k < static_cast<int64_t>(keep.size()); ++k) {
                std::vector<float>& low = lows[static_cast<size_t>(keep[static_cast<size_t>(k)])];
                const UpsampledMask u =
                    upsample_mask(post, low.data(), thr, o_.stability_score_offset, band, unused, mask.data());
                items[static_cast<size_t>(k)].stability = u.stability.score();
                items[static_cast<size_t>(k)].rle =
                    rle_encode_placed(mask.data(), ch, cw, crop_box[0], crop_box[1], orig_box[3], orig_box[2]);
                std::vector<float>().swap(low);
            }
        }
        lows.clear();
    }

    // _process_batch: the masks of `points` (crop pixels) that pass every filter, appended to `out`
    // with their box and point still in crop coordinates and no RLE yet; their low-res logits
    // (the rows the upsampling reads) are appended to `lows`.
    void process_batch(const std::vector<amg::Point>& points, const SamPredictor& predictor,
                       const MaskPostprocessor& post, const amg::BoxXyxy& crop_box, const amg::BoxXyxy& orig_box,
                       std::vector<MaskItem>& out, std::vector<std::vector<float>>& lows) {
        BatchPrompt bp;
        bp.batch = static_cast<int64_t>(points.size());
        bp.points_per_prompt = 1;
        bp.multimask_output = true;
        bp.point_labels.assign(points.size(), 1);
        for (const amg::Point& p : points) {
            bp.point_coords.push_back(static_cast<float>(p[0]));
            bp.point_coords.push_back(static_cast<float>(p[1]));
        }
        auto t0 = clock_type::now();
        const BatchPrediction r = predictor.predict_batch(bp, /*upsample=*/false);
        timings_.decoder += since(t0);

        // Filter by predicted IoU before any full-size work
        t0 = clock_type::now();
        const int64_t per = r.num_masks, side = r.low_res_logits.dim(-1);
        std::vector<int64_t> cand;  // (point, mask) indices passing the IoU filter
        for (int64_t i = 0; i < bp.batch * per; ++i)
            if (!(o_.pred_iou_thresh > 0.0) || r.iou_predictions[i] > static_cast<float>(o_.pred_iou_thresh))
                cand.push_back(i);
        timings_.masks_decoded += static_cast<int>(bp.batch * per);
        timings_.masks_upsampled += static_cast<int>(cand.size());

        // Upsample (band by band: the stability counts and the box, no mask kept), then filter by
        // stability and by crop edges
        const double thr = model_.config().mask_threshold;
        const int64_t low_floats = static_cast<int64_t>(post.low_rows_read()) * side;
        // Without the stability filter only the box is needed before NMS (the stability score of
        // the masks NMS keeps comes with their encoding); at threshold 0 it is found without
        // upsampling every pixel.
        const bool box_only = !(o_.stability_score_thresh > 0.0) && thr == 0.0;
        std::vector<MaskItem> kept(cand.size());
        std::vector<char> ok(cand.size(), 0);
#pragma omp parallel
        {
            std::vector<float> band;
            std::vector<uint8_t> band_mask;
#pragma omp for schedule(dynamic)
            for (int64_t j = 0; j < static_cast<int64_t>(cand.size()); ++j) {
                const int64_t i = cand[static_cast<size_t>(j)];
                const float* low = r.low_res_logits.data() + i * side * side;
                float stability = 0.0f;  // when not filtered by it: found with the survivors' masks
                amg::BoxXyxy box;
                if (box_only) {
                    box = post.box_above_zero(low);
                } else {
                    const UpsampledMask u =
                        upsample_mask(post, low, thr, o_.stability_score_offset, band, band_mask, nullptr);
                    stability = u.stability.score();
                    if (o_.stability_score_thresh > 0.0 &&
                        !(stability >= static_cast<float>(o_.stability_score_thresh)))
                        continue;
                    box = u.box;
                }
                if (amg::is_box_near_crop_edge(box, crop_box, orig_box)) continue;
                MaskItem& m = kept[static_cast<size_t>(j)];
                m.box = box;
                m.iou = r.iou_predictions[i];
                m.stability = stability;
                m.point = points[static_cast<size_t>(i / per)];
                ok[static_cast<size_t>(j)] = 1;
            }
        }
        for (size_t j = 0; j < cand.size(); ++j)
            if (ok[j]) {
                out.push_back(std::move(kept[j]));
                const float* low = r.low_res_logits.data() + cand[j] * side * side;
                lows.emplace_back(low, low + low_floats);
            }
        timings_.postprocess += since(t0);
    }

    const Sam& model_;
    const AmgOptions& o_;
    const std::vector<std::vector<std::array<double, 2>>>& grids_;
    const SamAutomaticMaskGenerator::Progress& progress_;
    AmgTimings& timings_;
    int64_t total_prompts_ = 0, done_prompts_ = 0;
};

// postprocess_small_regions: fills small holes and removes small islands of every mask; masks
// that changed are re-encoded and lose NMS ties to those that did not.
std::vector<MaskItem> postprocess_small_regions(std::vector<MaskItem> items, int H, int W, double min_area,
                                                double nms_thresh) {
    if (items.empty()) return items;
    std::vector<std::vector<uint8_t>> masks(items.size());
    std::vector<float> scores(items.size());
    std::vector<amg::BoxXyxyF> boxes(items.size());
#pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < static_cast<int64_t>(items.size()); ++i) {
        std::vector<uint8_t>& m = masks[static_cast<size_t>(i)];
        m = rle_decode(items[static_cast<size_t>(i)].rle);
        bool changed = amg::remove_small_regions(m.data(), H, W, min_area, amg::RegionMode::kHoles);
        changed = amg::remove_small_regions(m.data(), H, W, min_area, amg::RegionMode::kIslands) || changed;
        scores[static_cast<size_t>(i)] = changed ? 0.0f : 1.0f;
        const amg::BoxXyxy b = amg::mask_to_box(m.data(), H, W);
        boxes[static_cast<size_t>(i)] = {float(b[0]), float(b[1]), float(b[2]), float(b[3])};
    }
    std::vector<int> keep = amg::batched_nms(boxes, scores, std::vector<int64_t>(items.size(), 0), nms_thresh);
    for (int i : keep) {
        const size_t k = static_cast<size_t>(i);
        if (scores[k] != 0.0f) continue;
        items[k].rle = rle_encode(masks[k].data(), H, W);
        items[k].box = amg::mask_to_box(masks[k].data(), H, W);
    }
    return amg::select(items, keep);
}

}  // namespace

OutputMode output_mode_from_string(const std::string& s) {
    if (s == "binary_mask") return OutputMode::BinaryMask;
    if (s == "uncompressed_rle") return OutputMode::UncompressedRle;
    if (s == "coco_rle") return OutputMode::CocoRle;
    throw InputError("output_mode", "'" + s + "' is not one of binary_mask, uncompressed_rle, coco_rle");
}

SamAutomaticMaskGenerator::SamAutomaticMaskGenerator(Sam model, AmgOptions o)
    : model_(std::move(model)), options_(std::move(o)), grids_(amg::checked_point_grids(options_)) {}

std::vector<MaskRecord> SamAutomaticMaskGenerator::generate(const Image& image, const Progress& progress,
                                                            const Tensor& embedding) {
    const auto t_start = clock_type::now();
    ops::ThreadScope threads(model_.execution().threads);
    timings_ = {};
    if (image.width <= 0 || image.height <= 0) throw InputError("image", "empty image");

    std::vector<MaskItem> items = MaskGeneration(model_, options_, grids_, progress, timings_).generate_masks(image, embedding);

    const auto t0 = clock_type::now();
    if (options_.min_mask_region_area > 0)
        items = postprocess_small_regions(std::move(items), image.height, image.width, options_.min_mask_region_area,
                                          std::max(options_.box_nms_thresh, options_.crop_nms_thresh));
    std::vector<MaskRecord> records = amg::make_records(items, options_.output_mode);
    timings_.postprocess += since(t0);
    timings_.total = since(t_start);
    return records;
}

}  // namespace sam
