// Automatic mask generator parity with the reference's records (fixture sam-tiny/amg), by the
// fixture's matching rule: >= 99% of reference records matched one-to-one by a record with
// mask IoU >= 0.98, equal point_coords and crop_box; <= 1% of ours unmatched.
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "amg_utils.h"
#include "mask_records.h"
#include "postprocess.h"
#include "sam/automatic_mask_generator.h"
#include "sam/image.h"
#include "sam/predictor.h"
#include "test_util.h"

// The plain upsampling loops below must round as the library does: one rounding per product
// and per sum (no fused multiply-add, even where -march=native offers one).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace sam {
namespace {

// Reads a file, gunzipping it when compressed (zlib reads plain files transparently).
std::string read_maybe_gz(const std::string& path) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) throw std::runtime_error("cannot open " + path);
    std::string out;
    char buf[1 << 16];
    int n;
    while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    gzclose(f);
    return out;
}

// A COCO RLE record: {"size": [h, w], "counts": "<compressed string>"}.
Rle parse_segmentation(const nlohmann::json& seg) {
    return rle_from_coco_string(seg["counts"].get<std::string>(), seg["size"][0].get<int>(), seg["size"][1].get<int>());
}

AmgOptions options_from(const nlohmann::json& params) {
    AmgOptions o;
    o.output_mode = OutputMode::CocoRle;
    for (const auto& [k, v] : params.items()) {
        if (k == "points_per_side") o.points_per_side = v.get<int>();
        else if (k == "points_per_batch") o.points_per_batch = v.get<int>();
        else if (k == "pred_iou_thresh") o.pred_iou_thresh = v.get<double>();
        else if (k == "stability_score_thresh") o.stability_score_thresh = v.get<double>();
        else if (k == "stability_score_offset") o.stability_score_offset = v.get<double>();
        else if (k == "box_nms_thresh") o.box_nms_thresh = v.get<double>();
        else if (k == "crop_n_layers") o.crop_n_layers = v.get<int>();
        else if (k == "crop_nms_thresh") o.crop_nms_thresh = v.get<double>();
        else if (k == "crop_overlap_ratio") o.crop_overlap_ratio = v.get<double>();
        else if (k == "crop_n_points_downscale_factor") o.crop_n_points_downscale_factor = v.get<int>();
        else if (k == "min_mask_region_area") o.min_mask_region_area = v.get<int>();
        else ADD_FAILURE() << "unknown parameter " << k;
    }
    return o;
}

Sam tiny_model() {
    LoadOptions lo;
    lo.config_path = test::data_path("config.json");
    return Sam::load(test::data_path("sam_tiny.pth"), lo);
}

void check_case(const std::string& file) {
    nlohmann::json ref = nlohmann::json::parse(read_maybe_gz(test::data_path("amg/" + file)));
    SamAutomaticMaskGenerator gen(tiny_model(), options_from(ref["params"]));
    std::vector<MaskRecord> ours = gen.generate(read_image(test::data_path("images/" + ref["image"].get<std::string>() + ".png")));

    // Our records by (point, crop box); each reference record takes the best unmatched one.
    auto key = [](double x, double y, std::array<int, 4> c) {
        char k[128];
        std::snprintf(k, sizeof(k), "%.4f,%.4f,%d,%d,%d,%d", x, y, c[0], c[1], c[2], c[3]);
        return std::string(k);
    };
    std::multimap<std::string, size_t> by_key;
    for (size_t i = 0; i < ours.size(); ++i) by_key.emplace(key(ours[i].point[0], ours[i].point[1], ours[i].crop_box), i);
    std::vector<bool> used(ours.size(), false);
    size_t matched = 0;
    double worst_iou_diff = 0.0;
    for (const auto& a : ref["annotations"]) {
        const auto& p = a["point_coords"][0];
        std::array<int, 4> crop = a["crop_box"].get<std::array<int, 4>>();
        Rle want = parse_segmentation(a["segmentation"]);
        auto [lo, hi] = by_key.equal_range(key(p[0].get<double>(), p[1].get<double>(), crop));
        // Among qualifying records (mask IoU >= 0.98) of the same point, the one whose predicted
        // IoU is closest: a point's three masks can be near-identical for the random model.
        size_t best = ours.size();
        double best_diff = 1e30;
        for (auto it = lo; it != hi; ++it) {
            if (used[it->second] || rle_iou(ours[it->second].rle, want) < 0.98) continue;
            double diff = std::fabs(ours[it->second].predicted_iou - a["predicted_iou"].get<double>());
            if (diff < best_diff) best = it->second, best_diff = diff;
        }
        if (best == ours.size()) continue;
        used[best] = true;
        ++matched;
        const MaskRecord& r = ours[best];
        worst_iou_diff = std::max(worst_iou_diff, std::fabs(r.predicted_iou - a["predicted_iou"].get<double>()));
        EXPECT_EQ(r.coco_counts.empty(), false);
        EXPECT_NEAR(static_cast<double>(r.area), a["area"].get<double>(), 0.02 * a["area"].get<double>() + 1);
    }
    const size_t n_ref = ref["annotations"].size();
    EXPECT_EQ(n_ref, ref["num_masks"].get<size_t>());
    EXPECT_GE(static_cast<double>(matched), 0.99 * static_cast<double>(n_ref)) << file << ": matched " << matched << " of " << n_ref;
    EXPECT_LE(static_cast<double>(ours.size() - matched), 0.01 * static_cast<double>(ours.size()) + 1e-9)
        << file << ": " << ours.size() - matched << " of our " << ours.size() << " records unmatched";
    EXPECT_LE(worst_iou_diff, 1e-3) << file;
    std::printf("%s: %zu reference records, %zu ours, %zu matched, worst predicted_iou diff %.2g\n", file.c_str(), n_ref,
                ours.size(), matched, worst_iou_diff);
}

TEST(AutomaticMaskGenerator, GroceriesGrid12MatchesReference) { check_case("groceries_grid12.json.gz"); }
TEST(AutomaticMaskGenerator, GroceriesDefaultNmsMatchesReference) { check_case("groceries_default_nms.json"); }
TEST(AutomaticMaskGenerator, DogCropsMatchesReference) { check_case("dog_crops.json"); }
TEST(AutomaticMaskGenerator, GroceriesMinRegionMatchesReference) { check_case("groceries_min_region.json"); }
TEST(AutomaticMaskGenerator, TruckSeedSettingsMatchesReference) { check_case("truck_seed_settings.json"); }

TEST(AutomaticMaskGenerator, NothingSurvivingIsAnEmptyListNotACrash) {
    AmgOptions o;
    o.points_per_side = 4;
    o.crop_n_layers = 1;
    o.pred_iou_thresh = 1e9;  // nothing passes
    SamAutomaticMaskGenerator gen(tiny_model(), o);
    EXPECT_TRUE(gen.generate(read_image(test::data_path("images/synthetic.png"))).empty());
}

TEST(AutomaticMaskGenerator, PrecomputedEmbeddingGivesTheSameRecords) {
    AmgOptions o;
    o.points_per_side = 6;
    o.pred_iou_thresh = 0.0;
    o.stability_score_thresh = 0.5;
    Sam sam = tiny_model();
    Image img = read_image(test::data_path("images/synthetic.png"));
    SamAutomaticMaskGenerator gen(sam, o);
    auto a = gen.generate(img);
    auto b = gen.generate(img, nullptr, sam.embed(img));
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].rle, b[i].rle);
}

TEST(AutomaticMaskGenerator, RejectsBadOptions) {
    AmgOptions o;
    o.points_per_batch = 0;
    EXPECT_THROW(SamAutomaticMaskGenerator(tiny_model(), o), InputError);
    o = AmgOptions();
    o.points_per_side = 0;  // and no grids
    EXPECT_THROW(SamAutomaticMaskGenerator(tiny_model(), o), InputError);
    o = AmgOptions();
    o.crop_overlap_ratio = 1.5;
    EXPECT_THROW(SamAutomaticMaskGenerator(tiny_model(), o), InputError);
    EXPECT_THROW(output_mode_from_string("png"), InputError);
}

// A progress callback that throws cancels the run after that batch; the generator still works.
TEST(AutomaticMaskGenerator, ThrowingFromProgressCancels) {
    AmgOptions o;
    o.points_per_side = 8;
    o.points_per_batch = 16;  // 4 batches
    o.pred_iou_thresh = 0.0;
    o.stability_score_thresh = 0.5;
    struct Cancelled {};
    Image img = read_image(test::data_path("images/synthetic.png"));
    SamAutomaticMaskGenerator gen(tiny_model(), o);
    int64_t calls = 0;
    EXPECT_THROW(gen.generate(img, [&](int64_t done, int64_t total) {
        ++calls;
        EXPECT_EQ(total, 64);
        if (done >= 16) throw Cancelled{};
    }), Cancelled);
    EXPECT_EQ(calls, 1);
    calls = 0;
    gen.generate(img, [&](int64_t, int64_t) { ++calls; });
    EXPECT_EQ(calls, 4);
}

TEST(AutomaticMaskGenerator, ExplicitPointGridsEqualTheBuiltGrid) {
    AmgOptions a;
    a.points_per_side = 4;
    a.pred_iou_thresh = 0.0;
    a.stability_score_thresh = 0.5;
    AmgOptions b = a;
    b.points_per_side = 0;
    for (double y : {0.125, 0.375, 0.625, 0.875})
        for (double x : {0.125, 0.375, 0.625, 0.875}) {
            if (b.point_grids.empty()) b.point_grids.emplace_back();
            b.point_grids[0].push_back({x, y});
        }
    Image img = read_image(test::data_path("images/synthetic.png"));
    auto ra = SamAutomaticMaskGenerator(tiny_model(), a).generate(img);
    auto rb = SamAutomaticMaskGenerator(tiny_model(), b).generate(img);
    ASSERT_EQ(ra.size(), rb.size());
    for (size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i].rle, rb[i].rle);
}

// Sam.postprocess_masks as plain loops over whole planes (resize to img_size, crop, resize to
// the output), in the library's order of operations: the oracle of MaskPostprocessor's kernels.
std::vector<float> plain_postprocess(const float* low, int low_size, int img_size, int input_h, int input_w, int out_h,
                                     int out_w) {
    auto resize = [](const std::vector<float>& in, int ih, int iw, int oh, int ow) {
        const BilinearTaps tx = bilinear_taps(iw, ow), ty = bilinear_taps(ih, oh);
        std::vector<float> a(static_cast<size_t>(ih) * ow), out(static_cast<size_t>(oh) * ow);
        for (int y = 0; y < ih; ++y)
            for (int x = 0; x < ow; ++x) {
                const size_t k = static_cast<size_t>(x);
                const float* row = in.data() + static_cast<size_t>(y) * iw;
                a[static_cast<size_t>(y) * ow + k] = tx.w0[k] * row[tx.i0[k]] + tx.w1[k] * row[tx.i1[k]];
            }
        for (int y = 0; y < oh; ++y)
            for (int x = 0; x < ow; ++x) {
                const size_t k = static_cast<size_t>(y);
                out[k * ow + static_cast<size_t>(x)] = ty.w0[k] * a[static_cast<size_t>(ty.i0[k]) * ow + x] +
                                                       ty.w1[k] * a[static_cast<size_t>(ty.i1[k]) * ow + x];
            }
        return out;
    };
    std::vector<float> in(low, low + static_cast<size_t>(low_size) * low_size);
    const std::vector<float> big = resize(in, low_size, low_size, img_size, img_size);
    std::vector<float> crop(static_cast<size_t>(input_h) * input_w);
    for (int y = 0; y < input_h; ++y)
        std::memcpy(crop.data() + static_cast<size_t>(y) * input_w, big.data() + static_cast<size_t>(y) * img_size,
                    sizeof(float) * static_cast<size_t>(input_w));
    return resize(crop, input_h, input_w, out_h, out_w);
}

// The vectorised upsampling (AVX-512, AVX2 or portable, whichever runs here; the IsaLevel tests
// run the others) gives the plain loops' bits, for whole masks, row bands and odd regions, up-
// and downsampling, and reads no low-res row beyond low_rows_read().
TEST(AutomaticMaskGenerator, UpsamplingKernelsEqualPlainLoops) {
    struct Geometry {
        int low, img, input_h, input_w, out_h, out_w;
    };
    const std::vector<Geometry> cases = {
        {256, 1024, 683, 1024, 1200, 1800},  // truck.jpg
        {256, 1024, 1024, 768, 1024, 768},   // portrait, no second resize
        {64, 256, 171, 256, 37, 55},         // strong downsampling (sources spread wider than a vector)
        {32, 128, 100, 128, 503, 641},       // odd sizes
        {16, 64, 64, 13, 64, 13},            // narrower than one vector
    };
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(-4.0f, 4.0f);
    for (const Geometry& g : cases) {
        std::vector<float> low(static_cast<size_t>(g.low) * g.low);
        for (float& v : low) v = u(rng);
        const MaskPostprocessor post(g.low, g.img, g.input_h, g.input_w, g.out_h, g.out_w);
        const std::vector<float> want = plain_postprocess(low.data(), g.low, g.img, g.input_h, g.input_w, g.out_h, g.out_w);
        // Rows below low_rows_read() may hold anything.
        std::vector<float> poisoned = low;
        for (size_t i = static_cast<size_t>(post.low_rows_read()) * g.low; i < poisoned.size(); ++i)
            poisoned[i] = std::nanf("");
        std::vector<float> got(want.size());
        post.logits(poisoned.data(), got.data());
        ASSERT_EQ(std::memcmp(got.data(), want.data(), sizeof(float) * want.size()), 0)
            << g.out_h << "x" << g.out_w << ": whole mask differs";
        std::vector<uint8_t> bin(want.size());
        post.binary(low.data(), bin.data(), 0.25f);
        for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(bin[i], want[i] > 0.25f ? 1 : 0) << i;
        for (const PixelRegion& r : {PixelRegion{0, std::min(32, g.out_h), 0, g.out_w},
                                     PixelRegion{g.out_h / 3, g.out_h / 3 + 1, 1, g.out_w},
                                     PixelRegion{g.out_h / 2, g.out_h, g.out_w / 3, g.out_w - g.out_w / 5}}) {
            std::vector<float> part(static_cast<size_t>(r.height()) * r.width());
            post.logits(low.data(), part.data(), r);
            for (int y = r.y0; y < r.y1; ++y)
                ASSERT_EQ(std::memcmp(part.data() + static_cast<size_t>(y - r.y0) * r.width(),
                                      want.data() + static_cast<size_t>(y) * g.out_w + r.x0,
                                      sizeof(float) * static_cast<size_t>(r.width())),
                          0)
                    << g.out_h << "x" << g.out_w << ", row " << y << " of region x " << r.x0 << ".." << r.x1;
        }
    }
}

// The box of the pixels > 0 found without upsampling every pixel equals the full mask's box:
// empty masks, single cells, compact blobs anywhere (edges, corners, the padding below the
// image), speckle, and NaN cells.
TEST(AutomaticMaskGenerator, BoxAboveZeroEqualsTheFullMasksBox) {
    struct Geometry {
        int low, img, input_h, input_w, out_h, out_w;
    };
    const std::vector<Geometry> cases = {{256, 1024, 683, 1024, 1200, 1800},
                                         {256, 1024, 1024, 768, 1024, 768},
                                         {64, 256, 171, 256, 37, 55},
                                         {32, 128, 100, 128, 503, 641}};
    std::mt19937 rng(11);
    for (const Geometry& g : cases) {
        const MaskPostprocessor post(g.low, g.img, g.input_h, g.input_w, g.out_h, g.out_w);
        std::uniform_int_distribution<int> cell(0, g.low - 1);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        std::vector<uint8_t> full(static_cast<size_t>(g.out_h) * g.out_w);
        for (int trial = 0; trial < 40; ++trial) {
            std::vector<float> low(static_cast<size_t>(g.low) * g.low, -1.0f);
            const int kind = trial % 5;
            if (kind == 1) {  // one cell
                low[static_cast<size_t>(cell(rng)) * g.low + cell(rng)] = 0.5f;
            } else if (kind == 2) {  // a blob
                const int y = cell(rng), x = cell(rng), h = 1 + cell(rng) / 4, w = 1 + cell(rng) / 4;
                for (int yy = y; yy < std::min(g.low, y + h); ++yy)
                    for (int xx = x; xx < std::min(g.low, x + w); ++xx) low[static_cast<size_t>(yy) * g.low + xx] = u(rng) + 1.0f;
            } else if (kind == 3) {  // speckle
                for (float& v : low) v = u(rng);
            } else if (kind == 4) {  // two far cells, some NaN
                low[static_cast<size_t>(cell(rng)) * g.low + cell(rng)] = 0.25f;
                low[static_cast<size_t>(cell(rng)) * g.low + cell(rng)] = 0.75f;
                low[static_cast<size_t>(cell(rng)) * g.low + cell(rng)] = std::nanf("");
            }
            post.binary(low.data(), full.data(), 0.0f);
            EXPECT_EQ(post.box_above_zero(low.data()), amg::mask_to_box(full.data(), g.out_h, g.out_w))
                << g.out_h << "x" << g.out_w << ", trial " << trial;
        }
    }
}

// The straightforward generator: every candidate upsampled whole, thresholded, its stability
// counted and its box found on the full mask, encoded, and only then NMS (as the reference's
// _process_batch and _process_crop do it).
std::vector<MaskRecord> straightforward_records(const Sam& sam, const AmgOptions& o, const Image& image) {
    const int H = image.height, W = image.width;
    const auto grids = amg::checked_point_grids(o);
    const auto crops = amg::generate_crop_boxes(H, W, o.crop_n_layers, o.crop_overlap_ratio);
    std::vector<amg::MaskItem> all;
    SamPredictor predictor(sam);
    for (const amg::CropBox& crop : crops) {
        const amg::BoxXyxy cb = crop.box;
        predictor.set_image(amg::crop_image(image, cb));
        const ImageGeometry g = predictor.geometry();
        const MaskPostprocessor post(4 * sam.config().embedding_size(), sam.config().encoder.img_size, g.input_h,
                                     g.input_w, g.orig_h, g.orig_w);
        const auto& grid = grids[static_cast<size_t>(crop.layer)];
        std::vector<amg::MaskItem> items;
        for (size_t start = 0; start < grid.size(); start += static_cast<size_t>(o.points_per_batch)) {
            const size_t n = std::min(grid.size() - start, static_cast<size_t>(o.points_per_batch));
            BatchPrompt bp;
            bp.batch = static_cast<int64_t>(n);
            bp.points_per_prompt = 1;
            bp.multimask_output = true;
            bp.point_labels.assign(n, 1);
            std::vector<amg::Point> points;
            for (size_t i = 0; i < n; ++i) {
                points.push_back({grid[start + i][0] * g.orig_w, grid[start + i][1] * g.orig_h});
                bp.point_coords.push_back(static_cast<float>(points.back()[0]));
                bp.point_coords.push_back(static_cast<float>(points.back()[1]));
            }
            const BatchPrediction r = predictor.predict_batch(bp, false);
            const int64_t side = r.low_res_logits.dim(-1);
            std::vector<float> logits(static_cast<size_t>(g.orig_h) * g.orig_w);
            std::vector<uint8_t> mask(logits.size());
            for (int64_t i = 0; i < bp.batch * r.num_masks; ++i) {
                if (o.pred_iou_thresh > 0.0 && !(r.iou_predictions[i] > static_cast<float>(o.pred_iou_thresh))) continue;
                post.logits(r.low_res_logits.data() + i * side * side, logits.data());
                amg::StabilityCounts st(sam.config().mask_threshold, o.stability_score_offset);
                for (size_t k = 0; k < logits.size(); ++k) {
                    st.add(logits[k]);
                    mask[k] = logits[k] > sam.config().mask_threshold ? 1 : 0;
                }
                if (o.stability_score_thresh > 0.0 && !(st.score() >= static_cast<float>(o.stability_score_thresh)))
                    continue;
                const amg::BoxXyxy box = amg::mask_to_box(mask.data(), g.orig_h, g.orig_w);
                if (amg::is_box_near_crop_edge(box, cb, {0, 0, W, H})) continue;
                amg::MaskItem m;
                m.rle = rle_encode_placed(mask.data(), g.orig_h, g.orig_w, cb[0], cb[1], H, W);
                m.box = box;
                m.iou = r.iou_predictions[i];
                m.stability = st.score();
                m.point = points[static_cast<size_t>(i / r.num_masks)];
                items.push_back(std::move(m));
            }
        }
        items = amg::remove_duplicates_in_crop(std::move(items), o.box_nms_thresh);
        for (amg::MaskItem& m : items) {
            m.box = amg::uncrop_box_xyxy(m.box, cb);
            m.point = amg::uncrop_point(m.point, cb);
            m.crop = cb;
        }
        all.insert(all.end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
    }
    all = amg::remove_duplicates_between_crops(std::move(all), crops.size(), o.crop_nms_thresh);
    return amg::make_records(all, o.output_mode);
}

void expect_same_records(const std::vector<MaskRecord>& got, const std::vector<MaskRecord>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        SCOPED_TRACE("record " + std::to_string(i));
        EXPECT_EQ(got[i].rle, want[i].rle);
        EXPECT_EQ(got[i].coco_counts, want[i].coco_counts);
        EXPECT_EQ(got[i].area, want[i].area);
        EXPECT_EQ(got[i].bbox, want[i].bbox);
        EXPECT_EQ(got[i].crop_box, want[i].crop_box);
        EXPECT_EQ(got[i].point, want[i].point);
        // Bitwise: the same float, not merely a close one.
        EXPECT_EQ(std::memcmp(&got[i].predicted_iou, &want[i].predicted_iou, sizeof(double)), 0);
        EXPECT_EQ(std::memcmp(&got[i].stability_score, &want[i].stability_score, sizeof(double)), 0);
        EXPECT_EQ(got[i].mask, want[i].mask);
    }
}

// Every filter off (as docs/BENCHMARKS.md's worst case: predicted IoU and stability thresholds
// 0, so every decoded mask is upsampled): the generator, which finds boxes band by band, runs
// NMS before encoding and encodes only the survivors, gives the straightforward path's records
// byte for byte. Also with two crop layers, and with the stability filter on.
TEST(AutomaticMaskGenerator, FiltersOffRecordsEqualTheStraightforwardPath) {
    const Sam sam = tiny_model();
    const Image img = read_image(test::data_path("images/dog.png"));
    AmgOptions o;
    o.points_per_side = 6;
    o.points_per_batch = 20;
    o.pred_iou_thresh = 0.0;
    o.stability_score_thresh = 0.0;
    SamAutomaticMaskGenerator gen(sam, o);
    const std::vector<MaskRecord> got = gen.generate(img);
    EXPECT_EQ(gen.last_timings().masks_upsampled, 6 * 6 * 3);
    expect_same_records(got, straightforward_records(sam, o, img));
    EXPECT_FALSE(got.empty());

    // Crops (each one encoded again: a small image keeps that quick) and the stability filter.
    const Image small = read_image(test::data_path("images/synthetic.png"));
    o.crop_n_layers = 1;
    o.points_per_side = 4;
    o.stability_score_thresh = 0.3;
    o.output_mode = OutputMode::CocoRle;
    const std::vector<MaskRecord> crops = SamAutomaticMaskGenerator(sam, o).generate(small);
    expect_same_records(crops, straightforward_records(sam, o, small));
    EXPECT_FALSE(crops.empty());
}

}  // namespace
}  // namespace sam
