// `sam serve` end to end: starts the built binary on a free loopback port with the tiny model and
// drives every route and every error with httplib::Client. The server process is always killed
// (destructor, and PR_SET_PDEATHSIG should the test itself die).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "sam/image.h"
#include "sam/predictor.h"
#include "sam/rle.h"
#include "test_util.h"

namespace sam {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The built `sam serve` as a child process; its stderr goes to a log file.
class ServerProcess {
  public:
    explicit ServerProcess(std::vector<std::string> extra, const std::string& name) {
        log_ = (fs::temp_directory_path() / ("sam_test_server_" + name + "_" + std::to_string(getpid()) + ".log")).string();
        std::vector<std::string> args = {SAM_CLI_PATH, "serve", "--checkpoint", test::data_path("sam_tiny.pth"),
                                         "--config", test::data_path("config.json"), "--host", "127.0.0.1",
                                         "--port", "0", "--threads", "2"};
        args.insert(args.end(), extra.begin(), extra.end());
        pid_ = fork();
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            FILE* f = std::freopen(log_.c_str(), "w", stderr);
            if (!f) _exit(127);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(argv[0], argv.data());
            _exit(127);
        }
        // Wait for "listening on http://127.0.0.1:PORT/" (the model loads first).
        const std::string listening = "listening on http://127.0.0.1:";
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (std::chrono::steady_clock::now() < deadline) {
            const std::string text = log();
            const size_t at = text.find(listening), end = text.find('/', at + listening.size());
            if (at != std::string::npos && end != std::string::npos) {
                port_ = std::stoi(text.substr(at + listening.size(), end - at - listening.size()));
                return;
            }
            if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ADD_FAILURE() << "sam serve did not start; its log:\n" << log();
    }
    ~ServerProcess() {
        if (pid_ <= 0) return;
        kill(pid_, SIGTERM);
        for (int i = 0; i < 250; ++i) {
            if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    int port() const { return port_; }
    std::string log() const { return read_bytes(log_); }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port_);
        c.set_connection_timeout(10);
        c.set_read_timeout(120);
        c.set_write_timeout(30);
        return c;
    }

  private:
    pid_t pid_ = -1;
    int port_ = 0;
    std::string log_;
};

json body_of(const httplib::Result& r) {
    EXPECT_TRUE(r) << "no response: " << httplib::to_string(r.error());
    if (!r) return json();
    EXPECT_EQ(r->get_header_value("Content-Type").rfind("application/json", 0), 0u) << r->body;
    return json::parse(r->body, nullptr, /*allow_exceptions=*/false);
}

// Expects status and a JSON {"error": ...} that contains `needle`.
void expect_error(const httplib::Result& r, int status, const std::string& needle) {
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, status) << r->body;
    json j = body_of(r);
    ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string()) << r->body;
    EXPECT_NE(j["error"].get<std::string>().find(needle), std::string::npos) << j["error"];
}

httplib::Result post_json(httplib::Client& c, const std::string& path, const json& body) {
    return c.Post(path.c_str(), body.dump(), "application/json");
}

json upload(httplib::Client& c, const std::string& bytes) {
    auto r = c.Post("/api/images", bytes, "application/octet-stream");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : httplib::to_string(r.error()));
    return body_of(r);
}

std::vector<uint8_t> decode_mask(const json& m) {
    const int h = m["size"][0], w = m["size"][1];
    return rle_decode(rle_from_coco_string(m["counts"].get<std::string>(), h, w));
}

double iou(const std::vector<uint8_t>& a, const uint8_t* b) {
    int64_t inter = 0, uni = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        inter += a[i] && b[i];
        uni += a[i] || b[i];
    }
    return uni == 0 ? 1.0 : static_cast<double>(inter) / static_cast<double>(uni);
}

// One server for the suite: 1 MiB uploads (every fixture image but truck.png fits).
class Server : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { server_ = new ServerProcess({"--max-upload-mb", "1"}, "suite"); }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }
    void SetUp() override { ASSERT_GT(server_->port(), 0) << "server not running"; }
    httplib::Client client() { return server_->client(); }
    static std::string truck() { return read_bytes(std::string(SAM_TEST_DATA) + "/../../assets/images/truck.jpg"); }
    static std::string dog() { return read_bytes(test::data_path("images/dog.jpg")); }
    static ServerProcess* server_;
};
ServerProcess* Server::server_ = nullptr;

TEST_F(Server, Health) {
    auto c = client();
    json j = body_of(c.Get("/api/health"));
    EXPECT_EQ(j["status"], "ok");
    EXPECT_EQ(j["model_type"], "custom");
}

TEST_F(Server, ServesTheEmbeddedPage) {
    auto c = client();
    auto index = c.Get("/");
    ASSERT_TRUE(index);
    EXPECT_EQ(index->status, 200);
    EXPECT_EQ(index->get_header_value("Content-Type").rfind("text/html", 0), 0u);
    EXPECT_NE(index->body.find("app.js"), std::string::npos);
    auto js = c.Get("/app.js");
    ASSERT_TRUE(js);
    EXPECT_EQ(js->status, 200);
    EXPECT_EQ(js->get_header_value("Content-Type").rfind("text/javascript", 0), 0u);
    EXPECT_EQ(js->body, read_bytes(std::string(SAM_TEST_DATA) + "/../../web/app.js"));
    auto css = c.Get("/style.css");
    ASSERT_TRUE(css);
    EXPECT_EQ(css->status, 200);
    expect_error(c.Get("/missing.html"), 404, "no such file");
    expect_error(c.Get("/.hidden"), 404, "no such file");
    expect_error(c.Get("/api/nothing"), 404, "no route");
}

TEST_F(Server, UploadIsCachedByContent) {
    auto c = client();
    json a = upload(c, dog());
    EXPECT_EQ(a["width"], 800);
    EXPECT_EQ(a["height"], 534);
    EXPECT_EQ(a["id"].get<std::string>().size(), 16u);
    EXPECT_FALSE(a["cached"]);
    // The same bytes again, raw and as multipart: the same id, no encoding.
    json b = upload(c, dog());
    EXPECT_EQ(b["id"], a["id"]);
    EXPECT_TRUE(b["cached"]);
    httplib::MultipartFormDataItems items = {{"image", dog(), "dog.jpg", "image/jpeg"}};
    json m = body_of(c.Post("/api/images", items));
    EXPECT_EQ(m["id"], a["id"]);
    EXPECT_TRUE(m["cached"]);
    // Other bytes, another id.
    json t = upload(c, truck());
    EXPECT_NE(t["id"], a["id"]);
}

// The server's masks are the library's masks for the same prompt.
TEST_F(Server, PredictMatchesTheLibrary) {
    auto c = client();
    const std::string bytes = truck();
    json up = upload(c, bytes);
    const std::string base = "/api/images/" + up["id"].get<std::string>();

    LoadOptions lo;
    lo.config_path = test::data_path("config.json");
    SamPredictor predictor(Sam::load(test::data_path("sam_tiny.pth"), lo));
    predictor.set_image(decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "truck.jpg"));

    // 1. A point, three candidates.
    json r = body_of(post_json(c, base + "/predict", {{"points", {{500, 375}}}, {"labels", {1}}, {"multimask", true}}));
    ASSERT_EQ(r["masks"].size(), 3u) << r.dump().substr(0, 300);
    ASSERT_EQ(r["scores"].size(), 3u);
    Prompt p;
    p.point_coords = {{500, 375}};
    p.point_labels = {1};
    Prediction want = predictor.predict(p);
    const size_t hw = size_t{1800} * 1200;
    for (size_t k = 0; k < 3; ++k) {
        EXPECT_EQ(r["masks"][k]["size"], json({1200, 1800}));
        EXPECT_GE(iou(decode_mask(r["masks"][k]), want.masks.data() + k * hw), 0.99) << k;
        EXPECT_NEAR(r["scores"][k].get<float>(), want.iou_predictions[k], 1e-3f);
    }
    const int best = r["best"];
    EXPECT_EQ(r["logits"], r["masks"][static_cast<size_t>(best)]["logits"]);

    // 2. Refine: a second point with the best mask's logits as the mask input, one mask.
    json r2 = body_of(post_json(c, base + "/predict", {{"points", {{500, 375}, {1100, 600}}}, {"labels", {1, 0}},
                                                       {"mask_input", r["logits"]}, {"multimask", false}}));
    ASSERT_EQ(r2["masks"].size(), 1u);
    Prompt p2;
    p2.point_coords = {{500, 375}, {1100, 600}};
    p2.point_labels = {1, 0};
    p2.multimask_output = false;
    p2.mask_input = Tensor({1, 256, 256});
    std::copy(want.low_res_logits.data() + best * 256 * 256, want.low_res_logits.data() + (best + 1) * 256 * 256,
              p2.mask_input.data());
    Prediction want2 = predictor.predict(p2);
    EXPECT_GE(iou(decode_mask(r2["masks"][0]), want2.masks.data()), 0.99);
    EXPECT_NEAR(r2["scores"][0].get<float>(), want2.iou_predictions[0], 1e-3f);

    // 3. A box alone.
    json r3 = body_of(post_json(c, base + "/predict", {{"box", {75, 275, 1725, 850}}, {"multimask", false}}));
    ASSERT_EQ(r3["masks"].size(), 1u);
    Prompt p3;
    p3.box = std::array<float, 4>{75, 275, 1725, 850};
    p3.multimask_output = false;
    EXPECT_GE(iou(decode_mask(r3["masks"][0]), predictor.predict(p3).masks.data()), 0.99);
}

TEST_F(Server, Everything) {
    auto c = client();
    json up = upload(c, dog());
    const std::string path = "/api/images/" + up["id"].get<std::string>() + "/everything";
    // Thresholds off: the tiny model's random weights pass nothing at the reference defaults.
    json r = body_of(post_json(c, path, {{"points_per_side", 4}, {"pred_iou_thresh", 0.0},
                                         {"stability_score_thresh", 0.0}, {"box_nms_thresh", 0.7}}));
    ASSERT_TRUE(r.contains("records")) << r.dump().substr(0, 300);
    ASSERT_GT(r["records"].size(), 0u);
    for (const json& rec : r["records"]) {
        for (const char* key : {"segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box"})
            EXPECT_TRUE(rec.contains(key)) << key;
        std::vector<uint8_t> m = decode_mask(rec["segmentation"]);
        EXPECT_EQ(m.size(), size_t{800} * 534);
        int64_t area = 0;
        for (uint8_t v : m) area += v;
        EXPECT_EQ(rec["area"].get<int64_t>(), area);
        EXPECT_EQ(rec["crop_box"], json({0, 0, 800, 534}));
    }
    expect_error(post_json(c, path, {{"points_per_side", 1000}}), 400, "points_per_side");
    expect_error(post_json(c, path, {{"points_per_side", "many"}}), 400, "points_per_side");
    expect_error(post_json(c, path, {{"box_nms", 0.5}}), 400, "unknown field");
    expect_error(c.Post(path.c_str(), "{", "application/json"), 400, "bad JSON");
}

TEST_F(Server, BadJsonAndUnknownIds) {
    auto c = client();
    json up = upload(c, dog());
    const std::string path = "/api/images/" + up["id"].get<std::string>() + "/predict";
    expect_error(c.Post(path.c_str(), "{\"points\": [[1, 2]", "application/json"), 400, "bad JSON");
    expect_error(c.Post(path.c_str(), "[1, 2]", "application/json"), 400, "expected an object");
    expect_error(c.Post(path.c_str(), "\xff\xfe", "application/json"), 400, "bad JSON");
    expect_error(post_json(c, "/api/images/0123456789abcdef/predict", json::object()), 404, "unknown image id");
    expect_error(post_json(c, "/api/images/0123456789abcdef/everything", json::object()), 404, "unknown image id");
}

TEST_F(Server, BadPromptsNameTheField) {
    auto c = client();
    json up = upload(c, dog());
    const std::string path = "/api/images/" + up["id"].get<std::string>() + "/predict";
    const std::vector<std::pair<json, std::string>> cases = {
        {{{"points", {{1, 2}}}, {"labels", {1, 1}}}, "point_labels"},     // count mismatch (the predictor's message)
        {{{"points", {{1, 2}}}, {"labels", {3}}}, "labels"},              // label out of range
        {{{"points", {{1, 2}}}, {"labels", {0.5}}}, "labels"},            // not an integer
        {{{"points", {{1}}}, {"labels", {1}}}, "points"},                 // not a pair
        {{{"points", "here"}}, "points"},                                 // not a list
        {{{"points", {{"a", 2}}}, {"labels", {1}}}, "points"},            // not a number
        {{{"box", {10, 10, 5, 5}}}, "box"},                               // x1 < x0 (the predictor's message)
        {{{"box", {1, 2, 3}}}, "box"},                                    // three numbers
        {{{"mask_input", "m999999"}}, "mask_input"},                      // unknown handle
        {{{"mask_input", 5}}, "mask_input"},                              // not a handle
        {{{"multimask", 1}}, "multimask"},                                // not a bool
        {{{"point", {{1, 2}}}}, "unknown field"},                         // a typo
    };
    for (const auto& [body, field] : cases) {
        SCOPED_TRACE(body.dump());
        expect_error(post_json(c, path, body), 400, field);
    }
    std::string many = "{\"points\": [";
    for (int i = 0; i < 300; ++i) many += std::string(i ? "," : "") + "[1, 2]";
    expect_error(c.Post(path.c_str(), many + "]}", "application/json"), 400, "at most");
    // Still serving after all that.
    EXPECT_EQ(body_of(c.Get("/api/health"))["status"], "ok");
}

TEST_F(Server, BadUploads) {
    auto c = client();
    expect_error(c.Post("/api/images", "just some text", "application/octet-stream"), 415, "not a supported image");
    const std::string png = read_bytes(test::data_path("images/synthetic.png"));
    expect_error(c.Post("/api/images", png.substr(0, png.size() / 2), "application/octet-stream"), 415,
                 "not a supported image");
    std::string garbled = png;
    for (size_t i = 100; i < garbled.size(); i += 7) garbled[i] = static_cast<char>(garbled[i] ^ 0x5a);
    expect_error(c.Post("/api/images", garbled, "application/octet-stream"), 415, "not a supported image");
    expect_error(c.Post("/api/images", "", "application/octet-stream"), 400, "empty upload");
    httplib::MultipartFormDataItems wrong_field = {{"file", png, "s.png", "image/png"}};
    expect_error(c.Post("/api/images", wrong_field), 400, "\"image\" field");
    // Over --max-upload-mb 1.
    expect_error(c.Post("/api/images", std::string((size_t{3} << 19), 'x'), "application/octet-stream"), 413,
                 "--max-upload-mb");
    EXPECT_EQ(body_of(c.Get("/api/health"))["status"], "ok");
}

// Four clients predicting on one image while a fifth uploads (and encodes) other images.
TEST_F(Server, ConcurrentClients) {
    auto c = client();
    json up = upload(c, dog());
    const std::string path = "/api/images/" + up["id"].get<std::string>() + "/predict";
    const json prompt = {{"points", {{400, 260}}}, {"labels", {1}}, {"multimask", true}};
    const json reference = body_of(post_json(c, path, prompt));
    ASSERT_EQ(reference["masks"].size(), 3u);

    std::atomic<int> failures{0}, done{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            auto cc = server_->client();
            for (int i = 0; i < 8; ++i) {
                auto r = post_json(cc, path, prompt);
                json j = r && r->status == 200 ? json::parse(r->body) : json();
                // The masks and scores of the serial request (handles differ).
                bool same = j.is_object() && j["masks"].size() == 3;
                for (size_t k = 0; same && k < 3; ++k)
                    same = std::abs(j["scores"][k].get<double>() - reference["scores"][k].get<double>()) < 1e-4 &&
                           iou(decode_mask(j["masks"][k]), decode_mask(reference["masks"][k]).data()) > 0.99;
                if (!same) ++failures;
                ++done;
            }
        });
    threads.emplace_back([&] {
        auto cc = server_->client();
        for (const char* name : {"images/synthetic.png", "images/groceries.png"}) {
            auto r = cc.Post("/api/images", read_bytes(test::data_path(name)), "application/octet-stream");
            if (!r || r->status != 200) ++failures;
        }
    });
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(done.load(), 32);
}

TEST(ServerCache, EvictsTheLeastRecentlyUsedImage) {
    ServerProcess server({"--cache-size", "2"}, "lru");
    ASSERT_GT(server.port(), 0);
    auto c = server.client();
    // Three small distinct images.
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        std::vector<uint8_t> px(32 * 24 * 3);
        std::mt19937 rng(static_cast<unsigned>(i));
        for (auto& v : px) v = static_cast<uint8_t>(rng());
        std::vector<uint8_t> png = encode_png(px.data(), 32, 24, 3);
        ids.push_back(upload(c, std::string(png.begin(), png.end()))["id"].get<std::string>());
        if (i == 1) {  // touch the first: the second is now the oldest
            json r = body_of(post_json(c, "/api/images/" + ids[0] + "/predict", {{"points", {{3, 3}}}, {"labels", {1}}}));
            EXPECT_EQ(r["masks"].size(), 3u);
        }
    }
    expect_error(post_json(c, "/api/images/" + ids[1] + "/predict", json::object()), 404, "unknown image id");
    for (int i : {0, 2}) EXPECT_EQ(body_of(post_json(c, "/api/images/" + ids[i] + "/predict", json::object()))["masks"].size(), 3u);
    EXPECT_EQ(body_of(c.Get("/api/health"))["images_cached"], 2);
    // One log line per request.
    EXPECT_NE(server.log().find("POST /api/images/" + ids[1] + "/predict -> 404"), std::string::npos) << server.log();
}

}  // namespace
}  // namespace sam
