// `sam annotate`: the project store in-process (versions, resume, labels), then the built binary
// on a free loopback port with the tiny model, every route and error with httplib::Client, and
// kill -9 in the middle of saves.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include "annotate/project.h"
#include "postprocess.h"
#include "sam/image.h"
#include "sam/rle.h"
#include "server_process.h"
#include "test_util.h"

namespace sam {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A folder of three small images (copies of the test images) in a fresh temporary folder.
struct Workspace {
    std::string dir, images;
    Workspace() {
        dir = (fs::temp_directory_path() /
               ("sam_test_annotate_" + std::to_string(getpid()) + "_" + std::to_string(std::random_device{}())))
                  .string();
        images = dir + "/images";
        fs::create_directories(images);
        for (const char* name : {"dog.jpg", "groceries.png", "truck.png"})
            fs::copy_file(test::data_path(std::string("images/") + name), images + "/" + name);
    }
    ~Workspace() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

annotate::AnnotationObject square(int h, int w, const std::string& label, int x0, int y0, int side) {
    std::vector<uint8_t> m(size_t(h) * w, 0);
    for (int y = y0; y < std::min(h, y0 + side); ++y)
        for (int x = x0; x < std::min(w, x0 + side); ++x) m[size_t(y) * w + x] = 1;
    annotate::AnnotationObject o;
    o.label = label;
    o.rle = rle_encode(m.data(), h, w);
    o.source = "clicks";
    return o;
}

TEST(AnnotateProject, SavesResumeAndRefuseAStaleVersion) {
    Workspace ws;
    const std::string path = ws.dir + "/p.json";
    {
        annotate::Project p(path, ws.images, {"cat", "dog"});
        EXPECT_EQ(p.image_names().size(), 3u);
        annotate::ImageAnnotations next;
        next.width = 20;
        next.height = 10;
        next.status = annotate::ImageStatus::InProgress;
        next.objects = {square(10, 20, "cat", 1, 1, 4)};
        const auto saved = p.save_image("dog.jpg", 0, next);
        EXPECT_EQ(saved.version, 1);
        EXPECT_GT(saved.objects[0].id, 0);
        // A second tab still on version 0.
        try {
            p.save_image("dog.jpg", 0, next);
            FAIL() << "a stale version was accepted";
        } catch (const annotate::ConflictError& e) {
            EXPECT_NE(std::string(e.what()).find("changed elsewhere"), std::string::npos) << e.what();
        }
        next.objects.push_back(square(10, 20, "bird", 5, 5, 2));
        EXPECT_THROW(p.save_image("dog.jpg", 1, next), InputError);  // not a label
        EXPECT_THROW(p.save_image("cat.jpg", 1, next), annotate::UnknownImageError);
        p.set_current("truck.png");
        EXPECT_THROW(p.set_labels({"dog"}, 0), InputError);  // "cat" is in use
        EXPECT_EQ(p.set_labels({"cat", "dog", "bird"}, 0), 1);
        EXPECT_THROW(p.set_labels({"cat"}, 0), annotate::ConflictError);
    }
    // Reopened: everything is back, and new labels are added.
    annotate::Project q(path, ws.images, {"fish"});
    EXPECT_EQ(q.state().current, "truck.png");
    EXPECT_EQ(q.state().labels, (std::vector<std::string>{"cat", "dog", "bird", "fish"}));
    const auto r = q.image("dog.jpg");
    EXPECT_EQ(r.version, 1);
    ASSERT_EQ(r.objects.size(), 1u);
    EXPECT_EQ(r.objects[0].rle, square(10, 20, "cat", 1, 1, 4).rle);
    EXPECT_EQ(q.image("truck.png").version, 0);
    // Another images folder is refused.
    EXPECT_THROW(annotate::Project(path, ws.dir, {}), Error);
}

TEST(AnnotateProject, ConcurrentSavesFromThreadsLoseNothing) {
    Workspace ws;
    annotate::Project p(ws.dir + "/p.json", ws.images, {"cat"});
    std::vector<std::thread> threads;
    std::atomic<int> saved{0}, conflicts{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 20; ++i) {
                auto cur = p.image("dog.jpg");
                cur.width = 8;
                cur.height = 8;
                cur.objects.push_back(square(8, 8, "cat", i % 8, 0, 1));
                try {
                    p.save_image("dog.jpg", cur.version, cur);
                    ++saved;
                } catch (const annotate::ConflictError&) {
                    ++conflicts;
                }
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(saved + conflicts, 80);
    const auto r = annotate::Project(ws.dir + "/p.json").image("dog.jpg");
    EXPECT_EQ(r.version, saved.load());
    EXPECT_EQ(static_cast<int>(r.objects.size()), saved.load());  // each save added one to the last
}

// The built `sam annotate` on the workspace's folder and project, killed (SIGKILL) at the end.
class AnnotateProcess : public test::ServerProcess {
  public:
    explicit AnnotateProcess(const Workspace& ws, const std::vector<std::string>& extra = {})
        : test::ServerProcess(annotate_args(ws, extra), ws.dir + "/server_" + std::to_string(++starts_) + ".log") {}
    ~AnnotateProcess() { kill9(); }
    httplib::Client client() const { return test::ServerProcess::client(60); }

  private:
    static std::vector<std::string> annotate_args(const Workspace& ws, const std::vector<std::string>& extra) {
        std::vector<std::string> args = {"annotate", "--checkpoint", test::data_path("sam_tiny.pth"),
                                         "--config", test::data_path("config.json"), "--images", ws.images,
                                         "--project", ws.dir + "/project.json", "--labels", "cat,dog",
                                         "--port", "0", "--threads", "2"};
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    }
    static inline int starts_ = 0;
};

json parse(const httplib::Result& r) {
    if (!r) return json{{"error", "no response"}};
    return json::parse(r->body, nullptr, false);
}

int status(const httplib::Result& r) { return r ? r->status : -1; }

TEST(AnnotateServer, EveryRouteAndItsErrors) {
    Workspace ws;
    AnnotateProcess server(ws);
    auto c = server.client();
    // The project: three new images, the labels of --labels.
    json p = parse(c.Get("/api/project"));
    ASSERT_EQ(p["images"].size(), 3u) << p.dump();
    EXPECT_EQ(p["labels"], (json{"cat", "dog"}));
    EXPECT_EQ(p["counts"]["new"], 3);
    // The page and the image file.
    auto page = c.Get("/");
    ASSERT_EQ(status(page), 200);
    EXPECT_NE(page->body.find("<html"), std::string::npos);
    auto file = c.Get("/api/images/dog.jpg/file");
    ASSERT_EQ(status(file), 200);
    EXPECT_EQ(file->body, test::read_file(ws.images + "/dog.jpg"));
    EXPECT_EQ(status(c.Get("/api/images/cat.jpg")), 404);
    EXPECT_EQ(status(c.Get("/api/nothing")), 404);
    // One image: its size, no objects, version 1 (the size was recorded).
    json img = parse(c.Get("/api/images/dog.jpg"));
    ASSERT_GT(img["width"].get<int>(), 0) << img.dump();
    const int w = img["width"], h = img["height"];
    // A click.
    json pred = parse(c.Post("/api/images/dog.jpg/predict",
                             json{{"points", {{w / 2, h / 2}}}, {"labels", {1}}}.dump(), "application/json"));
    ASSERT_TRUE(pred.contains("segmentation")) << pred.dump();
    EXPECT_EQ(pred["segmentation"]["size"], (json{h, w}));
    EXPECT_TRUE(pred["logits"].is_string());
    // Refined with a second click and the first answer's logits; a box.
    json pred2 = parse(c.Post("/api/images/dog.jpg/predict",
                              json{{"points", {{w / 2, h / 2}, {1, 1}}}, {"labels", {1, 0}}, {"mask_input", pred["logits"]}}.dump(),
                              "application/json"));
    EXPECT_TRUE(pred2.contains("segmentation")) << pred2.dump();
    EXPECT_EQ(pred2["embedding"], "memory");
    EXPECT_EQ(status(c.Post("/api/images/dog.jpg/predict", json{{"box", {1, 1, w - 2, h - 2}}}.dump(), "application/json")), 200);
    // Prompt errors name the field.
    auto bad = c.Post("/api/images/dog.jpg/predict", json{{"points", {{1, 1}}}, {"labels", {7}}}.dump(), "application/json");
    EXPECT_EQ(status(bad), 400);
    EXPECT_NE(parse(bad)["error"].get<std::string>().find("label"), std::string::npos);
    EXPECT_EQ(status(c.Post("/api/images/dog.jpg/predict", "{", "application/json")), 400);
    EXPECT_EQ(status(c.Post("/api/images/dog.jpg/predict", "{}", "text/plain")), 415);
    // Accept it with a label: saved, version + 1.
    json obj = {{"label", "cat"}, {"segmentation", pred["segmentation"]}, {"source", "clicks"}};
    json saved = parse(c.Put("/api/images/dog.jpg",
                             json{{"version", img["version"]}, {"status", "in_progress"}, {"objects", {obj}}}.dump(),
                             "application/json"));
    ASSERT_EQ(saved["version"], img["version"].get<int>() + 1) << saved.dump();
    EXPECT_GT(saved["objects"][0]["id"].get<int>(), 0);
    // The other tab, on the old version: 409 with a clear message.
    auto conflict = c.Put("/api/images/dog.jpg", json{{"version", img["version"]}, {"status", "done"}, {"objects", json::array()}}.dump(),
                          "application/json");
    EXPECT_EQ(status(conflict), 409);
    EXPECT_NE(parse(conflict)["error"].get<std::string>().find("reload"), std::string::npos);
    // Bad saves: a label not in the project, a wrong mask size, a bad status.
    obj["label"] = "bird";
    EXPECT_EQ(status(c.Put("/api/images/dog.jpg", json{{"version", saved["version"]}, {"status", "done"}, {"objects", {obj}}}.dump(),
                           "application/json")),
              400);
    obj["label"] = "cat";
    obj["segmentation"]["size"] = {3, 3};
    EXPECT_EQ(status(c.Put("/api/images/dog.jpg", json{{"version", saved["version"]}, {"status", "done"}, {"objects", {obj}}}.dump(),
                           "application/json")),
              400);
    EXPECT_EQ(status(c.Put("/api/images/dog.jpg", json{{"version", saved["version"]}, {"status", "finished"}}.dump(), "application/json")),
              400);
    obj["segmentation"] = pred["segmentation"];
    obj["point_coords"] = {{1, 2}};
    obj["point_labels"] = {1, 0};
    auto mismatch = c.Put("/api/images/dog.jpg", json{{"version", saved["version"]}, {"status", "done"}, {"objects", {obj}}}.dump(),
                          "application/json");
    EXPECT_EQ(status(mismatch), 400);
    EXPECT_NE(parse(mismatch)["error"].get<std::string>().find("objects[0].point_labels"), std::string::npos) << parse(mismatch);
    // Labels: a stale version is refused, a label in use cannot go.
    EXPECT_EQ(status(c.Put("/api/labels", json{{"labels", {"cat", "dog", "bird"}}, {"version", 99}}.dump(), "application/json")), 409);
    EXPECT_EQ(status(c.Put("/api/labels", json{{"labels", {"dog"}}, {"version", p["labels_version"]}}.dump(), "application/json")), 400);
    EXPECT_EQ(status(c.Put("/api/labels", json{{"labels", {"cat", "dog", "bird"}}, {"version", p["labels_version"]}}.dump(),
                           "application/json")),
              200);
    // Current image.
    EXPECT_EQ(status(c.Put("/api/current", json{{"name", "groceries.png"}}.dump(), "application/json")), 200);
    EXPECT_EQ(status(c.Put("/api/current", json{{"name", "nope.png"}}.dump(), "application/json")), 404);
    // Propose on one image as a job, with a small grid; poll it to the end.
    json job = parse(c.Post("/api/propose", json{{"images", {"truck.png"}}, {"options", {{"points_per_side", 4}, {"pred_iou_thresh", 0.0}, {"stability_score_thresh", 0.0}}}}.dump(),
                            "application/json"));
    ASSERT_TRUE(job.contains("job")) << job.dump();
    json js;
    for (int i = 0; i < 600; ++i) {
        js = parse(c.Get("/api/jobs/" + std::to_string(job["job"].get<int>())));
        if (js["state"] == "done" || js["state"] == "failed") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(js["state"], "done") << js.dump();
    EXPECT_EQ(js["images_done"], 1);
    json truck = parse(c.Get("/api/images/truck.png"));
    EXPECT_GT(truck["proposals"].size(), 0u) << truck.dump().substr(0, 300);
    EXPECT_EQ(status(c.Get("/api/jobs/12345")), 404);
    EXPECT_EQ(status(c.Post("/api/propose", json{{"images", {"nope.png"}}}.dump(), "application/json")), 404);
    EXPECT_EQ(status(c.Post("/api/propose", json{{"options", {{"points_per_side", -1}}}}.dump(), "application/json")), 400);
    // Export from the page.
    json ex = parse(c.Post("/api/export", json{{"format", "coco"}}.dump(), "application/json"));
    ASSERT_TRUE(ex.contains("path")) << ex.dump();
    const json coco = json::parse(test::read_file(ex["path"]));
    EXPECT_EQ(coco["annotations"].size(), 1u);
    EXPECT_EQ(coco["categories"].size(), 3u);
    auto download = c.Get("/api/export/coco");
    ASSERT_EQ(status(download), 200);
    EXPECT_EQ(json::parse(download->body)["annotations"].size(), 1u);
    EXPECT_EQ(status(c.Post("/api/export", json{{"format", "voc"}}.dump(), "application/json")), 400);
    // Host and Origin checks as in `sam serve`.
    httplib::Headers evil = {{"Origin", "http://evil.example"}};
    EXPECT_EQ(status(c.Post("/api/export", evil, json{{"format", "coco"}}.dump(), "application/json")), 403);
    // Counts follow the statuses.
    p = parse(c.Get("/api/project"));
    EXPECT_EQ(p["counts"]["in_progress"], 2) << p.dump();
    EXPECT_EQ(p["current"], "groceries.png");
}

TEST(AnnotateServer, KilledDuringSavesLosesAtMostTheSaveInFlight) {
    Workspace ws;
    std::vector<uint8_t> sq(size_t(64) * 64, 0);
    int64_t acknowledged = 0;
    {
        AnnotateProcess server(ws);
        auto c = server.client();
        json img = parse(c.Get("/api/images/groceries.png"));
        const int w = img["width"], h = img["height"];
        int64_t version = img["version"];
        std::atomic<bool> stop{false};
        std::thread killer([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(400 + std::random_device{}() % 400));
            server.kill9();
        });
        // Saves with ever more objects (each large: the whole image), until the server dies.
        json objects = json::array();
        std::vector<uint8_t> full(size_t(h) * w, 1);
        const Rle all = rle_encode(full.data(), h, w);
        for (int i = 0; i < 100000; ++i) {
            objects.push_back({{"label", i % 2 ? "cat" : "dog"},
                               {"segmentation", {{"size", {h, w}}, {"counts", rle_to_coco_string(all)}}}});
            auto r = c.Put("/api/images/groceries.png", json{{"version", version}, {"status", "in_progress"}, {"objects", objects}}.dump(),
                           "application/json");
            if (!r || r->status != 200) break;
            version = parse(r)["version"];
            acknowledged = static_cast<int64_t>(objects.size());
        }
        killer.join();
    }
    ASSERT_GT(acknowledged, 0);
    // Restarted: every acknowledged save is there, the one in flight perhaps; the files parse.
    AnnotateProcess again(ws);
    json img = parse(again.client().Get("/api/images/groceries.png"));
    ASSERT_TRUE(img.contains("objects")) << img.dump() << again.log();
    const int64_t n = static_cast<int64_t>(img["objects"].size());
    EXPECT_TRUE(n == acknowledged || n == acknowledged + 1) << n << " objects, " << acknowledged << " acknowledged";
    for (const auto& e : fs::directory_iterator(ws.dir + "/project.images"))
        EXPECT_EQ(e.path().filename().string().find(".sam-tmp"), std::string::npos) << "a temporary was left";
}

// A click's binary answer (apps/server/click.h): its header, and candidate k upsampled and
// thresholded at full resolution from the rows x cols sent (the rest of the low-res grid NaN:
// a pixel that read it would differ), as COCO RLE.
struct ClickAnswer {
    json head;
    std::vector<float> logits;  // num_masks x rows x cols
    std::string timing, embedding;
};

ClickAnswer parse_click(const httplib::Result& r) {
    ClickAnswer a;
    EXPECT_EQ(status(r), 200) << (r ? r->body.substr(0, 300) : "no response");
    if (status(r) != 200) return a;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/octet-stream");
    a.timing = r->get_header_value("Server-Timing");
    a.embedding = r->get_header_value("X-Sam-Embedding");
    const std::string& b = r->body;
    if (b.size() < 8 || b.substr(0, 4) != "SAMc") {
        ADD_FAILURE() << "not a click answer: " << b.substr(0, 100);
        return a;
    }
    uint32_t n = 0;
    for (size_t i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<uint8_t>(b[4 + i])) << (8 * i);
    a.head = json::parse(b.substr(8, n), nullptr, /*allow_exceptions=*/false);
    const size_t floats = a.head["num_masks"].get<size_t>() * a.head["rows"].get<size_t>() * a.head["cols"].get<size_t>();
    EXPECT_EQ(b.size(), 8 + size_t{n} + floats * sizeof(float));
    a.logits.resize(std::min(floats, (b.size() - 8 - n) / sizeof(float)));
    std::memcpy(a.logits.data(), b.data() + 8 + n, a.logits.size() * sizeof(float));
    return a;
}

std::string upsampled_rle(const ClickAnswer& a, int k) {
    const int S = a.head["low_size"], rows = a.head["rows"], cols = a.head["cols"], h = a.head["height"], w = a.head["width"];
    std::vector<float> low(size_t(S) * S, std::nanf(""));
    for (int y = 0; y < rows; ++y) std::copy_n(a.logits.data() + (size_t(k) * rows + y) * cols, cols, low.data() + size_t(y) * S);
    const MaskPostprocessor post(S, a.head["img_size"], a.head["input_h"], a.head["input_w"], h, w);
    std::vector<uint8_t> mask(size_t(h) * w);
    post.binary(low.data(), mask.data(), a.head["threshold"].get<float>());
    return rle_to_coco_string(rle_encode(mask.data(), h, w));
}

// The workspace's click route: the low-res logits of the best candidate (of 3), which, upsampled
// as the page does it, is the predict route's full-resolution mask; refinement by its handle;
// errors.
TEST(AnnotateServer, ClickAnswersLowResLogitsThatUpsampleToThePredictMask) {
    Workspace ws;
    AnnotateProcess server(ws);
    auto c = server.client();
    const json click = {{"points", {{400, 260}}}, {"labels", {1}}, {"multimask", true}};
    const ClickAnswer a = parse_click(c.Post("/api/images/dog.jpg/click", click.dump(), "application/json"));
    ASSERT_EQ(a.head["num_masks"], 1) << a.head.dump();
    EXPECT_EQ(a.head["height"], 534);
    EXPECT_EQ(a.head["width"], 800);
    EXPECT_EQ(a.head["logits"].size(), 1u);
    EXPECT_EQ(a.head["best"], 0);
    EXPECT_LT(a.head["rows"].get<int>(), a.head["low_size"].get<int>());  // only the rows the image covers
    EXPECT_EQ(a.embedding, "encoded");
    for (const char* phase : {"embedding;dur=", "decoder;dur=", "encode;dur=", "total;dur="})
        EXPECT_NE(a.timing.find(phase), std::string::npos) << a.timing;
    json full = parse(c.Post("/api/images/dog.jpg/predict", click.dump(), "application/json"));
    ASSERT_TRUE(full.contains("segmentation")) << full.dump();
    EXPECT_EQ(upsampled_rle(a, 0), full["segmentation"]["counts"]);
    EXPECT_EQ(full["score"].get<float>(), a.head["scores"][0].get<float>());  // the best of the 3
    // Refined: a second point and the best candidate's logits, on both routes.
    const json refine = {{"points", {{400, 260}, {100, 80}}}, {"labels", {1, 0}}, {"multimask", false},
                         {"mask_input", a.head["logits"][0]}};
    const ClickAnswer a2 = parse_click(c.Post("/api/images/dog.jpg/click", refine.dump(), "application/json"));
    ASSERT_EQ(a2.head["num_masks"], 1) << a2.head.dump();
    EXPECT_EQ(a2.embedding, "memory");
    json full2 = parse(c.Post("/api/images/dog.jpg/predict", refine.dump(), "application/json"));
    ASSERT_TRUE(full2.contains("segmentation")) << full2.dump();
    EXPECT_EQ(upsampled_rle(a2, 0), full2["segmentation"]["counts"]);
    // JSON answers are not compressed for a browser that accepts Brotli (cpp-httplib's Brotli
    // took 10x the decoder's time), nor the binary one.
    const httplib::Headers browser = {{"Accept-Encoding", "gzip, deflate, br, zstd"}};
    auto plain = c.Post("/api/images/dog.jpg/predict", browser, click.dump(), "application/json");
    ASSERT_EQ(status(plain), 200);
    EXPECT_FALSE(plain->has_header("Content-Encoding")) << plain->get_header_value("Content-Encoding");
    EXPECT_EQ(parse(plain)["segmentation"], full["segmentation"]);
    auto binary = c.Post("/api/images/dog.jpg/click", browser, click.dump(), "application/json");
    ASSERT_EQ(status(binary), 200);
    EXPECT_FALSE(binary->has_header("Content-Encoding"));
    // Errors as JSON, naming the field.
    auto unknown = c.Post("/api/images/dog.jpg/click", json{{"points", {{1, 1}}}, {"labels", {1}}, {"mask_input", "m999999"}}.dump(),
                          "application/json");
    EXPECT_EQ(status(unknown), 400);
    EXPECT_NE(parse(unknown)["error"].get<std::string>().find("mask_input"), std::string::npos) << unknown->body;
    auto bad = c.Post("/api/images/dog.jpg/click", json{{"points", {{1, 1}}}, {"labels", {7}}}.dump(), "application/json");
    EXPECT_EQ(status(bad), 400);
    EXPECT_NE(parse(bad)["error"].get<std::string>().find("label"), std::string::npos) << bad->body;
    EXPECT_EQ(status(c.Post("/api/images/cat.jpg/click", click.dump(), "application/json")), 404);
    EXPECT_EQ(status(c.Post("/api/images/dog.jpg/click", "{", "application/json")), 400);
    EXPECT_EQ(status(c.Post("/api/images/dog.jpg/click", click.dump(), "text/plain")), 415);
    // The page and the script it shares with `sam serve`'s.
    auto page = c.Get("/");
    ASSERT_EQ(status(page), 200);
    EXPECT_NE(page->body.find("src=\"mask.js\""), std::string::npos);
    auto shared = c.Get("/mask.js");
    ASSERT_EQ(status(shared), 200);
    EXPECT_NE(shared->body.find("function upsampleMask"), std::string::npos);
}

// --web-dir: the page from a folder (web/annotate), and the script it shares with `sam serve`'s
// page from the folder above (web/mask.js), byte for byte.
TEST(AnnotateServer, WebDirServesThePageAndTheSharedScript) {
    Workspace ws;
    const std::string web = std::string(SAM_TEST_DATA) + "/../../web";
    AnnotateProcess server(ws, {"--web-dir", web + "/annotate"});
    auto c = server.client();
    auto app = c.Get("/app.js");
    ASSERT_EQ(status(app), 200);
    EXPECT_EQ(app->body, test::read_file(web + "/annotate/app.js"));
    auto shared = c.Get("/mask.js");
    ASSERT_EQ(status(shared), 200);
    EXPECT_EQ(shared->body, test::read_file(web + "/mask.js"));
    EXPECT_EQ(status(c.Get("/missing.js")), 404);
}

TEST(AnnotateServer, EmbeddingsAreCachedOnDiskByContent) {
    Workspace ws;
    {
        AnnotateProcess server(ws);
        auto c = server.client();
        json pred = parse(c.Post("/api/images/dog.jpg/predict", json{{"points", {{5, 5}}}, {"labels", {1}}}.dump(), "application/json"));
        EXPECT_EQ(pred["embedding"], "encoded") << pred.dump();
    }
    size_t cached = 0;
    for (const auto& e : fs::directory_iterator(ws.dir + "/project.cache")) cached += e.path().extension() == ".npy";
    EXPECT_GE(cached, 1u);
    AnnotateProcess server(ws);
    json pred = parse(server.client().Post("/api/images/dog.jpg/predict", json{{"points", {{5, 5}}}, {"labels", {1}}}.dump(),
                                           "application/json"));
    EXPECT_EQ(pred["embedding"], "disk") << pred.dump();
}

TEST(AnnotateServer, ProposeAllAndImportAtStart) {
    Workspace ws;
    std::ofstream(ws.dir + "/in.json") << json{
        {"images", {{{"id", 7}, {"file_name", "dog.jpg"}, {"width", 800}, {"height", 534}}}},
        {"categories", {{{"id", 3}, {"name", "bird"}}}},
        {"annotations", {{{"id", 1}, {"image_id", 7}, {"category_id", 3}, {"segmentation", {{10, 10, 60, 10, 60, 40, 10, 40}}}}}}}.dump();
    AnnotateProcess server(ws, {"--import-coco", ws.dir + "/in.json"});
    auto c = server.client();
    json dog = parse(c.Get("/api/images/dog.jpg"));
    ASSERT_EQ(dog["objects"].size(), 1u) << dog.dump().substr(0, 300);
    EXPECT_EQ(dog["objects"][0]["label"], "bird");
    EXPECT_EQ(dog["objects"][0]["source"], "import");
    EXPECT_EQ(rle_area(rle_from_coco_string(dog["objects"][0]["segmentation"]["counts"], 534, 800)), 50 * 30);
    EXPECT_EQ(parse(c.Get("/api/project"))["labels"], (json{"cat", "dog", "bird"}));
    // Every image of the folder, in the background.
    json job = parse(c.Post("/api/propose", json{{"images", "all"}, {"options", {{"points_per_side", 2}, {"pred_iou_thresh", 0.0}, {"stability_score_thresh", 0.0}}}}.dump(),
                            "application/json"));
    json js;
    for (int i = 0; i < 1200; ++i) {
        js = parse(c.Get("/api/jobs/" + std::to_string(job["job"].get<int>())));
        if (js["state"] == "done" || js["state"] == "failed") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(js["state"], "done") << js.dump();
    EXPECT_EQ(js["images_done"], 3);
    for (const auto& im : parse(c.Get("/api/project"))["images"]) EXPECT_EQ(im["status"], "in_progress") << im.dump();
    // The imported object is still there, the proposals beside it.
    dog = parse(c.Get("/api/images/dog.jpg"));
    EXPECT_EQ(dog["objects"].size(), 1u);
}

TEST(AnnotateCli, ExportAndAmgSa1b) {
    Workspace ws;
    {
        annotate::Project p(ws.dir + "/project.json", ws.images, {"cat"});
        annotate::ImageAnnotations next;
        next.width = 10;
        next.height = 10;
        next.objects = {square(10, 10, "cat", 2, 2, 5)};
        p.save_image("dog.jpg", 0, next);
    }
    const std::string sam = SAM_CLI_PATH;
    const std::string log = " 2>" + ws.dir + "/cli.log";
    ASSERT_EQ(std::system((sam + " export --project " + ws.dir + "/project.json --format coco -o " + ws.dir + "/c.json" + log).c_str()), 0)
        << test::read_file(ws.dir + "/cli.log");
    EXPECT_EQ(json::parse(test::read_file(ws.dir + "/c.json"))["annotations"].size(), 1u);
    for (const char* f : {"yolo", "sa1b", "png"})
        EXPECT_EQ(std::system((sam + " export --project " + ws.dir + "/project.json -f " + f + " -o " + ws.dir + "/" + f + log).c_str()), 0);
    EXPECT_NE(std::system((sam + " export --project " + ws.dir + "/nope.json -f coco -o x.json" + log).c_str()), 0);
    // sam amg --output-mode sa1b: SA-1B's per-image JSON.
    ASSERT_EQ(std::system((sam + " amg --checkpoint " + test::data_path("sam_tiny.pth") + " --config " + test::data_path("config.json") +
                           " -i " + ws.images + "/dog.jpg -o " + ws.dir + "/amg --output-mode sa1b --points-per-side 4"
                           " --pred-iou-thresh 0 --stability-score-thresh 0" + log).c_str()),
              0)
        << test::read_file(ws.dir + "/cli.log");
    const json j = json::parse(test::read_file(ws.dir + "/amg/dog.json"));
    EXPECT_EQ(j["image"]["file_name"], "dog.jpg");
    for (const char* k : {"image_id", "width", "height"}) EXPECT_TRUE(j["image"][k].is_number_integer()) << k;
    ASSERT_GT(j["annotations"].size(), 0u);
    for (const auto& a : j["annotations"]) {
        EXPECT_TRUE(a["segmentation"]["counts"].is_string());
        EXPECT_EQ(a["segmentation"]["size"], (json{j["image"]["height"], j["image"]["width"]}));
        EXPECT_EQ(a["bbox"].size(), 4u);
        EXPECT_EQ(a["crop_box"].size(), 4u);
        EXPECT_EQ(a["point_coords"].size(), 1u);
        for (const char* k : {"id", "area", "predicted_iou", "stability_score"}) EXPECT_TRUE(a[k].is_number()) << k;
    }
}

}  // namespace
}  // namespace sam
