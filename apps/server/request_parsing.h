// The JSON bodies of the server's routes, parsed and checked apart from any socket (so that a
// fuzzer can drive them, fuzz/fuzz_server_json.cpp): a body becomes a JSON object within size
// and depth limits, then a prompt, or generator options within the server's work budget.
//
// Every error names the field at fault. None quotes the client's value back: a message says
// the value's type (printing a hostile value, e.g. with json::dump, recurses once per nesting
// level), or the number we read, or at most a short prefix of a key or handle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

#include "sam/automatic_mask_generator.h"
#include "sam/predictor.h"
#include "sam/sam2_automatic_mask_generator.h"
#include "sam/tensor.h"

namespace sam::server {

// An error with its HTTP status; the server answers {"error": message}.
struct HttpError : std::runtime_error {
    int status;
    HttpError(int status_, const std::string& message) : std::runtime_error(message), status(status_) {}
};

struct JsonLimits {
    size_t max_bytes = size_t{64} << 10;  // larger bodies: 413
    int max_depth = 32;                   // more nested arrays/objects: 400
};

// The body as a JSON object; an empty body is an empty object. Throws HttpError: 413 for a body
// over max_bytes; 400 for bad JSON, for nesting deeper than max_depth (refused while parsing,
// before the deep value exists: destroying or printing one recurses per level), for a value
// that is not an object.
nlohmann::json parse_json_object(std::string_view body, const JsonLimits& limits = {});

// Most points (and labels) in one prompt.
inline constexpr size_t kMaxPoints = 256;

// The low-res logits behind a "mask_input" handle; false when the handle is unknown or expired.
using LogitsLookup = std::function<bool(const std::string& handle, Tensor& out)>;

// {"points": [[x, y], ...], "labels": [1, 0, ...], "box": [x0, y0, x1, y1], "mask_input": handle,
//  "multimask": bool} for a width x height image -> the predictor's prompt. Coordinates must be
// finite and within [-width, 2 width] for x and [-height, 2 height] for y: points may lie
// outside the image, as in the reference, but not so far that the coordinate transform and the
// positional encoding overflow. The predictor checks the rest (label count, box corners).
// Throws sam::InputError "<field>: <what>".
Prompt parse_prompt(const nlohmann::json& body, int width, int height, const LogitsLookup& logits);

struct AmgLimits {
    int64_t max_prompts = 4096;  // points over every crop of one request
};

// Generator options from {"points_per_side": 32, "pred_iou_thresh": 0.88, ...}: every field's
// type and range, and the prompts they add up to (amg_prompt_count) within limits.max_prompts.
// Output is COCO RLE. Throws sam::InputError "<field>: <what>".
AmgOptions parse_amg_options(const nlohmann::json& body, const AmgLimits& limits = {});
// The same for SAM 2's generator: its defaults (pred_iou_thresh 0.8) and its own fields
// "mask_threshold", "use_m2m", "multimask_output" and "fill_holes" (min_mask_region_area applied
// as the official package does on GPU; Sam2AmgOptions).
Sam2AmgOptions parse_sam2_amg_options(const nlohmann::json& body, const AmgLimits& limits = {});

// The prompts the generator runs for options built from points_per_side: layer i has 4^i crops
// of floor(points_per_side / downscale^i)^2 points each.
int64_t amg_prompt_count(const AmgOptions& options);

}  // namespace sam::server
