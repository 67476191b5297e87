#include "annotate/routes.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "annotate/web_assets.h"
#include "cli/export_formats.h"
#include "server/click.h"
#include "server/http_answers.h"
#include "server/request_checks.h"
#include "server/request_parsing.h"

namespace sam::annotate {
namespace {

using json = nlohmann::json;
using httplib::Request;
using httplib::Response;
using server::content_type;
using server::HttpError;
using server::read_file;
using server::send_json;

// The script this page shares with `sam serve`'s (web/mask.js): under --web-dir, in the folder
// above the page's.
constexpr const char* kSharedWebFiles[] = {"mask.js"};

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Every failure as {"error": ...} with its status.
template <class F>
httplib::Server::Handler guarded(F f) {
    return [f](const Request& req, Response& res) {
        try {
            f(req, res);
        } catch (const HttpError& e) {
            send_json(res, {{"error", e.what()}}, e.status);
        } catch (const ConflictError& e) {
            send_json(res, {{"error", e.what()}}, 409);
        } catch (const UnknownImageError& e) {
            send_json(res, {{"error", e.what()}}, 404);
        } catch (const ImageError& e) {
            send_json(res, {{"error", e.what()}}, 415);
        } catch (const Error& e) {
            send_json(res, {{"error", e.what()}}, 400);
        } catch (const std::exception& e) {
            send_json(res, {{"error", std::string("internal error: ") + e.what()}}, 500);
        }
    };
}

json body_of(const Request& req) {
    server::check_json_content_type(req);
    server::JsonLimits limits;
    limits.max_bytes = size_t{256} << 20;  // a save carries every mask of the image
    return server::parse_json_object(req.body, limits);
}

template <class T>
T get_field(const json& body, const char* key) {
    if (!body.contains(key)) throw InputError(key, "missing");
    try {
        return body.at(key).get<T>();
    } catch (const json::exception&) {
        throw InputError(key, "has the wrong type");
    }
}

json image_summary(const ImageAnnotations& a) {
    return {{"name", a.name},
            {"status", to_string(a.status)},
            {"objects", a.objects.size()},
            {"proposals", a.proposals.size()},
            {"width", a.width},
            {"height", a.height},
            {"version", a.version}};
}

json project_json(const Project& project) {
    const ProjectState st = project.state();
    json images = json::array();
    std::map<std::string, int> counts = {{"new", 0}, {"in_progress", 0}, {"done", 0}};
    for (const std::string& name : project.image_names()) {
        const ImageAnnotations a = project.image(name);
        ++counts[to_string(a.status)];
        images.push_back(image_summary(a));
    }
    return {{"labels", st.labels}, {"labels_version", st.labels_version}, {"current", st.current},
            {"images", images},    {"counts", counts}};
}

// The image's record, with its size recorded (read from the file the first time).
ImageAnnotations open_image(Project& project, EmbeddingCache& embeddings, const std::string& name) {
    ImageAnnotations a = project.image(name);
    if (a.width <= 0) {
        const auto e = embeddings.get(name, project.image_path(name));
        project.set_image_size(name, e->image.width, e->image.height);
        a = project.image(name);
    }
    return a;
}

// The image and the next `ahead` ones in the folder, for the prefetch thread.
void prefetch_around(Project& project, EmbeddingCache& embeddings, const std::string& name, int ahead) {
    const auto& names = project.image_names();
    auto it = std::lower_bound(names.begin(), names.end(), name);
    std::vector<std::pair<std::string, std::string>> items;
    for (int k = 0; it != names.end() && k <= ahead; ++it, ++k) items.push_back({*it, project.image_path(*it)});
    embeddings.prefetch(items);
}

ImageAnnotations parse_save(const json& body, const ImageAnnotations& current) {
    ImageAnnotations next;
    next.name = current.name;
    next.width = current.width;
    next.height = current.height;
    next.status = image_status_from_string(get_field<std::string>(body, "status"));
    for (const char* key : {"objects", "proposals"}) {
        if (!body.contains(key)) continue;
        const json& list = body[key];
        if (!list.is_array()) throw InputError(key, "not an array");
        auto& out = std::string(key) == "objects" ? next.objects : next.proposals;
        for (size_t i = 0; i < list.size(); ++i)
            out.push_back(object_from_json(list[i], next.height, next.width, std::string(key) + "[" + std::to_string(i) + "]"));
    }
    if (!body.contains("proposals")) next.proposals = current.proposals;
    return next;
}

std::string export_path(const Project& project, cli::ExportFormat f) {
    std::string base = project.path();
    if (base.ends_with(".json")) base.resize(base.size() - 5);
    switch (f) {
        case cli::ExportFormat::Coco: return base + ".export/coco.json";
        case cli::ExportFormat::Yolo: return base + ".export/yolo";
        case cli::ExportFormat::Sa1b: return base + ".export/sa1b";
        case cli::ExportFormat::Png: return base + ".export/png";
    }
    return base + ".export";
}

}  // namespace

void add_routes(httplib::Server& http, Project& project, EmbeddingCache& embeddings, ProposalJobs& jobs,
                const AnnotateOptions& options) {
    http.set_payload_max_length(size_t{256} << 20);
    const server::RequestPolicy policy = server::make_request_policy(options.host, options.port, options.allowed_hosts);
    http.set_pre_routing_handler([policy](const Request& req, Response& res) {
        try {
            server::check_request(req, policy);
            return httplib::Server::HandlerResponse::Unhandled;
        } catch (const HttpError& e) {
            send_json(res, {{"error", e.what()}}, e.status);
        } catch (const std::exception& e) {
            send_json(res, {{"error", std::string("malformed request: ") + e.what()}}, 400);
        }
        res.set_header("Connection", "close");
        return httplib::Server::HandlerResponse::Handled;
    });
    http.set_error_handler(httplib::Server::HandlerWithResponse([](const Request& req, Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        send_json(res, {{"error", res.status == 404 ? "no route for " + req.method + " " + req.path
                                                    : "HTTP status " + std::to_string(res.status)}},
                  res.status);
        return httplib::Server::HandlerResponse::Handled;
    }));
    Project* p = &project;
    EmbeddingCache* emb = &embeddings;
    ProposalJobs* jb = &jobs;

    http.Get("/api/project", guarded([p](const Request&, Response& res) { send_json(res, project_json(*p)); }));

    http.Put("/api/labels", guarded([p](const Request& req, Response& res) {
        const json body = body_of(req);
        const int64_t v = p->set_labels(get_field<std::vector<std::string>>(body, "labels"), get_field<int64_t>(body, "version"));
        send_json(res, {{"labels", p->state().labels}, {"labels_version", v}});
    }));

    http.Put("/api/current", guarded([p](const Request& req, Response& res) {
        p->set_current(get_field<std::string>(body_of(req), "name"));
        send_json(res, {{"current", p->state().current}});
    }));

    http.Get(R"(/api/images/([^/]+)/file)", guarded([p](const Request& req, Response& res) {
        const std::string path = p->image_path(req.matches[1]);
        res.set_content(read_file(path), content_type(path));
    }));

    http.Get(R"(/api/images/([^/]+))", guarded([p, emb, options](const Request& req, Response& res) {
        const std::string name = req.matches[1];
        p->image_path(name);
        const bool ready = emb->in_memory(name);  // prefetched (or open before)
        prefetch_around(*p, *emb, name, options.prefetch);
        json j = to_json(open_image(*p, *emb, name));
        j["embedding_ready"] = ready;
        send_json(res, j);
    }));

    http.Put(R"(/api/images/([^/]+))", guarded([p, emb](const Request& req, Response& res) {
        const std::string name = req.matches[1];
        const json body = body_of(req);
        const int64_t base = get_field<int64_t>(body, "version");
        const ImageAnnotations current = open_image(*p, *emb, name);
        send_json(res, to_json(p->save_image(name, base, parse_save(body, current))));
    }));

    // A click, answered with the best candidate at full resolution as JSON: for API clients.
    http.Post(R"(/api/images/([^/]+)/predict)", guarded([p, emb](const Request& req, Response& res) {
        const auto t0 = std::chrono::steady_clock::now();
        const std::string name = req.matches[1];
        const json body = body_of(req);
        bool hit = false;
        const auto e = emb->get(name, p->image_path(name), &hit);
        const server::LogitsLookup lookup = [&](const std::string& h, Tensor& out) { return e->logits.get(h, out); };
        const Prompt prompt = server::parse_prompt(body, e->image.width, e->image.height, lookup);
        const Prediction r = e->predictor.predict(prompt);
        int best = 0;
        for (int i = 1; i < r.num_masks; ++i)
            if (r.iou_predictions[size_t(i)] > r.iou_predictions[size_t(best)]) best = i;
        const size_t plane = size_t(r.height) * r.width;
        const Rle rle = rle_encode(r.masks.data() + size_t(best) * plane, r.height, r.width);
        const int64_t S = r.low_res_logits.dim(-1);
        Tensor low = Tensor::empty({1, S, S});
        std::copy(r.low_res_logits.data() + best * S * S, r.low_res_logits.data() + (best + 1) * S * S, low.data());
        const double ms = ms_since(t0);
        send_json(res, {{"segmentation", {{"size", {rle.height, rle.width}}, {"counts", rle_to_coco_string(rle)}}},
                        {"score", r.iou_predictions[size_t(best)]},
                        {"logits", e->logits.put(low)},
                        {"embedding", hit ? "memory" : e->source},
                        {"ms", ms}});
        server::PhaseTimes times;
        times.add("total", ms_since(t0));
        res.set_header("Server-Timing", times.header());
    }));

    // A click for the page: the decoder's low-res logits of the best candidate (the one the page
    // shows; the predict route's) as binary (server/click.h), which the page upsamples and
    // thresholds itself (web/mask.js); no work at the image's size here. Its handle is the next
    // click's mask_input.
    http.Post(R"(/api/images/([^/]+)/click)", guarded([p, emb](const Request& req, Response& res) {
        const auto t0 = std::chrono::steady_clock::now();
        const std::string name = req.matches[1];
        const json body = body_of(req);
        server::PhaseTimes times;
        bool hit = false;
        const auto e = emb->get(name, p->image_path(name), &hit);
        times.add("embedding", ms_since(t0));
        const server::LogitsLookup lookup = [&](const std::string& h, Tensor& out) { return e->logits.get(h, out); };
        const Prompt prompt = server::parse_prompt(body, e->image.width, e->image.height, lookup);
        const server::DecodedClick d = server::decode_click(e->predictor, prompt, e->logits, times);
        res.set_content(server::low_resolution_answer(e->predictor, server::best_candidate(d), times),
                        "application/octet-stream");
        res.set_header("X-Sam-Embedding", hit ? "memory" : e->source);
        times.add("total", ms_since(t0));
        res.set_header("Server-Timing", times.header());
    }));

    http.Post("/api/propose", guarded([p, jb](const Request& req, Response& res) {
        const json body = body_of(req);
        std::vector<std::string> images;
        if (!body.contains("images") || body["images"] == "all") {
            images = p->image_names();
        } else {
            images = get_field<std::vector<std::string>>(body, "images");
            for (const auto& n : images) p->image_path(n);
        }
        const AmgOptions amg = server::parse_amg_options(body.value("options", json::object()));
        send_json(res, {{"job", jb->start(images, amg)}, {"images", images.size()}});
    }));

    http.Get(R"(/api/jobs/(\d+))", guarded([jb](const Request& req, Response& res) {
        JobStatus s;
        if (!jb->status(std::stoll(req.matches[1]), s)) throw HttpError(404, "no job " + std::string(req.matches[1]));
        send_json(res, to_json(s));
    }));

    http.Post("/api/export", guarded([p](const Request& req, Response& res) {
        const json body = body_of(req);
        const auto format = cli::export_format_from_string(get_field<std::string>(body, "format"));
        const std::string out = export_path(*p, format);
        std::filesystem::create_directories(std::filesystem::path(out).parent_path());
        const auto files = cli::export_project(*p, format, out, body.value("rle", false));
        send_json(res, {{"path", out}, {"files", files}});
    }));

    http.Get("/api/export/coco", guarded([p](const Request&, Response& res) {
        const std::string out = export_path(*p, cli::ExportFormat::Coco);
        std::filesystem::create_directories(std::filesystem::path(out).parent_path());
        cli::export_project(*p, cli::ExportFormat::Coco, out);
        res.set_header("Content-Disposition", "attachment; filename=\"coco.json\"");
        res.set_content(read_file(out), "application/json");
    }));

    http.Get(R"(/([A-Za-z0-9_.-]*))", guarded([web_dir = options.web_dir](const Request& req, Response& res) {
        server::serve_asset(web_dir, req.matches[1], kWebAssets, res, kSharedWebFiles);
    }));

    http.set_logger([](const Request& req, const Response& res) {
        static std::mutex log_mutex;
        std::lock_guard<std::mutex> lock(log_mutex);
        std::fprintf(stderr, "%s %s -> %d\n", req.method.c_str(), req.path.c_str(), res.status);
    });
}

}  // namespace sam::annotate
