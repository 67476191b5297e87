// sam annotate: the annotation workspace for a folder of images (docs/ANNOTATE.md): the page,
// its JSON API (annotate/routes.h) and the project it saves into (annotate/project.h).
#include <httplib.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "annotate/embeddings.h"
#include "annotate/project.h"
#include "annotate/proposals.h"
#include "annotate/routes.h"
#include "cli/export_formats.h"
#include "cli/model_loading.h"

namespace sam::cli {
namespace {

struct AnnotateCliOptions {
    ModelOptions model;
    std::string images, labels, project, import_coco, web_dir;
    std::string host = "127.0.0.1";
    int port = 8080;
    int cache_size = 8;
    int prefetch = 2;
    std::vector<std::string> allowed_hosts;
};

std::vector<std::string> split_labels(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) {
        const size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
        if (a == std::string::npos) throw InputError("--labels", "an empty label in '" + s + "'");
        out.push_back(item.substr(a, b - a + 1));
    }
    return out;
}

int run_annotate(const AnnotateCliOptions& o) {
    if (o.cache_size < 1) throw InputError("--cache-size", "must be at least 1");
    if (o.prefetch < 0 || o.prefetch > 16) throw InputError("--prefetch", "must be in [0, 16]");
    if (o.images.empty() && o.project.empty()) throw InputError("--images", "give a folder of images (or --project)");
    const std::string project_path =
        !o.project.empty() ? o.project : (std::filesystem::path(o.images) / ".sam-annotate" / "project.json").string();
    if (!o.project.empty() && std::filesystem::path(o.project).has_parent_path())
        std::filesystem::create_directories(std::filesystem::path(o.project).parent_path());
    else
        std::filesystem::create_directories(std::filesystem::path(project_path).parent_path());
    annotate::Project project(project_path, o.images, split_labels(o.labels));
    if (!o.import_coco.empty())
        std::cerr << "sam annotate: imported " << import_coco(project, o.import_coco) << " objects from " << o.import_coco
                  << "\n";
    if (project.image_names().empty()) throw InputError("--images", project.state().images_dir + " holds no .jpg or .png images");
    Sam model = load_model(o.model);
    annotate::EmbeddingCache embeddings(model, project.cache_dir(), static_cast<size_t>(o.cache_size));
    annotate::ProposalJobs jobs(project, embeddings);
    annotate::AnnotateOptions ao;
    ao.host = o.host;
    ao.allowed_hosts = o.allowed_hosts;
    ao.web_dir = o.web_dir;
    ao.prefetch = o.prefetch;

    httplib::Server http;
    // Set before binding (the listening socket's option): a click's answer leaves at once
    // instead of waiting for the client's delayed ACK.
    http.set_tcp_nodelay(true);
    const int port = o.port == 0 ? http.bind_to_any_port(o.host) : (http.bind_to_port(o.host, o.port) ? o.port : -1);
    if (port < 0) throw InputError("--port", "cannot listen on " + o.host + ":" + std::to_string(o.port));
    ao.port = port;
    annotate::add_routes(http, project, embeddings, jobs, ao);
    if (o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1")
        std::cerr << "sam annotate: warning: listening on " << o.host << ", not only on loopback; the API has no authentication"
                  << std::endl;
    std::cerr << "sam annotate: project " << project.path() << ", " << project.image_names().size() << " images, "
              << model.config().model_type << " model, listening on http://" << o.host << ":" << port << "/" << std::endl;
    return http.listen_after_bind() ? 0 : 1;
}

Registration reg("annotate", "Serve the annotation workspace for a folder of images", [](CLI::App& cmd) {
    auto o = std::make_shared<AnnotateCliOptions>();
    add_model_options(cmd, o->model);
    cmd.add_option("--images", o->images, "The folder of images (.jpg, .png) to annotate")->check(CLI::ExistingDirectory);
    cmd.add_option("--labels", o->labels, "Class labels, comma-separated (added to the project's)");
    cmd.add_option("--project", o->project,
                   "Project file (default: <images>/.sam-annotate/project.json); created when absent, resumed otherwise");
    cmd.add_option("--import-coco", o->import_coco, "Import a COCO instance-segmentation file into the project first")
        ->check(CLI::ExistingFile);
    cmd.add_option("--host", o->host, "Address to listen on (default: loopback only)");
    cmd.add_option("--port,-p", o->port, "Port (0: any free port)")->check(CLI::Range(0, 65535));
    cmd.add_option("--cache-size", o->cache_size, "Images whose embeddings are kept in memory");
    cmd.add_option("--prefetch", o->prefetch, "Images ahead whose embeddings are computed in the background");
    cmd.add_option("--web-dir", o->web_dir, "Serve the page from this directory instead of the built-in copy")
        ->check(CLI::ExistingDirectory);
    cmd.add_option("--allow-host", o->allowed_hosts, "Another name clients may use for this server (repeatable)");
    return [o] { return run_annotate(*o); };
});

}  // namespace
}  // namespace sam::cli
