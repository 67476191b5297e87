// sam serve: the interactive segmentation page and its JSON API over HTTP (routes.h).
#include <httplib.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/model_loading.h"
#include "sam/error.h"
#include "sam/sam2_video.h"
#include "server/image_store.h"
#include "server/routes.h"
#include "server/segmenter.h"
#include "server/video_routes.h"
#include "server/video_store.h"

namespace sam::cli {
namespace {

struct ServeOptions {
    ModelOptions model;
    std::string host = "127.0.0.1";
    int port = 8080;
    int max_upload_mb = 32;
    int cache_size = 8;
    std::string web_dir;
    int64_t max_pixels = 40'000'000;
    int max_decodes = 2;
    int64_t max_prompts = 4096;
    double job_timeout_s = 120.0;
    std::vector<std::string> allowed_hosts;
    int64_t max_video_frames = 300;
    int video_sessions = 2;
};

int run_serve(const ServeOptions& o) {
    if (o.max_upload_mb < 1) throw InputError("--max-upload-mb", "must be at least 1");
    if (o.cache_size < 1) throw InputError("--cache-size", "must be at least 1");
    if (o.max_pixels < 1 || o.max_pixels > kMaxImagePixels)
        throw InputError("--max-pixels", "must be in [1, " + std::to_string(kMaxImagePixels) + "]");
    if (o.max_decodes < 1 || o.max_decodes > 1024) throw InputError("--max-decodes", "must be in [1, 1024]");
    if (o.max_prompts < 1) throw InputError("--max-prompts", "must be at least 1");
    if (!(o.job_timeout_s > 0)) throw InputError("--job-timeout", "must be a positive number of seconds");
    if (o.max_video_frames < 1) throw InputError("--max-video-frames", "must be at least 1");
    if (o.video_sessions < 1) throw InputError("--video-sessions", "must be at least 1");
    // SAM or SAM 2, as the checkpoint (or --model-type / --config) says. A SAM 2 checkpoint with
    // the video weights also serves the video page (server/video_routes.h).
    std::shared_ptr<const server::Segmenter> model;
    std::unique_ptr<server::VideoStore> videos;
    std::string no_video;
    if (is_sam2(o.model)) {
        std::optional<Sam2Video> video;
        try {
            Sam2LoadOptions lo;
            lo.model_type = o.model.model_type;
            lo.config_path = o.model.config;
            video = Sam2Video::load(o.model.checkpoint, lo).with_execution(execution_options(o.model));
        } catch (const CheckpointError& e) {
            no_video = std::string("video tracking needs a SAM 2 checkpoint with the video weights (memory encoder, "
                                   "memory attention); this one has none: ") + e.what();
        }
        if (video) {
            model = server::make_segmenter(video->image_model());
            server::VideoLimits vl;
            vl.max_frames = o.max_video_frames;
            vl.max_pixels = o.max_pixels;
            vl.max_sessions = static_cast<size_t>(o.video_sessions);
            videos = std::make_unique<server::VideoStore>(*video, vl);
        } else {
            model = server::make_segmenter(load_sam2_model(o.model));
        }
    } else {
        model = server::make_segmenter(load_model(o.model));
        no_video = "video tracking needs a SAM 2 checkpoint; this server runs SAM (" + model->model_type() + ")";
    }
    ImageLimits limits;
    limits.max_pixels = o.max_pixels;
    server::ImageStore store(model, static_cast<size_t>(o.cache_size), limits, o.max_decodes);
    server::ServerOptions so;
    so.max_upload_bytes = static_cast<size_t>(o.max_upload_mb) << 20;
    so.web_dir = o.web_dir;
    so.amg.max_prompts = o.max_prompts;
    so.job_timeout_s = o.job_timeout_s;
    so.host = o.host;
    so.allowed_hosts = o.allowed_hosts;

    httplib::Server http;
    // Answers leave at once: without it, the tail of an answer can wait for the client's
    // delayed ACK (Nagle), tens of milliseconds on every click.
    http.set_tcp_nodelay(true);
    const int port = o.port == 0 ? http.bind_to_any_port(o.host) : (http.bind_to_port(o.host, o.port) ? o.port : -1);
    if (port < 0) throw InputError("--port", "cannot listen on " + o.host + ":" + std::to_string(o.port));
    so.port = port;  // Host and Origin headers must name it
    server::add_routes(http, store, so);
    server::add_video_routes(http, videos.get(), no_video, so);
    if (o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1")
        std::cerr << "sam serve: warning: listening on " << o.host
                  << ", not only on loopback; the API has no authentication" << std::endl;
    // Tests wait for this line to learn the port (--port 0 picks a free one).
    std::cerr << "sam serve: " << (model->family() == "sam2" ? "SAM 2 " : "") << model->model_type() << " model"
              << (videos ? " with video tracking" : "") << ", "
              << (model->threads() > 0 ? model->threads() : available_cores()) << " threads, listening on http://"
              << o.host << ":" << port << "/" << std::endl;
    return http.listen_after_bind() ? 0 : 1;
}

Registration reg("serve", "Serve the interactive segmentation page and its JSON API", [](CLI::App& cmd) {
    auto o = std::make_shared<ServeOptions>();
    add_model_options(cmd, o->model);
    cmd.add_option("--host", o->host, "Address to listen on (default: loopback only)");
    cmd.add_option("--port,-p", o->port, "Port (0: any free port)")->check(CLI::Range(0, 65535));
    cmd.add_option("--max-upload-mb", o->max_upload_mb, "Largest accepted upload, MiB");
    cmd.add_option("--cache-size", o->cache_size, "Images whose embeddings are kept (LRU)");
    cmd.add_option("--web-dir", o->web_dir, "Serve the page from this directory instead of the built-in copy")
        ->check(CLI::ExistingDirectory);
    cmd.add_option("--max-pixels", o->max_pixels, "Largest accepted image, in pixels (checked before decoding)");
    cmd.add_option("--max-decodes", o->max_decodes, "Uploads decoded and encoded at once (others wait)");
    cmd.add_option("--max-prompts", o->max_prompts, "Most prompts (points over every crop) of one \"everything\" request");
    cmd.add_option("--job-timeout", o->job_timeout_s, "Seconds an \"everything\" request may take, waiting included");
    cmd.add_option("--max-video-frames", o->max_video_frames,
                   "Most frames of an uploaded video (SAM 2; each frame holds image_size^2 x 3 bytes)");
    cmd.add_option("--video-sessions", o->video_sessions, "Videos kept with their tracking state (LRU; SAM 2)");
    cmd.add_option("--allow-host", o->allowed_hosts,
                   "Another name clients may use for this server in Host/Origin headers (repeatable)");
    return [o] { return run_serve(*o); };
});

}  // namespace
}  // namespace sam::cli
