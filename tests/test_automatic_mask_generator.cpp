// Automatic mask generator parity with the reference's records (fixture sam-tiny/amg), by the
// fixture's matching rule: >= 99% of reference records matched one-to-one by a record with
// mask IoU >= 0.98, equal point_coords and crop_box; <= 1% of ours unmatched.
#include <zlib.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "sam/automatic_mask_generator.h"
#include "sam/image.h"
#include "test_util.h"

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

}  // namespace
}  // namespace sam
