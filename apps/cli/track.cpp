// sam track: SAM 2 video object tracking over a folder of JPEG frames, as the official
// SAM2VideoPredictor: prompts on any frames, then propagation forward from the first prompted
// frame and, when that is not frame 0, in reverse from it. Writes OUT/<obj_id>/<frame>.png
// (0 / 255 masks at the video's size), each file atomically. With --stream, the frames are read
// one at a time through sam::Sam2VideoStream (causal tracking in bounded memory: prompts take
// effect on their frame and after it; an object has no masks before its first prompt).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "cli/command.h"
#include "cli/model_loading.h"
#include "cli/progress.h"
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
    std::string video, output;
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

struct FramePrompt {
    std::vector<std::array<float, 2>> points;
    std::vector<int> labels;
    std::optional<std::array<float, 4>> box;
};

void write_masks(const std::string& output, const Sam2VideoFrame& f, int frame, std::vector<uint8_t>& pixels) {
    namespace fs = std::filesystem;
    const int H = static_cast<int>(f.logits.dim(1)), W = static_cast<int>(f.logits.dim(2));
    const int64_t HW = static_cast<int64_t>(H) * W;
    pixels.resize(static_cast<size_t>(HW));
    char name[32];
    std::snprintf(name, sizeof(name), "%05d.png", frame);
    for (size_t k = 0; k < f.obj_ids.size(); ++k) {
        if (std::isnan(f.object_scores[k])) continue;  // not prompted yet (stream)
        const float* l = f.logits.data() + static_cast<int64_t>(k) * HW;
        for (int64_t i = 0; i < HW; ++i) pixels[static_cast<size_t>(i)] = l[i] > 0.0f ? 255 : 0;
        const fs::path dir = fs::path(output) / std::to_string(f.obj_ids[k]);
        fs::create_directories(dir);
        write_png((dir / name).string(), pixels.data(), W, H, 1);
    }
}

// --stream: frames read and tracked one at a time from the first prompted frame on.
int run_stream(const TrackOptions& o, const Sam2Video& model, const std::map<std::pair<int, int>, FramePrompt>& prompts) {
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
    std::vector<uint8_t> pixels;
    for (int frame = first; frame < n; ++frame) {
        for (const auto& [key, fp] : prompts)
            if (key.first == frame) stream.add_new_points_or_box(key.second, fp.points, fp.labels, fp.box);
        const Sam2VideoFrame f = stream.track(frame_image(frame));
        write_masks(o.output, f, frame, pixels);
        bar.update(frame - first + 1, n - first);
    }
    bar.finish();
    const Sam2VideoStreamMemory m = stream.memory_stats();
    std::cout << "tracked " << stream.obj_ids().size() << " object(s) over " << n - first << " frames (streaming, "
              << m.memories << " memories held, " << m.bytes / 1024 << " KiB) -> " << o.output << "\n";
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

    Sam2LoadOptions lo;
    lo.model_type = o.model.model_type;
    lo.config_path = o.model.config;
    Sam2Video model = Sam2Video::load(o.model.checkpoint, lo).with_execution(execution_options(o.model));
    namespace fs = std::filesystem;
    if (o.stream) return run_stream(o, model, prompts);
    Sam2VideoOptions vo;
    vo.fill_hole_area = o.fill_hole_area;
    Sam2VideoPredictor predictor(model, vo);
    predictor.init_state(o.video);
    for (const auto& [key, fp] : prompts) {
        if (key.first < 0 || key.first >= predictor.num_frames())
            throw InputError("--point/--box", "frame " + std::to_string(key.first) + " out of range [0, " +
                                                  std::to_string(predictor.num_frames()) + ")");
        predictor.add_new_points_or_box(key.first, key.second, fp.points, fp.labels, fp.box);
    }

    for (int id : predictor.obj_ids()) fs::create_directories(fs::path(o.output) / std::to_string(id));
    const int n = predictor.num_frames();
    int first = n;
    for (const auto& [key, fp] : prompts) first = std::min(first, key.first);
    const int total = (n - first) + first;  // forward frames, then the reverse ones before `first`
    int done = 0;
    ProgressBar bar("track");
    std::vector<uint8_t> pixels;
    auto write = [&](const Sam2VideoFrame& f) {
        const int64_t HW = static_cast<int64_t>(predictor.video_height()) * predictor.video_width();
        pixels.resize(static_cast<size_t>(HW));
        char name[32];
        std::snprintf(name, sizeof(name), "%05d.png", f.frame);
        for (size_t k = 0; k < f.obj_ids.size(); ++k) {
            const float* l = f.logits.data() + static_cast<int64_t>(k) * HW;
            for (int64_t i = 0; i < HW; ++i) pixels[static_cast<size_t>(i)] = l[i] > 0.0f ? 255 : 0;
            write_png((fs::path(o.output) / std::to_string(f.obj_ids[k]) / name).string(), pixels.data(),
                      predictor.video_width(), predictor.video_height(), 1);
        }
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
    bar.finish();
    std::cout << "tracked " << predictor.obj_ids().size() << " object(s) over " << n << " frames -> " << o.output << "\n";
    return 0;
}

Registration reg("track", "SAM 2 video: track objects through a folder of JPEG frames", [](CLI::App& cmd) {
    auto o = std::make_shared<TrackOptions>();
    add_model_options(cmd, o->model);
    cmd.add_option("--video", o->video, "Folder of JPEG frames named <index>.jpg, or a video file (mp4, mkv, webm, ...)")->required();
    cmd.add_option("--point", o->points, "FRAME,X,Y,OBJ[,LABEL]: a click (LABEL 1 foreground, default; 0 background) in video pixels");
    cmd.add_option("--box", o->boxes, "FRAME,X0,Y0,X1,Y1,OBJ: a box in video pixels");
    cmd.add_option("--output,-o", o->output, "Output folder: <OBJ>/<frame>.png per object and frame")->required();
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
