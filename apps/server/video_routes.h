// The video routes of `sam serve` (SAM 2 tracking for web/video.html): a session per uploaded
// video (video_store.h), prompts on any frame, propagation through the video with its progress,
// and the masks of every frame. Coordinates are video pixels; masks are COCO RLE at the video's
// size ({"obj_id", "size": [h, w], "counts", "score"}: logits > 0 of Sam2VideoPredictor, "score"
// the object-score logit, null where none).
//
//   POST /api/videos                     video bytes (Matroska/WebM, MP4/MOV, AVI), raw or as the
//                                        multipart field "video" -> {id, frames, width, height, fps}
//   GET  /api/videos/{id}                {id, frames, width, height, fps, tracked_frames,
//                                        propagation: {running, done, total}}: poll it for progress
//   GET  /api/videos/{id}/frames/{n}.jpg the frame as JPEG, at the video's size
//   GET  /api/videos/{id}/frames/{n}/masks  {frame, tracked, masks: [...]}: every object's mask on
//                                        the frame as last computed (tracked false: none yet)
//   POST /api/videos/{id}/points         {frame, obj_id, points, labels, box, clear_old_points}
//                                        -> {frame, masks}: add_new_points_or_box (a new obj_id adds
//                                        an object); the frame's masks of every object
//   POST /api/videos/{id}/propagate      {} -> {frames, forward, reverse}: propagate_in_video from the
//                                        first prompted frame to the end, then in reverse from it to
//                                        frame 0 when it is not frame 0 (as `sam track`); each
//                                        frame's masks are kept as it is done
//   POST /api/videos/{id}/remove         {obj_id} -> {objects}: remove_object
//   POST /api/videos/{id}/reset          {} -> {}: reset_state (the frames stay)
//
// Errors as the image routes' (routes.h): 400 bad field (named), 404 unknown video id or frame,
// 409 a change while the video is being propagated, 413 a video over --max-upload-mb,
// --max-video-frames or --max-pixels, 415 not a video of an accepted container and codec. With
// a SAM checkpoint, or a SAM 2 checkpoint without the video weights, every video route answers
// 400 with the reason. A propagation stops when its client disconnects.
#pragma once

#include <string>

#include "server/routes.h"
#include "server/video_store.h"

namespace sam::server {

// Registers the video routes. `videos` null: they answer 400 with `unavailable` (the reason).
void add_video_routes(httplib::Server& server, VideoStore* videos, const std::string& unavailable,
                      const ServerOptions& options);

}  // namespace sam::server
