#include "server/click.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "postprocess.h"
#include "sam/rle.h"

namespace sam::server {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

void put_u32(std::string& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

std::string PhaseTimes::header() const {
    std::string out;
    char buf[96];
    for (const auto& [name, ms] : phases) {
        std::snprintf(buf, sizeof buf, "%s%s;dur=%.2f", out.empty() ? "" : ", ", name.c_str(), ms);
        out += buf;
    }
    return out;
}

int low_res_rows_used(int low_size, int img_size, int input_extent) {
    const BilinearTaps up = bilinear_taps(low_size, img_size);
    return up.i1[static_cast<size_t>(input_extent - 1)] + 1;
}

MaskGeometry mask_geometry(const SamPredictor& predictor) {
    const ImageGeometry g = predictor.geometry();
    const SamConfig& c = predictor.model().config();
    return {c.encoder.img_size / 4, c.encoder.img_size, g.input_h, g.input_w, g.orig_h, g.orig_w, c.mask_threshold};
}

namespace {

// A handle per candidate's low-res logits, and the best candidate.
DecodedClick keep_candidates(Prediction prediction, LogitsCache& handles) {
    DecodedClick d;
    d.prediction = std::move(prediction);
    const Prediction& r = d.prediction;
    const int64_t S = r.low_res_logits.dim(-1);
    for (int k = 0; k < r.num_masks; ++k) {
        // Keep each mask's low-res logits so the page can refine whichever candidate it shows.
        Tensor low({1, S, S});
        std::copy(r.low_res_logits.data() + k * S * S, r.low_res_logits.data() + (k + 1) * S * S, low.data());
        d.handles.push_back(handles.put(std::move(low)));
        if (r.iou_predictions[static_cast<size_t>(k)] > r.iou_predictions[static_cast<size_t>(d.best)]) d.best = k;
    }
    return d;
}

}  // namespace

DecodedClick decode_click(const SamPredictor& predictor, const Prompt& prompt, LogitsCache& handles,
                          PhaseTimes& times) {
    const auto t0 = Clock::now();
    Prediction r = predictor.predict(prompt, /*upsample=*/false);
    times.add("decoder", ms_since(t0));
    return keep_candidates(std::move(r), handles);
}

DecodedClick decode_click(const ImagePredictor& predictor, const Prompt& prompt, LogitsCache& handles,
                          PhaseTimes& times) {
    const auto t0 = Clock::now();
    Prediction r = predictor.predict_low_res(prompt);
    times.add("decoder", ms_since(t0));
    return keep_candidates(std::move(r), handles);
}

DecodedClick best_candidate(const DecodedClick& d) {
    const Prediction& r = d.prediction;
    const int64_t S = r.low_res_logits.dim(-1), k = d.best;
    DecodedClick one;
    one.prediction.num_masks = 1;
    one.prediction.height = r.height;
    one.prediction.width = r.width;
    one.prediction.iou_predictions = {r.iou_predictions[static_cast<size_t>(k)]};
    one.prediction.low_res_logits = Tensor({1, S, S});
    std::copy(r.low_res_logits.data() + k * S * S, r.low_res_logits.data() + (k + 1) * S * S,
              one.prediction.low_res_logits.data());
    one.handles = {d.handles[static_cast<size_t>(k)]};
    return one;
}

json full_resolution_answer(const SamPredictor& predictor, const DecodedClick& d, PhaseTimes& times) {
    return full_resolution_answer(mask_geometry(predictor), d, times);
}

json full_resolution_answer(const MaskGeometry& g, const DecodedClick& d, PhaseTimes& times) {
    const Prediction& r = d.prediction;
    const int S = static_cast<int>(r.low_res_logits.dim(-1));
    if (S != g.low_size) throw std::logic_error("low-res logits of another size than the geometry's");
    const int64_t hw = int64_t{g.height} * g.width;

    auto t0 = Clock::now();
    const MaskPostprocessor post(S, g.img_size, g.input_h, g.input_w, g.height, g.width);
    std::vector<uint8_t> masks(static_cast<size_t>(r.num_masks * hw));
    for (int k = 0; k < r.num_masks; ++k)
        post.binary(r.low_res_logits.data() + int64_t{k} * S * S, masks.data() + k * hw, g.threshold);
    times.add("upsample", ms_since(t0));

    t0 = Clock::now();
    json out = json::array();
    for (int k = 0; k < r.num_masks; ++k)
        out.push_back({{"size", {g.height, g.width}},
                       {"counts", rle_to_coco_string(rle_encode(masks.data() + k * hw, g.height, g.width))},
                       {"logits", d.handles[static_cast<size_t>(k)]}});
    times.add("rle", ms_since(t0));
    return {{"masks", out}, {"scores", r.iou_predictions}, {"best", d.best},
            {"logits", d.handles.empty() ? json(nullptr) : json(d.handles[static_cast<size_t>(d.best)])}};
}

std::string low_resolution_answer(const SamPredictor& predictor, const DecodedClick& d, PhaseTimes& times) {
    return low_resolution_answer(mask_geometry(predictor), d, times);
}

std::string low_resolution_answer(const MaskGeometry& g, const DecodedClick& d, PhaseTimes& times) {
    static_assert(std::endian::native == std::endian::little, "the binary answer is little-endian float32");
    const auto t0 = Clock::now();
    const Prediction& r = d.prediction;
    const int S = static_cast<int>(r.low_res_logits.dim(-1)), img = g.img_size;
    if (S != g.low_size) throw std::logic_error("low-res logits of another size than the geometry's");
    const int rows = low_res_rows_used(S, img, g.input_h), cols = low_res_rows_used(S, img, g.input_w);

    std::string head = json{{"version", 1},
                            {"num_masks", r.num_masks},
                            {"scores", r.iou_predictions},
                            {"best", d.best},
                            {"logits", d.handles},
                            {"low_size", S},
                            {"img_size", img},
                            {"input_h", g.input_h},
                            {"input_w", g.input_w},
                            {"height", g.height},
                            {"width", g.width},
                            {"rows", rows},
                            {"cols", cols},
                            {"threshold", g.threshold}}
                           .dump();
    head.append((4 - head.size() % 4) % 4, ' ');

    std::string out;
    const size_t row_bytes = static_cast<size_t>(cols) * sizeof(float);
    out.reserve(8 + head.size() + static_cast<size_t>(r.num_masks) * static_cast<size_t>(rows) * row_bytes);
    out += "SAMc";
    put_u32(out, static_cast<uint32_t>(head.size()));
    out += head;
    for (int k = 0; k < r.num_masks; ++k)
        for (int y = 0; y < rows; ++y)
            out.append(reinterpret_cast<const char*>(r.low_res_logits.data() + (int64_t{k} * S + y) * S), row_bytes);
    times.add("encode", ms_since(t0));
    return out;
}

}  // namespace sam::server
