// `sam serve` end to end: starts the built binary on a free loopback port with the tiny model and
// drives every route and every error with httplib::Client. The server process is always killed
// (destructor, and PR_SET_PDEATHSIG should the test itself die).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hostile_images.h"
#include "postprocess.h"
#include "sam/error.h"
#include "sam/image.h"
#include "sam/predictor.h"
#include "sam/npy.h"
#include "sam/rle.h"
#include "sam/sam2.h"
#include "sam/sam2_automatic_mask_generator.h"
#include "server/request_parsing.h"
#include "server_process.h"
#include "test_util.h"

namespace sam {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// The model flags of the test model (tests/data/sam_tiny.pth).
std::vector<std::string> sam_tiny_args() {
    return {"--checkpoint", test::data_path("sam_tiny.pth"), "--config", test::data_path("config.json")};
}

// The built `sam serve` on the test model (or `model`) with `extra` flags, its log named by
// this process and moment and removed first: a log left by an earlier process that had the same
// pid would otherwise be read (and its port taken) before the child has truncated it.
class ServerProcess : public test::ServerProcess {
  public:
    explicit ServerProcess(const std::vector<std::string>& extra, const std::string& name,
                           const std::vector<std::string>& model = sam_tiny_args())
        : test::ServerProcess(serve_args(extra, model), fresh_log(name)) {}
    ~ServerProcess() {
        stop();
        std::error_code ignored;
        fs::remove(log_path(), ignored);
    }

  private:
    static std::vector<std::string> serve_args(const std::vector<std::string>& extra,
                                               const std::vector<std::string>& model) {
        std::vector<std::string> args = {"serve"};
        args.insert(args.end(), model.begin(), model.end());
        args.insert(args.end(), {"--host", "127.0.0.1", "--port", "0", "--threads", "2"});
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    }
    static std::string fresh_log(const std::string& name) {
        const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
        const std::string path = (fs::temp_directory_path() / ("sam_test_server_" + name + "_" + std::to_string(getpid()) +
                                                               "_" + std::to_string(now) + ".log"))
                                     .string();
        fs::remove(path);
        return path;
    }
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

// One exchange on a raw socket, for requests httplib::Client will not send (chunked, no length,
// a foreign Host): the status and the body of the answer.
struct RawResponse {
    int status = 0;
    std::string body;
};
// A socket connected to 127.0.0.1:port that has sent `request`; -1 if the connection failed.
int send_raw(int port, const std::string& request) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    timeval tv{30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    for (size_t sent = 0; sent < request.size();) {
        const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
    }
    return fd;
}

RawResponse raw_http(int port, const std::string& request) {
    RawResponse r;
    const int fd = send_raw(port, request);
    if (fd < 0) return r;
    // Read the head, then Content-Length bytes of body.
    std::string text;
    char buf[4096];
    size_t head_end = std::string::npos, length = 0;
    while (head_end == std::string::npos || text.size() < head_end + 4 + length) {
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        text.append(buf, static_cast<size_t>(n));
        if (head_end == std::string::npos && (head_end = text.find("\r\n\r\n")) != std::string::npos) {
            const size_t at = text.find("Content-Length: ");
            if (at != std::string::npos && at < head_end) length = std::stoul(text.substr(at + 16));
        }
    }
    close(fd);
    if (text.size() > 12 && text.rfind("HTTP/1.1 ", 0) == 0) r.status = std::stoi(text.substr(9, 3));
    if (head_end != std::string::npos) r.body = text.substr(head_end + 4);
    return r;
}

void expect_raw_error(const RawResponse& r, int status, const std::string& needle) {
    EXPECT_EQ(r.status, status) << r.body;
    const json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string()) << r.body;
    EXPECT_NE(j["error"].get<std::string>().find(needle), std::string::npos) << j["error"];
}

// `depth` nested arrays around one number: "[[[...1...]]]".
std::string nested_arrays(size_t depth) { return std::string(depth, '[') + "1" + std::string(depth, ']'); }

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
    static std::string truck() { return test::read_file(std::string(SAM_TEST_DATA) + "/../../assets/images/truck.jpg"); }
    static std::string dog() { return test::read_file(test::data_path("images/dog.jpg")); }
    static ServerProcess* server_;
};
ServerProcess* Server::server_ = nullptr;

TEST_F(Server, Health) {
    auto c = client();
    json j = body_of(c.Get("/api/health"));
    EXPECT_EQ(j["status"], "ok");
    EXPECT_EQ(j["model"], "sam");
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
    EXPECT_EQ(js->body, test::read_file(std::string(SAM_TEST_DATA) + "/../../web/app.js"));
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

// POST .../click's binary answer (apps/server/click.h).
struct ClickAnswer {
    json head;
    std::vector<float> logits;  // num_masks x rows x cols
};

ClickAnswer parse_click(const httplib::Result& r) {
    ClickAnswer a;
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body.substr(0, 300) : httplib::to_string(r.error()));
    if (!r || r->status != 200) return a;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/octet-stream");
    const std::string& b = r->body;
    EXPECT_GE(b.size(), 8u);
    if (b.size() < 8) return a;
    EXPECT_EQ(b.substr(0, 4), "SAMc");
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<uint8_t>(b[4 + static_cast<size_t>(i)])) << (8 * i);
    EXPECT_EQ(n % 4, 0u);
    EXPECT_LE(8 + size_t{n}, b.size());
    a.head = json::parse(b.substr(8, n), nullptr, /*allow_exceptions=*/false);
    const size_t floats = (b.size() - 8 - n) / sizeof(float);
    EXPECT_EQ((b.size() - 8 - n) % sizeof(float), 0u);
    EXPECT_EQ(floats, a.head["num_masks"].get<size_t>() * a.head["rows"].get<size_t>() * a.head["cols"].get<size_t>());
    a.logits.resize(floats);
    std::memcpy(a.logits.data(), b.data() + 8 + n, floats * sizeof(float));
    return a;
}

// Candidate k of a click's answer upsampled as the page does it, from the rows x cols that were
// sent: the rest of the 256 x 256 grid is NaN, so a pixel that read it would come out NaN.
std::vector<float> upsample_click(const ClickAnswer& a, int k) {
    const int S = a.head["low_size"], rows = a.head["rows"], cols = a.head["cols"];
    std::vector<float> low(static_cast<size_t>(S * S), std::nanf(""));
    for (int y = 0; y < rows; ++y)
        std::copy_n(a.logits.data() + (static_cast<size_t>(k) * rows + y) * cols, cols, low.data() + y * S);
    const MaskPostprocessor post(S, a.head["img_size"], a.head["input_h"], a.head["input_w"], a.head["height"],
                                 a.head["width"]);
    std::vector<float> out(a.head["height"].get<size_t>() * a.head["width"].get<size_t>());
    post.logits(low.data(), out.data());
    return out;
}

// The click's decoder step: predict without upsampling gives the same low-res logits and scores,
// and no full-resolution masks.
TEST(ServerClick, PredictWithoutUpsamplingKeepsTheLowResAnswer) {
    LoadOptions lo;
    lo.config_path = test::data_path("config.json");
    SamPredictor predictor(Sam::load(test::data_path("sam_tiny.pth"), lo));
    predictor.set_image(read_image(test::data_path("images/dog.jpg")));
    Prompt p;
    p.point_coords = {{400, 260}};
    p.point_labels = {1};
    const Prediction full = predictor.predict(p), low = predictor.predict(p, /*upsample=*/false);
    EXPECT_EQ(full.masks.size(), size_t{3} * 534 * 800);
    EXPECT_TRUE(low.masks.empty());
    EXPECT_FALSE(low.logits.defined());
    ASSERT_EQ(low.low_res_logits.shape(), full.low_res_logits.shape());
    for (int64_t i = 0; i < low.low_res_logits.numel(); ++i)
        ASSERT_EQ(low.low_res_logits[i], full.low_res_logits[i]) << i;
    EXPECT_EQ(low.iou_predictions, full.iou_predictions);
    EXPECT_EQ(low.num_masks, 3);
    EXPECT_EQ(low.height, 534);
    EXPECT_EQ(low.width, 800);
}

// The interactive path: the decoder's low-res logits in binary, which upsample (with only the
// rows and columns sent) to exactly the masks of the full-resolution JSON answer.
TEST_F(Server, ClickAnswersLowResLogitsThatUpsampleToThePredictMasks) {
    auto c = client();
    json up = upload(c, truck());
    const std::string base = "/api/images/" + up["id"].get<std::string>();
    const json prompt = {{"points", {{500, 375}}}, {"labels", {1}}, {"multimask", true}};

    auto r = post_json(c, base + "/click", prompt);
    ClickAnswer a = parse_click(r);
    ASSERT_TRUE(a.head.is_object());
    const std::string timing = r->get_header_value("Server-Timing");
    EXPECT_NE(timing.find("decoder;dur="), std::string::npos) << timing;
    EXPECT_NE(timing.find("encode;dur="), std::string::npos) << timing;
    EXPECT_NE(timing.find("total;dur="), std::string::npos) << timing;
    EXPECT_EQ(a.head["version"], 1);
    EXPECT_EQ(a.head["num_masks"], 3);
    EXPECT_EQ(a.head["height"], 1200);
    EXPECT_EQ(a.head["width"], 1800);
    EXPECT_EQ(a.head["input_h"], 683);
    EXPECT_EQ(a.head["input_w"], 1024);
    EXPECT_EQ(a.head["low_size"], 256);
    // 683 of 1024 frame rows read low-res rows 0..171 (the last tap of row 682 is 171).
    EXPECT_EQ(a.head["rows"], 172);
    EXPECT_EQ(a.head["cols"], 256);
    EXPECT_EQ(a.head["threshold"], 0.0);
    EXPECT_EQ(a.head["logits"].size(), 3u);

    json full = body_of(post_json(c, base + "/predict", prompt));
    ASSERT_EQ(full["masks"].size(), 3u);
    EXPECT_EQ(a.head["best"], full["best"]);
    for (int k = 0; k < 3; ++k) {
        SCOPED_TRACE(k);
        EXPECT_EQ(a.head["scores"][static_cast<size_t>(k)], full["scores"][static_cast<size_t>(k)]);
        const std::vector<float> logits = upsample_click(a, k);
        const std::vector<uint8_t> want = decode_mask(full["masks"][static_cast<size_t>(k)]);
        ASSERT_EQ(logits.size(), want.size());
        size_t differ = 0, nan = 0, area = 0;
        for (size_t i = 0; i < want.size(); ++i) {
            nan += std::isnan(logits[i]);
            differ += (logits[i] > 0.0f ? 1 : 0) != want[i];
            area += want[i];
        }
        EXPECT_EQ(nan, 0u) << "pixels read low-res cells that were not sent";
        EXPECT_EQ(differ, 0u) << "of " << area << " mask pixels";
    }

    // Refinement through either route with a handle from the other: the same masks.
    const json refine = {{"points", {{500, 375}, {1100, 600}}}, {"labels", {1, 0}}, {"multimask", false},
                         {"mask_input", a.head["logits"][a.head["best"].get<size_t>()]}};
    ClickAnswer a2 = parse_click(post_json(c, base + "/click", refine));
    ASSERT_TRUE(a2.head.is_object());
    ASSERT_EQ(a2.head["num_masks"], 1);
    json refine_full = refine;
    refine_full["mask_input"] = full["logits"];
    json full2 = body_of(post_json(c, base + "/predict", refine_full));
    ASSERT_EQ(full2["masks"].size(), 1u);
    const std::vector<float> logits2 = upsample_click(a2, 0);
    const std::vector<uint8_t> want2 = decode_mask(full2["masks"][0]);
    size_t differ = 0;
    for (size_t i = 0; i < want2.size(); ++i) differ += (logits2[i] > 0.0f ? 1 : 0) != want2[i];
    EXPECT_EQ(differ, 0u);

    // Errors are JSON, as on every route.
    expect_error(post_json(c, base + "/click", {{"points", {{500, 375}}}}), 400, "point_labels");
    expect_error(post_json(c, base + "/click", {{"mask_input", "m999999"}}), 400, "mask_input");
    expect_error(post_json(c, "/api/images/0123456789abcdef/click", prompt), 404, "unknown image id");
}

TEST_F(Server, JsonAnswersAreNotCompressedForBrowsers) {
    // cpp-httplib compresses JSON with Brotli at its slowest setting for any client that accepts
    // it (seconds for a full-resolution answer on a loaded machine): the answers carry a charset,
    // which it does not compress (server/http_answers.h).
    auto c = client();
    json up = upload(c, truck());
    const httplib::Headers browser = {{"Accept-Encoding", "gzip, deflate, br, zstd"}};
    const json prompt = {{"points", {{500, 375}}}, {"labels", {1}}, {"multimask", true}};
    auto r = c.Post("/api/images/" + up["id"].get<std::string>() + "/predict", browser, prompt.dump(),
                    "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body.substr(0, 300);
    EXPECT_FALSE(r->has_header("Content-Encoding")) << r->get_header_value("Content-Encoding");
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json; charset=utf-8");
    EXPECT_EQ(json::parse(r->body)["masks"].size(), 3u);
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
    const std::string png = test::read_file(test::data_path("images/synthetic.png"));
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
    // Two threads click the interactive route (binary low-res logits) meanwhile.
    const std::string click_path = "/api/images/" + up["id"].get<std::string>() + "/click";
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&] {
            auto cc = server_->client();
            for (int i = 0; i < 8; ++i) {
                const ClickAnswer a = parse_click(post_json(cc, click_path, prompt));
                bool same = a.head.is_object() && a.head["num_masks"] == 3;
                for (size_t k = 0; same && k < 3; ++k)
                    same = std::abs(a.head["scores"][k].get<double>() - reference["scores"][k].get<double>()) < 1e-4;
                if (!same) ++failures;
                ++done;
            }
        });
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
            auto r = cc.Post("/api/images", test::read_file(test::data_path(name)), "application/octet-stream");
            if (!r || r->status != 200) ++failures;
        }
    });
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(done.load(), 48);
}

// Finding: {"points": [[[[...300000 deep...]]]]} ended the process (the error message printed the
// value with json::dump, which recurses once per level). The body is now refused for its size
// before it is read; within the size limit, nesting is refused while parsing.
TEST_F(Server, DeeplyNestedJsonIsRefusedNotACrash) {
    auto c = client();
    json up = upload(c, dog());
    const std::string base = "/api/images/" + up["id"].get<std::string>();
    const std::string deep = "{\"points\":" + nested_arrays(300000) + "}";
    expect_error(c.Post((base + "/predict").c_str(), deep, "application/json"), 413, "65536");
    const std::string within_size = "{\"points\":" + nested_arrays(30000) + "}";
    ASSERT_LT(within_size.size(), size_t{64} << 10);
    expect_error(c.Post((base + "/predict").c_str(), within_size, "application/json"), 400,
                 "points: JSON nested deeper than 32 levels");
    expect_error(c.Post((base + "/everything").c_str(), "{\"crop_n_layers\":" + nested_arrays(30000) + "}",
                        "application/json"),
                 400, "crop_n_layers: JSON nested deeper");
    // Shallow but wrong values are named by type, not printed.
    expect_error(c.Post((base + "/predict").c_str(), "{\"points\": [" + nested_arrays(20) + "]}", "application/json"),
                 400, "points[0]: expected [x, y], got an array of 1");
    expect_error(post_json(c, base + "/predict", {{"points", {{{"a", 1}}}}}), 400, "got an object");
    EXPECT_EQ(body_of(c.Get("/api/health"))["status"], "ok");
}

// Without a socket: the 300000-deep body itself, with the size limit out of the way.
TEST(ServerParsing, NestingIsRefusedWhileParsing) {
    server::JsonLimits limits;
    limits.max_bytes = size_t{1} << 20;
    const std::string deep = "{\"points\":" + nested_arrays(300000) + "}";
    try {
        server::parse_json_object(deep, limits);
        ADD_FAILURE() << "accepted";
    } catch (const server::HttpError& e) {
        EXPECT_EQ(e.status, 400);
        EXPECT_NE(std::string(e.what()).find("points: JSON nested deeper than 32 levels"), std::string::npos) << e.what();
    }
    EXPECT_EQ(server::parse_json_object("{\"a\":" + nested_arrays(30) + "}", limits)["a"].size(), 1u);
    EXPECT_THROW(server::parse_json_object(nested_arrays(300000), limits), server::HttpError);
    EXPECT_THROW(server::parse_json_object(std::string(70000, ' '), {}), server::HttpError);  // over 64 KiB
}

TEST(ServerParsing, PromptCountsOverEveryCrop) {
    AmgOptions o;
    o.points_per_side = 32;
    EXPECT_EQ(server::amg_prompt_count(o), 1024);
    o.crop_n_layers = 2;
    o.crop_n_points_downscale_factor = 2;
    EXPECT_EQ(server::amg_prompt_count(o), 1024 + 4 * 256 + 16 * 64);
}

// Finding: crop_n_layers=3, points_per_side=128 and thresholds outside [0, 1] were accepted
// (millions of prompts under the encoder lock).
TEST_F(Server, EverythingOptionsAreBounded) {
    auto c = client();
    json up = upload(c, dog());
    const std::string path = "/api/images/" + up["id"].get<std::string>() + "/everything";
    const std::vector<std::pair<json, std::string>> cases = {
        {{{"crop_n_layers", 3}}, "crop_n_layers: 3 is outside [0, 2]"},
        {{{"points_per_side", 128}}, "points_per_side: 128 points per side"},
        {{{"points_per_side", 40}, {"crop_n_layers", 1}}, "more than the 4096"},
        {{{"points_per_side", 0}}, "points_per_side"},
        {{{"points_per_side", 8.5}}, "points_per_side: expected an integer"},
        {{{"points_per_batch", 100000}}, "points_per_batch"},
        {{{"pred_iou_thresh", 1.5}}, "pred_iou_thresh: 1.5 is outside [0, 1]"},
        {{{"pred_iou_thresh", -0.1}}, "pred_iou_thresh"},
        {{{"stability_score_thresh", 2}}, "stability_score_thresh"},
        {{{"stability_score_offset", -1}}, "stability_score_offset"},
        {{{"box_nms_thresh", "high"}}, "box_nms_thresh: expected a number, got a string"},
        {{{"crop_nms_thresh", nullptr}, {"crop_overlap_ratio", 1.0}}, "crop_overlap_ratio"},
        {{{"crop_n_layers", 2}, {"crop_n_points_downscale_factor", 16}}, "crop_n_points_downscale_factor"},
        {{{"min_mask_region_area", -1}}, "min_mask_region_area"},
        {{{"min_mask_region_area", json::array()}}, "min_mask_region_area: expected an integer, got an array of 0"},
    };
    for (const auto& [body, needle] : cases) {
        SCOPED_TRACE(body.dump());
        expect_error(post_json(c, path, body), 400, needle);
    }
    EXPECT_EQ(body_of(c.Get("/api/health"))["status"], "ok");
}

// A client that gives up on "segment everything" stops the job (the encoder is free again).
TEST_F(Server, EverythingStopsWhenTheClientDisconnects) {
    auto c = client();
    json up = upload(c, dog());
    const std::string path = "/api/images/" + up["id"].get<std::string>() + "/everything";
    const json big = {{"points_per_side", 64}, {"pred_iou_thresh", 0.0}, {"stability_score_thresh", 0.0}};
    {
        auto impatient = client();
        impatient.set_read_timeout(0, 300000);  // 0.3 s, then the client closes the connection
        auto r = post_json(impatient, path, big);
        EXPECT_FALSE(r) << "the job finished within 0.3 s: it cannot show cancellation";
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (server_->log().find("the client disconnected") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_NE(server_->log().find("segment everything stopped after"), std::string::npos) << server_->log();
    json small = body_of(post_json(c, path, {{"points_per_side", 2}, {"pred_iou_thresh", 0.0}}));
    EXPECT_TRUE(small.contains("records")) << small.dump().substr(0, 300);
}

// Finding: a ~33 KB 1-bit 16384x16384 PNG decoded to ~1 GB (and each prediction then took
// ~800 MB). Refused from its header; likewise a progressive JPEG of 190 scans.
TEST_F(Server, ImageBombsAreRefusedBeforeDecoding) {
    auto c = client();
    const std::string bomb = test::pixel_bomb_png(16384, 16384);
    ASSERT_LT(bomb.size(), size_t{64} << 10);
    const auto t0 = std::chrono::steady_clock::now();
    expect_error(c.Post("/api/images", bomb, "application/octet-stream"), 413, "16384x16384");
    expect_error(c.Post("/api/images", bomb, "application/octet-stream"), 413, "--max-pixels");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
    expect_error(c.Post("/api/images", test::many_scans_jpeg(), "application/octet-stream"), 415,
                 "more than 100 scans");
    EXPECT_EQ(body_of(c.Get("/api/health"))["status"], "ok");
}

// Finding: httplib 0.11 bounds neither chunked nor compressed bodies, nor bodies without a length.
TEST_F(Server, UnboundedBodiesAreRefused) {
    const int port = server_->port();
    const std::string host = "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
    // The head and a first chunk only: the answer must come without the rest.
    expect_raw_error(raw_http(port, "POST /api/images HTTP/1.1\r\n" + host +
                                        "Transfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n"
                                        "5\r\nhello\r\n"),
                     411, "Transfer-Encoding");
    expect_raw_error(raw_http(port, "POST /api/images HTTP/1.1\r\n" + host + "Content-Encoding: gzip\r\n"
                                        "Content-Type: application/octet-stream\r\nContent-Length: 4\r\n\r\nabcd"),
                     415, "Content-Encoding");
    expect_raw_error(raw_http(port, "POST /api/images HTTP/1.1\r\n" + host +
                                        "Content-Type: application/octet-stream\r\n\r\nabcd"),
                     411, "Content-Length");
    auto c = client();
    EXPECT_EQ(body_of(c.Get("/api/health"))["status"], "ok");
}

// A client that resets its connection while its prediction runs: the server's answer then meets
// a closed socket (httplib 0.11 writes without MSG_NOSIGNAL and relies on SIGPIPE being ignored).
TEST_F(Server, ClientsThatLeaveEarlyDoNotEndTheServer) {
    auto c = client();
    json up = upload(c, dog());
    const std::string body = json({{"points", {{400, 260}}}, {"labels", {1}}}).dump();
    const std::string request = "POST /api/images/" + up["id"].get<std::string>() + "/predict HTTP/1.1\r\n"
                                "Host: 127.0.0.1:" + std::to_string(server_->port()) + "\r\n"
                                "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                                "\r\n\r\n" + body;
    for (int delay_ms : {5, 20, 50, 100}) {
        const int fd = send_raw(server_->port(), request);
        ASSERT_GE(fd, 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        const linger reset{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close(fd);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(body_of(c.Get("/api/health"))["status"], "ok");
}

// Finding: any web site could drive the loopback server (DNS rebinding, cross-site POSTs).
TEST_F(Server, ForeignHostsAndOriginsAreRefused) {
    const int port = server_->port();
    const std::string p = std::to_string(port);
    auto get_health = [&](const std::string& host_header) {
        return raw_http(port, "GET /api/health HTTP/1.1\r\nHost: " + host_header + "\r\nConnection: close\r\n\r\n");
    };
    expect_raw_error(get_health("attacker.example:" + p), 403, "--allow-host");
    expect_raw_error(get_health("127.0.0.1:" + std::to_string(port == 1 ? 2 : port - 1)), 403, "DNS rebinding");
    expect_raw_error(get_health("127.0.0.1"), 403, "Host");
    for (const std::string& ok : {"127.0.0.1:" + p, "localhost:" + p, "LOCALHOST:" + p, "[::1]:" + p})
        EXPECT_EQ(get_health(ok).status, 200) << ok;

    auto c = client();
    json up = upload(c, dog());
    const std::string path = "/api/images/" + up["id"].get<std::string>() + "/predict";
    const std::string prompt = json({{"points", {{400, 260}}}, {"labels", {1}}}).dump();
    for (const char* origin : {"http://attacker.example", "null", "https://127.0.0.1", "http://127.0.0.1:1"}) {
        SCOPED_TRACE(origin);
        expect_error(c.Post(path.c_str(), {{"Origin", origin}}, prompt, "application/json"), 403, "cross-origin");
    }
    auto same = c.Post(path.c_str(), {{"Origin", "http://127.0.0.1:" + p}}, prompt, "application/json");
    ASSERT_TRUE(same);
    EXPECT_EQ(same->status, 200) << same->body;
    EXPECT_EQ(body_of(c.Get("/api/health"))["status"], "ok");
}

TEST_F(Server, JsonRoutesRequireJsonBodies) {
    auto c = client();
    json up = upload(c, dog());
    const std::string path = "/api/images/" + up["id"].get<std::string>() + "/predict";
    const std::string prompt = json({{"points", {{400, 260}}}, {"labels", {1}}}).dump();
    expect_error(c.Post(path.c_str(), prompt, "text/plain"), 415, "application/json");
    expect_error(c.Post(path.c_str(), prompt, "application/x-www-form-urlencoded"), 415, "application/json");
    const std::string click = "/api/images/" + up["id"].get<std::string>() + "/click";
    expect_error(c.Post(click.c_str(), prompt, "text/plain"), 415, "application/json");
    auto charset = c.Post(path.c_str(), prompt, "application/json; charset=utf-8");
    ASSERT_TRUE(charset);
    EXPECT_EQ(charset->status, 200) << charset->body;
    // Valid JSON, but over 64 KiB.
    const std::string padded = "{\"points\": [[400, 260]], \"labels\": [1]" + std::string(70000, ' ') + "}";
    expect_error(c.Post(path.c_str(), padded, "application/json"), 413, "more than the 65536 accepted");
    // The page sends its JSON as application/json.
    const std::string app = test::read_file(std::string(SAM_TEST_DATA) + "/../../web/app.js");
    size_t at = 0, bodies = 0;
    while ((at = app.find("body: JSON.stringify", at)) != std::string::npos) {
        const size_t from = at > 200 ? at - 200 : 0;
        EXPECT_NE(app.substr(from, at - from).find("'Content-Type': 'application/json'"), std::string::npos)
            << app.substr(from, 240);
        ++bodies;
        ++at;
    }
    EXPECT_EQ(bodies, 2u);
    EXPECT_EQ(body_of(c.Get("/api/health"))["status"], "ok");
}

// Finding: a point at 1e38 overflowed after the coordinate transform and came back as null
// scores (the page then failed on .toFixed).
TEST_F(Server, NonFiniteAndFarCoordinatesAreRefused) {
    auto c = client();
    json up = upload(c, dog());  // 800 x 534
    const std::string path = "/api/images/" + up["id"].get<std::string>() + "/predict";
    const std::vector<std::pair<json, std::string>> cases = {
        {{{"points", {{1e38, 5}}}, {"labels", {1}}}, "points[0]: x = 1e+38 is outside [-800, 1600]"},
        {{{"points", {{5, 5}, {5, -1e38}}}, {"labels", {1, 1}}}, "points[1]: y = -1e+38 is outside [-534, 1068]"},
        {{{"points", {{-801, 5}}}, {"labels", {1}}}, "points[0]"},
        {{{"box", {0, 0, 1e38, 100}}}, "box: x1 = 1e+38"},
        {{{"box", {0, -600, 10, 100}}}, "box: y0"},
    };
    for (const auto& [body, needle] : cases) {
        SCOPED_TRACE(body.dump());
        expect_error(post_json(c, path, body), 400, needle);
    }
    expect_error(c.Post(path.c_str(), "{\"points\": [[1e400, 5]], \"labels\": [1]}", "application/json"), 400,
                 "bad JSON");
    // Outside the image but within one image size: accepted, with finite scores.
    json r = body_of(post_json(c, path, {{"points", {{-790, 1060}}}, {"labels", {1}}, {"box", {-800, -534, 1600, 1068}}}));
    ASSERT_EQ(r["scores"].size(), 3u) << r.dump().substr(0, 300);
    for (const json& v : r["scores"]) EXPECT_TRUE(v.is_number()) << r["scores"].dump();
    EXPECT_EQ(body_of(c.Get("/api/health"))["status"], "ok");
}

// The limits' flags: --max-pixels, --max-prompts, --job-timeout, --allow-host.
TEST(ServerLimits, FlagsChangeTheLimits) {
    ServerProcess server({"--max-pixels", "500000", "--max-prompts", "5000", "--job-timeout", "0.3", "--allow-host",
                          "sam.test"},
                         "limits");
    ASSERT_GT(server.port(), 0);
    auto c = server.client();
    expect_error(c.Post("/api/images", test::read_file(std::string(SAM_TEST_DATA) + "/../../assets/images/truck.jpg"),
                        "application/octet-stream"),
                 413, "more than the 500000 accepted");
    json up = upload(c, test::read_file(test::data_path("images/dog.jpg")));  // 427200 pixels
    const std::string path = "/api/images/" + up["id"].get<std::string>() + "/everything";
    expect_error(post_json(c, path, {{"points_per_side", 71}}), 400, "more than the 5000");
    // 70 x 70 = 4900 prompts: within --max-prompts, not within 0.3 s.
    expect_error(post_json(c, path, {{"points_per_side", 70}, {"pred_iou_thresh", 0.0}, {"stability_score_thresh", 0.0}}),
                 503, "--job-timeout");
    const std::string p = std::to_string(server.port());
    EXPECT_EQ(raw_http(server.port(), "GET /api/health HTTP/1.1\r\nHost: sam.test:" + p + "\r\nConnection: close\r\n\r\n").status,
              200);
    EXPECT_EQ(body_of(c.Get("/api/health"))["status"], "ok");
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

// ---------------------------------------------------------------------------------------------
// SAM 2 behind the same routes (apps/server/segmenter.h): `sam serve` on the SAM 2 fixture
// checkpoint (tests/data/sam2, image size 256: low-res logits 64 x 64) answers what
// Sam2ImagePredictor and Sam2AutomaticMaskGenerator answer when called directly, and the click's
// binary answer upsamples, with the geometry its header gives, to exactly the predict masks.
// (Not under the Server* name: the ISA-level runs repeat those, and the SAM 2 kernels' levels are
// covered by its own tests.)

std::string sam2_path(const std::string& name) { return test::data_path("sam2/" + name); }

std::vector<std::string> sam2_args() {
    return {"--checkpoint", sam2_path("sam2_reduced.pt"), "--config", sam2_path("config.json")};
}

// The fixture model with the server's thread count (--threads 2): the same summation order, so
// the same bits.
Sam2 sam2_model() {
    Sam2LoadOptions o;
    o.config_path = sam2_path("config.json");
    ExecutionOptions e;
    e.threads = 2;
    return Sam2::load(sam2_path("sam2_reduced.pt"), o).with_execution(e);
}

json sam2_manifest() { return json::parse(test::read_file(sam2_path("manifest.json"))); }

class Sam2Server : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        server_ = new ServerProcess({}, "sam2", sam2_args());
        // The fixture's predictor image, as the server decodes it, encoded once by the library.
        truck_bytes_ = new std::string(test::read_file(test::data_path("images/truck.png")));
        predictor_ = new Sam2ImagePredictor(sam2_model());
        predictor_->set_image(decode_image(reinterpret_cast<const uint8_t*>(truck_bytes_->data()), truck_bytes_->size(), "truck"));
    }
    static void TearDownTestSuite() {
        delete server_;
        delete predictor_;
        delete truck_bytes_;
        server_ = nullptr;
        predictor_ = nullptr;
        truck_bytes_ = nullptr;
    }
    void SetUp() override { ASSERT_GT(server_->port(), 0) << "server not running"; }
    httplib::Client client() { return server_->client(); }
    std::string upload_truck(httplib::Client& c) { return "/api/images/" + upload(c, *truck_bytes_)["id"].get<std::string>(); }

    static ServerProcess* server_;
    static std::string* truck_bytes_;
    static Sam2ImagePredictor* predictor_;
};
ServerProcess* Sam2Server::server_ = nullptr;
std::string* Sam2Server::truck_bytes_ = nullptr;
Sam2ImagePredictor* Sam2Server::predictor_ = nullptr;

// A fixture case (manifest "predict") as the route's body and as the library's prompt.
std::pair<json, Prompt> sam2_case(const json& c) {
    json body = {{"multimask", c["multimask_output"]}};
    Prompt p;
    p.multimask_output = c["multimask_output"].get<bool>();
    if (c.contains("point_coords")) {
        body["points"] = c["point_coords"];
        body["labels"] = c["point_labels"];
        for (const auto& xy : c["point_coords"]) p.point_coords.push_back({xy[0].get<float>(), xy[1].get<float>()});
        p.point_labels = c["point_labels"].get<std::vector<int>>();
    }
    if (c.contains("box")) {
        body["box"] = c["box"];
        const auto b = c["box"].get<std::vector<float>>();
        p.box = std::array<float, 4>{b[0], b[1], b[2], b[3]};
    }
    return {body, p};
}

// The JSON masks equal the library's, pixel for pixel; the scores are its scores.
void expect_same_masks(const json& got, const Prediction& want) {
    ASSERT_EQ(got["masks"].size(), static_cast<size_t>(want.num_masks)) << got.dump().substr(0, 300);
    const size_t hw = static_cast<size_t>(want.height) * static_cast<size_t>(want.width);
    for (size_t k = 0; k < got["masks"].size(); ++k) {
        SCOPED_TRACE(k);
        EXPECT_EQ(got["masks"][k]["size"], json({want.height, want.width}));
        const std::vector<uint8_t> m = decode_mask(got["masks"][k]);
        ASSERT_EQ(m.size(), hw);
        size_t differ = 0, area = 0;
        for (size_t i = 0; i < hw; ++i) {
            differ += m[i] != want.masks[k * hw + i];
            area += m[i];
        }
        EXPECT_EQ(differ, 0u) << "of " << area << " mask pixels";
        EXPECT_GT(area, 0u);
        EXPECT_EQ(got["scores"][k].get<float>(), want.iou_predictions[k]);
    }
}

TEST_F(Sam2Server, HealthNamesTheModel) {
    auto c = client();
    json j = body_of(c.Get("/api/health"));
    EXPECT_EQ(j["status"], "ok");
    EXPECT_EQ(j["model"], "sam2");
    EXPECT_EQ(j["model_type"], "custom");
    EXPECT_NE(server_->log().find("SAM 2 custom model"), std::string::npos) << server_->log();
}

// Every prompt case of the SAM 2 fixture except the mask input (a client passes a handle; the
// refinement below covers it): the masks of Sam2ImagePredictor::predict, and the official IoU.
TEST_F(Sam2Server, PredictMatchesThePredictor) {
    auto c = client();
    const std::string base = upload_truck(c);
    size_t cases = 0;
    const json manifest = sam2_manifest();
    for (const auto& [name, spec] : manifest["predict"].items()) {
        if (spec.contains("mask_input")) continue;
        SCOPED_TRACE(name);
        const auto [body, prompt] = sam2_case(spec);
        const json r = body_of(post_json(c, base + "/predict", body));
        expect_same_masks(r, predictor_->predict(prompt));
        const Tensor iou = load_npy(sam2_path("predict/" + name + "/iou.npy"));
        ASSERT_EQ(r["scores"].size(), static_cast<size_t>(iou.numel()));
        for (int64_t k = 0; k < iou.numel(); ++k) EXPECT_NEAR(r["scores"][static_cast<size_t>(k)].get<float>(), iou[k], 1e-5);
        ++cases;
    }
    EXPECT_EQ(cases, 5u);

    // Refinement: the best candidate's logits (a handle) as the mask input of the next prompt.
    const json first = body_of(post_json(c, base + "/predict", {{"points", {{990, 540}}}, {"labels", {1}}, {"multimask", true}}));
    Prompt p;
    p.point_coords = {{990, 540}};
    p.point_labels = {1};
    const Prediction want = predictor_->predict(p);
    const int best = first["best"];
    const int64_t L = want.low_res_logits.dim(-1);
    EXPECT_EQ(L, 64);
    const json second = body_of(post_json(c, base + "/predict", {{"points", {{990, 540}, {300, 900}}}, {"labels", {1, 0}},
                                                                 {"mask_input", first["logits"]}, {"multimask", false}}));
    Prompt p2;
    p2.point_coords = {{990, 540}, {300, 900}};
    p2.point_labels = {1, 0};
    p2.multimask_output = false;
    p2.mask_input = Tensor({1, L, L});
    std::copy_n(want.low_res_logits.data() + best * L * L, L * L, p2.mask_input.data());
    expect_same_masks(second, predictor_->predict(p2));
}

// The page's path: the low-res logits in binary with SAM 2's geometry (no aspect-keeping crop:
// low_size = img_size = input_h = input_w = 64), upsampling exactly to the predict masks.
TEST_F(Sam2Server, ClickAnswersLowResLogitsThatUpsampleToThePredictMasks) {
    auto c = client();
    const std::string base = upload_truck(c);
    const auto [prompt, p] = sam2_case(sam2_manifest()["predict"]["points_box"]);
    for (const bool multimask : {true, false}) {
        SCOPED_TRACE(multimask);
        json body = prompt;
        body["multimask"] = multimask;
        ClickAnswer a = parse_click(post_json(c, base + "/click", body));
        ASSERT_TRUE(a.head.is_object());
        const int M = multimask ? 3 : 1;
        EXPECT_EQ(a.head["version"], 1);
        EXPECT_EQ(a.head["num_masks"], M);
        EXPECT_EQ(a.head["low_size"], 64);
        EXPECT_EQ(a.head["img_size"], 64);
        EXPECT_EQ(a.head["input_h"], 64);
        EXPECT_EQ(a.head["input_w"], 64);
        EXPECT_EQ(a.head["rows"], 64);
        EXPECT_EQ(a.head["cols"], 64);
        EXPECT_EQ(a.head["height"], 1200);
        EXPECT_EQ(a.head["width"], 1800);
        EXPECT_EQ(a.head["threshold"], 0.0);

        // The logits are the predictor's low-res logits (clamped to [-32, 32]), bit for bit.
        Prompt q = p;
        q.multimask_output = multimask;
        const Prediction want = predictor_->predict(q);
        ASSERT_EQ(a.logits.size(), static_cast<size_t>(want.low_res_logits.numel()));
        for (size_t i = 0; i < a.logits.size(); ++i) ASSERT_EQ(a.logits[i], want.low_res_logits[static_cast<int64_t>(i)]) << i;

        body["multimask"] = multimask;
        const json full = body_of(post_json(c, base + "/predict", body));
        ASSERT_EQ(full["masks"].size(), static_cast<size_t>(M));
        EXPECT_EQ(a.head["best"], full["best"]);
        for (int k = 0; k < M; ++k) {
            SCOPED_TRACE(k);
            EXPECT_EQ(a.head["scores"][static_cast<size_t>(k)], full["scores"][static_cast<size_t>(k)]);
            const std::vector<float> logits = upsample_click(a, k);
            const std::vector<uint8_t> mask = decode_mask(full["masks"][static_cast<size_t>(k)]);
            ASSERT_EQ(logits.size(), mask.size());
            size_t differ = 0, area = 0;
            for (size_t i = 0; i < mask.size(); ++i) {
                differ += (logits[i] > 0.0f ? 1 : 0) != mask[i];
                area += mask[i];
            }
            EXPECT_EQ(differ, 0u) << "of " << area << " mask pixels";
            EXPECT_GT(area, 0u);
        }
    }
    // A handle's logits are the model's size; the errors name the field.
    expect_error(post_json(c, base + "/click", {{"points", {{500, 375}}}}), 400, "point_labels");
    expect_error(post_json(c, base + "/click", {{"mask_input", "m999999"}}), 400, "mask_input");
}

// "Segment everything" with SAM 2's options (the fixture's parameters, use_m2m and single-mask
// output with crops included): the records of Sam2AutomaticMaskGenerator::generate (which encodes
// the whole image itself, where the server reuses the upload's features).
TEST_F(Sam2Server, EverythingMatchesTheGenerator) {
    auto c = client();
    const std::string bytes = test::read_file(test::data_path("images/synthetic.png"));
    const std::string path = "/api/images/" + upload(c, bytes)["id"].get<std::string>() + "/everything";
    const Image image = decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "synthetic");
    for (const char* name : {"synthetic_grid5", "synthetic_m2m", "synthetic_single_crops"}) {
        SCOPED_TRACE(name);
        json params = json::parse(test::read_file(sam2_path(std::string("amg/") + name + ".json")))["params"];
        params.erase("image");
        const json r = body_of(post_json(c, path, params));
        ASSERT_TRUE(r.contains("records")) << r.dump().substr(0, 300);

        Sam2AmgOptions o = server::parse_sam2_amg_options(params);
        Sam2AutomaticMaskGenerator gen(sam2_model(), o);
        const std::vector<MaskRecord> want = gen.generate(image);
        ASSERT_EQ(r["records"].size(), want.size());
        EXPECT_GT(want.size(), 0u);
        for (size_t i = 0; i < want.size(); ++i) {
            const json& got = r["records"][i];
            EXPECT_EQ(got["segmentation"]["counts"], want[i].coco_counts) << i;
            EXPECT_EQ(got["segmentation"]["size"], json({173, 301}));
            EXPECT_EQ(got["area"], want[i].area) << i;
            EXPECT_EQ(got["predicted_iou"].get<double>(), want[i].predicted_iou) << i;
            EXPECT_EQ(got["stability_score"].get<double>(), want[i].stability_score) << i;
            EXPECT_EQ(got["crop_box"], json(want[i].crop_box)) << i;
        }
    }
    // SAM 2's own fields are checked as SAM's are; SAM's generator refuses them.
    expect_error(post_json(c, path, {{"use_m2m", "yes"}}), 400, "use_m2m");
    expect_error(post_json(c, path, {{"multimask_output", 1}}), 400, "multimask_output");
    expect_error(post_json(c, path, {{"points_per_side", 1000}}), 400, "points_per_side");
    EXPECT_THROW(server::parse_amg_options({{"use_m2m", true}}), InputError);
}

// Clicks on one SAM 2 image from several threads while another image is uploaded and encoded:
// every answer is the serial answer, bit for bit (Sam2ImagePredictor::predict is const and the
// encoder takes one image at a time).
TEST_F(Sam2Server, ConcurrentClicksGiveTheSerialAnswer) {
    auto c = client();
    const std::string base = upload_truck(c);
    const json prompt = {{"points", {{990, 540}}}, {"labels", {1}}, {"multimask", true}};
    const ClickAnswer reference = parse_click(post_json(c, base + "/click", prompt));
    ASSERT_TRUE(reference.head.is_object());
    std::atomic<int> failures{0}, done{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            auto cc = server_->client();
            for (int i = 0; i < 6; ++i) {
                const ClickAnswer a = parse_click(post_json(cc, base + "/click", prompt));
                if (!a.head.is_object() || a.logits != reference.logits || a.head["scores"] != reference.head["scores"])
                    ++failures;
                ++done;
            }
        });
    threads.emplace_back([&] {
        auto cc = server_->client();
        auto r = cc.Post("/api/images", test::read_file(test::data_path("images/dog.png")), "application/octet-stream");
        if (!r || r->status != 200) ++failures;
    });
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(done.load(), 24);
}

}  // namespace
}  // namespace sam
