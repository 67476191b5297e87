#include "server/video_routes.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "sam/error.h"
#include "server/click.h"
#include "server/client_connection.h"
#include "server/http_answers.h"
#include "server/request_checks.h"
#include "server/request_parsing.h"

namespace sam::server {
namespace {

using json = nlohmann::json;
using httplib::Request;
using httplib::Response;
using Handler = std::function<void(const Request&, Response&)>;

std::shared_ptr<VideoSession> find_video(VideoStore& videos, const std::string& id) {
    auto s = videos.find(id);
    if (!s) throw HttpError(404, "unknown video id '" + id.substr(0, 64) + "' (upload it again: POST /api/videos)");
    return s;
}

// The frame index of a route's path, within the video.
int frame_of(const VideoSession& s, const std::string& digits) {
    const long n = std::stol(digits);  // at most 9 digits (the route's pattern)
    if (n >= s.num_frames())
        throw HttpError(404, "frame " + digits + " of video " + s.id + ": the video has " + std::to_string(s.num_frames()) +
                                 " frames (0 to " + std::to_string(s.num_frames() - 1) + ")");
    return static_cast<int>(n);
}

// An integer field in [lo, hi]; InputError naming it.
int int_field(const json& body, const char* key, int lo, int hi) {
    const auto it = body.find(key);
    if (it == body.end()) throw InputError(key, "missing (an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "])");
    if (!it->is_number_integer()) throw InputError(key, std::string("expected an integer, got ") + it->type_name());
    const int64_t v = it->get<int64_t>();
    if (v < lo || v > hi)
        throw InputError(key, std::to_string(v) + " out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<int>(v);
}

void only_fields(const json& body, std::initializer_list<const char*> known) {
    for (const auto& [key, value] : body.items()) {
        if (std::find_if(known.begin(), known.end(), [&](const char* k) { return key == k; }) != known.end()) continue;
        std::string list;
        for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        throw InputError(key.substr(0, 40), "unknown field (expected " + (list.empty() ? std::string("none") : "one of: " + list) + ")");
    }
}

json masks_json(const VideoSession& s, const std::vector<ObjectMask>& masks) {
    json out = json::array();
    for (const ObjectMask& m : masks)
        out.push_back({{"obj_id", m.obj_id},
                       {"size", {s.height, s.width}},
                       {"counts", m.counts},
                       {"score", std::isfinite(m.score) ? json(m.score) : json(nullptr)}});
    return out;
}

// The uploaded bytes: the multipart field "video", or the raw body.
const std::string& video_bytes(const Request& req) {
    if (req.is_multipart_form_data()) {
        if (!req.has_file("video")) throw HttpError(400, "multipart upload without a \"video\" field");
        const auto it = req.files.find("video");
        if (it->second.content.empty()) throw HttpError(400, "empty upload");
        return it->second.content;
    }
    if (req.body.empty()) throw HttpError(400, "empty upload: send the video file's bytes as the body");
    return req.body;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Sets the session's "propagating" mark for the lifetime of this object.
class Propagation {
  public:
    Propagation(VideoSession& s, int total) : s_(s) { s_.begin_propagation(total); }
    ~Propagation() { s_.end_propagation(); }
    Propagation(const Propagation&) = delete;
    Propagation& operator=(const Propagation&) = delete;

  private:
    VideoSession& s_;
};

}  // namespace

void add_video_routes(httplib::Server& server, VideoStore* videos, const std::string& unavailable,
                      const ServerOptions& options) {
    // Without a video model every route answers the reason.
    auto route = [&](bool post, const std::string& pattern, Handler handler) {
        if (!videos) handler = [unavailable](const Request&, Response&) { throw HttpError(400, unavailable); };
        if (post)
            server.Post(pattern, guarded(std::move(handler)));
        else
            server.Get(pattern, guarded(std::move(handler)));
    };
    const JsonLimits json_limits = options.json;
    VideoStore* store = videos;  // null: never used, the handlers are replaced by the reason

    route(true, "/api/videos", [store](const Request& req, Response& res) {
        const auto t0 = std::chrono::steady_clock::now();
        const auto s = store->add(video_bytes(req));
        send_json(res, {{"id", s->id},
                        {"frames", s->num_frames()},
                        {"width", s->width},
                        {"height", s->height},
                        {"fps", s->fps},
                        {"decode_ms", ms_since(t0)}});
    });

    route(false, R"(/api/videos/([^/]+))", [store](const Request& req, Response& res) {
        const auto s = find_video(*store, req.matches[1]);
        const VideoSession::Progress p = s->progress();
        send_json(res, {{"id", s->id},
                        {"frames", s->num_frames()},
                        {"width", s->width},
                        {"height", s->height},
                        {"fps", s->fps},
                        {"tracked_frames", s->tracked_frames()},
                        {"propagation", {{"running", p.running}, {"done", p.done}, {"total", p.total}}}});
    });

    route(false, R"(/api/videos/([^/]+)/frames/(\d{1,9})\.jpg)", [store](const Request& req, Response& res) {
        const auto s = find_video(*store, req.matches[1]);
        const std::string& jpeg = s->jpegs[static_cast<size_t>(frame_of(*s, req.matches[2]))];
        res.set_content(jpeg, "image/jpeg");
        // A session's frames never change; its id is never reused.
        res.set_header("Cache-Control", "private, max-age=3600");
    });

    route(false, R"(/api/videos/([^/]+)/frames/(\d{1,9})/masks)", [store](const Request& req, Response& res) {
        const auto s = find_video(*store, req.matches[1]);
        const int frame = frame_of(*s, req.matches[2]);
        const auto masks = s->masks(frame);
        send_json(res, {{"frame", frame}, {"tracked", masks.has_value()}, {"masks", masks_json(*s, masks.value_or(std::vector<ObjectMask>{}))}});
    });

    route(true, R"(/api/videos/([^/]+)/points)", [store, json_limits](const Request& req, Response& res) {
        check_json_content_type(req);
        const auto s = find_video(*store, req.matches[1]);
        const json body = parse_json_object(req.body, json_limits);
        only_fields(body, {"frame", "obj_id", "points", "labels", "box", "clear_old_points"});
        const int frame = int_field(body, "frame", 0, s->num_frames() - 1);
        const int obj_id = int_field(body, "obj_id", 0, 1 << 30);
        bool clear_old_points = true;
        if (const auto it = body.find("clear_old_points"); it != body.end()) {
            if (!it->is_boolean()) throw InputError("clear_old_points", std::string("expected true or false, got ") + it->type_name());
            clear_old_points = it->get<bool>();
        }
        json prompt_fields = json::object();
        for (const char* k : {"points", "labels", "box"})
            if (body.contains(k)) prompt_fields[k] = body[k];
        const Prompt prompt = parse_prompt(prompt_fields, s->width, s->height, nullptr);
        if (prompt.point_coords.empty() && !prompt.box) throw InputError("points", "give points (with labels) or a box");

        s->check_not_propagating();
        auto lock = s->drive();
        Sam2VideoPredictor& predictor = s->predictor(lock);
        const auto& ids = predictor.obj_ids();
        const int max_objects = store->limits().max_objects;
        if (std::find(ids.begin(), ids.end(), obj_id) == ids.end() && static_cast<int>(ids.size()) >= max_objects)
            throw InputError("obj_id", "a video takes at most " + std::to_string(max_objects) +
                                           " objects: remove one first (POST .../remove)");
        const auto t0 = std::chrono::steady_clock::now();
        const Sam2VideoFrame f =
            predictor.add_new_points_or_box(frame, obj_id, prompt.point_coords, prompt.point_labels, prompt.box, clear_old_points);
        const double decode_ms = ms_since(t0);
        s->prompted(lock)[obj_id].insert(frame);
        std::vector<ObjectMask> masks = frame_masks(f);
        const json out = masks_json(*s, masks);
        s->set_masks(frame, std::move(masks));
        send_json(res, {{"frame", frame}, {"masks", out}});
        PhaseTimes times;
        times.add("track", decode_ms);
        res.set_header("Server-Timing", times.header());
    });

    route(true, R"(/api/videos/([^/]+)/propagate)", [store, json_limits](const Request& req, Response& res) {
        check_json_content_type(req);
        const auto s = find_video(*store, req.matches[1]);
        only_fields(parse_json_object(req.body, json_limits), {});
        const int n = s->num_frames();
        const Propagation running(*s, n);  // 409 while another one runs
        auto lock = s->drive();
        Sam2VideoPredictor& predictor = s->predictor(lock);
        int first = n;
        for (const auto& [obj, frames] : s->prompted(lock))
            if (!frames.empty()) first = std::min(first, *frames.begin());
        if (predictor.obj_ids().empty() || first == n)
            throw HttpError(400, "nothing to propagate: add points or a box for an object first (POST /api/videos/" + s->id +
                                     "/points)");
        const ClientConnection client(req);
        bool stopped = false;
        int forward = 0, reverse = 0;
        auto keep = [&](const Sam2VideoFrame& f, int& count) {
            s->set_masks(f.frame, frame_masks(f));
            s->frame_done();
            ++count;
            if (client.closed()) stopped = true;
            return !stopped;
        };
        // Forward from the first prompted frame, then back from it to frame 0 (as `sam track`).
        predictor.propagate_in_video([&](const Sam2VideoFrame& f) { return keep(f, forward); });
        if (first > 0 && !stopped)
            predictor.propagate_in_video(
                [&](const Sam2VideoFrame& f) { return f.frame == first ? true : keep(f, reverse); }, first, std::nullopt,
                /*reverse=*/true);
        if (stopped) {
            std::fprintf(stderr, "sam serve: propagation of video %s stopped after %d frames: the client disconnected\n",
                         s->id.c_str(), forward + reverse);
            throw HttpError(499, "client disconnected");
        }
        send_json(res, {{"frames", forward + reverse}, {"forward", forward}, {"reverse", reverse}});
    });

    route(true, R"(/api/videos/([^/]+)/remove)", [store, json_limits](const Request& req, Response& res) {
        check_json_content_type(req);
        const auto s = find_video(*store, req.matches[1]);
        const json body = parse_json_object(req.body, json_limits);
        only_fields(body, {"obj_id"});
        const int obj_id = int_field(body, "obj_id", 0, 1 << 30);
        s->check_not_propagating();
        auto lock = s->drive();
        Sam2VideoPredictor& predictor = s->predictor(lock);
        const std::vector<Sam2VideoFrame> updated = predictor.remove_object(obj_id, /*strict=*/true);
        s->prompted(lock).erase(obj_id);
        s->drop_object(obj_id);
        for (const Sam2VideoFrame& f : updated) s->set_masks(f.frame, frame_masks(f));
        send_json(res, {{"objects", predictor.obj_ids()}});
    });

    route(true, R"(/api/videos/([^/]+)/reset)", [store, json_limits](const Request& req, Response& res) {
        check_json_content_type(req);
        const auto s = find_video(*store, req.matches[1]);
        only_fields(parse_json_object(req.body, json_limits), {});
        s->check_not_propagating();
        auto lock = s->drive();
        s->predictor(lock).reset_state();
        s->prompted(lock).clear();
        s->clear_masks();
        send_json(res, json::object());
    });
}

}  // namespace sam::server
