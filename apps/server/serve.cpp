// sam serve: the interactive segmentation page and its JSON API over HTTP (routes.h).
#include <httplib.h>

#include <iostream>

#include "cli/model_loading.h"
#include "server/image_store.h"
#include "server/routes.h"

namespace sam::cli {
namespace {

struct ServeOptions {
    ModelOptions model;
    std::string host = "127.0.0.1";
    int port = 8080;
    int max_upload_mb = 32;
    int cache_size = 8;
    std::string web_dir;
};

int run_serve(const ServeOptions& o) {
    if (o.max_upload_mb < 1) throw InputError("--max-upload-mb", "must be at least 1");
    if (o.cache_size < 1) throw InputError("--cache-size", "must be at least 1");
    Sam model = load_model(o.model);
    server::ImageStore store(model, static_cast<size_t>(o.cache_size));
    server::ServerOptions so;
    so.max_upload_bytes = static_cast<size_t>(o.max_upload_mb) << 20;
    so.web_dir = o.web_dir;

    httplib::Server http;
    server::add_routes(http, store, so);
    const int port = o.port == 0 ? http.bind_to_any_port(o.host) : (http.bind_to_port(o.host, o.port) ? o.port : -1);
    if (port < 0) throw InputError("--port", "cannot listen on " + o.host + ":" + std::to_string(o.port));
    if (o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1")
        std::cerr << "sam serve: warning: listening on " << o.host
                  << ", not only on loopback; the API has no authentication" << std::endl;
    // Tests wait for this line to learn the port (--port 0 picks a free one).
    std::cerr << "sam serve: " << model.config().model_type << " model, "
              << (model.execution().threads > 0 ? model.execution().threads : available_cores()) << " threads, listening on http://"
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
    return [o] { return run_serve(*o); };
});

}  // namespace
}  // namespace sam::cli
