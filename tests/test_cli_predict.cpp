// `sam predict` end to end: runs the built CLI on the tiny model and checks its files.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "sam/image.h"
#include "sam/npy.h"
#include "test_util.h"

namespace sam {
namespace {

namespace fs = std::filesystem;

std::string model_args() {
    return " --checkpoint " + test::data_path("sam_tiny.pth") + " --config " + test::data_path("config.json");
}

fs::path fresh_dir(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("sam_cli_predict_" + name);
    fs::remove_all(d);
    return d;
}

int run_cli(const std::string& args, const fs::path& log) {
    const std::string cmd = std::string(SAM_CLI_PATH) + " predict" + args + " > " + log.string() + " 2>&1";
    return std::system(cmd.c_str());
}

// IoU of two 0/255 PNGs of the same size.
double png_iou(const std::string& a, const std::string& b) {
    Image x = read_image(a), y = read_image(b);
    EXPECT_EQ(x.width, y.width);
    EXPECT_EQ(x.height, y.height);
    int64_t inter = 0, uni = 0;
    for (size_t i = 0; i < x.rgb.size(); i += 3) {
        const bool p = x.rgb[i] > 127, q = y.rgb[i] > 127;
        inter += p && q;
        uni += p || q;
    }
    return uni == 0 ? 1.0 : static_cast<double>(inter) / static_cast<double>(uni);
}

TEST(CliPredict, PointMultimaskWithEmbeddingMatchesReference) {
    fs::path out = fresh_dir("point");
    const std::string args = model_args() + " --image " + test::data_path("images/truck.png") + " --embedding " +
                             test::data_path("embedding_truck.npy") + " --point 500,375 --multimask --output " +
                             out.string();
    ASSERT_EQ(run_cli(args, fs::temp_directory_path() / "sam_cli_predict_point.log"), 0);
    const std::string ref = test::data_path("predict/point_multimask/");
    for (int i = 0; i < 3; ++i) {
        const std::string name = "mask_" + std::to_string(i) + ".png";
        ASSERT_TRUE(fs::exists(out / name)) << name;
        EXPECT_GE(png_iou((out / name).string(), ref + name), 0.99) << name;
    }
    EXPECT_FALSE(fs::exists(out / "mask_3.png"));
    std::ifstream f(out / "scores.json");
    nlohmann::json scores = nlohmann::json::parse(f);
    Tensor ref_iou = load_npy(ref + "iou.npy");
    ASSERT_EQ(scores["iou_predictions"].size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(scores["iou_predictions"][static_cast<size_t>(i)].get<float>(), ref_iou[i], 1e-3f);
    Tensor low = load_npy((out / "low_res.npy").string());
    EXPECT_EQ(low.shape(), (Shape{3, 256, 256}));
    Image overlay = read_image((out / "overlay.png").string());
    EXPECT_EQ(overlay.width, 1800);
    EXPECT_EQ(overlay.height, 1200);
    fs::remove_all(out);
}

TEST(CliPredict, SeveralBoxesAreOneBatch) {
    fs::path out = fresh_dir("boxes");
    const std::string args = model_args() + " --image " + test::data_path("images/truck.png") + " --embedding " +
                             test::data_path("embedding_truck.npy") +
                             " --box 75,275,1725,850 --box 425,600,700,875 --box 1375,550,1650,800"
                             " --box 1240,675,1400,750 --output " + out.string();
    ASSERT_EQ(run_cli(args, fs::temp_directory_path() / "sam_cli_predict_boxes.log"), 0);
    for (int i = 0; i < 4; ++i) {
        const std::string name = "mask_" + std::to_string(i) + ".png";
        EXPECT_GE(png_iou((out / name).string(), test::data_path("predict/batched_boxes/" + name)), 0.99) << name;
    }
    EXPECT_EQ(load_npy((out / "low_res.npy").string()).shape(), (Shape{4, 256, 256}));
    fs::remove_all(out);
}

TEST(CliPredict, MaskInputFromAPreviousRunThroughTheEncoder) {
    // No --embedding: the encoder runs; the mask input is the best mask of point_multimask.
    fs::path out = fresh_dir("mask_input");
    const std::string args = model_args() + " --image " + test::data_path("images/truck.png") +
                             " --point 500,375,1 --point 1125,625,1 --mask-input " +
                             test::data_path("predict/point_multimask/low_res.npy") + " --mask-input-index 2 --output " +
                             out.string();
    ASSERT_EQ(run_cli(args, fs::temp_directory_path() / "sam_cli_predict_mask.log"), 0);
    EXPECT_GE(png_iou((out / "mask_0.png").string(), test::data_path("predict/point_with_mask_input/mask_0.png")), 0.99);
    fs::remove_all(out);
}

TEST(CliPredict, BadArgumentsFailWithAMessage) {
    fs::path out = fresh_dir("bad");
    const fs::path log = fs::temp_directory_path() / "sam_cli_predict_bad.log";
    const std::string base = model_args() + " --image " + test::data_path("images/synthetic.png") + " --embedding " +
                             test::data_path("embedding_synthetic.npy") + " --output " + out.string();
    EXPECT_NE(run_cli(base + " --box 100,10,50,60", log), 0);
    std::ifstream f(log);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("box"), std::string::npos) << text;
    EXPECT_NE(run_cli(base + " --point 10,abc", log), 0);
    EXPECT_NE(run_cli(base + " --point 10,10,5", log), 0);
    EXPECT_NE(run_cli(base + " --mask-input " + test::data_path("predict/point_multimask/low_res.npy"), log), 0);
    EXPECT_FALSE(fs::exists(out / "mask_0.png"));
    fs::remove_all(out);
}

// A hostile .npy: version 1.0 header `dict`, then `payload`.
std::string write_raw_npy(const std::string& name, const std::string& dict, const std::string& payload) {
    std::string header = dict;
    header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
    const std::string path = (fs::temp_directory_path() / name).string();
    std::ofstream out(path, std::ios::binary);
    out << std::string("\x93NUMPY\x01\x00", 8) << static_cast<char>(header.size() & 0xff)
        << static_cast<char>(header.size() >> 8) << header << payload;
    return path;
}

// An overflowing shape, a 0-d array and an empty 2-d array, as --embedding and as --mask-input:
// each run exits with status 1 and one error line naming the option and the file.
TEST(CliPredict, HostileNpyInputsFailWithAMessage) {
    const std::vector<std::pair<std::string, std::string>> files = {
        {write_raw_npy("sam_hostile_overflow.npy",
                       "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387905,), }", std::string(8, '\0')),
         "overflows 64 bits"},
        {write_raw_npy("sam_hostile_scalar.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                       std::string(8, '\0')),
         "shape ()"},
        {write_raw_npy("sam_hostile_empty.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 0), }", ""),
         "shape (0, 0)"},
    };
    fs::path out = fresh_dir("hostile");
    const fs::path log = fs::temp_directory_path() / "sam_cli_predict_hostile.log";
    const std::string base = model_args() + " --image " + test::data_path("images/synthetic.png") + " --point 10,10" +
                             " --output " + out.string();
    const std::string good_embedding = " --embedding " + test::data_path("embedding_synthetic.npy");
    for (const auto& [path, why] : files) {
        for (const std::string option : {"--embedding", "--mask-input"}) {
            const std::string args = option == "--embedding" ? base + " --embedding " + path
                                                             : base + good_embedding + " --mask-input " + path;
            const int status = run_cli(args, log);
            std::ifstream f(log);
            const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
            ASSERT_TRUE(WIFEXITED(status)) << option << " " << path << ": killed by a signal\n" << text;
            EXPECT_EQ(WEXITSTATUS(status), 1) << option << " " << path << "\n" << text;
            EXPECT_EQ(text.rfind("error: ", 0), 0u) << text;
            EXPECT_NE(text.find(path), std::string::npos) << text;
            EXPECT_NE(text.find(why), std::string::npos) << text;
            if (why != "overflows 64 bits") {
                EXPECT_NE(text.find(option), std::string::npos) << text;
            }
            EXPECT_EQ(text.find("Sanitizer"), std::string::npos) << text;
        }
        fs::remove(path);
    }
    EXPECT_FALSE(fs::exists(out / "mask_0.png"));
    fs::remove_all(out);
}

}  // namespace
}  // namespace sam
