// `sam amg` end to end: folder input with a bad file, both output layouts, metadata.csv, overlay.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sam/image.h"
#include "sam/rle.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace sam {
namespace {

// stderr of the last run, one file per test: ctest runs tests as parallel processes.
std::string stderr_path() {
    return ::testing::TempDir() + "/amg_stderr_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".txt";
}

int run(const std::string& args) {
    const std::string cmd = std::string(SAM_CLI_PATH) + " amg -c " + test::data_path("sam_tiny.pth") + " --config " +
                            test::data_path("config.json") + " " + args + " 2>" + stderr_path();
    return std::system(cmd.c_str());
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

fs::path fresh_dir(const std::string& name) {
    fs::path d = fs::path(::testing::TempDir()) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

TEST(CliAmg, FolderWithBadFileWritesMaskFoldersAndMetadata) {
    fs::path in = fresh_dir("amg_in"), out = fs::path(::testing::TempDir()) / "amg_out";
    fs::remove_all(out);
    fs::copy_file(test::data_path("images/synthetic.png"), in / "synthetic.png");
    std::ofstream(in / "broken.jpg") << "this is not a jpeg";
    ASSERT_EQ(run("--input " + in.string() + " --output " + out.string() +
                  " --points-per-side 8 --pred-iou-thresh 0 --stability-score-thresh 0.5 --box-nms-thresh 1.0 --overlay"),
              0);
    EXPECT_NE(read_text(stderr_path()).find("broken.jpg"), std::string::npos);
    const std::string csv = read_text((out / "synthetic" / "metadata.csv").string());
    const std::string header =
        "id,area,bbox_x0,bbox_y0,bbox_w,bbox_h,point_input_x,point_input_y,predicted_iou,stability_score,"
        "crop_box_x0,crop_box_y0,crop_box_w,crop_box_h";
    ASSERT_EQ(csv.substr(0, header.size()), header);
    std::stringstream rows(csv);
    std::string line;
    std::getline(rows, line);
    int n = 0;
    while (std::getline(rows, line)) {
        std::stringstream fields(line);
        std::vector<std::string> f;
        std::string x;
        while (std::getline(fields, x, ',')) f.push_back(x);
        ASSERT_EQ(f.size(), 14u) << line;
        EXPECT_EQ(f[0], std::to_string(n));
        // The mask PNG exists, has the image's size and as many set pixels as the area column.
        Image m = read_image((out / "synthetic" / (std::to_string(n) + ".png")).string());
        EXPECT_EQ(m.width, 301);
        EXPECT_EQ(m.height, 173);
        int64_t area = 0;
        for (size_t p = 0; p < m.rgb.size(); p += 3) area += m.rgb[p] == 255;
        EXPECT_EQ(std::to_string(area), f[1]);
        EXPECT_EQ(f[10] + f[11] + f[12] + f[13], "00301173");  // crop box = whole image
        ++n;
    }
    EXPECT_GT(n, 0);
    EXPECT_TRUE(fs::exists(out / "synthetic_overlay.png"));
    EXPECT_FALSE(fs::exists(out / "broken"));
}

TEST(CliAmg, ConvertToRleWritesCocoRecords) {
    fs::path out = fresh_dir("amg_rle");
    ASSERT_EQ(run("--input " + test::data_path("images/synthetic.png") + " --output " + out.string() +
                  " --convert-to-rle --points-per-side 8 --pred-iou-thresh 0 --stability-score-thresh 0.5"),
              0);
    nlohmann::json recs = nlohmann::json::parse(read_text((out / "synthetic.json").string()));
    ASSERT_TRUE(recs.is_array());
    ASSERT_GT(recs.size(), 0u);
    for (const auto& r : recs) {
        for (const char* k : {"segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box"})
            EXPECT_TRUE(r.contains(k)) << k;
        Rle rle = rle_from_coco_string(r["segmentation"]["counts"].get<std::string>(), 173, 301);
        EXPECT_EQ(rle_area(rle), r["area"].get<int64_t>());
    }
}

TEST(CliAmg, ShardsSplitAFolderAndSkipExistingResumes) {
    fs::path in = fresh_dir("amg_shard_in"), out = fresh_dir("amg_shard_out");
    for (const char* name : {"a.png", "b.png", "c.png"}) fs::copy_file(test::data_path("images/synthetic.png"), in / name);
    const std::string common = " --input " + in.string() + " --output " + out.string() +
                               " --convert-to-rle --points-per-side 4 --pred-iou-thresh 0 --stability-score-thresh 0.5";
    ASSERT_EQ(run(common + " --shard 0/2"), 0);
    EXPECT_TRUE(fs::exists(out / "a.json"));
    EXPECT_FALSE(fs::exists(out / "b.json"));
    EXPECT_TRUE(fs::exists(out / "c.json"));
    ASSERT_EQ(run(common + " --shard 1/2"), 0);
    EXPECT_TRUE(fs::exists(out / "b.json"));
    ASSERT_EQ(run(common + " --skip-existing"), 0);
    EXPECT_NE(read_text(stderr_path()).find("output exists, skipped"), std::string::npos);
    EXPECT_NE(run(common + " --shard 2/2"), 0);  // K must be < N
}

TEST(CliAmg, UnreadableOnlyInputFails) {
    fs::path in = fresh_dir("amg_bad");
    std::ofstream(in / "x.png") << "nope";
    EXPECT_NE(run("--input " + (in / "x.png").string() + " --output " + (in / "out").string()), 0);
}

}  // namespace
}  // namespace sam
