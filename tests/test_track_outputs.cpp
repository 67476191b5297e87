// `sam track`'s outputs (apps/cli/track_outputs.h) on the sam2_video fixture (8 frames, 320x240,
// the tiny random model): masks.jsonl decodes to the PNG masks of the same prompts, the overlay
// video (FFV1, lossless) decodes to the frames with the masks drawn (src/mask_overlay.h), in
// both the whole-video and the streaming mode; bad options and unwritable outputs fail with
// errors naming them; a killed run leaves neither masks.jsonl nor the overlay video.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "io/video_file.h"
#include "io/video_writer.h"
#include "mask_overlay.h"
#include "sam/error.h"
#include "sam/image.h"
#include "sam/rle.h"
#include "test_util.h"

extern char** environ;

namespace sam {
namespace {

namespace fs = std::filesystem;

struct TempDir {
    fs::path path = fs::temp_directory_path() / ("sam_track_outputs_" + std::to_string(::getpid()));
    TempDir() {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

const fs::path& temp_dir() {
    static const TempDir d;
    return d.path;
}

std::string frames_dir() { return test::data_path("sam2_video/frames"); }

std::vector<std::string> track_args(const std::string& video, const std::string& prompts) {
    std::vector<std::string> a = {SAM_CLI_PATH, "track", "--checkpoint", test::data_path("sam2_video/sam2_video.pt"),
                                  "--config", test::data_path("sam2/config.json"), "--threads", "1", "--video", video};
    std::istringstream ss(prompts);
    for (std::string w; ss >> w;) a.push_back(w);
    return a;
}

// Runs the CLI with `args` plus `extra`; returns {exit status, its output}.
std::pair<int, std::string> run(std::vector<std::string> args, const std::string& extra) {
    std::string cmd;
    std::istringstream ss(extra);
    for (std::string w; ss >> w;) args.push_back(w);
    for (const std::string& a : args) cmd += "'" + a + "' ";
    const fs::path log = temp_dir() / "log.txt";
    cmd += "> '" + log.string() + "' 2>&1";
    const int rc = std::system(cmd.c_str());
    return {rc, test::read_file(log.string())};
}

// Prompts: objects 1 and 2 on frame 0, object 3 added on frame 3 (a reverse pass for it).
const char* kPrompts = "--point 0,160,120,1 --box 0,200,60,280,180,2 --point 3,60,60,3";

std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
    std::ifstream f(p);
    std::vector<nlohmann::json> lines;
    for (std::string line; std::getline(f, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
}

// Every JSON line's objects against the PNG masks `png_dir`/<obj>/<frame>.png; returns the
// frames seen, in order. `expect_objects`: how many objects each line must have.
std::vector<int> check_jsonl_against_pngs(const fs::path& jsonl, const fs::path& png_dir, size_t expect_objects) {
    std::vector<int> frames;
    for (const nlohmann::json& line : read_jsonl(jsonl)) {
        const int frame = line.at("frame").get<int>();
        frames.push_back(frame);
        EXPECT_EQ(line.at("objects").size(), expect_objects) << "frame " << frame;
        for (const nlohmann::json& ob : line.at("objects")) {
            const int id = ob.at("obj_id").get<int>();
            const auto& seg = ob.at("segmentation");
            const int h = seg.at("size")[0].get<int>(), w = seg.at("size")[1].get<int>();
            EXPECT_EQ(h, 240);
            EXPECT_EQ(w, 320);
            const Rle rle = rle_from_coco_string(seg.at("counts").get<std::string>(), h, w);
            const std::vector<uint8_t> m = rle_decode(rle);
            char name[32];
            std::snprintf(name, sizeof name, "%05d.png", frame);
            const Image png = read_image((png_dir / std::to_string(id) / name).string());
            EXPECT_EQ(png.width, w);
            EXPECT_EQ(png.height, h);
            int64_t differing = 0, area = 0;
            int x0 = w, y0 = h, x1 = -1, y1 = -1;
            for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x) {
                    const size_t i = static_cast<size_t>(y) * w + x;
                    const bool on = png.rgb[i * 3] > 127;
                    differing += on != (m[i] != 0);
                    if (on) {
                        ++area;
                        x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
                    }
                }
            EXPECT_EQ(differing, 0) << "frame " << frame << " object " << id;
            EXPECT_EQ(ob.at("area").get<int64_t>(), area);
            const nlohmann::json bbox = area ? nlohmann::json{x0, y0, x1 - x0 + 1, y1 - y0 + 1} : nlohmann::json{0, 0, 0, 0};
            EXPECT_EQ(ob.at("bbox"), bbox) << "frame " << frame << " object " << id;
            EXPECT_TRUE(ob.at("object_score").is_number());
        }
    }
    return frames;
}

// The overlay video against the source frames with the PNG masks drawn (objects in id order);
// frames before `first_masked` carry no masks. Returns how many pixels differ.
int64_t check_overlay(const fs::path& video, const fs::path& png_dir, const std::vector<int>& obj_ids, int first_masked) {
    const VideoFileFrames v = read_video_file(video.string());
    EXPECT_EQ(v.frames.size(), 8u);
    EXPECT_EQ(v.width, 320);
    EXPECT_EQ(v.height, 240);
    int64_t differing = 0;
    for (int f = 0; f < static_cast<int>(v.frames.size()); ++f) {
        char name[32];
        std::snprintf(name, sizeof name, "%05d.jpg", f);
        Image want = read_image(frames_dir() + "/" + name);
        std::snprintf(name, sizeof name, "%05d.png", f);
        if (f >= first_masked)
            for (int id : obj_ids) {
                const Image png = read_image((png_dir / std::to_string(id) / name).string());
                std::vector<uint8_t> m(static_cast<size_t>(png.width) * png.height);
                for (size_t i = 0; i < m.size(); ++i) m[i] = png.rgb[i * 3] > 127;
                draw_mask(want, m.data(), overlay_colour(id - 1), true);
            }
        const Image& got = v.frames[static_cast<size_t>(f)];
        EXPECT_EQ(got.rgb.size(), want.rgb.size());
        for (size_t i = 0; i < std::min(got.rgb.size(), want.rgb.size()); ++i) differing += got.rgb[i] != want.rgb[i];
    }
    return differing;
}

TEST(TrackOutputs, DrawMaskBlendsAndOutlines) {
    Image img;
    img.width = 4;
    img.height = 3;
    img.rgb.assign(4 * 3 * 3, 100);
    // A 3x3 block at the right edge: its centre (2, 1) and the image-border pixels whose other
    // neighbours are inside stay blended; the pixels next to the unmasked column x = 0 are outline.
    const uint8_t m[12] = {0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1};
    draw_mask(img, m, {200, 0, 51}, true);
    auto px = [&](int x, int y) {
        const size_t i = (static_cast<size_t>(y) * 4 + x) * 3;
        return std::array<int, 3>{img.rgb[i], img.rgb[i + 1], img.rgb[i + 2]};
    };
    EXPECT_EQ(px(0, 1), (std::array<int, 3>{100, 100, 100}));  // outside
    EXPECT_EQ(px(1, 1), (std::array<int, 3>{200, 0, 51}));     // outline: its left neighbour is out
    EXPECT_EQ(px(2, 1), (std::array<int, 3>{150, 50, 76}));    // inside: (100 + c + 1) / 2
    EXPECT_EQ(px(3, 0), (std::array<int, 3>{150, 50, 76}));    // on the image border, not an outline
    EXPECT_EQ(overlay_colour(0), overlay_colour(6));
    EXPECT_EQ(overlay_colour(-1), overlay_colour(5));
}

// The whole-video predictor: PNGs plus an FFV1 overlay in one run, masks.jsonl in another.
TEST(TrackOutputs, CocoRleEqualsPngsAndOverlayIsTheBlend) {
    const fs::path png = temp_dir() / "png", rle = temp_dir() / "rle";
    const auto args = track_args(frames_dir(), kPrompts);
    auto [rc, log] = run(args, "--output " + png.string() + " --overlay-video " + (png / "overlay.mkv").string());
    ASSERT_EQ(rc, 0) << log;
    auto [rc2, log2] = run(args, "--format coco-rle --output " + rle.string());
    ASSERT_EQ(rc2, 0) << log2;
    EXPECT_FALSE(fs::exists(rle / "1")) << "coco-rle wrote PNGs";
    const std::vector<int> frames = check_jsonl_against_pngs(rle / "masks.jsonl", png, 3);
    EXPECT_EQ(frames, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
    EXPECT_EQ(check_overlay(png / "overlay.mkv", png, {1, 2, 3}, 0), 0);
    // The masks are not empty (the comparisons above would hold trivially otherwise).
    EXPECT_GT(read_jsonl(rle / "masks.jsonl")[0]["objects"][0]["area"].get<int64_t>(), 0);
    // No temporaries left beside the outputs.
    for (const auto& e : fs::directory_iterator(rle)) EXPECT_EQ(e.path().filename().string().find(".sam-tmp-"), std::string::npos);
}

// Streaming from frame 2: lines for frames 2..7 only; objects appear from their first prompt;
// the overlay has every frame, the first two without masks.
TEST(TrackOutputs, StreamWritesCocoRleAndOverlay) {
    const fs::path png = temp_dir() / "spng", rle = temp_dir() / "srle";
    const auto args = track_args(frames_dir(), "--stream --point 2,160,120,1 --box 2,200,60,280,180,2");
    auto [rc, log] = run(args, "--output " + png.string() + " --overlay-video " + (png / "overlay.mkv").string());
    ASSERT_EQ(rc, 0) << log;
    auto [rc2, log2] = run(args, "--format coco-rle --output " + rle.string());
    ASSERT_EQ(rc2, 0) << log2;
    const std::vector<int> frames = check_jsonl_against_pngs(rle / "masks.jsonl", png, 2);
    EXPECT_EQ(frames, (std::vector<int>{2, 3, 4, 5, 6, 7}));
    EXPECT_EQ(check_overlay(png / "overlay.mkv", png, {1, 2}, 2), 0);
}

TEST(TrackOutputs, OverlayFromVideoFileKeepsItsRate) {
    // A video file in (written losslessly here), an overlay out at the file's rate.
    const fs::path in = temp_dir() / "in.mkv", out = temp_dir() / "vout";
    {
        VideoFileWriter w(in.string(), 320, 240, 10, 1, 1);
        for (int f = 0; f < 8; ++f) {
            char name[32];
            std::snprintf(name, sizeof name, "%05d.jpg", f);
            w.write(read_image(frames_dir() + "/" + name));
        }
        w.finish();
    }
    auto [rc, log] = run(track_args(in.string(), "--point 0,160,120,1"), "--output " + out.string() + " --overlay-video " +
                                                                           (out / "overlay.mkv").string());
    ASSERT_EQ(rc, 0) << log;
    VideoFileReader r((out / "overlay.mkv").string());
    EXPECT_EQ(r.frame_rate(), (std::pair<int, int>{10, 1}));
    EXPECT_EQ(check_overlay(out / "overlay.mkv", out, {1}, 0), 0);
}

TEST(TrackOutputs, LossyContainersDecodeWithTheirFrames) {
    // mp4 and webm: whichever encoder the installed FFmpeg has; right frame count and size, and
    // an odd size padded to even for 4:2:0.
    for (const char* ext : {".mp4", ".webm"}) {
        const fs::path p = temp_dir() / (std::string("odd") + ext);
        VideoFileWriter w(p.string(), 33, 21, 25, 1, 1);
        EXPECT_FALSE(w.encoder().empty());
        Image img;
        img.width = 33;
        img.height = 21;
        for (int f = 0; f < 5; ++f) {
            img.rgb.assign(33 * 21 * 3, static_cast<uint8_t>(40 * f));
            w.write(img);
        }
        EXPECT_FALSE(fs::exists(p)) << "visible before finish()";
        w.finish();
        const VideoFileFrames v = read_video_file(p.string());
        EXPECT_EQ(v.frames.size(), 5u) << ext;
        EXPECT_EQ(v.width, 34) << ext;
        EXPECT_EQ(v.height, 22) << ext;
        EXPECT_NEAR(v.frames[4].rgb[0], 160, 8) << ext;
    }
}

TEST(TrackOutputs, BadOptionsAndUnwritableOutputsNameTheirCause) {
    const auto args = track_args(frames_dir(), "--point 0,160,120,1");
    const fs::path out = temp_dir() / "bad";
    auto [rc, log] = run(args, "--format tiff --output " + out.string());
    EXPECT_NE(rc, 0);
    EXPECT_NE(log.find("--format"), std::string::npos) << log;
    EXPECT_NE(log.find("tiff"), std::string::npos) << log;
    const std::string avi = (out / "o.avi").string();
    std::tie(rc, log) = run(args, "--output " + out.string() + " --overlay-video " + avi);
    EXPECT_NE(rc, 0);
    EXPECT_NE(log.find(avi), std::string::npos) << log;
    EXPECT_NE(log.find(".mp4"), std::string::npos) << log;  // says what is supported
    // An output folder under a regular file.
    const fs::path file = temp_dir() / "a_file";
    std::ofstream(file) << "x";
    std::tie(rc, log) = run(args, "--format coco-rle --output " + (file / "sub").string());
    EXPECT_NE(rc, 0);
    EXPECT_NE(log.find((file / "sub").string()), std::string::npos) << log;
    // An overlay in a folder that does not exist.
    const std::string nowhere = (temp_dir() / "no" / "such" / "o.mkv").string();
    std::tie(rc, log) = run(args, "--output " + out.string() + " --overlay-video " + nowhere);
    EXPECT_NE(rc, 0);
    EXPECT_NE(log.find(nowhere), std::string::npos) << log;
    EXPECT_THROW(VideoFileWriter(nowhere, 320, 240), Error);
}

// SIGKILL while tracking: the outputs' temporaries may stay, never a file under the final names.
TEST(TrackOutputs, KilledRunLeavesNoCompleteLookingFile) {
    // A 48-frame folder (the fixture's frames repeated), so the run lasts a few seconds.
    const fs::path frames = temp_dir() / "long", out = temp_dir() / "killed";
    fs::create_directories(frames);
    for (int i = 0; i < 48; ++i) {
        char src[32], dst[32];
        std::snprintf(src, sizeof src, "%05d.jpg", i % 8);
        std::snprintf(dst, sizeof dst, "%05d.jpg", i);
        fs::copy_file(frames_dir() + "/" + src, frames / dst);
    }
    std::vector<std::string> args = track_args(frames.string(), "--point 0,160,120,1");
    for (const char* a : {"--format", "coco-rle", "--output"}) args.push_back(a);
    args.push_back(out.string());
    args.push_back("--overlay-video");
    args.push_back((out / "overlay.mkv").string());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    ASSERT_EQ(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    // Wait for both temporaries (made before the model is loaded), then a little into tracking.
    bool seen = false;
    for (int i = 0; i < 20000 && !seen; ++i) {
        int temps = 0;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(out, ec))
            temps += e.path().filename().string().find(".sam-tmp-") != std::string::npos;
        seen = temps == 2;
        if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(seen) << "the run's temporaries never appeared";
    ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it was killed";
    EXPECT_FALSE(fs::exists(out / "masks.jsonl"));
    EXPECT_FALSE(fs::exists(out / "overlay.mkv"));
}

}  // namespace
}  // namespace sam
