#include "cli/track_outputs.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/video_file.h"
#include "io/video_writer.h"
#include "mask_overlay.h"
#include "sam/error.h"
#include "sam2/video_model.h"

namespace sam::cli {
namespace fs = std::filesystem;

TrackFormat track_format_from_string(const std::string& s) {
    if (s == "png") return TrackFormat::Png;
    if (s == "coco-rle") return TrackFormat::CocoRle;
    throw InputError("--format", "\"" + s + "\": expected png or coco-rle");
}

TrackOutputs::TrackOutputs(const TrackOutputOptions& options, int num_frames) : o_(options), num_frames_(num_frames) {
    std::error_code ec;
    fs::create_directories(o_.output, ec);
    if (ec || !fs::is_directory(o_.output)) throw Error(o_.output + ": cannot create the output folder" + (ec ? " (" + ec.message() + ")" : ""));
    try {
        if (o_.format == TrackFormat::CocoRle) {
            const std::string path = (fs::path(o_.output) / "masks.jsonl").string();
            jsonl_tmp_ = make_temporary_file(path);
            jsonl_ = std::make_unique<std::ofstream>(jsonl_tmp_, std::ios::binary | std::ios::trunc);
            if (!*jsonl_) throw Error(path + ": cannot write");
        }
        if (!o_.overlay_video.empty()) {
            video_encoder_for(o_.overlay_video);  // an unknown extension fails before the source is read
            std::pair<int, int> rate{25, 1};
            std::error_code e2;
            if (fs::is_directory(o_.video, e2)) {
                frame_files_ = list_jpeg_frames(o_.video);
            } else {
                reader_ = std::make_unique<VideoFileReader>(o_.video, o_.threads);
                if (reader_->frame_rate().first > 0) rate = reader_->frame_rate();
            }
            if (o_.overlay_fps > 0) rate = {static_cast<int>(std::lround(o_.overlay_fps * 1000)), 1000};
            const Image& first = source_frame(0);
            writer_ = std::make_unique<VideoFileWriter>(o_.overlay_video, first.width, first.height, rate.first, rate.second,
                                                        o_.threads);
        }
    } catch (...) {
        jsonl_.reset();
        if (!jsonl_tmp_.empty()) std::remove(jsonl_tmp_.c_str());
        throw;
    }
}

TrackOutputs::~TrackOutputs() {
    jsonl_.reset();
    if (!finished_ && !jsonl_tmp_.empty()) std::remove(jsonl_tmp_.c_str());
}

const std::string& TrackOutputs::overlay_encoder() const {
    static const std::string none;
    return writer_ ? writer_->encoder() : none;
}

const Image& TrackOutputs::source_frame(int frame) {
    if (frame == frame_index_) return frame_;
    if (reader_) {
        while (frame_index_ < frame) {
            if (!reader_->next(frame_)) throw ImageError(o_.video, "ends before frame " + std::to_string(frame));
            ++frame_index_;
        }
    } else {
        if (frame < 0 || frame >= static_cast<int>(frame_files_.size()))
            throw ImageError(o_.video, "no frame " + std::to_string(frame));
        frame_ = read_image(frame_files_[static_cast<size_t>(frame)]);
        frame_index_ = frame;
    }
    return frame_;
}

void TrackOutputs::add(const Sam2VideoFrame& f) {
    const int H = static_cast<int>(f.logits.dim(1)), W = static_cast<int>(f.logits.dim(2));
    const int64_t HW = static_cast<int64_t>(H) * W;
    pixels_.resize(static_cast<size_t>(HW));
    char name[32];
    std::snprintf(name, sizeof(name), "%05d.png", f.frame);
    Pending p;
    p.tracked = true;
    for (size_t k = 0; k < f.obj_ids.size(); ++k) {
        if (std::isnan(f.object_scores[k])) continue;  // not prompted yet (stream)
        const float* l = f.logits.data() + static_cast<int64_t>(k) * HW;
        for (int64_t i = 0; i < HW; ++i) pixels_[static_cast<size_t>(i)] = l[i] > 0.0f ? 255 : 0;
        if (o_.format == TrackFormat::Png) {
            const fs::path dir = fs::path(o_.output) / std::to_string(f.obj_ids[k]);
            fs::create_directories(dir);
            write_png((dir / name).string(), pixels_.data(), W, H, 1);
        }
        if (jsonl_ || writer_) p.objects.push_back({f.obj_ids[k], rle_encode(pixels_.data(), H, W), f.object_scores[k]});
    }
    if (!jsonl_ && !writer_) return;
    pending_[f.frame] = std::move(p);
    flush();
}

void TrackOutputs::add_untracked(int frame) {
    if (!jsonl_ && !writer_) return;
    pending_[frame] = Pending{};
    flush();
}

void TrackOutputs::flush() {
    for (auto it = pending_.find(next_); it != pending_.end(); it = pending_.find(next_)) {
        const Pending& p = it->second;
        if (jsonl_ && p.tracked) {
            nlohmann::ordered_json objects = nlohmann::ordered_json::array();
            for (const Object& ob : p.objects) {
                const int64_t area = rle_area(ob.rle);
                const auto b = rle_to_box_xyxy(ob.rle);
                objects.push_back({{"obj_id", ob.obj_id},
                                   {"segmentation", {{"size", {ob.rle.height, ob.rle.width}}, {"counts", rle_to_coco_string(ob.rle)}}},
                                   {"area", area},
                                   {"bbox", area ? nlohmann::ordered_json{b[0], b[1], b[2] - b[0] + 1, b[3] - b[1] + 1} : nlohmann::ordered_json{0, 0, 0, 0}},
                                   {"object_score", ob.score}});
            }
            *jsonl_ << nlohmann::ordered_json{{"frame", next_}, {"objects", std::move(objects)}}.dump() << '\n';
            if (!*jsonl_) throw Error((fs::path(o_.output) / "masks.jsonl").string() + ": write failed");
        }
        if (writer_) {
            Image img = source_frame(next_);
            for (const Object& ob : p.objects) {
                if (ob.rle.height != img.height || ob.rle.width != img.width)
                    throw Error(o_.overlay_video + ": frame " + std::to_string(next_) + " of " + o_.video + " is " +
                                std::to_string(img.width) + "x" + std::to_string(img.height) + ", its masks " +
                                std::to_string(ob.rle.width) + "x" + std::to_string(ob.rle.height));
                const std::vector<uint8_t> m = rle_decode(ob.rle);
                draw_mask(img, m.data(), overlay_colour(ob.obj_id - 1), true);
            }
            writer_->write(img);
        }
        pending_.erase(it);
        ++next_;
    }
}

void TrackOutputs::finish() {
    if (finished_) return;
    if (next_ != num_frames_ && (jsonl_ || writer_))
        throw Error(o_.output + ": frames " + std::to_string(next_) + " to " + std::to_string(num_frames_ - 1) + " were not tracked");
    if (jsonl_) {
        jsonl_->close();
        const std::string path = (fs::path(o_.output) / "masks.jsonl").string();
        if (jsonl_->fail()) throw Error(path + ": write failed");
        sync_file(jsonl_tmp_);
        rename_durable(jsonl_tmp_, path);
    }
    if (writer_) writer_->finish();
    finished_ = true;
}

}  // namespace sam::cli
