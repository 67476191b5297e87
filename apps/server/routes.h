// The HTTP API of `sam serve` (JSON in, JSON or binary out) and the page it serves. Routes
// only: the model work happens in the library, the image cache in image_store.h, a click's
// answers in click.h.
//
//   POST /api/images                 raw image bytes or multipart field "image" -> {id, width, height}
//   POST /api/images/{id}/predict    {points, labels, box, mask_input, multimask} -> {masks, scores, logits}
//                                    (full-resolution COCO RLE masks)
//   POST /api/images/{id}/click      the same prompt -> the decoder's low-res logits as binary
//                                    (click.h), for the page to upsample and threshold itself
//   POST /api/images/{id}/everything {points_per_side, pred_iou_thresh, ...} -> {records}
//                                    (SAM 2 also takes use_m2m, multimask_output, mask_threshold,
//                                    fill_holes; its pred_iou_thresh defaults to 0.8)
//
// The model is SAM or SAM 2, as the checkpoint says (segmenter.h): the same routes, answers
// and page for both.
//   GET  /api/health                 {status, model ("sam" | "sam2"), model_type, images_cached}
//   GET  /, /app.js, /style.css      the page (embedded in the binary, or from --web-dir)
//
// Errors are JSON {"error": "..."} naming the field or header at fault: 400 bad JSON or prompt,
// 403 a Host or Origin not this server's, 404 unknown image id or route, 411 a body without
// Content-Length (chunked), 413 a body or image over its limit, 415 an unsupported image,
// Content-Type or Content-Encoding, 503 a job past its time limit, 500 anything unexpected.
// Every API answer has a Server-Timing header: its phases (decoder, upsample, rle, json for
// predict; decoder, encode for click) and the total, in milliseconds.
// docs/RELIABILITY.md ("Server limits") lists every limit with its flag.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "server/image_store.h"
#include "server/request_parsing.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace sam::server {

struct ServerOptions {
    size_t max_upload_bytes = size_t{32} << 20;
    std::string web_dir;  // serve the page from here instead of the embedded copy (development)
    JsonLimits json;      // JSON bodies: size and nesting
    AmgLimits amg;        // "segment everything": prompts per request
    double job_timeout_s = 120.0;  // "segment everything": time per request, waiting included
    // Host and Origin headers must name the address listened on (host:port), a loopback name or
    // one of allowed_hosts: a web page cannot reach the server through a name of its own.
    std::string host = "127.0.0.1";
    int port = 0;
    std::vector<std::string> allowed_hosts;
};

// Registers every route, the header checks, the JSON error handler and the one-line-per-request
// logger. Call it once the port is known (after binding).
void add_routes(httplib::Server& server, ImageStore& store, const ServerOptions& options);

// A route's handler, wrapped: every exception becomes a JSON error (HttpError its status,
// sam::InputError 400, ...), and the answer gets its Server-Timing header. For every route.
std::function<void(const httplib::Request&, httplib::Response&)> guarded(
    std::function<void(const httplib::Request&, httplib::Response&)> handler);

}  // namespace sam::server
