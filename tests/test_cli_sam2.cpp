// The CLI with a SAM 2 checkpoint: `sam embed`, `sam predict` (from the image and from the
// embedding files) and `sam amg` on the reduced SAM 2.1 fixture, checked against the official
// package's outputs.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "sam/npy.h"
#include "sam/rle.h"
#include "test_util.h"

namespace sam {
namespace {

namespace fs = std::filesystem;

std::string model_args() {
    return " --checkpoint " + test::data_path("sam2/sam2_reduced.pt") + " --config " + test::data_path("sam2/config.json");
}

fs::path fresh_dir(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("sam_cli_sam2_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(d);
    return d;
}

int run_cli(const std::string& args, const fs::path& log) {
    const std::string cmd = std::string(SAM_CLI_PATH) + args + " > " + log.string() + " 2>&1";
    return std::system(cmd.c_str());
}

std::string log_of(const fs::path& log) {
    std::ifstream in(log);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(CliSam2, EmbedThenPredictMatchesReference) {
    const fs::path dir = fresh_dir("predict");
    fs::create_directories(dir);
    const std::string image = test::data_path("images/truck.png");
    const fs::path emb = dir / "truck.npy", log = dir / "log.txt";
    ASSERT_EQ(run_cli(" embed" + model_args() + " --image " + image + " --output " + emb.string(), log), 0) << log_of(log);
    EXPECT_TRUE(test::close_to_reference(load_npy(emb.string()), load_npy(test::data_path("sam2/image_embed_truck.npy"))));
    EXPECT_TRUE(test::close_to_reference(load_npy(emb.string() + ".high_res_0.npy"),
                                         load_npy(test::data_path("sam2/high_res_feat0_truck.npy"))));
    // The fixture's points + box case (1800x1200 pixels), from the saved features.
    const fs::path out = dir / "out";
    ASSERT_EQ(run_cli(" predict" + model_args() + " --image " + image + " --embedding " + emb.string() +
                          " --point 720,600,1 --point 1440,360,0 --box 360,120,1620,960 --multimask --output " +
                          out.string(),
                      log),
              0)
        << log_of(log);
    std::ifstream in(out / "scores.json");
    const auto scores = nlohmann::json::parse(in)["iou_predictions"].get<std::vector<float>>();
    Tensor want = load_npy(test::data_path("sam2/predict/points_box/iou.npy"));
    ASSERT_EQ(static_cast<int64_t>(scores.size()), want.numel());
    for (size_t i = 0; i < scores.size(); ++i) EXPECT_NEAR(scores[i], want[static_cast<int64_t>(i)], 1e-5) << i;
    EXPECT_TRUE(test::close_to_reference(load_npy((out / "low_res.npy").string()),
                                         load_npy(test::data_path("sam2/predict/points_box/low_res.npy")), 1e-4f));
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(fs::exists(out / ("mask_" + std::to_string(i) + ".png"))) << i;
}

TEST(CliSam2, AmgWritesTheReferenceRecords) {
    const fs::path dir = fresh_dir("amg");
    const fs::path log = fs::temp_directory_path() / ("sam_cli_sam2_amg_" + std::to_string(::getpid()) + ".log");
    ASSERT_EQ(run_cli(" amg" + model_args() + " --input " + test::data_path("images/synthetic.png") + " --output " +
                          dir.string() +
                          " --convert-to-rle --points-per-side 4 --pred-iou-thresh 0.6 --stability-score-thresh 0.15"
                          " --stability-score-offset 0.2 --box-nms-thresh 1.0 --use-m2m",
                      log),
              0)
        << log_of(log);
    std::ifstream in(dir / "synthetic.json");
    const auto ours = nlohmann::json::parse(in);
    std::ifstream rin(test::data_path("sam2/amg/synthetic_m2m.json"));
    const auto ref = nlohmann::json::parse(rin)["records"];
    // Every reference record matched one-to-one by one of ours with the same mask up to a few
    // pixels (IoU >= 0.999) and the same predicted IoU within 1e-4: a full-size pixel whose
    // logit is within float rounding of the threshold may fall either way (the decoder's sums
    // run in another order than torch's).
    ASSERT_EQ(ours.size(), ref.size());
    auto rle_of = [](const nlohmann::json& r) {
        const auto& seg = r["segmentation"];
        return rle_from_coco_string(seg["counts"].get<std::string>(), seg["size"][0].get<int>(), seg["size"][1].get<int>());
    };
    std::vector<bool> used(ours.size(), false);
    for (const auto& want : ref) {
        bool found = false;
        for (size_t i = 0; i < ours.size() && !found; ++i) {
            if (used[i] || std::fabs(ours[i]["predicted_iou"].get<double>() - want["predicted_iou"].get<double>()) > 1e-4 ||
                rle_iou(rle_of(ours[i]), rle_of(want)) < 0.999)
                continue;
            used[i] = found = true;
        }
        EXPECT_TRUE(found) << "no record matches the reference's at " << want["point_coords"].dump();
    }
    fs::remove(log);
}

TEST(CliSam2, SamOptionsAreRejectedForSam) {
    const fs::path dir = fresh_dir("reject");
    const fs::path log = fs::temp_directory_path() / ("sam_cli_sam2_reject_" + std::to_string(::getpid()) + ".log");
    const std::string args = " amg --checkpoint " + test::data_path("sam_tiny.pth") + " --config " +
                             test::data_path("config.json") + " --input " + test::data_path("images/synthetic.png") +
                             " --output " + dir.string() + " --use-m2m";
    EXPECT_NE(run_cli(args, log), 0);
    EXPECT_NE(log_of(log).find("--use-m2m"), std::string::npos) << log_of(log);
    fs::remove(log);
}

}  // namespace
}  // namespace sam
