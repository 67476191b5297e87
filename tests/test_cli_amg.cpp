// `sam amg` end to end: folder input with a bad file, both output layouts, metadata.csv, overlay;
// batch safety: never replacing what sam did not write, refusing before the model loads,
// resuming from markers. (Kills at random moments: test_cli_amg_kill.cpp.)
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// stderr of the last run, one file per test: ctest runs tests as parallel processes.
std::string stderr_path() {
    return ::testing::TempDir() + "/amg_stderr_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".txt";
}

// Exit code of `sam amg <args>` with the given checkpoint (-1 if it did not exit normally).
int run_with(const std::string& checkpoint, const std::string& args) {
    const std::string cmd = "timeout 120 " + std::string(SAM_CLI_PATH) + " amg -c " + checkpoint + " --config " +
                            test::data_path("config.json") + " " + args + " 2>" + stderr_path();
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int run(const std::string& args) { return run_with(test::data_path("sam_tiny.pth"), args); }

// A checkpoint that does not exist: a run refused before the model loads never notices.
int run_without_model(const std::string& args) { return run_with("/nonexistent/sam.pth", args); }

bool stderr_has(const std::string& text) { return read_text(stderr_path()).find(text) != std::string::npos; }

// One thread: runs compared byte for byte must compute the same (more threads may differ in the last bits).
const std::string kCheap = " --points-per-side 4 --pred-iou-thresh 0 --stability-score-thresh 0.5 --threads 1";

fs::path fresh_dir(const std::string& name) {
    fs::path d = fs::path(::testing::TempDir()) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

TEST(CliAmg, FolderWithBadFileWritesTheOthersAndFailsAtTheEnd) {
    fs::path in = fresh_dir("amg_in"), out = fs::path(::testing::TempDir()) / "amg_out";
    fs::remove_all(out);
    fs::copy_file(test::data_path("images/synthetic.png"), in / "synthetic.png");
    std::ofstream(in / "broken.jpg") << "this is not a jpeg";
    ASSERT_EQ(run("--input " + in.string() + " --output " + out.string() +
                  " --points-per-side 8 --pred-iou-thresh 0 --stability-score-thresh 0.5 --box-nms-thresh 1.0 --overlay"),
              1);  // broken.jpg (sorted first) failed; the batch went on and says so at the end
    EXPECT_TRUE(stderr_has("amg: 1 done, 0 skipped, 1 failed"));
    EXPECT_TRUE(stderr_has("failed: " + (in / "broken.jpg").string() + ": "));
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
    // By name hash (FNV-1a 64 of the file name, mod N): b.png goes to task 0, a.png and c.png to 1.
    ASSERT_EQ(run(common + " --shard 0/2"), 0);
    EXPECT_FALSE(fs::exists(out / "a.json"));
    EXPECT_TRUE(fs::exists(out / "b.json"));
    EXPECT_FALSE(fs::exists(out / "c.json"));
    ASSERT_EQ(run(common + " --shard 1/2"), 0);
    EXPECT_TRUE(fs::exists(out / "a.json"));
    EXPECT_TRUE(fs::exists(out / "c.json"));
    ASSERT_EQ(run(common + " --skip-existing"), 0);
    EXPECT_NE(read_text(stderr_path()).find("output exists, skipped"), std::string::npos);
    EXPECT_NE(run(common + " --shard 2/2"), 0);  // K must be < N
}

TEST(CliAmg, UnreadableOnlyInputFails) {
    fs::path in = fresh_dir("amg_bad");
    std::ofstream(in / "x.png") << "nope";
    EXPECT_NE(run("--input " + (in / "x.png").string() + " --output " + (in / "out").string()), 0);
}

// --- Finding 5: sam only ever replaces what it wrote ---

TEST(CliAmg, UserFileInTheImagesOutputFolderIsKept) {
    // mkdir -p out/dog; echo x > out/dog/notes.txt; sam amg -i dog.jpg -o out
    fs::path out = fresh_dir("amg_user_folder");
    fs::create_directories(out / "dog");
    std::ofstream(out / "dog" / "notes.txt") << "x\n";
    EXPECT_EQ(run("-i " + test::data_path("images/dog.jpg") + " -o " + out.string()), 1);
    EXPECT_TRUE(stderr_has((out / "dog").string() + " exists and was not written by sam amg")) << read_text(stderr_path());
    EXPECT_EQ(read_text((out / "dog" / "notes.txt").string()), "x\n");
}

TEST(CliAmg, UserFileAddedToAFolderSamWroteIsKept) {
    fs::path out = fresh_dir("amg_user_added");
    ASSERT_EQ(run("-i " + test::data_path("images/synthetic.png") + " -o " + out.string() + kCheap), 0);
    std::ofstream(out / "synthetic" / "notes.txt") << "x\n";
    EXPECT_EQ(run("-i " + test::data_path("images/synthetic.png") + " -o " + out.string() + kCheap), 1);
    EXPECT_TRUE(stderr_has((out / "synthetic" / "notes.txt").string() + " was not written by sam amg"));
    EXPECT_EQ(read_text((out / "synthetic" / "notes.txt").string()), "x\n");
}

TEST(CliAmg, SameStemInOneFolderIsRefusedBeforeTheModelLoads) {
    fs::path in = fresh_dir("amg_stems"), out = fresh_dir("amg_stems_out");
    fs::copy_file(test::data_path("images/dog.jpg"), in / "a.jpg");
    fs::copy_file(test::data_path("images/dog.png"), in / "a.png");
    for (const char* extra : {"", " --skip-existing", " --convert-to-rle"}) {
        EXPECT_EQ(run_without_model("-i " + in.string() + " -o " + out.string() + extra), 1) << extra;
        EXPECT_TRUE(stderr_has((in / "a.jpg").string() + " and " + (in / "a.png").string() + " would both write"))
            << read_text(stderr_path());
        EXPECT_FALSE(stderr_has("nonexistent")) << "the model was loaded";
    }
    EXPECT_TRUE(fs::is_empty(out));
}

TEST(CliAmg, OutputOfAnotherImageWithTheSameStemIsKept) {
    // a.jpg in one run, a.png from another folder into the same output later.
    fs::path in1 = fresh_dir("amg_stem_runs_1"), in2 = fresh_dir("amg_stem_runs_2"), out = fresh_dir("amg_stem_runs_out");
    fs::copy_file(test::data_path("images/synthetic.png"), in1 / "a.jpg");  // content decides the format
    fs::copy_file(test::data_path("images/synthetic.png"), in2 / "a.png");
    ASSERT_EQ(run("-i " + in1.string() + " -o " + out.string() + " --convert-to-rle" + kCheap), 0);
    const std::string first = read_text((out / "a.json").string());
    for (const char* extra : {"", " --skip-existing"}) {
        EXPECT_EQ(run_without_model("-i " + in2.string() + " -o " + out.string() + " --convert-to-rle" + extra), 1);
        EXPECT_TRUE(stderr_has("written for a.jpg, not for " + (in2 / "a.png").string())) << read_text(stderr_path());
    }
    EXPECT_EQ(read_text((out / "a.json").string()), first);
}

TEST(CliAmg, OutputFolderEqualToInputIsRefused) {
    // The user's own x.json beside x.jpg; -o equal to -i.
    fs::path in = fresh_dir("amg_same_dir");
    fs::copy_file(test::data_path("images/dog.jpg"), in / "x.jpg");
    std::ofstream(in / "x.json") << "{\"mine\": true}";
    EXPECT_EQ(run_without_model("-i " + in.string() + " -o " + in.string() + " --convert-to-rle"), 1);
    EXPECT_TRUE(stderr_has("is the input folder")) << read_text(stderr_path());
    EXPECT_EQ(read_text((in / "x.json").string()), "{\"mine\": true}");
    // The same folder under another name.
    fs::create_directory_symlink(in, fs::path(::testing::TempDir()) / "amg_same_dir_link");
    EXPECT_EQ(run_without_model("-i " + in.string() + " -o " + ::testing::TempDir() + "/amg_same_dir_link --convert-to-rle"), 1);
    EXPECT_TRUE(stderr_has("is the input folder"));
    fs::remove(fs::path(::testing::TempDir()) / "amg_same_dir_link");
    // One image whose output name is its own name.
    fs::copy_file(test::data_path("images/synthetic.png"), in / "y.json");
    EXPECT_EQ(run_without_model("-i " + (in / "y.json").string() + " -o " + in.string() + " --convert-to-rle"), 1);
    EXPECT_TRUE(stderr_has("is the input image itself")) << read_text(stderr_path());
    EXPECT_TRUE(read_image((in / "y.json").string()).width > 0);
    EXPECT_EQ(read_text((in / "x.json").string()), "{\"mine\": true}");
}

// --- Finding 6: completeness markers, stale temporaries ---

TEST(CliAmg, SkipExistingRedoesAnImageWithoutItsCompleteMarker) {
    fs::path out = fresh_dir("amg_marker");
    const std::string cmd = "-i " + test::data_path("images/synthetic.png") + " -o " + out.string() +
                            " --convert-to-rle --overlay --skip-existing" + kCheap;
    ASSERT_EQ(run(cmd), 0);
    const std::string json = read_text((out / "synthetic.json").string()),
                      overlay = read_text((out / "synthetic_overlay.png").string()),
                      marker = read_text((out / ".synthetic.sam-output").string());
    // The marker also records the image's mask count and seconds (for the run summary).
    const auto without_seconds = [](const std::string& text) {
        nlohmann::json j = nlohmann::json::parse(text);
        EXPECT_GT(j.value("seconds", 0.0), 0.0) << text;
        j.erase("seconds");
        return j;
    };
    nlohmann::json expected = {{"complete", true},
                               {"input", "synthetic.png"},
                               {"outputs", {"synthetic.json", "synthetic_overlay.png"}},
                               {"sam_amg_output", 1},
                               {"masks", nlohmann::json::parse(json).size()}};
    EXPECT_EQ(without_seconds(marker), expected);
    // A kill after the main output, before the overlay and the complete marker (or a power loss
    // that emptied the file): the marker says not complete.
    std::ofstream(out / "synthetic.json", std::ios::trunc);
    fs::remove(out / "synthetic_overlay.png");
    std::string started = marker;
    started.replace(started.find("true"), 4, "false");
    std::ofstream(out / ".synthetic.sam-output", std::ios::trunc) << started;
    ASSERT_EQ(run(cmd), 0);
    EXPECT_FALSE(stderr_has("skipped\n"));
    EXPECT_EQ(read_text((out / "synthetic.json").string()), json);
    EXPECT_EQ(read_text((out / "synthetic_overlay.png").string()), overlay);
    EXPECT_EQ(without_seconds(read_text((out / ".synthetic.sam-output").string())), expected);
    // Complete now: skipped. Without its marker the output is not sam's to replace.
    ASSERT_EQ(run(cmd), 0);
    EXPECT_TRUE(stderr_has("synthetic.png: output exists, skipped"));
    EXPECT_TRUE(stderr_has("amg: 0 done, 1 skipped, 0 failed"));
    fs::remove(out / ".synthetic.sam-output");
    EXPECT_EQ(run_without_model(cmd), 1);
    EXPECT_TRUE(stderr_has("synthetic.json exists and was not written by sam amg"));
    EXPECT_EQ(read_text((out / "synthetic.json").string()), json);
}

TEST(CliAmg, StaleTemporariesOfSamAreRemovedAtStart) {
    fs::path out = fresh_dir("amg_stale");
    fs::create_directories(out / ".synthetic.sam-tmp-Ab12Cd");  // a killed folder build
    std::ofstream(out / ".synthetic.sam-tmp-Ab12Cd" / "0.png") << "partial";
    std::ofstream(out / ".synthetic_overlay.png.sam-tmp-Zz99yY") << "partial";
    std::ofstream(out / "notes.sam-tmp-keep") << "the user's";
    ASSERT_EQ(run("-i " + test::data_path("images/synthetic.png") + " -o " + out.string() + " --overlay" + kCheap), 0);
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(out)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{".synthetic.sam-output", "notes.sam-tmp-keep", "synthetic",
                                               "synthetic_overlay.png"}));
}

// --- Finding 7: batch robustness ---

TEST(CliAmg, FifoInTheInputFolderIsSkippedNotRead) {
    fs::path in = fresh_dir("amg_fifo"), out = fresh_dir("amg_fifo_out");
    fs::copy_file(test::data_path("images/synthetic.png"), in / "b.png");
    ASSERT_EQ(::mkfifo((in / "a.jpg").c_str(), 0644), 0);
    EXPECT_EQ(run("-i " + in.string() + " -o " + out.string() + kCheap), 0);  // would hang reading a.jpg
    EXPECT_TRUE(stderr_has((in / "a.jpg").string() + ": not a regular file, skipped"));
    EXPECT_TRUE(stderr_has("amg: 1 done, 1 skipped, 0 failed"));
    EXPECT_TRUE(fs::exists(out / "b" / "metadata.csv"));
    EXPECT_EQ(run_without_model("-i " + (in / "a.jpg").string() + " -o " + out.string()), 1);  // named alone
    EXPECT_TRUE(stderr_has("is neither a regular file nor a folder")) << read_text(stderr_path());
}

TEST(CliAmg, EmptyFolderFailsBeforeTheModelLoads) {
    fs::path in = fresh_dir("amg_empty");
    EXPECT_EQ(run_without_model("-i " + in.string() + " -o " + (in / "out").string()), 1);
    EXPECT_TRUE(stderr_has("error: no images in " + in.string())) << read_text(stderr_path());
    EXPECT_FALSE(stderr_has("nonexistent"));
}

TEST(CliAmg, UnwritableOutputFailsBeforeTheModelLoads) {
    fs::path d = fresh_dir("amg_unwritable");
    std::ofstream(d / "file") << "x";
    EXPECT_EQ(run_without_model("-i " + test::data_path("images/dog.jpg") + " -o " + (d / "file").string()), 1);
    EXPECT_TRUE(stderr_has("--output " + (d / "file").string() + ": cannot create this folder")) << read_text(stderr_path());
    EXPECT_EQ(run_without_model("-i " + test::data_path("images/dog.jpg") + " -o " + (d / "file" / "sub").string()), 1);
    EXPECT_TRUE(stderr_has("cannot create this folder"));
    EXPECT_FALSE(stderr_has("nonexistent"));
    if (::geteuid() != 0) {  // root writes anywhere
        fs::create_directories(d / "ro");
        fs::permissions(d / "ro", fs::perms::owner_read | fs::perms::owner_exec);
        EXPECT_EQ(run_without_model("-i " + test::data_path("images/dog.jpg") + " -o " + (d / "ro").string()), 1);
        EXPECT_TRUE(stderr_has("cannot write there"));
        fs::permissions(d / "ro", fs::perms::owner_all);
    }
}

}  // namespace
}  // namespace sam
