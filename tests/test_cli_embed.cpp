// `sam embed`, `sam info` and `sam make-random-checkpoint` end to end.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "sam/npy.h"
#include "sam/sam.h"
#include "test_util.h"

namespace sam {
namespace {

std::string cli() { return SAM_CLI_PATH; }
std::string tiny() { return " -c " + test::data_path("sam_tiny.pth") + " --config " + test::data_path("config.json"); }

std::string run_capture(const std::string& args, int* status) {
    // One output file per test: ctest runs tests as parallel processes.
    const std::string out = ::testing::TempDir() + "/cli_out_" +
                            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".txt";
    *status = std::system((cli() + " " + args + " >" + out + " 2>&1").c_str());
    std::ifstream in(out);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(CliEmbed, WritesTheReferenceEmbedding) {
    const std::string out = ::testing::TempDir() + "/emb_dog.npy";
    int status = 0;
    std::string log = run_capture("embed" + tiny() + " --image " + test::data_path("images/dog.png") + " --output " + out, &status);
    ASSERT_EQ(status, 0) << log;
    EXPECT_TRUE(test::close_to_reference(load_npy(out), load_npy(test::data_path("embedding_dog.npy"))));
}

TEST(CliEmbed, BadInputsFailWithAMessage) {
    int status = 0;
    std::string log = run_capture("embed" + tiny() + " --image " + test::data_path("config.json") + " --output /tmp/x.npy", &status);
    EXPECT_NE(status, 0);
    EXPECT_NE(log.find("config.json"), std::string::npos) << log;
    log = run_capture("embed -c " + test::data_path("config.json") + " --image " + test::data_path("images/dog.png") +
                          " --output /tmp/x.npy",
                      &status);
    EXPECT_NE(status, 0);
    EXPECT_NE(log.find("config.json"), std::string::npos) << log;  // not a checkpoint: names the file
}

TEST(CliInfo, PrintsModelTypeDtypeAndParameters) {
    int status = 0;
    std::string log = run_capture("info -c " + test::data_path("sam_tiny_fp16.pth") + " --config " + test::data_path("config.json"), &status);
    ASSERT_EQ(status, 0) << log;
    EXPECT_NE(log.find("float16"), std::string::npos) << log;
    EXPECT_NE(log.find("custom"), std::string::npos) << log;
    EXPECT_NE(log.find("parameters:"), std::string::npos) << log;
}

// A random checkpoint in the official format loads back and computes what the in-memory
// random model computes (same seed, same weights).
TEST(CliRandomCheckpoint, RoundTripsThroughTheLoader) {
    const std::string path = ::testing::TempDir() + "/random_tiny.pth";
    int status = 0;
    std::string log = run_capture("make-random-checkpoint --config " + test::data_path("config.json") + " --seed 7 --output " + path, &status);
    ASSERT_EQ(status, 0) << log;
    LoadOptions o;
    o.config_path = test::data_path("config.json");
    Sam loaded = Sam::load(path, o);
    Sam made = Sam::random(sam_config_from_json(test::data_path("config.json")), 7);
    EXPECT_EQ(loaded.parameter_count(), made.parameter_count());
    Tensor input({1, 3, 1024, 1024});
    for (int64_t i = 0; i < input.numel(); ++i) input[i] = static_cast<float>(i % 251) / 125.0f - 1.0f;
    EXPECT_EQ(test::max_abs_diff(loaded.encode(input), made.encode(input)), 0.0f);
}

}  // namespace
}  // namespace sam
