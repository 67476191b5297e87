// `sam serve`'s video routes (apps/server/video_routes.h) end to end: the built binary on the
// SAM 2 video fixture model (tests/data/sam2_video) and a video written at test time (FFV1 in
// RGB, the fixture's 8 frames of 320x240). Every mask the routes give equals, pixel for pixel,
// what Sam2VideoPredictor gives when called directly with the same prompts on the same file, for
// the prompted frames and after propagation (forward, and in reverse from a first prompted frame
// other than 0); hostile and oversized uploads give errors naming the problem; SAM and SAM 2
// checkpoints without video weights answer why not; two sessions driven at once from two threads
// give the serial answers.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "io/checkpoint.h"
#include "sam/error.h"
#include "sam/image.h"
#include "sam/rle.h"
#include "sam/sam2_video.h"
#include "server_process.h"
#include "test_util.h"
#include "video_writer.h"

namespace sam {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string vpath(const std::string& name) { return test::data_path("sam2_video/" + name); }

std::vector<std::string> video_model_args() {
    return {"--checkpoint", vpath("sam2_video.pt"), "--config", test::data_path("sam2/config.json")};
}

// The fixture model with the server's thread count (--threads 2): the same summation order, so
// the same bits.
Sam2Video video_model() {
    static Sam2Video* m = [] {
        Sam2LoadOptions o;
        o.config_path = test::data_path("sam2/config.json");
        return new Sam2Video(Sam2Video::load(vpath("sam2_video.pt"), o).with_execution(ExecutionOptions{2}));
    }();
    return *m;
}

// The test's files, removed when the test program exits.
fs::path temp_dir() {
    static const test::TempDir d("sam_server_video_");
    return d.path;
}

std::vector<Image> fixture_frames() {
    std::vector<Image> frames;
    for (int i = 0; i < 8; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "frames/%05d.jpg", i);
        frames.push_back(read_image(vpath(name)));
    }
    return frames;
}

// The fixture's 8 frames, FFV1 RGB (decodes to the source bit for bit), written once per run.
const std::string& test_video() {
    static const std::string p = [] {
        const std::string path = (temp_dir() / "frames.mkv").string();
        test::write_test_video(path, fixture_frames(), "ffv1", AV_PIX_FMT_0RGB32);
        return path;
    }();
    return p;
}

// `sam serve` with `model` and `extra` flags, its log in the temp folder.
class ServeProcess : public test::ServerProcess {
  public:
    ServeProcess(const std::vector<std::string>& model, const std::vector<std::string>& extra, const std::string& name)
        : test::ServerProcess(args(model, extra), log_path_for(name)) {}
    ~ServeProcess() {
        stop();
        std::error_code ignored;
        fs::remove(log_path(), ignored);
    }

  private:
    static std::vector<std::string> args(const std::vector<std::string>& model, const std::vector<std::string>& extra) {
        std::vector<std::string> a = {"serve"};
        a.insert(a.end(), model.begin(), model.end());
        a.insert(a.end(), {"--host", "127.0.0.1", "--port", "0", "--threads", "2"});
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    static std::string log_path_for(const std::string& name) {
        const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
        const std::string p = (temp_dir() / ("serve_" + name + "_" + std::to_string(now) + ".log")).string();
        fs::remove(p);
        return p;
    }
};

json body_of(const httplib::Result& r) {
    EXPECT_TRUE(r) << "no response: " << httplib::to_string(r.error());
    if (!r) return json();
    EXPECT_EQ(r->get_header_value("Content-Type").rfind("application/json", 0), 0u) << r->body;
    return json::parse(r->body, nullptr, /*allow_exceptions=*/false);
}

json ok_json(const httplib::Result& r) {
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : httplib::to_string(r.error()));
    return body_of(r);
}

void expect_error(const httplib::Result& r, int status, const std::string& needle) {
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, status) << r->body;
    const json j = body_of(r);
    ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string()) << r->body;
    EXPECT_NE(j["error"].get<std::string>().find(needle), std::string::npos) << j["error"];
}

httplib::Result post_json(httplib::Client& c, const std::string& path, const json& body) {
    return c.Post(path.c_str(), body.dump(), "application/json");
}

// The route's masks of a frame equal the predictor's (logits > 0), object by object, with its
// object scores; returns the number of mask pixels.
size_t expect_same_masks(const json& masks, const Sam2VideoFrame& want, const std::string& where) {
    SCOPED_TRACE(where);
    EXPECT_EQ(masks.size(), want.obj_ids.size()) << masks.dump().substr(0, 300);
    if (masks.size() != want.obj_ids.size()) return 0;
    const int H = static_cast<int>(want.logits.dim(1)), W = static_cast<int>(want.logits.dim(2));
    const size_t HW = static_cast<size_t>(H) * static_cast<size_t>(W);
    size_t area = 0;
    for (size_t k = 0; k < masks.size(); ++k) {
        const json& m = masks[k];
        EXPECT_EQ(m["obj_id"], want.obj_ids[k]);
        EXPECT_EQ(m["size"], json({H, W}));
        const std::vector<uint8_t> got = rle_decode(rle_from_coco_string(m["counts"].get<std::string>(), H, W));
        EXPECT_EQ(got.size(), HW);
        if (got.size() != HW) continue;
        size_t differ = 0;
        const float* l = want.logits.data() + k * HW;
        for (size_t i = 0; i < HW; ++i) {
            differ += got[i] != (l[i] > 0.0f ? 1 : 0);
            area += got[i];
        }
        EXPECT_EQ(differ, 0u) << "object " << want.obj_ids[k];
        if (std::isnan(want.object_scores[k]))
            EXPECT_TRUE(m["score"].is_null());
        else
            EXPECT_EQ(m["score"].get<float>(), want.object_scores[k]) << "object " << want.obj_ids[k];
    }
    return area;
}

// A session's prompts, sent to the server and given to the predictor alike.
struct Click {
    int frame, obj;
    std::vector<std::array<float, 2>> points;
    std::vector<int> labels;
    std::optional<std::array<float, 4>> box;
};

json click_body(const Click& c) {
    json b = {{"frame", c.frame}, {"obj_id", c.obj}};
    if (!c.points.empty()) {
        b["points"] = json::array();
        for (const auto& p : c.points) b["points"].push_back({p[0], p[1]});
        b["labels"] = c.labels;
    }
    if (c.box) b["box"] = {(*c.box)[0], (*c.box)[1], (*c.box)[2], (*c.box)[3]};
    return b;
}

// The predictor's frames of `sam track`'s order: forward from the first prompted frame, then in
// reverse from it (without it again).
std::map<int, Sam2VideoFrame> propagate_both_ways(Sam2VideoPredictor& p, int first) {
    std::map<int, Sam2VideoFrame> out;
    p.propagate_in_video([&](const Sam2VideoFrame& f) {
        out[f.frame] = f;
        return true;
    });
    if (first > 0)
        p.propagate_in_video(
            [&](const Sam2VideoFrame& f) {
                if (f.frame != first) out[f.frame] = f;
                return true;
            },
            first, std::nullopt, true);
    return out;
}

std::string upload(httplib::Client& c, const std::string& bytes) {
    const json j = ok_json(c.Post("/api/videos", bytes, "application/octet-stream"));
    return j.value("id", std::string());
}

// Sends the clicks to session `id` and checks each answer against the predictor's; then
// propagates both and checks every frame. Returns "" or the first failure's description (for
// threads, which cannot use ASSERT).
void run_session(httplib::Client& c, const std::string& id, const std::vector<Click>& clicks, Sam2VideoPredictor& want) {
    const std::string base = "/api/videos/" + id;
    int first = 1 << 30;
    for (const Click& k : clicks) {
        const json r = ok_json(post_json(c, base + "/points", click_body(k)));
        const Sam2VideoFrame f = want.add_new_points_or_box(k.frame, k.obj, k.points, k.labels, k.box);
        EXPECT_EQ(r["frame"], k.frame);
        expect_same_masks(r["masks"], f, "points on frame " + std::to_string(k.frame) + ", object " + std::to_string(k.obj));
        first = std::min(first, k.frame);
    }
    const json p = ok_json(post_json(c, base + "/propagate", json::object()));
    const auto frames = propagate_both_ways(want, first);
    EXPECT_EQ(p["frames"], 8);
    EXPECT_EQ(p["reverse"], first);
    size_t area = 0;
    for (const auto& [frame, f] : frames) {
        const json m = ok_json(c.Get((base + "/frames/" + std::to_string(frame) + "/masks").c_str()));
        EXPECT_EQ(m["tracked"], true);
        area += expect_same_masks(m["masks"], f, "propagated frame " + std::to_string(frame));
    }
    EXPECT_EQ(frames.size(), 8u);
    EXPECT_GT(area, 0u);
}

class VideoServer : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        server_ = new ServeProcess(video_model_args(), {"--max-upload-mb", "4", "--max-video-frames", "12", "--video-sessions", "3"},
                                   "video");
    }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }
    void SetUp() override { ASSERT_GT(server_->port(), 0) << "server not running"; }
    httplib::Client client() { return server_->client(); }
    static ServeProcess* server_;
};
ServeProcess* VideoServer::server_ = nullptr;

TEST_F(VideoServer, UploadGivesTheVideoAndItsFrames) {
    auto c = client();
    EXPECT_NE(server_->log().find("with video tracking"), std::string::npos) << server_->log();
    const json j = ok_json(c.Post("/api/videos", test::read_file(test_video()), "application/octet-stream"));
    EXPECT_EQ(j["frames"], 8);
    EXPECT_EQ(j["width"], 320);
    EXPECT_EQ(j["height"], 240);
    EXPECT_EQ(j["fps"], 25.0);
    const std::string base = "/api/videos/" + j["id"].get<std::string>();
    const json info = ok_json(c.Get(base.c_str()));
    EXPECT_EQ(info["frames"], 8);
    EXPECT_EQ(info["tracked_frames"], 0);
    EXPECT_EQ(info["propagation"]["running"], false);
    // Frames as JPEG at the video's size, close to the source (lossless video, JPEG quality 90).
    const std::vector<Image> src = fixture_frames();
    for (int i : {0, 7}) {
        auto r = c.Get((base + "/frames/" + std::to_string(i) + ".jpg").c_str());
        ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "");
        EXPECT_EQ(r->get_header_value("Content-Type"), "image/jpeg");
        const Image f = decode_image(reinterpret_cast<const uint8_t*>(r->body.data()), r->body.size(), "frame");
        ASSERT_EQ(f.width, 320);
        ASSERT_EQ(f.height, 240);
        double diff = 0;
        for (size_t k = 0; k < f.rgb.size(); ++k) diff += std::abs(int(f.rgb[k]) - int(src[static_cast<size_t>(i)].rgb[k]));
        EXPECT_LT(diff / static_cast<double>(f.rgb.size()), 4.0) << "frame " << i;
    }
    // Before any prompt: no masks, nothing to propagate.
    const json m = ok_json(c.Get((base + "/frames/3/masks").c_str()));
    EXPECT_EQ(m["tracked"], false);
    EXPECT_EQ(m["masks"], json::array());
    expect_error(post_json(c, base + "/propagate", json::object()), 400, "nothing to propagate");
    // Frames and ids that do not exist.
    expect_error(c.Get((base + "/frames/8.jpg").c_str()), 404, "8 frames");
    expect_error(c.Get((base + "/frames/8/masks").c_str()), 404, "8 frames");
    expect_error(c.Get("/api/videos/nope/frames/0.jpg"), 404, "unknown video id");
    expect_error(post_json(c, "/api/videos/nope/points", {{"frame", 0}, {"obj_id", 1}, {"points", {{1, 1}}}, {"labels", {1}}}),
                 404, "unknown video id");
    // The other accepted containers: MP4 (H.264), WebM (VP9), AVI (MJPEG).
    struct Kind {
        const char* name;
        const char* encoder;
        AVPixelFormat pix;
        std::vector<std::pair<const char*, const char*>> options;
    };
    for (const Kind& k : {Kind{"v.mp4", "libx264", AV_PIX_FMT_YUV420P, {{"qp", "0"}, {"preset", "ultrafast"}}},
                          Kind{"v.webm", "libvpx-vp9", AV_PIX_FMT_YUV420P, {{"lossless", "1"}, {"deadline", "realtime"}, {"cpu-used", "8"}}},
                          Kind{"v.avi", "mjpeg", AV_PIX_FMT_YUVJ420P, {}}}) {
        const std::string path = (temp_dir() / k.name).string();
        ASSERT_TRUE(test::write_test_video(path, src, k.encoder, k.pix, k.options)) << k.name;
        const json v = ok_json(c.Post("/api/videos", test::read_file(path), "application/octet-stream"));
        EXPECT_EQ(v["frames"], 8) << k.name;
        EXPECT_EQ(v["width"], 320) << k.name;
    }
    // The page is served.
    auto page = c.Get("/video.html");
    ASSERT_TRUE(page && page->status == 200);
    EXPECT_EQ(page->body, test::read_file(std::string(SAM_TEST_DATA) + "/../../web/video.html"));
    auto js = c.Get("/video.js");
    ASSERT_TRUE(js && js->status == 200);
    EXPECT_EQ(js->body, test::read_file(std::string(SAM_TEST_DATA) + "/../../web/video.js"));
}

// Objects 1 (click) and 2 (box) on frame 2, object 3 (click and negative click) on frame 5:
// propagation runs forward from frame 2 and in reverse from it; then a correcting click, a
// removed object, a second propagation and a reset.
TEST_F(VideoServer, MasksEqualThePredictors) {
    auto c = client();
    const std::string id = upload(c, test::read_file(test_video()));
    Sam2VideoPredictor want(video_model());
    want.init_state(test_video());
    const std::vector<Click> clicks = {
        {2, 1, {{160, 120}}, {1}, std::nullopt},
        {2, 2, {}, {}, std::array<float, 4>{200, 60, 280, 180}},
        {5, 3, {{60, 190}, {100, 150}}, {1, 0}, std::nullopt},
    };
    run_session(c, id, clicks, want);
    const std::string base = "/api/videos/" + id;
    EXPECT_EQ(ok_json(c.Get(base.c_str()))["tracked_frames"], 8);

    // A correcting click on a tracked frame (object 1, frame 6), then propagation again.
    const Click fix{6, 1, {{150, 110}, {40, 40}}, {1, 0}, std::nullopt};
    expect_same_masks(ok_json(post_json(c, base + "/points", click_body(fix)))["masks"],
                      want.add_new_points_or_box(fix.frame, fix.obj, fix.points, fix.labels), "correction");
    // Removing object 2: the frames it had prompts on, as they are now; gone from every frame.
    const json removed = ok_json(post_json(c, base + "/remove", {{"obj_id", 2}}));
    const std::vector<Sam2VideoFrame> updated = want.remove_object(2, true);
    EXPECT_EQ(removed["objects"], json({1, 3}));
    for (const Sam2VideoFrame& f : updated)
        expect_same_masks(ok_json(c.Get((base + "/frames/" + std::to_string(f.frame) + "/masks").c_str()))["masks"], f,
                          "after remove, frame " + std::to_string(f.frame));
    const json after = ok_json(c.Get((base + "/frames/7/masks").c_str()));
    for (const json& m : after["masks"]) EXPECT_NE(m["obj_id"], 2);
    expect_error(post_json(c, base + "/remove", {{"obj_id", 2}}), 400, "2");
    const json p = ok_json(post_json(c, base + "/propagate", json::object()));
    const auto frames = propagate_both_ways(want, 2);
    EXPECT_EQ(p["frames"], 8);
    for (const auto& [frame, f] : frames)
        expect_same_masks(ok_json(c.Get((base + "/frames/" + std::to_string(frame) + "/masks").c_str()))["masks"], f,
                          "second propagation, frame " + std::to_string(frame));

    // Reset: no objects, no masks; the frames stay.
    ok_json(post_json(c, base + "/reset", json::object()));
    EXPECT_EQ(ok_json(c.Get((base + "/frames/4/masks").c_str()))["tracked"], false);
    EXPECT_EQ(ok_json(c.Get(base.c_str()))["tracked_frames"], 0);
    expect_error(post_json(c, base + "/propagate", json::object()), 400, "nothing to propagate");
    auto r = c.Get((base + "/frames/4.jpg").c_str());
    EXPECT_TRUE(r && r->status == 200);
}

TEST_F(VideoServer, BadPromptsNameTheField) {
    auto c = client();
    const std::string base = "/api/videos/" + upload(c, test::read_file(test_video()));
    const std::string points = base + "/points";
    expect_error(post_json(c, points, {{"obj_id", 1}, {"points", {{1, 1}}}, {"labels", {1}}}), 400, "frame");
    expect_error(post_json(c, points, {{"frame", 8}, {"obj_id", 1}, {"points", {{1, 1}}}, {"labels", {1}}}), 400, "frame");
    expect_error(post_json(c, points, {{"frame", 0}, {"obj_id", "a"}, {"points", {{1, 1}}}, {"labels", {1}}}), 400, "obj_id");
    expect_error(post_json(c, points, {{"frame", 0}, {"obj_id", -1}, {"points", {{1, 1}}}, {"labels", {1}}}), 400, "obj_id");
    expect_error(post_json(c, points, {{"frame", 0}, {"obj_id", 1}}), 400, "points");
    expect_error(post_json(c, points, {{"frame", 0}, {"obj_id", 1}, {"points", {{1, 1}}}}), 400, "labels");
    expect_error(post_json(c, points, {{"frame", 0}, {"obj_id", 1}, {"points", {{1e9, 1}}}, {"labels", {1}}}), 400, "points");
    expect_error(post_json(c, points, {{"frame", 0}, {"obj_id", 1}, {"points", {{1, 1}}}, {"labels", {1}}, {"mask_input", "m1"}}),
                 400, "mask_input");
    expect_error(post_json(c, points, {{"frame", 0}, {"obj_id", 1}, {"points", {{1, 1}}}, {"labels", {1}}, {"clear_old_points", 1}}),
                 400, "clear_old_points");
    expect_error(c.Post(points.c_str(), "{\"frame\": 0", "application/json"), 400, "bad JSON");
    expect_error(c.Post(points.c_str(), "frame=0", "text/plain"), 415, "application/json");
    expect_error(post_json(c, base + "/propagate", {{"start", 0}}), 400, "start");
    expect_error(post_json(c, base + "/remove", {{"obj_id", 9}}), 400, "9");
    // None of it reached the predictor: the first real click makes object 1 alone.
    const json ok = ok_json(post_json(c, points, {{"frame", 0}, {"obj_id", 1}, {"points", {{160, 120}}}, {"labels", {1}}}));
    ASSERT_EQ(ok["masks"].size(), 1u);
    EXPECT_EQ(ok["masks"][0]["obj_id"], 1);
}

// Uploads that are not videos of an accepted container, or over a limit: errors naming the
// problem, and the server goes on.
TEST_F(VideoServer, HostileUploadsNameTheProblem) {
    auto c = client();
    expect_error(c.Post("/api/videos", "", "application/octet-stream"), 400, "empty upload");
    std::mt19937 rng(11);
    std::string noise(20000, '\0');
    for (char& ch : noise) ch = static_cast<char>(rng());
    expect_error(c.Post("/api/videos", noise, "application/octet-stream"), 415, "not a supported video");
    expect_error(c.Post("/api/videos", "not a video\n", "application/octet-stream"), 415, "not a supported video");
    // An image is a one-frame video to FFmpeg, but not in an accepted container.
    expect_error(c.Post("/api/videos", test::read_file(test::data_path("images/dog.png")), "application/octet-stream"), 415,
                 "'png_pipe' is not accepted");
    // A playlist that would make FFmpeg open another file is refused by its container.
    expect_error(c.Post("/api/videos", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n/etc/passwd\n#EXT-X-ENDLIST\n",
                        "application/octet-stream"),
                 415, "'hls' is not accepted");
    const std::string ffconcat = "ffconcat version 1.0\nfile '" + test_video() + "'\n";
    expect_error(c.Post("/api/videos", ffconcat, "application/octet-stream"), 415, "'concat' is not accepted");
    // Truncated files: an error naming the upload, or fewer frames; never a crash.
    const std::string whole = test::read_file(test_video());
    for (double keep : {0.02, 0.3, 0.7, 0.97}) {
        auto r = c.Post("/api/videos", whole.substr(0, static_cast<size_t>(static_cast<double>(whole.size()) * keep)),
                        "application/octet-stream");
        ASSERT_TRUE(r) << keep;
        if (r->status == 200)
            EXPECT_LT(body_of(r)["frames"].get<int>(), 8) << keep;
        else
            expect_error(r, 415, "not a supported video");
    }
    // Too many frames (16 > --max-video-frames 12): refused from the container, before decoding.
    std::vector<Image> frames = fixture_frames();
    frames.insert(frames.end(), frames.begin(), frames.end());
    const std::string longer = (temp_dir() / "sixteen.mkv").string();
    ASSERT_TRUE(test::write_test_video(longer, frames, "ffv1", AV_PIX_FMT_0RGB32));
    expect_error(c.Post("/api/videos", test::read_file(longer), "application/octet-stream"), 413, "--max-video-frames");
    // Over --max-upload-mb (4).
    expect_error(c.Post("/api/videos", std::string(5 << 20, 'x'), "application/octet-stream"), 413, "--max-upload-mb");
    // A multipart upload names its field.
    httplib::MultipartFormDataItems items = {{"file", whole, "v.mkv", "video/x-matroska"}};
    expect_error(c.Post("/api/videos", items), 400, "\"video\"");
    items = {{"video", whole, "v.mkv", "video/x-matroska"}};
    EXPECT_EQ(ok_json(c.Post("/api/videos", items))["frames"], 8);
    // Still serving.
    EXPECT_EQ(ok_json(c.Get("/api/health"))["status"], "ok");
}

// Two sessions driven at once from two threads (clicks and propagation each), while a third
// thread reads frames: every answer is the serial answer.
TEST_F(VideoServer, TwoSessionsAtOnceGiveTheSerialAnswers) {
    const std::string bytes = test::read_file(test_video());
    const std::vector<std::vector<Click>> sessions = {
        {{0, 1, {{160, 120}}, {1}, std::nullopt}, {3, 2, {}, {}, std::array<float, 4>{200, 60, 280, 180}}},
        {{4, 7, {{100, 100}, {250, 200}}, {1, 0}, std::nullopt}},
    };
    // The serial answers: a predictor per session, on this thread.
    std::vector<std::string> ids;
    {
        auto c = client();
        for (size_t i = 0; i < sessions.size(); ++i) ids.push_back(upload(c, bytes));
    }
    std::vector<std::thread> threads;
    std::atomic<bool> reading{true};
    std::atomic<int> frames_read{0};
    for (size_t i = 0; i < sessions.size(); ++i)
        threads.emplace_back([&, i] {
            auto c = server_->client();
            Sam2VideoPredictor want(video_model());
            want.init_state(test_video());
            run_session(c, ids[i], sessions[i], want);
        });
    std::thread reader([&] {
        auto c = server_->client();
        while (reading) {
            auto r = c.Get(("/api/videos/" + ids[0] + "/frames/" + std::to_string(frames_read % 8) + ".jpg").c_str());
            if (r && r->status == 200) ++frames_read;
            auto p = c.Get(("/api/videos/" + ids[1]).c_str());
            EXPECT_TRUE(p && p->status == 200);
        }
    });
    for (auto& t : threads) t.join();
    reading = false;
    reader.join();
    EXPECT_GT(frames_read.load(), 0);
}

// While a video is propagated, changes to it are refused at once (409) and its frames, masks and
// progress are still served. The check needs a request to land during the propagation (0.1-0.5 s
// here): a propagation is started up to 8 times until one does.
TEST_F(VideoServer, ChangesDuringAPropagationAreRefused) {
    auto c = client();
    const std::string base = "/api/videos/" + upload(c, test::read_file(test_video()));
    ok_json(post_json(c, base + "/points", {{"frame", 0}, {"obj_id", 1}, {"points", {{160, 120}}}, {"labels", {1}}}));
    int refused = 0;
    for (int attempt = 0; attempt < 8 && refused == 0; ++attempt) {
        std::atomic<bool> finished{false};
        std::thread propagation([&] {
            auto pc = server_->client();
            auto r = post_json(pc, base + "/propagate", json::object());
            EXPECT_TRUE(r && r->status == 200) << (r ? r->body : httplib::to_string(r.error()));
            finished = true;
        });
        while (!finished) {
            const json info = ok_json(c.Get(base.c_str()));
            if (!info["propagation"]["running"].get<bool>()) continue;
            auto points = post_json(c, base + "/points", {{"frame", 1}, {"obj_id", 2}, {"points", {{60, 60}}}, {"labels", {1}}});
            auto again = post_json(c, base + "/propagate", json::object());
            auto reset = post_json(c, base + "/reset", json::object());
            auto frame = c.Get((base + "/frames/2.jpg").c_str());
            auto masks = c.Get((base + "/frames/2/masks").c_str());
            const bool still_running = ok_json(c.Get(base.c_str()))["propagation"]["running"].get<bool>();
            if (points && points->status == 409 && still_running) {
                expect_error(points, 409, "being propagated");
                expect_error(again, 409, "being propagated");
                expect_error(reset, 409, "being propagated");
                EXPECT_TRUE(frame && frame->status == 200);
                EXPECT_TRUE(masks && masks->status == 200);
                ++refused;
            }
            break;
        }
        propagation.join();
    }
    EXPECT_EQ(refused, 1) << "no request landed during a propagation in 8 attempts";
    // Afterwards the video takes changes again; object 2 was never added.
    const json r = ok_json(post_json(c, base + "/points", {{"frame", 1}, {"obj_id", 3}, {"points", {{60, 60}}}, {"labels", {1}}}));
    EXPECT_EQ(r["masks"].size(), 2u);
}

// The predictor's entry for frames its caller decoded (the server's): the frames must be the
// model's size and the video size sane; the errors name the frame and sizes.
TEST(VideoInitStateResized, ChecksItsFrames) {
    Sam2VideoPredictor p(video_model());
    const int S = video_model().image_model().config().image_size;
    Image frame;
    frame.width = frame.height = S;
    frame.rgb.assign(static_cast<size_t>(S) * S * 3, 100);
    Image wrong = frame;
    wrong.width = S + 1;
    wrong.rgb.resize(static_cast<size_t>(S + 1) * S * 3);
    auto error_of = [&](std::vector<Image> frames, int w, int h) -> std::string {
        try {
            p.init_state_resized(std::move(frames), w, h);
        } catch (const InputError& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_NE(error_of({}, 320, 240).find("no frames"), std::string::npos);
    EXPECT_NE(error_of({frame, wrong}, 320, 240).find("frame 1 is " + std::to_string(S + 1)), std::string::npos);
    EXPECT_NE(error_of({frame}, 0, 240).find("0x240"), std::string::npos);
    EXPECT_EQ(error_of({frame, frame}, 320, 240), "");
    EXPECT_EQ(p.num_frames(), 2);
    EXPECT_EQ(p.video_width(), 320);
    EXPECT_EQ(p.video_height(), 240);
}

// A SAM checkpoint, and a SAM 2 checkpoint without the video weights: the image routes work, the
// video routes say why they do not.
TEST(VideoServerModels, WithoutVideoWeightsTheRoutesSayWhy) {
    {
        ServeProcess sam({"--checkpoint", test::data_path("sam_tiny.pth"), "--config", test::data_path("config.json")}, {},
                         "sam1");
        ASSERT_GT(sam.port(), 0);
        auto c = sam.client();
        expect_error(c.Post("/api/videos", test::read_file(test_video()), "application/octet-stream"), 400,
                     "needs a SAM 2 checkpoint");
        expect_error(c.Get("/api/videos/x/frames/0.jpg"), 400, "needs a SAM 2 checkpoint");
        EXPECT_EQ(ok_json(c.Get("/api/health"))["model"], "sam");
    }
    {
        // The video fixture's checkpoint without its memory encoder and memory attention.
        const Checkpoint ckpt = Checkpoint::open(vpath("sam2_video.pt"));
        std::vector<std::pair<std::string, Tensor>> tensors;
        for (const TensorRecord& r : ckpt.records())
            if (r.key.rfind("memory_", 0) != 0 && r.key.rfind("maskmem_", 0) != 0) tensors.emplace_back(r.key, ckpt.tensor(r.key));
        const std::string image_only = (temp_dir() / "sam2_image_only.pt").string();
        write_checkpoint(image_only, tensors);
        ServeProcess sam2({"--checkpoint", image_only, "--config", test::data_path("sam2/config.json")}, {}, "sam2_image");
        ASSERT_GT(sam2.port(), 0);
        auto c = sam2.client();
        expect_error(c.Post("/api/videos", test::read_file(test_video()), "application/octet-stream"), 400, "video weights");
        EXPECT_EQ(ok_json(c.Get("/api/health"))["model"], "sam2");
        // The image routes work.
        auto r = c.Post("/api/images", test::read_file(test::data_path("images/dog.jpg")), "application/octet-stream");
        EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "");
    }
}

// Frames over --max-pixels are refused from the stream's header, before decoding.
TEST(VideoServerModels, FramesOverMaxPixelsAreRefused) {
    ServeProcess s(video_model_args(), {"--max-pixels", "70000"}, "pixels");
    ASSERT_GT(s.port(), 0);
    auto c = s.client();
    expect_error(c.Post("/api/videos", test::read_file(test_video()), "application/octet-stream"), 413, "--max-pixels");
}

}  // namespace
}  // namespace sam
