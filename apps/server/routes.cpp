#include "server/routes.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "sam/automatic_mask_generator.h"
#include "sam/error.h"
#include "sam/rle.h"
#include "server/web_assets.h"

namespace sam::server {
namespace {

using json = nlohmann::json;
using httplib::Request;
using httplib::Response;

constexpr size_t kMaxPoints = 256;

// An error with its HTTP status; the message becomes {"error": message}.
struct HttpError : std::runtime_error {
    int status;
    HttpError(int status_, const std::string& message) : std::runtime_error(message), status(status_) {}
};

void send_json(Response& res, const json& body, int status = 200) {
    res.status = status;
    // Replace invalid UTF-8 (an error message may quote the client's bytes) rather than throw.
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(Response& res, int status, const std::string& message) {
    send_json(res, {{"error", message}}, status);
}

// Runs a handler, turning every exception into a JSON error and timing it (Server-Timing).
httplib::Server::Handler guarded(std::function<void(const Request&, Response&)> handler) {
    return [handler = std::move(handler)](const Request& req, Response& res) {
        const auto t0 = std::chrono::steady_clock::now();
        try {
            handler(req, res);
        } catch (const HttpError& e) {
            send_error(res, e.status, e.what());
        } catch (const json::exception& e) {
            send_error(res, 400, std::string("bad JSON: ") + e.what());
        } catch (const ImageError& e) {
            send_error(res, 415, std::string("not a supported image (JPEG or PNG): ") + e.what());
        } catch (const InputError& e) {
            send_error(res, 400, e.what());
        } catch (const std::bad_alloc&) {
            send_error(res, 500, "out of memory");
        } catch (const std::exception& e) {
            send_error(res, 500, std::string("internal error: ") + e.what());
        }
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        char timing[64];
        std::snprintf(timing, sizeof timing, "total;dur=%.2f", ms);
        res.set_header("Server-Timing", timing);
    };
}

// The request body as a JSON object; an empty body is an empty object.
json parse_object(const Request& req) {
    if (req.body.empty()) return json::object();
    json j = json::parse(req.body);  // json::parse_error -> 400 "bad JSON"
    if (!j.is_object()) throw HttpError(400, "bad JSON: expected an object, got " + std::string(j.type_name()));
    return j;
}

void reject_unknown_keys(const json& j, std::initializer_list<const char*> known) {
    for (const auto& [key, value] : j.items())
        if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; })) {
            std::string list;
            for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
            throw InputError(key, "unknown field (expected one of: " + list + ")");
        }
}

std::shared_ptr<const ImageEntry> find_image(ImageStore& store, const std::string& id) {
    auto e = store.find(id);
    if (!e) throw HttpError(404, "unknown image id '" + id + "' (upload it again: POST /api/images)");
    return e;
}

float number(const json& v, const char* field, const char* expected) {
    if (!v.is_number()) throw InputError(field, std::string("expected ") + expected + ", got " + v.dump());
    return static_cast<float>(v.get<double>());
}

// {"points": [[x, y], ...], "labels": [1, 0, ...], "box": [x0, y0, x1, y1], "mask_input": handle,
//  "multimask": bool} -> the predictor's prompt (it checks counts, labels, finiteness, the box).
Prompt parse_prompt(const json& j, const ImageEntry& entry) {
    reject_unknown_keys(j, {"points", "labels", "box", "mask_input", "multimask"});
    Prompt p;
    if (j.contains("points") && !j["points"].is_null()) {
        const json& pts = j["points"];
        if (!pts.is_array()) throw InputError("points", "expected [[x, y], ...]");
        if (pts.size() > kMaxPoints) throw InputError("points", "at most " + std::to_string(kMaxPoints) + " points");
        for (const json& pt : pts) {
            if (!pt.is_array() || pt.size() != 2) throw InputError("points", "expected [[x, y], ...], got " + pt.dump());
            p.point_coords.push_back({number(pt[0], "points", "a number"), number(pt[1], "points", "a number")});
        }
    }
    if (j.contains("labels") && !j["labels"].is_null()) {
        const json& labels = j["labels"];
        if (!labels.is_array()) throw InputError("labels", "expected [1, 0, ...]");
        if (labels.size() > kMaxPoints) throw InputError("labels", "at most " + std::to_string(kMaxPoints) + " labels");
        for (const json& l : labels) {
            if (!l.is_number_integer()) throw InputError("labels", "expected integers 1, 0 or -1, got " + l.dump());
            const int64_t v = l.get<int64_t>();
            if (v < -1 || v > 1) throw InputError("labels", "must be 1, 0 or -1, got " + std::to_string(v));
            p.point_labels.push_back(static_cast<int>(v));
        }
    }
    if (j.contains("box") && !j["box"].is_null()) {
        const json& b = j["box"];
        if (!b.is_array() || b.size() != 4) throw InputError("box", "expected [x0, y0, x1, y1]");
        p.box = std::array<float, 4>{number(b[0], "box", "a number"), number(b[1], "box", "a number"),
                                     number(b[2], "box", "a number"), number(b[3], "box", "a number")};
    }
    if (j.contains("mask_input") && !j["mask_input"].is_null()) {
        const json& m = j["mask_input"];
        if (!m.is_string()) throw InputError("mask_input", "expected the \"logits\" handle of a previous prediction");
        if (!entry.logits.get(m.get<std::string>(), p.mask_input))
            throw InputError("mask_input", "unknown or expired handle '" + m.get<std::string>() +
                                               "' (handles are kept for the last 32 masks of an image)");
    }
    if (j.contains("multimask")) {
        if (!j["multimask"].is_boolean()) throw InputError("multimask", "expected true or false");
        p.multimask_output = j["multimask"].get<bool>();
    }
    return p;
}

json coco_rle(const uint8_t* mask, int height, int width) {
    return {{"size", {height, width}}, {"counts", rle_to_coco_string(rle_encode(mask, height, width))}};
}

json predict(const ImageEntry& entry, const Prompt& prompt) {
    const Prediction r = entry.predictor.predict(prompt);
    const int64_t hw = int64_t{r.height} * r.width, S = r.low_res_logits.dim(-1);
    json masks = json::array();
    int best = 0;
    for (int k = 0; k < r.num_masks; ++k) {
        // Keep each mask's low-res logits so the page can refine whichever candidate it shows.
        Tensor low({1, S, S});
        std::copy(r.low_res_logits.data() + k * S * S, r.low_res_logits.data() + (k + 1) * S * S, low.data());
        json m = coco_rle(r.masks.data() + k * hw, r.height, r.width);
        m["logits"] = entry.logits.put(std::move(low));
        masks.push_back(std::move(m));
        if (r.iou_predictions[static_cast<size_t>(k)] > r.iou_predictions[static_cast<size_t>(best)]) best = k;
    }
    return {{"masks", masks}, {"scores", r.iou_predictions}, {"best", best},
            {"logits", masks.empty() ? json(nullptr) : masks[static_cast<size_t>(best)]["logits"]}};
}

// Generator parameters from the request; the server bounds the ones that set the amount of work.
AmgOptions parse_amg_options(const json& j) {
    reject_unknown_keys(j, {"points_per_side", "points_per_batch", "pred_iou_thresh", "stability_score_thresh",
                            "stability_score_offset", "box_nms_thresh", "crop_n_layers", "crop_nms_thresh",
                            "crop_overlap_ratio", "crop_n_points_downscale_factor", "min_mask_region_area"});
    AmgOptions o;
    o.output_mode = OutputMode::CocoRle;
    auto integer = [&](const char* key, int& out, int lo, int hi) {
        if (!j.contains(key)) return;
        if (!j[key].is_number_integer()) throw InputError(key, "expected an integer, got " + j[key].dump());
        const int64_t v = j[key].get<int64_t>();
        if (v < lo || v > hi)
            throw InputError(key, std::to_string(v) + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        out = static_cast<int>(v);
    };
    auto real = [&](const char* key, double& out) {
        if (!j.contains(key)) return;
        if (!j[key].is_number()) throw InputError(key, "expected a number, got " + j[key].dump());
        out = j[key].get<double>();
        if (!std::isfinite(out)) throw InputError(key, "must be finite");
    };
    integer("points_per_side", o.points_per_side, 1, 128);
    integer("points_per_batch", o.points_per_batch, 1, 1024);
    integer("crop_n_layers", o.crop_n_layers, 0, 3);
    integer("crop_n_points_downscale_factor", o.crop_n_points_downscale_factor, 1, 16);
    integer("min_mask_region_area", o.min_mask_region_area, 0, 1 << 30);
    real("pred_iou_thresh", o.pred_iou_thresh);
    real("stability_score_thresh", o.stability_score_thresh);
    real("stability_score_offset", o.stability_score_offset);
    real("box_nms_thresh", o.box_nms_thresh);
    real("crop_nms_thresh", o.crop_nms_thresh);
    real("crop_overlap_ratio", o.crop_overlap_ratio);
    return o;
}

json record_json(const MaskRecord& r) {
    return {{"segmentation", {{"size", {r.rle.height, r.rle.width}}, {"counts", r.coco_counts}}},
            {"area", r.area},
            {"bbox", r.bbox},
            {"predicted_iou", r.predicted_iou},
            {"point_coords", {r.point}},
            {"stability_score", r.stability_score},
            {"crop_box", r.crop_box}};
}

// The uploaded bytes: the multipart field "image", or the raw body.
const std::string& upload_bytes(const Request& req) {
    if (req.is_multipart_form_data()) {
        if (!req.has_file("image")) throw HttpError(400, "multipart upload without an \"image\" field");
        const auto it = req.files.find("image");
        if (it->second.content.empty()) throw HttpError(400, "empty upload");
        return it->second.content;
    }
    if (req.body.empty()) throw HttpError(400, "empty upload: send the image bytes as the body");
    return req.body;
}

std::string content_type(const std::string& name) {
    static const std::map<std::string, std::string> types = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".png", "image/png"},
        {".svg", "image/svg+xml"},             {".json", "application/json"},
        {".ico", "image/x-icon"}};
    const size_t dot = name.rfind('.');
    auto it = types.find(dot == std::string::npos ? "" : name.substr(dot));
    return it == types.end() ? "application/octet-stream" : it->second;
}

// A file of the page: from --web-dir when given, else the copy compiled into the binary.
void serve_asset(const std::string& web_dir, std::string name, Response& res) {
    if (name.empty()) name = "index.html";
    if (name.front() == '.') throw HttpError(404, "no such file: /" + name);
    if (!web_dir.empty()) {
        const std::string path = web_dir + "/" + name;
        if (!std::filesystem::is_regular_file(path)) throw HttpError(404, "no such file: /" + name);
        std::ifstream f(path, std::ios::binary);
        res.set_content(std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()),
                        content_type(name));
        return;
    }
    for (const WebAsset& a : kWebAssets)
        if (name == a.name) {
            res.set_content(reinterpret_cast<const char*>(a.data), a.size, content_type(name));
            return;
        }
    throw HttpError(404, "no such file: /" + name);
}

// Errors httplib answers itself (no route, payload too large, malformed request) get JSON too.
void add_error_handler(httplib::Server& server, const ServerOptions& options) {
    const size_t limit_mb = options.max_upload_bytes >> 20;
    server.set_error_handler(httplib::Server::HandlerWithResponse([limit_mb](const Request& req, Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours, already JSON
        std::string message;
        switch (res.status) {
            case 404: message = "no route for " + req.method + " " + req.path; break;
            case 413:
                // httplib caps form-encoded bodies at 8 KiB whatever the payload limit.
                if (req.get_header_value("Content-Type") == "application/x-www-form-urlencoded")
                    message = "form-encoded bodies are limited to 8 KiB: send the image with Content-Type "
                              "application/octet-stream, or as the multipart field \"image\"";
                else
                    message = "upload too large: the limit is " + std::to_string(limit_mb) + " MiB (--max-upload-mb)";
                break;
            case 400: message = "malformed HTTP request"; break;
            default: message = "HTTP status " + std::to_string(res.status);
        }
        send_error(res, res.status, message);
        return httplib::Server::HandlerResponse::Handled;
    }));
}

}  // namespace

void add_routes(httplib::Server& server, ImageStore& store, const ServerOptions& options) {
    server.set_payload_max_length(options.max_upload_bytes);
    add_error_handler(server, options);
    server.set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
        send_error(res, 500, "internal error");  // handlers catch everything; this is the last resort
    });

    server.Get("/api/health", guarded([&store](const Request&, Response& res) {
        send_json(res, {{"status", "ok"},
                        {"model_type", store.model().config().model_type},
                        {"images_cached", store.size()}});
    }));

    server.Post("/api/images", guarded([&store](const Request& req, Response& res) {
        const ImageStore::Added a = store.add(upload_bytes(req));
        send_json(res, {{"id", a.entry->id},
                        {"width", a.entry->image.width},
                        {"height", a.entry->image.height},
                        {"cached", a.cached},
                        {"encode_ms", a.encode_ms}});
    }));

    server.Post(R"(/api/images/([^/]+)/predict)", guarded([&store](const Request& req, Response& res) {
        auto entry = find_image(store, req.matches[1]);
        send_json(res, predict(*entry, parse_prompt(parse_object(req), *entry)));
    }));

    server.Post(R"(/api/images/([^/]+)/everything)", guarded([&store](const Request& req, Response& res) {
        auto entry = find_image(store, req.matches[1]);
        SamAutomaticMaskGenerator generator(store.model(), parse_amg_options(parse_object(req)));
        // The generator encodes the image (and its crops) itself: it takes the encoder's turn.
        const std::vector<MaskRecord> records = store.with_encoder([&] {
            // The whole-image crop reuses the cached embedding; only crop layers encode.
            return generator.generate(entry->image, nullptr, entry->predictor.embedding());
        });
        json out = json::array();
        for (const MaskRecord& r : records) out.push_back(record_json(r));
        send_json(res, {{"records", out}, {"width", entry->image.width}, {"height", entry->image.height}});
    }));

    server.Get(R"(/([A-Za-z0-9_.-]*))", guarded([web_dir = options.web_dir](const Request& req, Response& res) {
        serve_asset(web_dir, req.matches[1], res);
    }));

    server.set_logger([](const Request& req, const Response& res) {
        static std::mutex log_mutex;
        const std::string timing = res.get_header_value("Server-Timing");
        const size_t eq = timing.find("dur=");
        std::lock_guard<std::mutex> lock(log_mutex);
        std::fprintf(stderr, "%s %s %s -> %d, %zu bytes in, %zu bytes out%s%s\n", req.remote_addr.c_str(),
                     req.method.c_str(), req.path.c_str(), res.status, req.body.size(), res.body.size(),
                     eq == std::string::npos ? "" : ", ms ", eq == std::string::npos ? "" : timing.c_str() + eq + 4);
    });
}

}  // namespace sam::server
