// SAM 2 / SAM 2.1 video object tracking (sam2/sam2_video_predictor.py, SAM2VideoPredictor, as
// build_sam2_video_predictor builds it): several objects prompted with clicks, boxes or masks on
// any frames, tracked forward and in reverse through a memory bank (memory encoder, memory attention
// with 2-D axial RoPE, object pointers with their temporal encoding, memories stored in bf16,
// occlusion through the object-score head).
//
//   sam::Sam2Video model = sam::Sam2Video::load("sam2.1_hiera_tiny.pt");
//   sam::Sam2VideoPredictor predictor(model);
//   predictor.init_state("frames/");                     // 00000.jpg, 00001.jpg, ...
//   predictor.add_new_points_or_box(0, 1, {{210, 350}}, {1});
//   predictor.add_new_points_or_box(0, 2, {}, {}, std::array<float, 4>{300, 0, 500, 400});
//   predictor.propagate_in_video([](const sam::Sam2VideoFrame& f) { ...; return true; });
#pragma once

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sam/image.h"
#include "sam/sam2.h"
#include "sam/tensor.h"

namespace sam {

struct Sam2VideoWeights;  // src/sam2/video_model.h

// A SAM 2 checkpoint with its video weights. Thread safety: an immutable handle on shared
// weights, as sam::Sam2; any number of predictors may use one model at once.
class Sam2Video {
  public:
    // Loads the image model (as Sam2::load) and the memory encoder, memory attention and object
    // pointer weights; throws sam::CheckpointError naming the file and key when one is missing
    // or ill-shaped.
    static Sam2Video load(const std::string& checkpoint_path, const Sam2LoadOptions& options = {});
    // A model of the given image shape with random weights and the official video settings
    // (memory width 64, 7 memory frames, 4 memory-attention layers): benchmarks.
    static Sam2Video random(const Sam2Config& config, uint64_t seed = 0);
    Sam2Video with_execution(const ExecutionOptions& options) const;
    const Sam2& image_model() const { return image_; }
    int num_maskmem() const;  // memory frames attended to (7 in the official configs)
    int mem_dim() const;      // memory channels (64 in the official configs)

  private:
    Sam2Video(Sam2 image, std::shared_ptr<const Sam2VideoWeights> video) : image_(std::move(image)), video_(std::move(video)) {}
    friend class Sam2VideoPredictor;
    friend struct Sam2VideoAccess;  // the library's access to the weights (src/sam2/video_model.h)
    Sam2 image_;
    std::shared_ptr<const Sam2VideoWeights> video_;
};

struct Sam2VideoOptions {
    // fill_hole_area of build_sam2_video_predictor (8): background components (8-connected) of
    // at most this many low-res pixels become foreground (0.1) in each stored mask. The official
    // package runs it with its GPU extension and skips it on CPU; 0 (the default) computes what
    // it computes on CPU, 8 what it computes on GPU.
    int fill_hole_area = 0;
};

// One frame's masks for every object, in obj_ids order.
struct Sam2VideoFrame {
    int frame = 0;
    std::vector<int> obj_ids;
    Tensor low_res;                    // (objects, L, L) logits, L = image_size / 4; -1024 where absent
    Tensor logits;                     // (objects, video_height, video_width), bilinear from low_res
    std::vector<float> object_scores;  // object-score logits (> 0: the object is visible); NaN where none
};

// SAM2VideoPredictor: the inference state of one video, with the official methods. Coordinates
// are video pixels (normalize_coords=True). Frames are decoded and resized on init_state as the
// official JPEG-folder loader does (Pillow's bicubic resize to image_size x image_size); image
// features are computed per frame when needed, the most recent frame's kept.
//
// Thread safety: a predictor holds one video's state and must be used from one thread at a
// time; predictors on the same model may run on different threads at once.
class Sam2VideoPredictor {
  public:
    explicit Sam2VideoPredictor(Sam2Video model, Sam2VideoOptions options = {});

    // A folder of JPEG frames named <index>.jpg (.jpeg, .JPG, .JPEG), ordered by index. Throws
    // sam::InputError naming the folder or file (no frames, a name that is not a number) and
    // sam::ImageError for an unreadable frame. Clears any previous state.
    // An existing path that is not a folder is read as a video file (mp4, mkv, webm, ... through FFmpeg's
    // libraries), resized as the official decord loader does (libswscale bicubic, not Pillow's);
    // sam::ImageError naming the file for one that is missing, corrupt or has no video.
    void init_state(const std::string& jpeg_folder);
    // Frames already decoded (all of one size).
    void init_state(const std::vector<Image>& frames);
    // Frames decoded and resized to image_size x image_size by the caller (as init_state of a video
    // file resizes them: VideoFileReader::next(img, S, S), src/io/video_file.h), with the video's
    // own size, which prompts and masks are in. A server reads untrusted files with its own limits
    // this way. Throws sam::InputError for no frames, a frame of another size or a bad video size.
    void init_state_resized(std::vector<Image> frames, int video_width, int video_height);

    int num_frames() const { return static_cast<int>(frames_.size()); }
    int video_height() const { return video_h_; }
    int video_width() const { return video_w_; }
    const std::vector<int>& obj_ids() const { return obj_ids_; }

    // Clicks (labels 1 foreground, 0 background) and/or a box (x0, y0, x1, y1) for object obj_id
    // on a frame; a new obj_id adds an object, on any frame, before or after tracking. With
    // clear_old_points the frame's earlier prompts of the object are replaced (a box requires
    // it). Returns the frame's masks of every object.
    Sam2VideoFrame add_new_points_or_box(int frame_idx, int obj_id, const std::vector<std::array<float, 2>>& points,
                                         const std::vector<int>& labels,
                                         const std::optional<std::array<float, 4>>& box = std::nullopt,
                                         bool clear_old_points = true);

    // A mask prompt (SAM2VideoPredictor.add_new_mask): mask_h x mask_w values, nonzero inside
    // the object, of any size (resized to image_size x image_size, bilinear with antialiasing,
    // then >= 0.5). The frame's point prompts of the object are dropped. The mask itself becomes
    // the output (as use_mask_input_as_output_without_sam). Returns the frame's masks.
    Sam2VideoFrame add_new_mask(int frame_idx, int obj_id, const std::vector<uint8_t>& mask, int mask_h, int mask_w);

    // Tracks every object from start_frame_idx (default: the first prompted frame) over
    // max_frame_num_to_track frames (default: all), forward or in reverse, calling on_frame with
    // each frame's masks; on_frame returns false to stop.
    void propagate_in_video(const std::function<bool(const Sam2VideoFrame&)>& on_frame,
                            std::optional<int> start_frame_idx = std::nullopt,
                            std::optional<int> max_frame_num_to_track = std::nullopt, bool reverse = false);

    // Removes an object and its memories; returns the masks of the frames it had prompts on, as
    // they are now. Unknown ids: nothing happens (strict: sam::InputError).
    std::vector<Sam2VideoFrame> remove_object(int obj_id, bool strict = false);

    // Forgets every object, prompt and tracking result (the frames stay).
    void reset_state();

    struct ObjectState;  // per-object prompts and outputs (src/sam2/video.cpp)
    struct FrameCache;   // the most recent frame's image features

    ~Sam2VideoPredictor();
    Sam2VideoPredictor(Sam2VideoPredictor&&) noexcept;
    Sam2VideoPredictor& operator=(Sam2VideoPredictor&&) noexcept;

  private:
    friend struct Sam2VideoPredictorAccess;  // the library's view of the state (src/sam2/video_model.h)
    int obj_idx(int obj_id, bool create);
    const FrameCache& features(int frame_idx);
    Sam2VideoFrame consolidate(int frame_idx, bool is_cond) const;
    void preflight();
    void check_frame(int frame_idx) const;

    Sam2Video model_;
    Sam2VideoOptions options_;
    std::vector<Image> frames_;  // resized to image_size x image_size, uint8
    int video_h_ = 0, video_w_ = 0;
    std::vector<int> obj_ids_;
    std::vector<std::unique_ptr<ObjectState>> objects_;
    std::unique_ptr<FrameCache> cache_;
    Tensor maskmem_pos_;  // (G*G, mem_dim): the memory encoder's sine position encoding
};

}  // namespace sam
