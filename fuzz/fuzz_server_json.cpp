// libFuzzer target: the server's JSON request bodies (apps/server/request_parsing.h), as the
// predict and "segment everything" routes read them (SAM's and SAM 2's generator options). Any input must be parsed or refused with
// HttpError / sam::InputError (never crash, hang, or recurse once per nesting level), and what
// is accepted must be within the limits the parsing promises.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "amg_utils.h"
#include "sam/error.h"
#include "server/request_parsing.h"

namespace {

constexpr int kWidth = 800, kHeight = 534;

void check_prompt(const sam::Prompt& p) {
    if (p.point_coords.size() > sam::server::kMaxPoints || p.point_labels.size() > sam::server::kMaxPoints)
        __builtin_trap();
    for (const auto& pt : p.point_coords)
        if (!(pt[0] >= -kWidth && pt[0] <= 2 * kWidth && pt[1] >= -kHeight && pt[1] <= 2 * kHeight)) __builtin_trap();
    for (int l : p.point_labels)
        if (l < -1 || l > 1) __builtin_trap();
    if (p.box)
        for (float v : *p.box)
            if (!std::isfinite(v)) __builtin_trap();
}

void check_amg(const sam::AmgOptions& o, const sam::server::AmgLimits& limits) {
    const int64_t prompts = sam::server::amg_prompt_count(o);
    if (prompts < 1 || prompts > limits.max_prompts) __builtin_trap();
    // The generator's own grids agree, and accept every option the server passes on.
    const auto grids = sam::amg::build_all_layer_point_grids(o.points_per_side, o.crop_n_layers,
                                                             o.crop_n_points_downscale_factor);
    int64_t total = 0, crops = 1;
    for (const auto& g : grids) {
        total += crops * static_cast<int64_t>(g.size());
        crops *= 4;
    }
    if (total != prompts) __builtin_trap();
    for (double t : {o.pred_iou_thresh, o.stability_score_thresh, o.box_nms_thresh, o.crop_nms_thresh})
        if (!(t >= 0.0 && t <= 1.0)) __builtin_trap();
    if (!(o.crop_overlap_ratio >= 0.0 && o.crop_overlap_ratio < 1.0)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sam::server;
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    nlohmann::json j;
    try {
        j = parse_json_object(body);
    } catch (const HttpError& e) {
        if (e.status != 400 && e.status != 413) __builtin_trap();
        return 0;
    }
    if (!j.is_object()) __builtin_trap();
    const LogitsLookup logits = [](const std::string& handle, sam::Tensor& out) {
        if (handle != "m1") return false;
        out = sam::Tensor({1, 1, 1});
        return true;
    };
    try {
        check_prompt(parse_prompt(j, kWidth, kHeight, logits));
    } catch (const sam::InputError&) {
    }
    const AmgLimits limits;
    try {
        check_amg(parse_amg_options(j, limits), limits);
    } catch (const sam::InputError&) {
    }
    try {
        const sam::Sam2AmgOptions o = parse_sam2_amg_options(j, limits);
        check_amg(o, limits);
        if (!std::isfinite(o.mask_threshold)) __builtin_trap();
    } catch (const sam::InputError&) {
    }
    return 0;
}
