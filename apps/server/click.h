// A click's answer, in the two forms the server gives it:
//
//  - full resolution (POST /api/images/{id}/predict): every candidate upsampled to the image's
//    size, thresholded and COCO RLE encoded, in JSON. For clients that want finished masks.
//  - low resolution (POST /api/images/{id}/click): the decoder's low-res logits as raw float32,
//    which the page upsamples and thresholds itself with the same bilinear steps
//    (src/postprocess.h; web/mask.js, upsampleMask), so that what it shows is, pixel for pixel,
//    the full-resolution mask. The server does no per-pixel work at the image's size.
//
// Both keep each candidate's low-res logits under a handle for the next click's mask_input.
//
// The binary answer (all little-endian):
//
//   bytes 0-3   "SAMc"
//   bytes 4-7   uint32 n: length of the JSON header that follows
//   n bytes     JSON header, padded with spaces to a multiple of 4:
//                 {"version": 1, "num_masks": M, "scores": [...], "best": k, "logits": [handle, ...],
//                  "low_size": 256, "img_size": 1024, "input_h", "input_w", "height", "width",
//                  "rows": R, "cols": C, "threshold": 0.0}
//   M x R x C   float32 logits, row-major: of each candidate, the top-left R x C of its
//               low_size x low_size logits, which is all that the image's pixels read
//               (low_res_rows_used). For a 1800x1200 image: 172 x 256 of 256 x 256.
//
// The header's low_size, img_size, input_h and input_w are the upsampling's geometry
// (MaskGeometry, segmenter.h), not only the model's: SAM sends 256, 1024 and the resized image's
// size; SAM 2, which resizes without keeping the aspect ratio and upsamples its low-res logits
// straight to the image's size, sends low_size = img_size = input_h = input_w = L (256 for the
// official models), whose first step is the identity. The page follows the header either way.
//
// The functions take the predictor and the handle cache, not a route: a route of the
// annotation workspace builds its Prompt from its own state and answers with the same bytes.
//
// Thread safety: as SamPredictor::predict, ImagePredictor and LogitsCache (any threads at once).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sam/predictor.h"
#include "server/image_store.h"
#include "server/segmenter.h"

namespace sam::server {

// Per-phase wall times of one request, in milliseconds, for the Server-Timing header.
struct PhaseTimes {
    std::vector<std::pair<std::string, double>> phases;
    void add(std::string name, double ms) { phases.emplace_back(std::move(name), ms); }
    // "decoder;dur=21.30, upsample;dur=5.10"
    std::string header() const;
};

// The decoder's answer to a prompt, with a handle per candidate's low-res logits.
struct DecodedClick {
    Prediction prediction;             // low_res_logits and iou_predictions only (no upsampling)
    std::vector<std::string> handles;  // one per candidate
    int best = 0;                      // the candidate with the highest predicted IoU
};

// Runs the prompt encoder and mask decoder ("decoder" in times), of SAM's predictor or of either
// family's (segmenter.h).
DecodedClick decode_click(const SamPredictor& predictor, const Prompt& prompt, LogitsCache& handles,
                          PhaseTimes& times);
DecodedClick decode_click(const ImagePredictor& predictor, const Prompt& prompt, LogitsCache& handles,
                          PhaseTimes& times);

// The upsampling geometry of SAM's predictor's image.
MaskGeometry mask_geometry(const SamPredictor& predictor);

// The best candidate alone (its low-res logits, score and handle; best = 0): for a page that
// shows only it (the annotation workspace), a third of the bytes of a multimask answer.
DecodedClick best_candidate(const DecodedClick& d);

// {masks: [{size, counts, logits}], scores, best, logits}: every candidate upsampled to full
// resolution and thresholded ("upsample" in times), COCO RLE ("rle"), as JSON.
nlohmann::json full_resolution_answer(const MaskGeometry& geometry, const DecodedClick& d, PhaseTimes& times);
nlohmann::json full_resolution_answer(const SamPredictor& predictor, const DecodedClick& d, PhaseTimes& times);

// The binary low-resolution answer described above ("encode" in times).
std::string low_resolution_answer(const MaskGeometry& geometry, const DecodedClick& d, PhaseTimes& times);
std::string low_resolution_answer(const SamPredictor& predictor, const DecodedClick& d, PhaseTimes& times);

// Rows (and columns) of the low-res logits that an image of input_h (input_w) pixels in the
// img_size frame reads when upsampled: the first index past the last bilinear tap.
int low_res_rows_used(int low_size, int img_size, int input_extent);

}  // namespace sam::server
