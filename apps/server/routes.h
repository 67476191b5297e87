// The HTTP API of `sam serve` (JSON in, JSON out) and the page it serves. Routes only: the
// model work happens in the library, the image cache in image_store.h.
//
//   POST /api/images                 raw image bytes or multipart field "image" -> {id, width, height}
//   POST /api/images/{id}/predict    {points, labels, box, mask_input, multimask} -> {masks, scores, logits}
//   POST /api/images/{id}/everything {points_per_side, pred_iou_thresh, ...} -> {records}
//   GET  /api/health                 {status, model_type}
//   GET  /, /app.js, /style.css      the page (embedded in the binary, or from --web-dir)
//
// Errors are JSON {"error": "..."}: 400 bad JSON or prompt, 404 unknown image id or route,
// 413 upload too large, 415 not a supported image, 500 anything unexpected.
#pragma once

#include <cstddef>
#include <string>

#include "server/image_store.h"

namespace httplib {
class Server;
}

namespace sam::server {

struct ServerOptions {
    size_t max_upload_bytes = size_t{32} << 20;
    std::string web_dir;  // serve the page from here instead of the embedded copy (development)
};

// Registers every route, the JSON error handler and the one-line-per-request logger.
void add_routes(httplib::Server& server, ImageStore& store, const ServerOptions& options);

}  // namespace sam::server
