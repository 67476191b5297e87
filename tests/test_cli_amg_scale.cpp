// `sam amg` at data-set scale: tar shards read in place, --input-list, sharding by name hash,
// the run summary (--summarize) with failures and missing images. (The same on a real Slurm
// cluster, with faults: scripts/slurm/test-slurm.sh, ctest Slurm.ArrayJobWithFaults.)
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli/amg_inputs.h"
#include "sam/error.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace sam {
namespace {

std::string read_text(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string stderr_path() {
    return ::testing::TempDir() + "/amg_scale_stderr_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() +
           ".txt";
}

int sh(const std::string& cmd) {
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// `sam amg` with the test model on one thread (outputs compared byte for byte), RLE outputs.
int amg(const std::string& args) {
    return sh("timeout 120 " + std::string(SAM_CLI_PATH) + " amg -c " + test::data_path("sam_tiny.pth") + " --config " +
              test::data_path("config.json") +
              " --convert-to-rle --points-per-side 4 --pred-iou-thresh 0 --stability-score-thresh 0.5 --threads 1 " +
              args + " 2>" + stderr_path());
}

bool stderr_has(const std::string& text) { return read_text(stderr_path()).find(text) != std::string::npos; }

fs::path fresh_dir(const std::string& name) {
    fs::path d = fs::path(::testing::TempDir()) / ("amg_scale_" + name);
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

// Three images (copies of the synthetic one under other names; a.png differs: dog.jpg).
fs::path three_images(const std::string& name) {
    fs::path in = fresh_dir(name);
    fs::copy_file(test::data_path("images/dog.jpg"), in / "a.jpg");
    fs::copy_file(test::data_path("images/synthetic.png"), in / "b.png");
    fs::copy_file(test::data_path("images/synthetic.png"), in / "c.png");
    return in;
}

// The non-hidden files of a folder and their bytes.
std::map<std::string, std::string> outputs_of(const fs::path& dir) {
    std::map<std::string, std::string> m;
    for (const auto& e : fs::directory_iterator(dir))
        if (!e.path().filename().string().starts_with(".")) m[e.path().filename().string()] = read_text(e.path());
    return m;
}

TEST(AmgInputs, Fnv1aAndShardsByNameHash) {
    using namespace sam::cli;
    EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);  // the published FNV-1a 64 test vectors
    EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
    EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ULL);
    // A file is placed by its file name (not its folder); a tar member by its tar's file name.
    const InputImage file{"/data/x/b.png", "", "b.png"}, member{"/data/s1.tar", "dir/b.png", "b.png"};
    EXPECT_EQ(file.shard_key(), "b.png");
    EXPECT_EQ(member.shard_key(), "s1.tar");
    EXPECT_TRUE(in_shard(file, fnv1a64("b.png") % 7, 7));
    EXPECT_TRUE(in_shard(member, fnv1a64("s1.tar") % 7, 7));
    // Stable as a list grows: each name's task depends on the name and N only.
    for (size_t n : {1, 2, 5}) {
        size_t hits = 0;
        for (size_t k = 0; k < n; ++k) hits += in_shard(file, k, n);
        EXPECT_EQ(hits, 1u);
    }
}

TEST(AmgInputs, TarNamesAndImageMembers) {
    using namespace sam::cli;
    for (const char* n : {"s.tar", "a/S.TAR", "s.tar.gz", "s.tgz", "s.tar.zst", "s.tar.xz", "s.tar.bz2"}) EXPECT_TRUE(is_tar_name(n)) << n;
    for (const char* n : {".tar", "s.tar.txt", "s.png", "tar"}) EXPECT_FALSE(is_tar_name(n)) << n;
    for (const char* n : {"a.jpg", "d/a.JPEG", "a.png"}) EXPECT_TRUE(is_image_member(n)) << n;
    for (const char* n : {"a.json", "d/.a.jpg", "a.jpg/", "a"}) EXPECT_FALSE(is_image_member(n)) << n;
}

TEST(CliAmgScale, TarShardsGiveTheFolderOutputs) {
    const fs::path in = three_images("tar_in"), dir = fresh_dir("tar");
    ASSERT_EQ(amg("--input " + in.string() + " --output " + (dir / "ref").string()), 0);
    // SA-1B's layout: images and their .json annotations side by side in a tar, here in a folder.
    std::ofstream(in / "b.json") << "{}";
    ASSERT_EQ(sh("tar -cf " + (dir / "s0.tar").string() + " -C " + in.string() + " ./a.jpg ./b.json ./b.png"), 0);
    ASSERT_EQ(sh("tar -czf " + (dir / "s1.tar.gz").string() + " -C " + in.string() + " c.png"), 0);
    ASSERT_EQ(amg("--input " + (dir / "s0.tar").string() + " --output " + (dir / "out").string()), 0);
    EXPECT_TRUE(stderr_has("1 tar members that are not images skipped"));
    EXPECT_TRUE(stderr_has((dir / "s0.tar").string() + ":a.jpg: "));
    ASSERT_EQ(amg("--input " + (dir / "s1.tar.gz").string() + " --output " + (dir / "out").string()), 0);
    EXPECT_EQ(outputs_of(dir / "out"), outputs_of(dir / "ref"));
    EXPECT_EQ(outputs_of(dir / "ref").size(), 3u);
    // A folder of tar shards: both read; all complete already.
    fs::create_directories(dir / "shards");
    fs::rename(dir / "s0.tar", dir / "shards" / "s0.tar");
    fs::rename(dir / "s1.tar.gz", dir / "shards" / "s1.tar.gz");
    ASSERT_EQ(amg("--input " + (dir / "shards").string() + " --output " + (dir / "out").string() + " --skip-existing"), 0);
    EXPECT_TRUE(stderr_has("amg: 0 done, 3 skipped, 0 failed"));
}

TEST(CliAmgScale, OutputFolderPerShard) {
    const fs::path in = three_images("per_shard_in"), dir = fresh_dir("per_shard");
    // Two shards holding an image of the same name: one output folder would refuse them.
    ASSERT_EQ(sh("tar -cf " + (dir / "s0.tar").string() + " -C " + in.string() + " a.jpg b.png"), 0);
    ASSERT_EQ(sh("tar -czf " + (dir / "s1.tar.gz").string() + " -C " + in.string() + " b.png c.png"), 0);
    std::ofstream(dir / "list.txt") << (dir / "s0.tar").string() << "\n" << (dir / "s1.tar.gz").string() << "\n";
    const std::string common = "--input-list " + (dir / "list.txt").string() + " --output " + (dir / "out").string();
    EXPECT_EQ(amg(common), 1);
    EXPECT_TRUE(stderr_has("would both write"));
    ASSERT_EQ(amg(common + " --output-folder-per-shard"), 0);
    EXPECT_EQ(outputs_of(dir / "out" / "s0").size(), 2u);
    EXPECT_EQ(read_text(dir / "out" / "s1" / "b.json"), read_text(dir / "out" / "s0" / "b.json"));
    EXPECT_TRUE(fs::exists(dir / "out" / "s1" / "c.json"));
    ASSERT_EQ(amg(common + " --output-folder-per-shard --summarize " + (dir / "summary.json").string()), 0);
    const nlohmann::json summary = nlohmann::json::parse(read_text(dir / "summary.json"));
    std::set<std::string> outputs;
    for (const auto& e : summary["index"]) outputs.insert(e["output"].get<std::string>());
    EXPECT_EQ(outputs, (std::set<std::string>{"s0/a.json", "s0/b.json", "s1/b.json", "s1/c.json"}));
}

TEST(CliAmgScale, DamagedTarFailsWithAMessage) {
    const fs::path in = three_images("bad_tar_in"), dir = fresh_dir("bad_tar");
    ASSERT_EQ(sh("tar -cf " + (dir / "s.tar").string() + " -C " + in.string() + " a.jpg b.png c.png"), 0);
    // Cut inside the second member: the first is segmented, the damage is reported naming the
    // shard, and the run exits 1.
    const auto size = fs::file_size(dir / "s.tar");
    fs::resize_file(dir / "s.tar", fs::file_size(in / "a.jpg") + 2048);
    ASSERT_LT(fs::file_size(dir / "s.tar"), size);
    EXPECT_EQ(amg("--input " + (dir / "s.tar").string() + " --output " + (dir / "out").string()), 1);
    EXPECT_TRUE(stderr_has("error: " + (dir / "s.tar").string() + ": damaged tar shard"));
    EXPECT_TRUE(fs::exists(dir / "out" / "a.json"));
    EXPECT_EQ(amg("--input " + (dir / "s.tar").string() + " --output " + (dir / "out").string() + " --summarize " +
                  (dir / "summary.json").string()),
              1);
    EXPECT_TRUE(stderr_has("failed: " + (dir / "s.tar").string() + ": damaged tar shard"));
    std::ofstream(dir / "not.tar") << "this is not a tar";
    EXPECT_EQ(amg("--input " + (dir / "not.tar").string() + " --output " + (dir / "out2").string()), 1);
    EXPECT_TRUE(stderr_has("not.tar"));
    EXPECT_FALSE(fs::exists(dir / "out2" / "not.json"));
}

TEST(CliAmgScale, InputListOfImagesAndShards) {
    const fs::path in = three_images("list_in"), dir = fresh_dir("list");
    ASSERT_EQ(sh("tar -cf " + (dir / "s.tar").string() + " -C " + in.string() + " c.png"), 0);
    std::ofstream(dir / "list.txt") << "# images and a shard\n" << (in / "a.jpg").string() << "\n\n"
                                    << (in / "b.png").string() << "\r\n" << (dir / "s.tar").string() << "\n";
    ASSERT_EQ(amg("--input-list " + (dir / "list.txt").string() + " --output " + (dir / "out").string()), 0);
    EXPECT_TRUE(stderr_has("amg: 3 done, 0 skipped, 0 failed"));
    // A line naming nothing: refused before the model loads, naming the list and the line.
    std::ofstream(dir / "bad.txt") << (in / "a.jpg").string() << "\n" << (dir / "missing.png").string() << "\n";
    EXPECT_EQ(amg("--input-list " + (dir / "bad.txt").string() + " --output " + (dir / "out3").string()), 1);
    EXPECT_TRUE(stderr_has("--input-list " + (dir / "bad.txt").string() + " line 2"));
    EXPECT_TRUE(stderr_has("missing.png"));
    // --input and --input-list together are refused.
    EXPECT_NE(amg("--input " + in.string() + " --input-list " + (dir / "list.txt").string() + " --output " +
                  (dir / "out4").string()),
              0);
}

TEST(CliAmgScale, ShardsPartitionTheImagesAndStayWhenTheListGrows) {
    const fs::path in = three_images("grow_in"), dir = fresh_dir("grow");
    std::ofstream(dir / "list.txt") << (in / "a.jpg").string() << "\n" << (in / "b.png").string() << "\n";
    ASSERT_EQ(amg("--input-list " + (dir / "list.txt").string() + " --output " + (dir / "out").string() + " --shard 1/2"), 0);
    // fnv1a64("a.jpg") % 2 == 1 and fnv1a64("b.png") % 2 == 0.
    EXPECT_TRUE(fs::exists(dir / "out" / "a.json"));
    EXPECT_FALSE(fs::exists(dir / "out" / "b.json"));
    // The list grows (c.png, hashing to 1): task 1 keeps a.jpg, adds c.png; task 0 still has b.png only.
    std::ofstream(dir / "list.txt", std::ios::app) << (in / "c.png").string() << "\n";
    ASSERT_EQ(amg("--input-list " + (dir / "list.txt").string() + " --output " + (dir / "out").string() +
                  " --shard 1/2 --skip-existing"),
              0);
    EXPECT_TRUE(stderr_has("a.jpg: output exists, skipped"));
    EXPECT_TRUE(stderr_has("amg: 1 done, 1 skipped, 0 failed"));
    ASSERT_EQ(amg("--input-list " + (dir / "list.txt").string() + " --output " + (dir / "out").string() +
                  " --shard 0/2 --skip-existing"),
              0);
    EXPECT_TRUE(stderr_has("amg: 1 done, 0 skipped, 0 failed"));
    EXPECT_EQ(outputs_of(dir / "out").size(), 3u);
}

TEST(CliAmgScale, SummaryListsFailuresAndMissingAndExitsNonZero) {
    const fs::path in = three_images("sum_in"), dir = fresh_dir("sum");
    std::ofstream(in / "broken.png") << "this is not a png";
    const std::string common = "--input " + in.string() + " --output " + (dir / "out").string();
    const fs::path summary = dir / "summary.json";
    // Only task 1 of 2 ran (a.jpg, c.png; broken.png hashes to 1 as well and fails).
    EXPECT_EQ(amg(common + " --shard 1/2"), 1);  // a job task with a failure exits non-zero
    EXPECT_EQ(amg(common + " --summarize " + summary.string()), 1);
    EXPECT_TRUE(stderr_has("summary: 4 images, 2 done, 1 failed, 1 missing"));
    nlohmann::json s = nlohmann::json::parse(read_text(summary));
    EXPECT_EQ(s["images"], 4);
    EXPECT_EQ(s["done"], 2);
    ASSERT_EQ(s["failures"].size(), 1u);
    EXPECT_EQ(s["failures"][0]["image"], (in / "broken.png").string());
    EXPECT_FALSE(s["failures"][0]["reason"].get<std::string>().empty());
    ASSERT_EQ(s["missing_images"].size(), 1u);
    EXPECT_EQ(s["missing_images"][0]["image"], (in / "b.png").string());
    EXPECT_EQ(s["missing_images"][0]["reason"], "no output");
    ASSERT_EQ(s["index"].size(), 2u);
    long long masks = 0;
    for (const auto& e : s["index"]) {
        EXPECT_GT(e["seconds"].get<double>(), 0.0);
        EXPECT_GE(e["masks"].get<long long>(), 0);
        masks += e["masks"].get<long long>();
    }
    EXPECT_EQ(s["masks"].get<long long>(), masks);
    // The rest of the job, and the broken image replaced: everything done, exit 0.
    EXPECT_EQ(amg(common + " --shard 0/2 --skip-existing"), 0);
    fs::remove(in / "broken.png");
    fs::copy_file(test::data_path("images/synthetic.png"), in / "broken.png");
    EXPECT_EQ(amg(common + " --skip-existing"), 0);  // retries the failed image only
    EXPECT_TRUE(stderr_has("amg: 1 done, 3 skipped, 0 failed"));
    EXPECT_EQ(amg(common + " --summarize " + summary.string()), 0);
    s = nlohmann::json::parse(read_text(summary));
    EXPECT_EQ(s["done"], 4);
    EXPECT_EQ(s["failures"].size(), 0u);
    EXPECT_EQ(s["missing"], 0);
}

}  // namespace
}  // namespace sam
