// Video files as a source (src/io/video_file.h): test videos are written at test time with
// FFmpeg's own encoders from the sam2_video fixture's 8 frames (320x240), losslessly, so the
// decoded frames are known exactly:
//   - FFV1 in 8-bit RGB (0RGB32, .mkv): decoding gives back the source RGB bit for bit;
//   - FFV1 yuv420p (.mkv), H.264 with qp 0 (.mp4, libx264) and lossless VP9 (.webm, libvpx), all
//     yuv420p: lossless in YUV, so their decoded RGB is identical, and within the stated bound of the source RGB (chroma
//     subsampling and 8-bit YUV);
// tracking over a video file equals tracking over the same frames decoded and resized by the
// reader; hostile files give errors naming the file.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <unistd.h>

#include "io/video_file.h"
#include "sam/error.h"
#include "sam/image.h"
#include "sam/sam2_video.h"
#include "video_writer.h"
#include "sam/sam2_video_stream.h"
#include "sam2/video_model.h"
#include "test_util.h"

namespace sam {
namespace {

namespace fs = std::filesystem;

std::vector<Image> source_frames() {
    std::vector<Image> frames;
    for (int i = 0; i < 8; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "sam2_video/frames/%05d.jpg", i);
        frames.push_back(read_image(test::data_path(name)));
    }
    return frames;
}

// The test's files, removed when the test program exits.
fs::path temp_dir() {
    static const test::TempDir d("sam_video_file_");
    return d.path;
}

// Encodes RGB frames into `path` (tests/video_writer.h); fails the test when FFmpeg refuses.
void write_video(const std::string& path, const std::vector<Image>& frames, const char* encoder, AVPixelFormat pix,
                 const std::vector<std::pair<const char*, const char*>>& options = {}) {
    ASSERT_TRUE(test::write_test_video(path, frames, encoder, pix, options)) << path;
}

// The test videos, written once per run.
const std::string& rgb_mkv() {
    static const std::string p = [] {
        const std::string path = (temp_dir() / "rgb.mkv").string();
        write_video(path, source_frames(), "ffv1", AV_PIX_FMT_0RGB32);
        return path;
    }();
    return p;
}

TEST(VideoFile, LosslessRgbDecodesExactly) {
    const std::vector<Image> src = source_frames();
    const std::string& path = rgb_mkv();
    EXPECT_EQ(count_video_frames(path), 8);
    VideoFileFrames v = read_video_file(path, 0, 0, 1);
    ASSERT_EQ(v.frames.size(), 8u);
    EXPECT_EQ(v.width, 320);
    EXPECT_EQ(v.height, 240);
    for (size_t i = 0; i < 8; ++i) {
        ASSERT_EQ(v.frames[i].width, 320);
        ASSERT_EQ(v.frames[i].height, 240);
        EXPECT_TRUE(v.frames[i].rgb == src[i].rgb) << "frame " << i;
    }
    // Frame by frame, with several decoder threads: the same.
    VideoFileReader r(path, 2);
    Image img;
    int n = 0;
    while (r.next(img)) {
        ASSERT_LT(n, 8);
        EXPECT_TRUE(img.rgb == src[static_cast<size_t>(n)].rgb) << "frame " << n;
        ++n;
    }
    EXPECT_EQ(n, 8);
    EXPECT_EQ(r.frames_read(), 8);
    EXPECT_FALSE(r.next(img));  // stays at the end
}

// Readers on several threads at once (one reader per thread), of the same file.
TEST(VideoFile, ReadersRunOnThreads) {
    const std::vector<Image> src = source_frames();
    const std::string& path = rgb_mkv();
    std::vector<int> matching(4, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            try {
                VideoFileFrames v = read_video_file(path, 0, 0, 1 + t % 2);
                for (size_t i = 0; i < v.frames.size() && i < src.size(); ++i) matching[t] += v.frames[i].rgb == src[i].rgb;
            } catch (const Error&) {
                matching[t] = -1;
            }
        });
    for (auto& th : threads) th.join();
    for (int t = 0; t < 4; ++t) EXPECT_EQ(matching[t], 8) << "thread " << t;
}

// YUV 4:2:0 (the usual pixel format of real videos) through three containers and codecs: all
// lossless in YUV, so the decoded RGB is identical; against the source RGB the difference is
// the 4:2:0 subsampling and 8-bit YUV rounding, bounded below.
TEST(VideoFile, Yuv420MkvMp4WebmDecodeAlike) {
    const std::vector<Image> src = source_frames();
    const std::string mkv = (temp_dir() / "yuv.mkv").string(), mp4 = (temp_dir() / "yuv.mp4").string();
    write_video(mkv, src, "ffv1", AV_PIX_FMT_YUV420P);
    write_video(mp4, src, "libx264", AV_PIX_FMT_YUV420P, {{"qp", "0"}, {"preset", "ultrafast"}});
    const std::string webm = (temp_dir() / "yuv.webm").string();
    write_video(webm, src, "libvpx-vp9", AV_PIX_FMT_YUV420P, {{"lossless", "1"}, {"deadline", "realtime"}, {"cpu-used", "8"}});
    EXPECT_EQ(count_video_frames(mp4), 8);
    EXPECT_EQ(count_video_frames(webm), 8);
    VideoFileFrames a = read_video_file(mkv), b = read_video_file(mp4), w = read_video_file(webm);
    ASSERT_EQ(w.frames.size(), 8u);
    for (size_t i = 0; i < 8; ++i) EXPECT_TRUE(w.frames[i].rgb == a.frames[i].rgb) << "webm frame " << i;
    ASSERT_EQ(a.frames.size(), 8u);
    ASSERT_EQ(b.frames.size(), 8u);
    EXPECT_EQ(b.width, 320);
    EXPECT_EQ(b.height, 240);
    double sum = 0;
    for (size_t i = 0; i < 8; ++i) {
        EXPECT_TRUE(a.frames[i].rgb == b.frames[i].rgb) << "frame " << i;
        for (size_t k = 0; k < src[i].rgb.size(); ++k) sum += std::abs(int(a.frames[i].rgb[k]) - int(src[i].rgb[k]));
    }
    const double mean = sum / (8.0 * src[0].rgb.size());
    EXPECT_LT(mean, 4.0) << "mean absolute difference from the source RGB";
    std::printf("yuv420p round trip: mean |difference| %.3f levels\n", mean);
}

// The video-file source is resized by libswscale's bicubic (as decord), the JPEG folder by
// Pillow's: the two differ by a few levels; measured here and bounded.
TEST(VideoFile, SwscaleBicubicNearPillowBicubic) {
    const std::vector<Image> src = source_frames();
    VideoFileFrames v = read_video_file(rgb_mkv(), 256, 256, 1);
    ASSERT_EQ(v.frames.size(), 8u);
    EXPECT_EQ(v.width, 320);  // the video's own size, not the resized one
    double sum = 0;
    int worst = 0;
    for (size_t i = 0; i < 8; ++i) {
        ASSERT_EQ(v.frames[i].width, 256);
        ASSERT_EQ(v.frames[i].height, 256);
        const Image pil = resize_bicubic_pillow(src[i], 256, 256);
        for (size_t k = 0; k < pil.rgb.size(); ++k) {
            const int d = std::abs(int(pil.rgb[k]) - int(v.frames[i].rgb[k]));
            sum += d;
            worst = std::max(worst, d);
        }
    }
    const double mean = sum / (8.0 * 256 * 256 * 3);
    std::printf("swscale bicubic vs Pillow bicubic (320x240 -> 256x256): mean %.3f, max %d levels\n", mean, worst);
    EXPECT_LT(mean, 2.0);
}

Sam2Video video_model() {
    static Sam2Video* m = [] {
        Sam2LoadOptions o;
        o.config_path = test::data_path("sam2/config.json");
        return new Sam2Video(Sam2Video::load(test::data_path("sam2_video/sam2_video.pt"), o).with_execution(ExecutionOptions{1}));
    }();
    return *m;
}

std::vector<Sam2VideoFrame> track(Sam2VideoPredictor& p, float sx, float sy) {
    // Coordinates chosen so that x / width and y / height are exact in both videos.
    p.add_new_points_or_box(0, 1, {{160 * sx, 120 * sy}}, {1});
    p.add_new_points_or_box(0, 2, {}, {}, std::array<float, 4>{200 * sx, 60 * sy, 280 * sx, 180 * sy});
    std::vector<Sam2VideoFrame> out;
    p.propagate_in_video([&](const Sam2VideoFrame& f) {
        out.push_back(f);
        return true;
    });
    return out;
}

// init_state(video file) tracks exactly as init_state over the reader's resized frames (an
// image_size x image_size video, prompts scaled to it): same frames in, same masks out.
TEST(VideoFile, TrackingOverVideoEqualsTrackingOverItsFrames) {
    Sam2Video model = video_model();
    Sam2VideoPredictor from_file(model);
    from_file.init_state(rgb_mkv());
    EXPECT_EQ(from_file.num_frames(), 8);
    EXPECT_EQ(from_file.video_width(), 320);
    EXPECT_EQ(from_file.video_height(), 240);
    const int S = 256;
    ASSERT_EQ(model.image_model().config().image_size, S);
    Sam2VideoPredictor from_frames(model);
    from_frames.init_state(read_video_file(rgb_mkv(), S, S).frames);
    const auto a = track(from_file, 1.0f, 1.0f);
    const auto b = track(from_frames, S / 320.0f, S / 240.0f);
    ASSERT_EQ(a.size(), 8u);
    ASSERT_EQ(b.size(), 8u);
    for (size_t i = 0; i < 8; ++i) {
        ASSERT_EQ(a[i].frame, b[i].frame);
        ASSERT_EQ(a[i].low_res.numel(), b[i].low_res.numel());
        EXPECT_TRUE(std::equal(a[i].low_res.data(), a[i].low_res.data() + a[i].low_res.numel(), b[i].low_res.data()))
            << "frame " << a[i].frame;
        // Scores within 1e-5: the prompts are normalised from different video sizes (x / 320 and
        // x' / 256), which rounds the same point differently in the last bit.
        for (size_t k = 0; k < a[i].object_scores.size(); ++k)
            EXPECT_NEAR(a[i].object_scores[k], b[i].object_scores[k], 1e-5f) << "frame " << a[i].frame;
    }
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(VideoFile, HostileFilesNameTheFile) {
    const fs::path dir = temp_dir();
    const std::string missing = (dir / "missing.mp4").string();
    EXPECT_NE(error_of([&] { read_video_file(missing); }).find(missing), std::string::npos);
    // Random bytes named .mp4 / .mkv / .webm.
    std::mt19937 rng(7);
    for (const char* name : {"random.mp4", "random.mkv", "random.webm", "empty.mp4"}) {
        const std::string p = (dir / name).string();
        std::ofstream out(p, std::ios::binary);
        if (std::string(name) != "empty.mp4")
            for (int i = 0; i < 20000; ++i) out.put(static_cast<char>(rng()));
        out.close();
        const std::string e = error_of([&] { read_video_file(p); });
        EXPECT_NE(e.find(p), std::string::npos) << name << ": " << e;
        Sam2VideoPredictor pred(video_model());
        EXPECT_NE(error_of([&] { pred.init_state(p); }).find(p), std::string::npos) << name;
    }
    // Truncated files, at several lengths: an error naming the file, or (a container that
    // stops cleanly between frames) fewer frames; never a crash.
    const std::string mp4 = (dir / "yuv.mp4").string();
    write_video(mp4, source_frames(), "libx264", AV_PIX_FMT_YUV420P, {{"qp", "0"}, {"preset", "ultrafast"}});
    for (const std::string& whole : {rgb_mkv(), mp4}) {
        const std::string bytes = test::read_file(whole);
        for (double keep : {0.01, 0.3, 0.7, 0.97}) {
            const std::string p = (dir / ("cut_" + std::to_string(int(keep * 100)) + fs::path(whole).extension().string())).string();
            std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() * keep));
            try {
                VideoFileFrames v = read_video_file(p);
                EXPECT_LT(v.frames.size(), 8u) << p;
            } catch (const Error& e) {
                EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
            }
        }
    }
    // A file without a video stream: an image is a (one-frame) video to FFmpeg, a text file is not.
    const std::string text = (dir / "notes.txt").string();
    std::ofstream(text) << "not a video\n";
    EXPECT_NE(error_of([&] { read_video_file(text); }).find(text), std::string::npos);
}

// `sam track --video FILE` as with a folder: the masks of the in-process predictor over the file;
// with --stream, those of a stream fed the file's frames.
TEST(VideoFile, CliTrackReadsVideoFile) {
    const fs::path out = temp_dir() / "track_out", log = temp_dir() / "track_log.txt";
    const std::string cmd = std::string(SAM_CLI_PATH) + " track --checkpoint " + test::data_path("sam2_video/sam2_video.pt") +
                            " --config " + test::data_path("sam2/config.json") + " --threads 1 --video " + rgb_mkv() +
                            " --point 0,160,120,1 --box 0,200,60,280,180,2 --output " + out.string() + " > " +
                            log.string() + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << test::read_file(log.string());
    Sam2VideoPredictor p(video_model());
    p.init_state(rgb_mkv());
    const auto frames = track(p, 1.0f, 1.0f);
    ASSERT_EQ(frames.size(), 8u);
    int64_t differing = 0;
    for (const Sam2VideoFrame& f : frames)
        for (size_t k = 0; k < f.obj_ids.size(); ++k) {
            char name[32];
            std::snprintf(name, sizeof name, "%05d.png", f.frame);
            const Image img = read_image((out / std::to_string(f.obj_ids[k]) / name).string());
            ASSERT_EQ(img.width, 320);
            ASSERT_EQ(img.height, 240);
            const float* lg = f.logits.data() + static_cast<int64_t>(k) * 240 * 320;
            for (int64_t i = 0; i < 240 * 320; ++i) differing += (lg[i] > 0.0f) != (img.rgb[static_cast<size_t>(i) * 3] > 127);
        }
    EXPECT_EQ(differing, 0);
    // --stream reads the file frame by frame at its own size: the masks of a stream fed the
    // decoded frames.
    const fs::path sout = temp_dir() / "stream_out";
    const std::string scmd = std::string(SAM_CLI_PATH) + " track --stream --checkpoint " +
                             test::data_path("sam2_video/sam2_video.pt") + " --config " + test::data_path("sam2/config.json") +
                             " --threads 1 --video " + rgb_mkv() + " --point 0,160,120,1 --box 0,200,60,280,180,2 --output " +
                             sout.string() + " > " + log.string() + " 2>&1";
    ASSERT_EQ(std::system(scmd.c_str()), 0) << test::read_file(log.string());
    Sam2VideoStream stream(video_model());
    int64_t stream_differing = 0;
    int tracked = 0;
    for (const Image& frame : read_video_file(rgb_mkv()).frames) {
        if (tracked == 0) {
            stream.add_new_points_or_box(1, {{160, 120}}, {1});
            stream.add_new_points_or_box(2, {}, {}, std::array<float, 4>{200, 60, 280, 180});
        }
        const Sam2VideoFrame f = stream.track(frame);
        for (size_t k = 0; k < f.obj_ids.size(); ++k) {
            char name[32];
            std::snprintf(name, sizeof name, "%05d.png", f.frame);
            const Image img = read_image((sout / std::to_string(f.obj_ids[k]) / name).string());
            ASSERT_EQ(img.width, 320);
            const float* lg = f.logits.data() + static_cast<int64_t>(k) * 240 * 320;
            for (int64_t i = 0; i < 240 * 320; ++i)
                stream_differing += (lg[i] > 0.0f) != (img.rgb[static_cast<size_t>(i) * 3] > 127);
        }
        ++tracked;
    }
    EXPECT_EQ(tracked, 8);
    EXPECT_EQ(stream_differing, 0);
    // A bad video file: the tool fails and names it.
    const std::string bad = (temp_dir() / "random.mp4").string();
    std::ofstream(bad, std::ios::binary) << "garbage, not a video";
    const std::string cmd2 = std::string(SAM_CLI_PATH) + " track --checkpoint " + test::data_path("sam2_video/sam2_video.pt") +
                             " --config " + test::data_path("sam2/config.json") + " --video " + bad +
                             " --point 0,160,120,1 --output " + out.string() + " > " + log.string() + " 2>&1";
    EXPECT_NE(std::system(cmd2.c_str()), 0);
    EXPECT_NE(test::read_file(log.string()).find(bad), std::string::npos) << test::read_file(log.string());
}

}  // namespace
}  // namespace sam
