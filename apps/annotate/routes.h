// The HTTP API of `sam annotate` (JSON in, JSON out but for a click's binary answer) and its
// page (web/annotate, with web/mask.js). Routes only:
// the project is annotate/project.h, the embeddings annotate/embeddings.h, the proposal jobs
// annotate/proposals.h.
//
//   GET  /api/project                 labels, labels_version, current image, images with status
//                                     and counts, counts per status
//   PUT  /api/labels                  {labels, version} -> {labels, labels_version}
//   PUT  /api/current                 {name}: the image the annotator is on (resumed on restart)
//   GET  /api/images/{name}           the image's record (objects, proposals, status, version,
//                                     width, height, embedding_ready: whether its embedding was
//                                     in memory already); computes its embedding and the next
//                                     images' ahead (prefetch)
//   GET  /api/images/{name}/file      the image file
//   PUT  /api/images/{name}           {version, status, objects, proposals} -> the saved record
//   POST /api/images/{name}/predict   {points, labels, box, mask_input, multimask} ->
//                                     {segmentation (COCO RLE), score, logits, embedding, ms}:
//                                     the best candidate at full resolution, for API clients
//   POST /api/images/{name}/click     the same prompt -> the best candidate's low-res logits as
//                                     binary (server/click.h, num_masks 1), which the page
//                                     upsamples itself (web/mask.js); header X-Sam-Embedding:
//                                     memory, disk or encoded; Server-Timing: embedding,
//                                     decoder, encode, total
//   POST /api/propose                 {images: [names] | "all", options: {points_per_side, ...}}
//                                     -> {job}: segment-everything in the background
//   GET  /api/jobs/{id}               {state, images_done, images_total, image, prompts_done,
//                                     prompts_total, error}
//   POST /api/export                  {format: coco|yolo|sa1b|png, rle} -> {path, files}
//   GET  /api/export/coco             the project as COCO JSON (a download)
//   GET  /, /app.js, /style.css,      the page
//        /mask.js
//
// Errors are JSON {"error": "..."}: 400 bad JSON or field (named), 403 a Host or Origin not
// this server's, 404 unknown image, job or route, 409 a save on a version another tab
// replaced, 415 an image that cannot be decoded, 500 anything unexpected.
#pragma once

#include <string>
#include <vector>

#include "annotate/embeddings.h"
#include "annotate/project.h"
#include "annotate/proposals.h"

namespace httplib {
class Server;
}

namespace sam::annotate {

struct AnnotateOptions {
    std::string host = "127.0.0.1";
    int port = 0;
    std::vector<std::string> allowed_hosts;
    std::string web_dir;  // serve the page from here instead of the embedded copy
    int prefetch = 2;     // images ahead whose embeddings are computed in the background
};

void add_routes(httplib::Server& server, Project& project, EmbeddingCache& embeddings, ProposalJobs& jobs,
                const AnnotateOptions& options);

}  // namespace sam::annotate
