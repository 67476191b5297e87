#include "server/request_parsing.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>

#include "sam/error.h"

namespace sam::server {
namespace {

using json = nlohmann::json;

// At most n bytes of a client's string, for a message (the JSON reply replaces invalid UTF-8).
std::string clip(std::string_view s, size_t n = 40) {
    return s.size() <= n ? std::string(s) : std::string(s.substr(0, n)) + "...";
}

std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// What a value is, for "expected ..., got <kind>": its type, never its content.
std::string kind(const json& v) {
    switch (v.type()) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return "a boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned: return "an integer";
        case json::value_t::number_float: return "a number with a fraction or exponent";
        case json::value_t::string: return "a string";
        case json::value_t::array: return "an array of " + std::to_string(v.size());
        case json::value_t::object: return "an object";
        default: return v.type_name();
    }
}

void reject_unknown_keys(const json& j, std::initializer_list<const char*> known) {
    for (const auto& item : j.items()) {
        const std::string& key = item.key();
        if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; })) {
            std::string list;
            for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
            throw InputError(clip(key), "unknown field (expected one of: " + list + ")");
        }
    }
}

// A present, non-null field.
const json* field(const json& j, const char* key) {
    const auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
}

// A finite number from the client, as a double.
double finite_number(const json& v, const std::string& where) {
    if (!v.is_number()) throw InputError(where, "expected a number, got " + kind(v));
    const double d = v.get<double>();
    if (!std::isfinite(d)) throw InputError(where, "must be finite, got " + num(d));
    return d;
}

// An x (extent = width) or y (extent = height) coordinate within [-extent, 2 extent].
float coordinate(const json& v, const std::string& where, int extent, const char* axis) {
    const double d = finite_number(v, where);
    if (d < -extent || d > 2.0 * extent)
        throw InputError(where, std::string(axis) + " = " + num(d) + " is outside [" + std::to_string(-extent) + ", " +
                                    std::to_string(2 * extent) + "] (prompts may lie at most one image " +
                                    (axis[0] == 'x' ? "width" : "height") + " outside the image)");
    return static_cast<float>(d);
}

std::vector<std::array<float, 2>> parse_points(const json& pts, int width, int height) {
    if (!pts.is_array()) throw InputError("points", "expected [[x, y], ...], got " + kind(pts));
    if (pts.size() > kMaxPoints) throw InputError("points", "at most " + std::to_string(kMaxPoints) + " points");
    std::vector<std::array<float, 2>> out;
    for (size_t i = 0; i < pts.size(); ++i) {
        const std::string where = "points[" + std::to_string(i) + "]";
        const json& pt = pts[i];
        if (!pt.is_array() || pt.size() != 2) throw InputError(where, "expected [x, y], got " + kind(pt));
        out.push_back({coordinate(pt[0], where, width, "x"), coordinate(pt[1], where, height, "y")});
    }
    return out;
}

std::vector<int> parse_labels(const json& labels) {
    if (!labels.is_array()) throw InputError("labels", "expected [1, 0, ...], got " + kind(labels));
    if (labels.size() > kMaxPoints) throw InputError("labels", "at most " + std::to_string(kMaxPoints) + " labels");
    std::vector<int> out;
    for (size_t i = 0; i < labels.size(); ++i) {
        const json& l = labels[i];
        const std::string where = "labels[" + std::to_string(i) + "]";
        if (!l.is_number_integer()) throw InputError(where, "expected 1, 0 or -1, got " + kind(l));
        const double v = l.get<double>();  // exact for the values we accept, whatever the integer's width
        if (v != 1 && v != 0 && v != -1) throw InputError(where, "must be 1, 0 or -1, got " + num(v));
        out.push_back(static_cast<int>(v));
    }
    return out;
}

std::array<float, 4> parse_box(const json& b, int width, int height) {
    if (!b.is_array() || b.size() != 4) throw InputError("box", "expected [x0, y0, x1, y1], got " + kind(b));
    return {coordinate(b[0], "box", width, "x0"), coordinate(b[1], "box", height, "y0"),
            coordinate(b[2], "box", width, "x1"), coordinate(b[3], "box", height, "y1")};
}

// An integer option in [lo, hi].
void integer_option(const json& j, const char* key, int& out, int lo, int hi) {
    const json* v = field(j, key);
    if (!v) return;
    if (!v->is_number_integer()) throw InputError(key, "expected an integer, got " + kind(*v));
    const double d = v->get<double>();
    if (d < lo || d > hi)
        throw InputError(key, num(d) + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    out = static_cast<int>(d);
}

// A number option in [lo, hi], or [lo, hi) when hi_open.
void real_option(const json& j, const char* key, double& out, double lo, double hi, bool hi_open = false) {
    const json* v = field(j, key);
    if (!v) return;
    const double d = finite_number(*v, key);
    if (d < lo || d > hi || (hi_open && d == hi))
        throw InputError(key, num(d) + " is outside [" + num(lo) + ", " + num(hi) + (hi_open ? ")" : "]"));
    out = d;
}

}  // namespace

json parse_json_object(std::string_view body, const JsonLimits& limits) {
    if (body.size() > limits.max_bytes)
        throw HttpError(413, "JSON body of " + std::to_string(body.size()) + " bytes, more than the " +
                                 std::to_string(limits.max_bytes) + " accepted");
    if (body.empty()) return json::object();
    // Refuse deep nesting as the parser meets it: the parser itself is iterative, but a deep
    // value would recurse once per level when destroyed or printed.
    std::string top_key;  // the top-level field being read, to name in the error
    const json::parser_callback_t check_depth = [&](int depth, json::parse_event_t event, json& parsed) {
        if (depth == 1 && event == json::parse_event_t::key) top_key = clip(parsed.get<std::string>());
        const bool opens = event == json::parse_event_t::object_start || event == json::parse_event_t::array_start;
        if (opens && depth >= limits.max_depth)
            throw HttpError(400, (top_key.empty() ? std::string("body") : top_key) + ": JSON nested deeper than " +
                                     std::to_string(limits.max_depth) + " levels");
        return true;
    };
    json j;
    try {
        j = json::parse(body.begin(), body.end(), check_depth);
    } catch (const json::exception& e) {
        throw HttpError(400, "bad JSON: " + clip(e.what(), 200));
    }
    if (!j.is_object()) throw HttpError(400, "bad JSON: expected an object, got " + kind(j));
    return j;
}

Prompt parse_prompt(const json& body, int width, int height, const LogitsLookup& logits) {
    reject_unknown_keys(body, {"points", "labels", "box", "mask_input", "multimask"});
    Prompt p;
    if (const json* v = field(body, "points")) p.point_coords = parse_points(*v, width, height);
    if (const json* v = field(body, "labels")) p.point_labels = parse_labels(*v);
    if (const json* v = field(body, "box")) p.box = parse_box(*v, width, height);
    if (const json* v = field(body, "mask_input")) {
        if (!v->is_string())
            throw InputError("mask_input", "expected the \"logits\" handle of a previous prediction, got " + kind(*v));
        if (!logits || !logits(v->get<std::string>(), p.mask_input))
            throw InputError("mask_input", "unknown or expired handle '" + clip(v->get<std::string>()) +
                                               "' (handles are kept for the last 32 masks of an image)");
    }
    if (const json* v = field(body, "multimask")) {
        if (!v->is_boolean()) throw InputError("multimask", "expected true or false, got " + kind(*v));
        p.multimask_output = v->get<bool>();
    }
    return p;
}

int64_t amg_prompt_count(const AmgOptions& o) {
    int64_t total = 0, crops = 1;
    double per_side = o.points_per_side;
    for (int layer = 0; layer <= o.crop_n_layers; ++layer, crops *= 4, per_side /= o.crop_n_points_downscale_factor) {
        const auto n = static_cast<int64_t>(per_side);
        total += crops * n * n;
    }
    return total;
}

namespace {

// The fields SAM's and SAM 2's generators share, over o's defaults.
void parse_common_amg_fields(const json& body, const AmgLimits& limits, AmgOptions& o) {
    o.output_mode = OutputMode::CocoRle;
    // Work: prompts (bounded together below), batch memory (3 low-res masks of 256 KiB per point),
    // crops (each one an encoder run: 1, 5 or 21).
    integer_option(body, "points_per_side", o.points_per_side, 1, 1024);
    integer_option(body, "points_per_batch", o.points_per_batch, 1, 256);
    integer_option(body, "crop_n_layers", o.crop_n_layers, 0, 2);
    integer_option(body, "crop_n_points_downscale_factor", o.crop_n_points_downscale_factor, 1, 16);
    integer_option(body, "min_mask_region_area", o.min_mask_region_area, 0, 1 << 30);
    // Thresholds and ratios.
    real_option(body, "pred_iou_thresh", o.pred_iou_thresh, 0.0, 1.0);
    real_option(body, "stability_score_thresh", o.stability_score_thresh, 0.0, 1.0);
    real_option(body, "stability_score_offset", o.stability_score_offset, 0.0, 100.0);
    real_option(body, "box_nms_thresh", o.box_nms_thresh, 0.0, 1.0);
    real_option(body, "crop_nms_thresh", o.crop_nms_thresh, 0.0, 1.0);
    real_option(body, "crop_overlap_ratio", o.crop_overlap_ratio, 0.0, 1.0, /*hi_open=*/true);

    double deepest = o.points_per_side;
    for (int layer = 0; layer < o.crop_n_layers; ++layer) deepest /= o.crop_n_points_downscale_factor;
    if (deepest < 1.0)
        throw InputError("crop_n_points_downscale_factor",
                         std::to_string(o.points_per_side) + " points per side divided by " +
                             std::to_string(o.crop_n_points_downscale_factor) + " per layer leaves no point in crop layer " +
                             std::to_string(o.crop_n_layers));
    const int64_t prompts = amg_prompt_count(o);
    if (prompts > limits.max_prompts)
        throw InputError("points_per_side",
                         std::to_string(o.points_per_side) + " points per side with crop_n_layers " +
                             std::to_string(o.crop_n_layers) + " and crop_n_points_downscale_factor " +
                             std::to_string(o.crop_n_points_downscale_factor) + " make " + std::to_string(prompts) +
                             " prompts, more than the " + std::to_string(limits.max_prompts) +
                             " a request may run (the server's --max-prompts)");
}

void boolean_option(const json& j, const char* key, bool& out) {
    if (const json* v = field(j, key)) {
        if (!v->is_boolean()) throw InputError(key, "expected true or false, got " + kind(*v));
        out = v->get<bool>();
    }
}

}  // namespace

AmgOptions parse_amg_options(const json& body, const AmgLimits& limits) {
    reject_unknown_keys(body, {"points_per_side", "points_per_batch", "pred_iou_thresh", "stability_score_thresh",
                               "stability_score_offset", "box_nms_thresh", "crop_n_layers", "crop_nms_thresh",
                               "crop_overlap_ratio", "crop_n_points_downscale_factor", "min_mask_region_area"});
    AmgOptions o;
    parse_common_amg_fields(body, limits, o);
    return o;
}

Sam2AmgOptions parse_sam2_amg_options(const json& body, const AmgLimits& limits) {
    reject_unknown_keys(body, {"points_per_side", "points_per_batch", "pred_iou_thresh", "stability_score_thresh",
                               "stability_score_offset", "box_nms_thresh", "crop_n_layers", "crop_nms_thresh",
                               "crop_overlap_ratio", "crop_n_points_downscale_factor", "min_mask_region_area",
                               "mask_threshold", "use_m2m", "multimask_output", "fill_holes"});
    Sam2AmgOptions o;  // SAM 2's defaults (pred_iou_thresh 0.8)
    parse_common_amg_fields(body, limits, o);
    real_option(body, "mask_threshold", o.mask_threshold, -100.0, 100.0);
    boolean_option(body, "use_m2m", o.use_m2m);
    boolean_option(body, "multimask_output", o.multimask_output);
    boolean_option(body, "fill_holes", o.fill_holes);
    return o;
}

}  // namespace sam::server
