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
#include "server/click.h"
#include "server/client_connection.h"
#include "server/http_answers.h"
#include "server/request_checks.h"
#include "server/request_parsing.h"
#include "server/web_assets.h"

namespace sam::server {
namespace {

using json = nlohmann::json;
using httplib::Request;
using httplib::Response;

void send_error(Response& res, int status, const std::string& message) {
    send_json(res, {{"error", message}}, status);
}

}  // namespace

// Runs a handler, turning every exception into a JSON error and timing it (Server-Timing).
httplib::Server::Handler guarded(std::function<void(const Request&, Response&)> handler) {
    return [handler = std::move(handler)](const Request& req, Response& res) {
        const auto t0 = std::chrono::steady_clock::now();
        try {
            handler(req, res);
        } catch (const HttpError& e) {
            send_error(res, e.status, e.what());
        } catch (const ImageTooLargeError& e) {
            send_error(res, 413, std::string(e.what()) + " (the server's --max-pixels)");
        } catch (const ImageError& e) {
            send_error(res, 415, std::string("not a supported image (JPEG or PNG): ") + e.what());
        } catch (const InputError& e) {
            send_error(res, 400, e.what());
        } catch (const std::bad_alloc&) {
            send_error(res, 500, "out of memory");
        } catch (const std::exception& e) {
            send_error(res, 500, std::string("internal error: ") + e.what());
        }
        // The handler's phases (set_server_timing), then the whole request's time.
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::string timing = res.get_header_value("Server-Timing");
        res.headers.erase("Server-Timing");
        char total[64];
        std::snprintf(total, sizeof total, "%stotal;dur=%.2f", timing.empty() ? "" : ", ", ms);
        res.set_header("Server-Timing", timing + total);
    };
}

namespace {

std::shared_ptr<const ImageEntry> find_image(ImageStore& store, const std::string& id) {
    auto e = store.find(id);
    if (!e)
        throw HttpError(404, "unknown image id '" + id.substr(0, 64) + "' (upload it again: POST /api/images)");
    return e;
}

// Stops "segment everything" from the generator's progress callback (after a batch) once the
// request has run past its time limit, waiting for the encoder included, or its client has gone.
class JobWatch {
  public:
    JobWatch(const Request& req, double timeout_s)
        : client_(req),
          timeout_s_(timeout_s),
          deadline_(std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(timeout_s))) {}

    void check(int64_t done, int64_t total) const {
        const std::string progress = std::to_string(done) + " of " + std::to_string(total) + " prompts";
        if (client_.closed()) {
            std::fprintf(stderr, "sam serve: segment everything stopped after %s: the client disconnected\n",
                         progress.c_str());
            throw HttpError(499, "client disconnected");  // nginx's "client closed request"; nobody reads it
        }
        if (std::chrono::steady_clock::now() > deadline_) {
            char limit[32];
            std::snprintf(limit, sizeof limit, "%g", timeout_s_);
            throw HttpError(503, "segment everything stopped after " + progress + ": it ran past the " + limit +
                                     " s a request may take (the server's --job-timeout); ask for fewer points");
        }
    }

  private:
    ClientConnection client_;
    double timeout_s_;
    std::chrono::steady_clock::time_point deadline_;
};

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

// Checks Host, Origin and body framing before httplib reads a body (request_checks.h). The
// refused request's body is left unread, so the connection closes after the answer.
void add_request_checks(httplib::Server& server, const ServerOptions& options) {
    const RequestPolicy policy = make_request_policy(options.host, options.port, options.allowed_hosts);
    server.set_pre_routing_handler([policy](const Request& req, Response& res) {
        try {
            check_request(req, policy);
            return httplib::Server::HandlerResponse::Unhandled;
        } catch (const HttpError& e) {
            send_error(res, e.status, e.what());
        } catch (const std::exception& e) {
            send_error(res, 400, std::string("malformed request: ") + e.what());
        }
        res.set_header("Connection", "close");
        return httplib::Server::HandlerResponse::Handled;
    });
}

// Errors httplib answers itself (no route, payload too large, malformed request) get JSON too.
void add_error_handler(httplib::Server& server, const ServerOptions& options) {
    const size_t limit_mb = options.max_upload_bytes >> 20, json_limit = options.json.max_bytes;
    server.set_error_handler(httplib::Server::HandlerWithResponse([=](const Request& req, Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours, already JSON
        std::string message;
        switch (res.status) {
            case 404: message = "no route for " + req.method + " " + req.path; break;
            case 413:
                // httplib caps form-encoded bodies at 8 KiB whatever the payload limit.
                if (req.get_header_value("Content-Type") == "application/x-www-form-urlencoded")
                    message = "form-encoded bodies are limited to 8 KiB: send the image with Content-Type "
                              "application/octet-stream, or as the multipart field \"image\"";
                else if (is_json_route(req.method, req.path))
                    message = "JSON body too large: the limit is " + std::to_string(json_limit) + " bytes";
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
    add_request_checks(server, options);
    add_error_handler(server, options);
    server.set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
        send_error(res, 500, "internal error");  // handlers catch everything; this is the last resort
    });

    server.Get("/api/health", guarded([&store](const Request&, Response& res) {
        send_json(res, {{"status", "ok"},
                        {"model", store.model().family()},
                        {"model_type", store.model().model_type()},
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

    // A prompt on a cached image: full-resolution masks as JSON (predict), or the decoder's
    // low-res logits as binary for the page to upsample itself (click; server/click.h).
    for (const bool low_res : {false, true}) {
        const std::string route = low_res ? R"(/api/images/([^/]+)/click)" : R"(/api/images/([^/]+)/predict)";
        server.Post(route, guarded([&store, options, low_res](const Request& req, Response& res) {
            check_json_content_type(req);
            auto entry = find_image(store, req.matches[1]);
            const json body = parse_json_object(req.body, options.json);
            const LogitsLookup logits = [&](const std::string& handle, Tensor& out) {
                return entry->logits.get(handle, out);
            };
            const Prompt prompt = parse_prompt(body, entry->image.width, entry->image.height, logits);
            PhaseTimes times;
            const DecodedClick d = decode_click(*entry->predictor, prompt, entry->logits, times);
            const MaskGeometry geometry = entry->predictor->geometry();
            if (low_res) {
                res.set_content(low_resolution_answer(geometry, d, times), "application/octet-stream");
            } else {
                const json answer = full_resolution_answer(geometry, d, times);
                const auto t0 = std::chrono::steady_clock::now();
                send_json(res, answer);
                times.add("json", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
            }
            res.set_header("Server-Timing", times.header());
        }));
    }

    server.Post(R"(/api/images/([^/]+)/everything)", guarded([&store, options](const Request& req, Response& res) {
        const JobWatch watch(req, options.job_timeout_s);
        check_json_content_type(req);
        auto entry = find_image(store, req.matches[1]);
        // The model family's options and generator (segmenter.h).
        const EverythingJob job =
            entry->predictor->everything(entry->image, parse_json_object(req.body, options.json), options.amg);
        // The generator encodes the image (and its crops) itself: it takes the encoder's turn.
        const std::vector<MaskRecord> records = store.with_encoder([&] {
            const auto check = [&](int64_t done, int64_t total) { watch.check(done, total); };
            // While this request waited for the encoder, its client may have gone or its time run out.
            check(0, job.prompts);
            return job.run(check);
        });
        json out = json::array();
        for (const MaskRecord& r : records) out.push_back(record_json(r));
        send_json(res, {{"records", out}, {"width", entry->image.width}, {"height", entry->image.height}});
    }));

    server.Get(R"(/([A-Za-z0-9_.-]*))", guarded([web_dir = options.web_dir](const Request& req, Response& res) {
        serve_asset(web_dir, req.matches[1], kWebAssets, res);
    }));

    server.set_logger([](const Request& req, const Response& res) {
        static std::mutex log_mutex;
        const std::string timing = res.get_header_value("Server-Timing");
        const size_t eq = timing.find("total;dur=");
        std::lock_guard<std::mutex> lock(log_mutex);
        std::fprintf(stderr, "%s %s %s -> %d, %zu bytes in, %zu bytes out%s%s\n", req.remote_addr.c_str(),
                     req.method.c_str(), req.path.c_str(), res.status, req.body.size(), res.body.size(),
                     eq == std::string::npos ? "" : ", ms ", eq == std::string::npos ? "" : timing.c_str() + eq + 10);
    });
}

}  // namespace sam::server
