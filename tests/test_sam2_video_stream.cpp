// Streaming video tracking (sam::Sam2VideoStream): parity with the video predictor frame by frame
// and bounded memory over a long synthetic video.
//
// Parity is bit for bit: the stream runs the predictor's own functions (frame features, the
// prompts' SAM heads, the memory encoder, the memory attention over the same memory bank
// selection) in the same order on the same inputs with one thread, so any difference would be a
// difference in what is computed, not rounding. The golden outputs of the official package
// (tests/data/sam2_video/pass0_*) are checked too, at the predictor's tolerances
// (tests/test_sam2_video.cpp).
#include <bit>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <unistd.h>

#include "sam/error.h"
#include "sam/image.h"
#include "sam/npy.h"
#include "sam/sam2_video.h"
#include "sam/sam2_video_stream.h"
#include "sam2/video_model.h"
#include "test_util.h"

namespace sam {
namespace {

std::string vpath(const std::string& name) { return test::data_path("sam2_video/" + name); }

Sam2Video stream_model() {
    static Sam2Video* m = [] {
        Sam2LoadOptions o;
        o.config_path = test::data_path("sam2/config.json");
        return new Sam2Video(Sam2Video::load(vpath("sam2_video.pt"), o).with_execution(ExecutionOptions{1}));
    }();
    return *m;
}

nlohmann::json manifest() {
    std::ifstream in(vpath("manifest.json"));
    return nlohmann::json::parse(in);
}

std::vector<Image> fixture_frames() {
    std::vector<Image> frames;
    for (const std::string& path : list_jpeg_frames(vpath("frames"))) frames.push_back(read_image(path));
    return frames;
}

struct Prompt {
    int frame = 0, obj_id = 0;
    std::vector<std::array<float, 2>> points;
    std::vector<int> labels;
    std::optional<std::array<float, 4>> box;
};

Prompt prompt(const nlohmann::json& pr) {
    Prompt p;
    p.frame = pr["frame"].get<int>();
    p.obj_id = pr["obj_id"].get<int>();
    if (pr.contains("points"))
        for (const auto& xy : pr["points"]) p.points.push_back({xy[0].get<float>(), xy[1].get<float>()});
    if (pr.contains("labels")) p.labels = pr["labels"].get<std::vector<int>>();
    if (pr.contains("box")) {
        auto b = pr["box"].get<std::vector<float>>();
        p.box = std::array<float, 4>{b[0], b[1], b[2], b[3]};
    }
    return p;
}

void expect_bit_equal(const Sam2VideoFrame& got, const Sam2VideoFrame& want) {
    EXPECT_EQ(got.frame, want.frame);
    ASSERT_EQ(got.obj_ids, want.obj_ids);
    ASSERT_EQ(got.low_res.shape(), want.low_res.shape());
    ASSERT_EQ(got.logits.shape(), want.logits.shape());
    EXPECT_EQ(std::memcmp(got.low_res.data(), want.low_res.data(), static_cast<size_t>(want.low_res.numel()) * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(got.logits.data(), want.logits.data(), static_cast<size_t>(want.logits.numel()) * sizeof(float)), 0);
    ASSERT_EQ(got.object_scores.size(), want.object_scores.size());
    for (size_t k = 0; k < want.object_scores.size(); ++k)
        EXPECT_EQ(std::bit_cast<uint32_t>(got.object_scores[k]), std::bit_cast<uint32_t>(want.object_scores[k]));
}

// The fixture session's forward part: objects 1 (click) and 2 (box) on frame 0, forward over the
// 8 frames. The stream, told the video's length, gives propagate_in_video's frames bit for bit,
// and the official package's within the predictor's tolerances.
TEST(Sam2VideoStream, ForwardPassEqualsPredictor) {
    const auto prompts = manifest()["prompts"];
    const Prompt p1 = prompt(prompts[0]), p2 = prompt(prompts[1]);
    ASSERT_EQ(p1.frame, 0);
    ASSERT_EQ(p2.frame, 0);
    const std::vector<Image> frames = fixture_frames();
    ASSERT_EQ(frames.size(), 8u);

    Sam2VideoPredictor predictor(stream_model());
    predictor.init_state(frames);
    predictor.add_new_points_or_box(0, p1.obj_id, p1.points, p1.labels, p1.box);
    predictor.add_new_points_or_box(0, p2.obj_id, p2.points, p2.labels, p2.box);
    std::vector<Sam2VideoFrame> want;
    predictor.propagate_in_video([&](const Sam2VideoFrame& f) { want.push_back(f); return true; });
    ASSERT_EQ(want.size(), 8u);

    Sam2VideoStreamOptions opt;
    opt.num_frames = 8;
    Sam2VideoStream stream(stream_model(), opt);
    stream.add_new_points_or_box(p1.obj_id, p1.points, p1.labels, p1.box);
    stream.add_new_points_or_box(p2.obj_id, p2.points, p2.labels, p2.box);
    const Tensor gold_masks = load_npy(vpath("pass0_masks.npy"));    // (8, 2, 64, 64)
    const Tensor gold_scores = load_npy(vpath("pass0_scores.npy"));  // (8, 2)
    ASSERT_EQ(gold_masks.dim(0), 8);
    ASSERT_EQ(gold_masks.dim(1), 2);
    const int64_t LL = gold_masks.dim(2) * gold_masks.dim(3);
    for (int t = 0; t < 8; ++t) {
        SCOPED_TRACE("frame " + std::to_string(t));
        EXPECT_EQ(stream.next_frame(), t);
        const Sam2VideoFrame got = stream.track(frames[static_cast<size_t>(t)]);
        expect_bit_equal(got, want[static_cast<size_t>(t)]);
        for (int64_t k = 0; k < 2; ++k) {
            float d = 0.0f;
            for (int64_t i = 0; i < LL; ++i)
                d = std::max(d, std::fabs(got.low_res[k * LL + i] - gold_masks[(t * 2 + k) * LL + i]));
            EXPECT_LE(d, 2e-4f) << "object " << k;
            EXPECT_NEAR(got.object_scores[static_cast<size_t>(k)], gold_scores[t * 2 + k], 1.5e-3f) << "object " << k;
        }
    }
    // The length was given: a ninth frame is refused.
    EXPECT_THROW(stream.track(frames[0]), InputError);
}

// An object prompted on a later frame joins there: absent before, a conditioning frame then.
// The first object's masks do not change when the second joins (objects are independent).
TEST(Sam2VideoStream, ObjectAddedOnLaterFrame) {
    const auto prompts = manifest()["prompts"];
    const Prompt p1 = prompt(prompts[0]), p2 = prompt(prompts[1]);
    const std::vector<Image> frames = fixture_frames();
    Sam2VideoStream alone(stream_model()), joined(stream_model());
    alone.add_new_points_or_box(p1.obj_id, p1.points, p1.labels, p1.box);
    joined.add_new_points_or_box(p1.obj_id, p1.points, p1.labels, p1.box);
    for (int t = 0; t < 5; ++t) {
        if (t == 3) joined.add_new_points_or_box(p2.obj_id, p2.points, p2.labels, p2.box);
        const Sam2VideoFrame a = alone.track(frames[static_cast<size_t>(t)]);
        const Sam2VideoFrame b = joined.track(frames[static_cast<size_t>(t)]);
        const int64_t LL = a.low_res.dim(1) * a.low_res.dim(2);
        EXPECT_EQ(std::memcmp(a.low_res.data(), b.low_res.data(), static_cast<size_t>(LL) * sizeof(float)), 0) << t;
        if (t < 3) {
            EXPECT_EQ(b.obj_ids, (std::vector<int>{p1.obj_id}));
        } else {
            ASSERT_EQ(b.obj_ids, (std::vector<int>{p1.obj_id, p2.obj_id}));
            EXPECT_FALSE(std::isnan(b.object_scores[1]));
        }
    }
    // Frame 3 of the joined object is a prompt's output: the predictor's add on a fresh frame.
    Sam2VideoPredictor predictor(stream_model());
    predictor.init_state(std::vector<Image>(frames.begin(), frames.begin() + 4));
    const Sam2VideoFrame want = predictor.add_new_points_or_box(3, p2.obj_id, p2.points, p2.labels, p2.box);
    Sam2VideoStream fresh(stream_model());
    fresh.add_new_points_or_box(p1.obj_id, p1.points, p1.labels, p1.box);
    for (int t = 0; t < 3; ++t) fresh.track(frames[static_cast<size_t>(t)]);
    fresh.add_new_points_or_box(p2.obj_id, p2.points, p2.labels, p2.box);
    const Sam2VideoFrame got = fresh.track(frames[3]);
    const int64_t LL = want.low_res.numel();
    EXPECT_EQ(std::memcmp(got.low_res.data() + LL, want.low_res.data(), static_cast<size_t>(LL) * sizeof(float)), 0);
}

// Several prompts for one object on the frame pushed run in order, a later one with the earlier
// result's logits as mask input (a correcting click added to the first, then a mask prompt for a
// second object): the predictor's adds on frame 0 and propagation, bit for bit.
TEST(Sam2VideoStream, SuccessivePromptsOnAFrameEqualPredictor) {
    const std::vector<Image> all = fixture_frames();
    const std::vector<Image> frames(all.begin(), all.begin() + 4);
    std::vector<uint8_t> mask(240 * 320, 0);
    for (int y = 40; y < 120; ++y)
        for (int x = 200; x < 280; ++x) mask[static_cast<size_t>(y * 320 + x)] = 1;
    Sam2VideoPredictor predictor(stream_model());
    predictor.init_state(frames);
    predictor.add_new_points_or_box(0, 1, {{150, 120}}, {1});
    predictor.add_new_points_or_box(0, 1, {{170, 150}}, {0}, std::nullopt, false);
    predictor.add_new_mask(0, 2, mask, 240, 320);
    std::vector<Sam2VideoFrame> want;
    predictor.propagate_in_video([&](const Sam2VideoFrame& f) { want.push_back(f); return true; });
    ASSERT_EQ(want.size(), 4u);
    Sam2VideoStreamOptions opt;
    opt.num_frames = 4;
    Sam2VideoStream stream(stream_model(), opt);
    stream.add_new_points_or_box(1, {{150, 120}}, {1});
    stream.add_new_points_or_box(1, {{170, 150}}, {0}, std::nullopt, false);
    stream.add_new_mask(2, mask, 240, 320);
    for (size_t t = 0; t < 4; ++t) {
        SCOPED_TRACE("frame " + std::to_string(t));
        expect_bit_equal(stream.track(frames[t]), want[t]);
    }
}

// Synthetic frames: a bright square moving over a dark gradient.
Image synthetic_frame(int t, int w, int h) {
    Image img;
    img.width = w;
    img.height = h;
    img.rgb.resize(static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
    const int cx = 20 + (t * 3) % (w - 40), cy = h / 2;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t* p = img.rgb.data() + (static_cast<size_t>(y) * static_cast<size_t>(w) + static_cast<size_t>(x)) * 3;
            const bool in = std::abs(x - cx) < 12 && std::abs(y - cy) < 12;
            p[0] = in ? 230 : static_cast<uint8_t>(x % 64);
            p[1] = in ? 200 : static_cast<uint8_t>(y % 64);
            p[2] = in ? 40 : static_cast<uint8_t>((x + y + t) % 64);
        }
    return img;
}

int64_t rss_bytes() {
    std::ifstream in("/proc/self/statm");
    int64_t size = 0, resident = 0;
    in >> size >> resident;
    return resident * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

// A long stream (unknown length) keeps num_maskmem - 1 recent memories and
// max_obj_ptrs_in_encoder - 1 recent pointers per object besides its conditioning frame, and the
// process's resident memory stops growing.
TEST(Sam2VideoStream, MemoryStaysBounded) {
    Sam2Video model = stream_model();
    const Sam2VideoWeights& v = Sam2VideoAccess::weights(model);
    const int num_maskmem = v.config.num_maskmem, max_ptrs = v.config.max_obj_ptrs_in_encoder;
    const int64_t G = model.image_model().config().embedding_size(), C = model.image_model().config().d_model;
    const int64_t mem_bytes = G * G * v.config.mem_dim * 2, ptr_bytes = C * 4;
    Sam2VideoStream stream(model);
    stream.add_new_points_or_box(1, {{20, 40}}, {1});
    stream.add_new_points_or_box(2, {}, {}, std::array<float, 4>{60, 20, 100, 60});
    const int N = 50;
    int64_t rss_n = 0;
    for (int t = 0; t < 4 * N; ++t) {
        const Sam2VideoFrame f = stream.track(synthetic_frame(t, 128, 80));
        ASSERT_EQ(f.frame, t);
        const Sam2VideoStreamMemory m = stream.memory_stats();
        // Per object: the conditioning frame plus the tracked frames the bank can still read.
        const int64_t mems = 1 + std::min(t, num_maskmem - 1), ptrs = 1 + std::min(t, max_ptrs - 1);
        ASSERT_EQ(m.memories, 2 * mems) << "frame " << t;
        ASSERT_EQ(m.obj_ptrs, 2 * ptrs) << "frame " << t;
        ASSERT_EQ(m.bytes, 2 * (mems * mem_bytes + ptrs * ptr_bytes)) << "frame " << t;
        if (t == N - 1) rss_n = rss_bytes();
    }
    const int64_t rss_4n = rss_bytes();
    // Bound: 1 MiB over 3N frames, against the ~2.4 MiB (3N x 2 objects x (memory + pointer))
    // that keeping every frame's memory would add at this size; allocator noise is below it.
    std::printf("RSS after frame %d: %.1f MiB, after frame %d: %.1f MiB\n", N, static_cast<double>(rss_n) / 1048576.0,
                4 * N, static_cast<double>(rss_4n) / 1048576.0);
    EXPECT_LT(rss_4n - rss_n, int64_t{1} << 20);
}

// Two streams on one model on two threads at once give what one stream gives alone.
TEST(Sam2VideoStream, StreamsOnOneModelRunOnThreads) {
    const auto run = [] {
        Sam2VideoStream s(stream_model());
        s.add_new_points_or_box(1, {{20, 40}}, {1});
        std::vector<Sam2VideoFrame> out;
        for (int t = 0; t < 12; ++t) out.push_back(s.track(synthetic_frame(t, 128, 80)));
        return out;
    };
    const std::vector<Sam2VideoFrame> want = run();
    std::vector<std::vector<Sam2VideoFrame>> got(2);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < 2; ++i) threads.emplace_back([&, i] { got[i] = run(); });
    for (auto& th : threads) th.join();
    for (const auto& g : got) {
        ASSERT_EQ(g.size(), want.size());
        for (size_t t = 0; t < want.size(); ++t) expect_bit_equal(g[t], want[t]);
    }
}

TEST(Sam2VideoStream, BadInputsNameTheField) {
    Sam2VideoStream s(stream_model());
    const Image frame = synthetic_frame(0, 128, 80);
    try {
        s.track(frame);
        FAIL() << "expected an error";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("points"), std::string::npos) << e.what();
    }
    EXPECT_THROW(s.add_new_points_or_box(1, {{1, 2}}, {}), InputError);
    EXPECT_THROW(s.add_new_points_or_box(1, {{1, 2}}, {7}), InputError);
    EXPECT_THROW(s.add_new_points_or_box(1, {}, {}), InputError);
    EXPECT_THROW(s.add_new_mask(1, std::vector<uint8_t>(10, 1), 4, 4), InputError);
    s.add_new_points_or_box(1, {{20, 40}}, {1});
    s.track(frame);
    try {
        s.track(synthetic_frame(1, 64, 80));
        FAIL() << "expected an error";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("frame 1"), std::string::npos) << e.what();
    }
    Sam2VideoStreamOptions bad;
    bad.num_frames = 0;
    EXPECT_THROW(Sam2VideoStream(stream_model(), bad), InputError);
}

// sam track --stream writes, per frame and object, the stream's masks thresholded at 0, from an
// object's first prompt on (object 3 joins on frame 4).
TEST(Sam2VideoStream, CliTrackStreamWritesStreamMasks) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("sam_cli_track_stream_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const fs::path log = dir / "log.txt", out = dir / "out";
    const std::string cmd = std::string(SAM_CLI_PATH) + " track --stream --checkpoint " + vpath("sam2_video.pt") +
                            " --config " + test::data_path("sam2/config.json") + " --threads 1 --video " + vpath("frames") +
                            " --point 0,150,120,1 --box 0,200,60,300,200,2 --point 4,80,100,3 --output " + out.string() +
                            " > " + log.string() + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << test::read_file(log.string());
    const std::vector<Image> frames = fixture_frames();
    Sam2VideoStream stream(stream_model());
    stream.add_new_points_or_box(1, {{150, 120}}, {1});
    stream.add_new_points_or_box(2, {}, {}, std::array<float, 4>{200, 60, 300, 200});
    int64_t differing = 0, foreground = 0, files = 0;
    for (int frame = 0; frame < 8; ++frame) {
        if (frame == 4) stream.add_new_points_or_box(3, {{80, 100}}, {1});
        const Sam2VideoFrame f = stream.track(frames[static_cast<size_t>(frame)]);
        char name[32];
        std::snprintf(name, sizeof(name), "%05d.png", frame);
        EXPECT_EQ(fs::exists(out / "3" / name), frame >= 4) << frame;
        for (size_t k = 0; k < f.obj_ids.size(); ++k) {
            const fs::path png = out / std::to_string(f.obj_ids[k]) / name;
            Image img = read_image(png.string());
            ++files;
            ASSERT_EQ(img.width, 320) << png;
            ASSERT_EQ(img.height, 240) << png;
            const float* l = f.logits.data() + static_cast<int64_t>(k) * 240 * 320;
            for (size_t i = 0; i < 240u * 320u; ++i) {
                const bool want = l[i] > 0.0f, got = img.rgb[i * 3] > 127;
                foreground += want;
                differing += want != got;
            }
        }
    }
    EXPECT_EQ(files, 8 * 2 + 4);
    EXPECT_EQ(differing, 0);
    EXPECT_GT(foreground, 1000);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace sam
