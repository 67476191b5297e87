// The server's videos (SAM 2 tracking, video_routes.h): each upload becomes a session holding the
// frames as JPEG for the page, a Sam2VideoPredictor on the frames resized for the model, the
// prompted frames of each object, and the masks of every frame tracked so far (COCO RLE per
// object). Sessions live in a bounded LRU store; an evicted session stays alive for the requests
// that still hold it.
//
// Thread safety:
//  - VideoStore: every method from any request thread. Uploads are decoded one at a time
//    (decode_mutex), so at most one video's frames are being decoded and resized at once.
//  - VideoSession: its immutable fields (id, size, fps, jpegs) from any thread. The predictor and
//    the prompt record are driven by one request at a time: take `drive()` (a lock on the
//    session's own mutex) around every use; other sessions and the image routes go on meanwhile.
//    A propagation holds it for its whole run; requests that would drive the predictor meanwhile
//    are refused at once (HttpError 409) rather than made to wait (begin_propagation). The
//    results (masks per frame) and the progress have their own lock and atomics, so the page
//    reads frames, masks and progress while a propagation runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sam/sam2_video.h"

namespace sam::server {

struct VideoLimits {
    int64_t max_frames = 300;          // frames of one video (each holds image_size^2 x 3 bytes)
    int64_t max_pixels = 40'000'000;   // pixels of one frame
    size_t max_sessions = 2;           // videos kept (LRU)
    int max_objects = 32;              // objects of one video
    int jpeg_quality = 90;             // of the frames shown by the page
};

// Demuxers accepted for uploads (FFmpeg's names; video_file.h): Matroska/WebM, MP4/MOV, AVI.
inline constexpr const char* kVideoFormats = "matroska,webm,mov,mp4,avi";

// One object's mask on a frame: COCO RLE at the video's size, and its object-score logit (> 0:
// the model sees the object; NaN where the frame has no output for it).
struct ObjectMask {
    int obj_id = 0;
    std::string counts;
    float score = 0.0f;
};

class VideoSession {
  public:
    VideoSession(std::string id_, int width_, int height_, double fps_, std::vector<std::string> jpegs_,
                 Sam2VideoPredictor predictor)
        : id(std::move(id_)), width(width_), height(height_), fps(fps_), jpegs(std::move(jpegs_)),
          predictor_(std::move(predictor)) {}

    const std::string id;
    const int width, height;
    const double fps;                       // 0 when the file does not say
    const std::vector<std::string> jpegs;   // every frame, JPEG, at the video's size
    int num_frames() const { return static_cast<int>(jpegs.size()); }

    // Exclusive use of the predictor and the prompt record.
    std::unique_lock<std::mutex> drive() { return std::unique_lock<std::mutex>(drive_mutex_); }
    // Held lock of drive() required by the three below.
    Sam2VideoPredictor& predictor(const std::unique_lock<std::mutex>&) { return predictor_; }
    // Frames with point or box prompts, per object.
    std::map<int, std::set<int>>& prompted(const std::unique_lock<std::mutex>&) { return prompted_; }

    // Marks a propagation as running; HttpError 409 when one already is.
    void begin_propagation(int total);
    void end_propagation();
    // Refuses (HttpError 409) a request that would drive the predictor while a propagation runs.
    void check_not_propagating() const;
    void frame_done() { done_.fetch_add(1); }
    struct Progress {
        bool running = false;
        int done = 0, total = 0;
    };
    Progress progress() const { return {running_.load(), done_.load(), total_.load()}; }

    // Masks per frame, for every object the frame's output holds.
    void set_masks(int frame, std::vector<ObjectMask> masks);
    std::optional<std::vector<ObjectMask>> masks(int frame) const;
    void drop_object(int obj_id);  // from every frame's masks
    void clear_masks();
    int tracked_frames() const;

  private:
    std::mutex drive_mutex_;
    Sam2VideoPredictor predictor_;
    std::map<int, std::set<int>> prompted_;

    std::atomic<bool> running_{false};
    std::atomic<int> done_{0}, total_{0};

    mutable std::mutex results_mutex_;
    std::map<int, std::vector<ObjectMask>> results_;
};

// Each object's mask of a predictor's frame answer (logits > 0 at the video's size, COCO RLE).
std::vector<ObjectMask> frame_masks(const Sam2VideoFrame& f);

class VideoStore {
  public:
    VideoStore(Sam2Video model, VideoLimits limits) : model_(std::move(model)), limits_(limits) {}

    // Decodes an uploaded video file (kVideoFormats only) into a new session. Throws HttpError:
    // 413 for more frames than limits.max_frames or a frame over limits.max_pixels (both
    // checked before the frames are decoded: the frame count from the container's packets, the
    // size from the stream's header, and again while decoding); 415 for bytes that are not a
    // video of an accepted container and codec, naming what was found.
    std::shared_ptr<VideoSession> add(const std::string& bytes);

    // The session, or nullptr for an unknown (or evicted) id.
    std::shared_ptr<VideoSession> find(const std::string& id);

    const Sam2Video& model() const { return model_; }
    const VideoLimits& limits() const { return limits_; }
    size_t size();

  private:
    Sam2Video model_;
    VideoLimits limits_;
    std::mutex decode_mutex_;  // one upload decoded at a time
    std::mutex mutex_;         // guards sessions_
    std::list<std::shared_ptr<VideoSession>> sessions_;  // most recent first
    uint64_t counter_ = 0;     // temp file names (under mutex_)
};

}  // namespace sam::server
