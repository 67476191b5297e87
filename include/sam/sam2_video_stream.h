// Streaming SAM 2 / SAM 2.1 video tracking: frames arrive one at a time (a camera, a pipe) and
// each frame's masks are returned before the next one is read, in memory that stays bounded on an
// arbitrarily long video.
//
//   sam::Sam2VideoStream stream(sam::Sam2Video::load("sam2.1_hiera_tiny.pt"));
//   stream.add_new_points_or_box(1, {{210, 350}}, {1});          // prompts for the next frame
//   for (;;) {
//       sam::Image frame = camera.read();
//       sam::Sam2VideoFrame masks = stream.track(frame);          // frame masks.frame
//       ...
//   }
//
// The computation is the video predictor's (sam::Sam2VideoPredictor, src/sam2/video.cpp) over the
// frames seen so far: a frame with prompts for an object is a conditioning frame of that object
// (its prompts run in the order given, a later call on the frame taking the earlier result's
// logits as mask input, as add_new_points_or_box does), every other object is tracked on it from
// its memory bank. Pushing frames 0..N-1 of a video whose prompts all lie on frame 0 gives, frame
// by frame, what propagate_in_video gives on that video (bit for bit when
// Sam2VideoStreamOptions::num_frames is N, tests/test_sam2_video_stream.cpp). The stream is
// causal: an object exists from the frame of its first prompt on (earlier frames report it
// absent), and a conditioning frame only conditions the frames after it.
//
// What is kept (nothing else: no frame image, no image features of a past frame):
//   per object and conditioning frame (a frame with prompts; all are kept, as the official
//     predictor keeps them): the memory, G*G*mem_dim bf16 values, and the object pointer,
//     d_model floats;
//   per object, the num_maskmem - 1 most recent tracked frames' memories (the memory bank reads
//     no older one);
//   per object, the max_obj_ptrs_in_encoder - 1 most recent tracked frames' object pointers (the
//     pointer selection reads no older one), d_model floats each.
// G = image_size / 16. For SAM 2.1 at 1024 (G 64, mem_dim 64, d_model 256, num_maskmem 7,
// max_obj_ptrs_in_encoder 16) that is 512 KiB per memory, so about 3 MiB + 15 KiB per object
// plus 0.5 MiB per conditioning frame, independent of the video's length; memory_stats() reports
// it. The current frame's image features live only during track().
//
// Thread safety: a stream holds one video's state and must be used from one thread at a time;
// streams (and predictors) on the same model may run on different threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "sam/image.h"
#include "sam/sam2_video.h"

namespace sam {

struct Sam2VideoStreamOptions {
    // As Sam2VideoOptions::fill_hole_area.
    int fill_hole_area = 0;
    // The video's length when it is known in advance. The official predictor spreads the object
    // pointers' temporal encoding over min(num_frames, max_obj_ptrs_in_encoder) frames; a stream
    // of unknown length (nullopt) computes what the predictor computes on a video of at least
    // max_obj_ptrs_in_encoder frames (16 in the official configs). With a length given, pushing
    // more frames is refused.
    std::optional<int> num_frames;
};

// Counts of what a stream holds (all objects together).
struct Sam2VideoStreamMemory {
    int64_t memories = 0;   // stored memories (conditioning and recent frames)
    int64_t obj_ptrs = 0;   // stored object pointers
    int64_t bytes = 0;      // their payload: memories in bf16, pointers in float
};

class Sam2VideoStream {
  public:
    explicit Sam2VideoStream(Sam2Video model, Sam2VideoStreamOptions options = {});
    ~Sam2VideoStream();
    Sam2VideoStream(Sam2VideoStream&&) noexcept;
    Sam2VideoStream& operator=(Sam2VideoStream&&) noexcept;

    // Prompts for the next frame pushed (next_frame()), as Sam2VideoPredictor's methods of the
    // same names; coordinates are video pixels (the size of the frames pushed). A new obj_id adds
    // an object. Checked here (sam::InputError naming the field); run by track().
    void add_new_points_or_box(int obj_id, const std::vector<std::array<float, 2>>& points,
                               const std::vector<int>& labels,
                               const std::optional<std::array<float, 4>>& box = std::nullopt,
                               bool clear_old_points = true);
    void add_new_mask(int obj_id, const std::vector<uint8_t>& mask, int mask_h, int mask_w);

    // Runs the pending prompts on the frame, tracks every other object into it, stores what later
    // frames need, drops what they no longer need, and returns the frame's masks (every object
    // in obj_ids order; -1024 logits and a NaN score for an object not yet prompted). Frames must
    // all have the size of the first. Throws sam::InputError for a frame of another size, a frame
    // beyond options.num_frames, or when no object has a prompt yet and none is pending.
    Sam2VideoFrame track(const Image& frame);

    int next_frame() const { return next_frame_; }  // the index track() gives the next frame
    const std::vector<int>& obj_ids() const { return obj_ids_; }
    Sam2VideoStreamMemory memory_stats() const;

    struct State;  // per-object memories and pending prompts (src/sam2/video.cpp)

  private:
    Sam2Video model_;
    Sam2VideoStreamOptions options_;
    int next_frame_ = 0;
    int video_h_ = 0, video_w_ = 0;
    std::vector<int> obj_ids_;
    std::unique_ptr<State> state_;
};

}  // namespace sam
