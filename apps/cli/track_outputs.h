// What `sam track` writes, frame by frame as tracking gives them:
//   --format png       OUT/<obj_id>/<frame>.png: 0 / 255 masks at the video's size, each file atomic;
//   --format coco-rle  OUT/masks.jsonl: one JSON line per tracked frame, in frame order,
//                        {"frame": i, "objects": [{"obj_id": k, "segmentation": {"size": [h, w],
//                        "counts": "<COCO compressed RLE>"}, "area": n, "bbox": [x, y, w, h],
//                        "object_score": s}, ...]}
//                      (counts as pycocotools' rleToString writes them, column-major; bbox in
//                      pixels, [0, 0, 0, 0] for an empty mask; object_score the object-score
//                      logit, > 0 where the object is visible). Objects not prompted yet are left out;
//   --overlay-video F  every frame of the video with each object's mask blended in its colour and
//                      outlined (src/mask_overlay.h), encoded by src/io/video_writer.h (mp4, mkv, webm).
// masks.jsonl and the overlay video are written under temporary names and renamed into place by
// finish(): a run that fails or is killed never leaves either under its final name.
//
// Frames may come in any order (the predictor's forward pass, then its reverse one): a frame's
// JSON line and overlay frame are written once every earlier frame is in, so only the frames
// waiting for an earlier one are held (as RLEs).
//
// Thread safety: one thread.
#pragma once

#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sam/image.h"
#include "sam/rle.h"
#include "sam/sam2_video.h"

namespace sam {
class VideoFileWriter;
class VideoFileReader;
}  // namespace sam

namespace sam::cli {

enum class TrackFormat { Png, CocoRle };

// "png" or "coco-rle"; throws InputError naming --format otherwise.
TrackFormat track_format_from_string(const std::string& s);

struct TrackOutputOptions {
    std::string output;         // the output folder
    TrackFormat format = TrackFormat::Png;
    std::string overlay_video;  // empty: none
    double overlay_fps = 0;     // 0: the video file's rate (25 for a folder of frames)
    std::string video;          // the source (JPEG folder or video file), read again for the overlay
    int threads = 0;
};

class TrackOutputs {
  public:
    // Creates the output folder and opens the temporaries; throws before any tracking for an
    // unwritable folder or an overlay file name without an encoder. `num_frames`: the video's.
    TrackOutputs(const TrackOutputOptions& options, int num_frames);
    ~TrackOutputs();

    // The number of frames as decoded (a video file's packet count may differ from its frames).
    void set_num_frames(int n) { num_frames_ = n; }

    // A frame's masks (each frame once, any order).
    void add(const Sam2VideoFrame& f);
    // A frame without tracking results (streaming: before the first prompt): no JSON line, its
    // overlay frame without masks.
    void add_untracked(int frame);
    // Every frame given: writes what waits and renames masks.jsonl and the overlay video into place.
    void finish();

    const std::string& overlay_encoder() const;

  private:
    struct Object {
        int obj_id;
        Rle rle;
        float score;
    };
    struct Pending {
        bool tracked = false;
        std::vector<Object> objects;
    };
    void flush();
    const Image& source_frame(int frame);

    TrackOutputOptions o_;
    int num_frames_;
    int next_ = 0;  // the next frame to write to masks.jsonl and the overlay
    std::map<int, Pending> pending_;
    std::vector<uint8_t> pixels_;
    // masks.jsonl
    std::string jsonl_tmp_;
    std::unique_ptr<std::ofstream> jsonl_;
    // the overlay
    std::unique_ptr<VideoFileWriter> writer_;
    std::vector<std::string> frame_files_;    // a JPEG folder's frames
    std::unique_ptr<VideoFileReader> reader_;  // a video file's
    Image frame_;
    int frame_index_ = -1;  // the frame in frame_
    bool finished_ = false;
};

}  // namespace sam::cli
