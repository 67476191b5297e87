// sam track: SAM 2 video object tracking over a folder of JPEG frames or a video file, as the official
// SAM2VideoPredictor: prompts on any frames, then propagation forward from the first prompted
// frame and, when that is not frame 0, in reverse from it. Writes OUT/<obj_id>/<frame>.png
// (0 / 255 masks at the video's size), each file atomically, or OUT/masks.jsonl (--format
// coco-rle), and with --overlay-video a video of the masks over the frames (cli/track_outputs.h).
// With --stream, the frames are read
// one at a time through sam::Sam2VideoStream (causal tracking in bounded memory: prompts take
// effect on their frame and after it; an object has no masks before its first prompt).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "cli/command.h"
#include "cli/model_loading.h"
#include "cli/progress.h"
#include "cli/track_outputs.h"
#include "io/video_file.h"
#include "sam/error.h"
#include "sam/image.h"
#include "sam/sam2_video.h"
#include "sam/sam2_video_stream.h"
#include "sam2/video_model.h"

namespace sam::cli {
namespace {

struct TrackOptions {
    ModelOptions model;
    std::string video, output, format = "png", overlay_video;
    double overlay_fps = 0;
    std::vector<std::string> points, boxes;
    int fill_hole_area = 0;
    bool stream = false;
};

// "a,b,c" -> numbers; `option` and `text` name the input in errors.
std::vector<float> numbers(const std::string& option, const std::string& text, size_t min_n, size_t max_n) {
    std::vector<float> v;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        try {
            size_t used = 0;
            v.push_back(std::stof(item, &used));
            if (used != item.size()) throw std::invalid_argument(item);
        } catch (const std::exception&) {
            throw InputError(option, "\"" + text + "\": \"" + item + "\" is not a number");
        }
    }
    if (v.size() < min_n || v.size() > max_n)
        throw InputError(option, "\"" + text + "\": expected " + std::to_string(min_n) +
                                     (max_n > min_n ? " or " + std::to_string(max_n) : "") + " comma-separated values");
    return v;
}

int as_int(const std::string& option, const std::string& text, float x, const char* what) {
    if (x != static_cast<float>(static_cast<int>(x))) throw InputError(option, "\"" + text + "\": " + what + " must be an integer");
    return static_cast<int>(x);
}

// Frames per second after the first output frame (the prompted one, which also encodes the
// prompts' memories): what `sam track` prints and scripts/bench_video_vs_official.py reads.
class FrameClock {
  public:
    void tick() {
        if (n_++ == 0) first_ = std::chrono::steady_clock::now();
        last_ = std::chrono::steady_clock::now();
    }
    std::string summary() const {
        const double s = std::chrono::duration<double>(last_ - first_).count();
        char buf[128];
        std::snprintf(buf, sizeof buf, "%d frames in %.3f s after the first (%.4f frames/s)", n_ > 0 ? n_ - 1 : 0, s,
                      n_ > 1 && s > 0 ? (n_ - 1) / s : 0.0);
        return buf;
    }

  private:
    int n_ = 0;
    std::chrono::steady_clock::time_point first_, last_;
};

struct FramePrompt {
    std::vector<std::array<float, 2>> points;
    std::vector<int> labels;
    std::optional<std::array<float, 4>> box;
};

// --stream: frames read and tracked one at a time from the first prompted frame on.
int run_stream(const TrackOptions& o, const Sam2Video& model, const std::map<std::pair<int, int>, FramePrompt>& prompts,
               TrackOutputs& outputs) {
    // A video file is decoded frame by frame (at its own size; the stream resizes as for JPEG frames).
    std::error_code ec;
    const bool video_file = std::filesystem::exists(o.video, ec) && !std::filesystem::is_directory(o.video, ec);
    const std::vector<std::string> files = video_file ? std::vector<std::string>{} : list_jpeg_frames(o.video);
    const int n = video_file ? static_cast<int>(count_video_frames(o.video)) : static_cast<int>(files.size());
    std::optional<VideoFileReader> reader;
    if (video_file) reader.emplace(o.video, o.model.threads);
    Image decoded;
    auto frame_image = [&](int frame) -> const Image& {
        if (!video_file) return decoded = read_image(files[static_cast<size_t>(frame)]);
        while (reader->frames_read() <= frame)
            if (!reader->next(decoded)) throw ImageError(o.video, "ends before frame " + std::to_string(frame));
        return decoded;
    };
    int first = n;
    for (const auto& [key, fp] : prompts) {
        if (key.first < 0 || key.first >= n)
            throw InputError("--point/--box", "frame " + std::to_string(key.first) + " out of range [0, " + std::to_string(n) + ")");
        first = std::min(first, key.first);
    }
    Sam2VideoStreamOptions so;
    so.fill_hole_area = o.fill_hole_area;
    Sam2VideoStream stream(model, so);
    ProgressBar bar("track");
    FrameClock clock;
    for (int frame = 0; frame < first; ++frame) outputs.add_untracked(frame);
    for (int frame = first; frame < n; ++frame) {
        for (const auto& [key, fp] : prompts)
            if (key.first == frame) stream.add_new_points_or_box(key.second, fp.points, fp.labels, fp.box);
        Sam2VideoFrame f = stream.track(frame_image(frame));
        f.frame = frame;  // the stream counts from its first frame, the video from 0
        clock.tick();
        outputs.add(f);
        bar.update(frame - first + 1, n - first);
    }
    outputs.finish();
    bar.finish();
    const Sam2VideoStreamMemory m = stream.memory_stats();
    std::cout << "tracked " << stream.obj_ids().size() << " object(s) over " << n - first << " frames (streaming, "
              << m.memories << " memories held, " << m.bytes / 1024 << " KiB) -> " << o.output << "\n"
              << "propagation: " << clock.summary() << "\n";
    return 0;
}

int run_track(const TrackOptions& o) {
    // Prompts per (frame, object), in the order given.
    std::map<std::pair<int, int>, FramePrompt> prompts;
    for (const std::string& p : o.points) {
        const auto v = numbers("--point", p, 4, 5);
        const int frame = as_int("--point", p, v[0], "FRAME"), obj = as_int("--point", p, v[3], "OBJ");
        const int label = v.size() > 4 ? as_int("--point", p, v[4], "LABEL") : 1;
        if (label != 0 && label != 1) throw InputError("--point", "\"" + p + "\": LABEL must be 0 or 1");
        FramePrompt& fp = prompts[{frame, obj}];
        fp.points.push_back({v[1], v[2]});
        fp.labels.push_back(label);
    }
    for (const std::string& b : o.boxes) {
        const auto v = numbers("--box", b, 6, 6);
        const int frame = as_int("--box", b, v[0], "FRAME"), obj = as_int("--box", b, v[5], "OBJ");
        FramePrompt& fp = prompts[{frame, obj}];
        if (fp.box) throw InputError("--box", "\"" + b + "\": a second box for object " + std::to_string(obj) + " on frame " +
                                                  std::to_string(frame));
        fp.box = std::array<float, 4>{v[1], v[2], v[3], v[4]};
    }
    if (prompts.empty()) throw InputError("--point", "give at least one --point or --box");

    // The outputs first: a bad --format, an unwritable folder or an overlay name without an
    // encoder fail before the model is loaded.
    TrackOutputOptions to;
    to.output = o.output;
    to.format = track_format_from_string(o.format);
    to.overlay_video = o.overlay_video;
    to.overlay_fps = o.overlay_fps;
    to.video = o.video;
    to.threads = o.model.threads;
    std::error_code ec;
    const int num_frames = std::filesystem::is_directory(o.video, ec) ? static_cast<int>(list_jpeg_frames(o.video).size())
                                                                      : static_cast<int>(count_video_frames(o.video));
    TrackOutputs outputs(to, num_frames);

    Sam2LoadOptions lo;
    lo.model_type = o.model.model_type;
    lo.config_path = o.model.config;
    Sam2Video model = Sam2Video::load(o.model.checkpoint, lo).with_execution(execution_options(o.model));
    if (o.stream) return run_stream(o, model, prompts, outputs);
    Sam2VideoOptions vo;
    vo.fill_hole_area = o.fill_hole_area;
    Sam2VideoPredictor predictor(model, vo);
    predictor.init_state(o.video);
    outputs.set_num_frames(predictor.num_frames());
    for (const auto& [key, fp] : prompts) {
        if (key.first < 0 || key.first >= predictor.num_frames())
            throw InputError("--point/--box", "frame " + std::to_string(key.first) + " out of range [0, " +
                                                  std::to_string(predictor.num_frames()) + ")");
        predictor.add_new_points_or_box(key.first, key.second, fp.points, fp.labels, fp.box);
    }

    const int n = predictor.num_frames();
    int first = n;
    for (const auto& [key, fp] : prompts) first = std::min(first, key.first);
    const int total = (n - first) + first;  // forward frames, then the reverse ones before `first`
    int done = 0;
    ProgressBar bar("track");
    FrameClock clock;
    auto write = [&](const Sam2VideoFrame& f) {
        clock.tick();
        outputs.add(f);
    };
    predictor.propagate_in_video([&](const Sam2VideoFrame& f) {
        write(f);
        bar.update(++done, total);
        return true;
    });
    if (first > 0)
        predictor.propagate_in_video(
            [&](const Sam2VideoFrame& f) {
                if (f.frame == first) return true;  // written by the forward pass
                write(f);
                bar.update(++done, total);
                return true;
            },
            first, std::nullopt, true);
    outputs.finish();
    bar.finish();
    std::cout << "tracked " << predictor.obj_ids().size() << " object(s) over " << n << " frames -> " << o.output << "\n"
              << "propagation: " << clock.summary() << "\n";
    return 0;
}

Registration reg("track", "SAM 2 video: track objects through a video file or a folder of JPEG frames", [](CLI::App& cmd) {
    auto o = std::make_shared<TrackOptions>();
    add_model_options(cmd, o->model);
    cmd.add_option("--video", o->video, "Folder of JPEG frames named <index>.jpg, or a video file (mp4, mkv, webm, ...)")->required();
    cmd.add_option("--point", o->points, "FRAME,X,Y,OBJ[,LABEL]: a click (LABEL 1 foreground, default; 0 background) in video pixels");
    cmd.add_option("--box", o->boxes, "FRAME,X0,Y0,X1,Y1,OBJ: a box in video pixels");
    cmd.add_option("--output,-o", o->output,
                   "Output folder: <OBJ>/<frame>.png per object and frame (--format png), or masks.jsonl (--format coco-rle)")
        ->required();
    cmd.add_option("--format", o->format,
                   "png (default): a 0/255 PNG per object and frame; coco-rle: OUT/masks.jsonl, one JSON line per frame "
                   "{\"frame\", \"objects\": [{\"obj_id\", \"segmentation\": {\"size\", \"counts\"}, \"area\", \"bbox\", "
                   "\"object_score\"}]} with pycocotools' compressed RLE");
    cmd.add_option("--overlay-video", o->overlay_video,
                   "Also write a video of every frame with each object's mask blended in its colour and outlined; "
                   "container from the extension: .mp4 (H.264, else MPEG-4), .webm (VP9, else VP8), .mkv (FFV1, lossless)");
    cmd.add_option("--overlay-fps", o->overlay_fps, "Frame rate of the overlay video (default: the video file's; 25 for frames)")
        ->check(CLI::PositiveNumber);
    cmd.add_option("--fill-hole-area", o->fill_hole_area,
                   "Fill background holes up to this many low-res pixels (8: what the official package does on GPU; "
                   "0, the default: what it does on CPU)")
        ->check(CLI::NonNegativeNumber);
    cmd.add_flag("--stream", o->stream,
                 "Read and track the frames one at a time, from the first prompted frame on, in bounded memory "
                 "(causal: no reverse pass; an object has masks from its first prompt on)");
    return [o] { return run_track(*o); };
});

}  // namespace
}  // namespace sam::cli
