#include "sam/predictor.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "io/atomic_file.h"
#include "modeling/low_rank_decoder.h"
#include "modeling/mask_decoder.h"
#include "modeling/prompt_encoder.h"
#include "ops/threads.h"
#include "modeling/sam.h"
#include "postprocess.h"
#include "sam/error.h"
#include "sam/npy.h"
#include "transforms.h"

namespace sam {

namespace {

std::string num(double v) {
    std::string s = std::to_string(v);
    return s;
}

// Checks a batch prompt against the model and the documented rules; throws naming the field.
void validate(const BatchPrompt& p, int64_t mask_side) {
    const int64_t B = p.batch, N = p.points_per_prompt;
    if (B < 1) throw InputError("batch", "must be at least 1, got " + std::to_string(B));
    if (N < 0) throw InputError("points_per_prompt", "must not be negative");
    if (static_cast<int64_t>(p.point_coords.size()) != B * N * 2)
        throw InputError("point_coords", std::to_string(p.point_coords.size()) + " values, expected " +
                                             std::to_string(B * N * 2) + " (" + std::to_string(B) + " prompts x " +
                                             std::to_string(N) + " points x 2)");
    if (static_cast<int64_t>(p.point_labels.size()) != B * N)
        throw InputError("point_labels", std::to_string(p.point_labels.size()) + " labels for " +
                                             std::to_string(B * N) + " points");
    for (size_t i = 0; i < p.point_labels.size(); ++i)
        if (p.point_labels[i] < -1 || p.point_labels[i] > 1)
            throw InputError("point_labels", "label " + std::to_string(p.point_labels[i]) + " at index " +
                                                 std::to_string(i) + " is not 1 (foreground), 0 (background) or -1");
    for (size_t i = 0; i < p.point_coords.size(); ++i)
        if (!std::isfinite(p.point_coords[i]))
            throw InputError("point_coords", "non-finite coordinate " + num(p.point_coords[i]) + " at point " +
                                                 std::to_string(i / 2));
    if (!p.boxes.empty() && static_cast<int64_t>(p.boxes.size()) != B)
        throw InputError("box", std::to_string(p.boxes.size()) + " boxes for " + std::to_string(B) + " prompts");
    for (size_t i = 0; i < p.boxes.size(); ++i) {
        const auto& b = p.boxes[i];
        for (float v : b)
            if (!std::isfinite(v)) throw InputError("box", "non-finite coordinate " + num(v) + " in box " + std::to_string(i));
        if (b[2] < b[0] || b[3] < b[1])
            throw InputError("box", "box " + std::to_string(i) + " (" + num(b[0]) + ", " + num(b[1]) + ", " + num(b[2]) +
                                        ", " + num(b[3]) + ") has x1 < x0 or y1 < y0; expected x0, y0, x1, y1");
    }
    if (p.mask_input.defined()) {
        const Shape& s = p.mask_input.shape();
        const bool ok = (s == Shape{B, 1, mask_side, mask_side}) || (s == Shape{B, mask_side, mask_side});
        if (!ok)
            throw InputError("mask_input", "shape " + shape_str(s) + ", expected " +
                                               shape_str({B, 1, mask_side, mask_side}) + " low-res logits");
    }
}

}  // namespace

SamPredictor::SamPredictor(Sam model) : model_(std::move(model)) {}

void SamPredictor::require_image() const {
    if (!embedding_.defined())
        throw InputError("image", "no image set: call set_image or set_embedding before predicting");
}

void SamPredictor::set_image(const Image& image) {
    if (image.width <= 0 || image.height <= 0) throw InputError("image", "empty image");
    set_embedding(model_.embed(image), image.height, image.width);
}

void SamPredictor::set_embedding(const Tensor& embedding, int orig_h, int orig_w) {
    const SamConfig& c = model_.config();
    const int64_t C = c.prompt.embed_dim, G = c.embedding_size();
    if (embedding.shape() != Shape{1, C, G, G})
        throw InputError("embedding", "shape " + shape_str(embedding.shape()) + ", expected " + shape_str({1, C, G, G}) +
                                          " for this model");
    if (orig_h <= 0 || orig_w <= 0)
        throw InputError("image size", std::to_string(orig_h) + "x" + std::to_string(orig_w) + " is not a valid size");
    ops::ThreadScope threads(model_.execution().threads);
    const SamModel& m = SamAccess::model(model_);
    embedding_ = embedding.clone();
    geom_ = model_.geometry(orig_h, orig_w);
    state_ = std::make_shared<const LowRankImageState>(
        prepare_low_rank_image(m.mask_decoder, embedding_, m.prompt_encoder.no_mask_embed, m.prompt_encoder.dense_pe));
}

bool SamPredictor::is_image_set() const { return embedding_.defined(); }

void SamPredictor::reset_image() {
    embedding_ = Tensor();
    geom_ = {};
    state_.reset();
}

const Tensor& SamPredictor::embedding() const {
    require_image();
    return embedding_;
}

ImageGeometry SamPredictor::geometry() const {
    require_image();
    return geom_;
}

void SamPredictor::save_embedding(const std::string& path) const {
    require_image();
    save_npy(path, embedding_);
    nlohmann::json j = {{"orig_h", geom_.orig_h}, {"orig_w", geom_.orig_w}};
    write_file_atomic(path + ".json", [&](std::ostream& os) { os << j.dump() << "\n"; });
}

void SamPredictor::load_embedding(const std::string& path, int orig_h, int orig_w) {
    Tensor emb = load_npy(path);
    if (orig_h <= 0 || orig_w <= 0) {
        const std::string side = path + ".json";
        std::ifstream f(side);
        if (!f) throw InputError(side, "missing: give the original image size (orig_h, orig_w) for a bare .npy");
        try {
            nlohmann::json j = nlohmann::json::parse(f);
            orig_h = j.at("orig_h").get<int>();
            orig_w = j.at("orig_w").get<int>();
        } catch (const nlohmann::json::exception& e) {
            throw InputError(side, std::string("not a valid embedding sidecar: ") + e.what());
        }
    }
    set_embedding(emb, orig_h, orig_w);
}

BatchPrediction SamPredictor::predict_batch(const BatchPrompt& p, bool upsample) const {
    ops::ThreadScope threads(model_.execution().threads);
    require_image();
    const SamModel& m = SamAccess::model(model_);
    const PromptEncoderWeights& pe = m.prompt_encoder;
    const int64_t S = pe.mask_side(), B = p.batch, N = p.points_per_prompt;
    validate(p, S);
    const int img = model_.config().encoder.img_size;

    // Transform the prompt into the resized input frame.
    std::vector<float> points = p.point_coords;
    std::vector<float> boxes;
    apply_coords(points.data(), static_cast<int>(B * N), geom_.orig_h, geom_.orig_w, img);
    for (const auto& b : p.boxes) boxes.insert(boxes.end(), b.begin(), b.end());
    apply_boxes(boxes.data(), static_cast<int>(p.boxes.size()), geom_.orig_h, geom_.orig_w, img);

    // Embed prompts
    Tensor sparse = embed_sparse_prompts(pe, B, N, N > 0 ? points.data() : nullptr,
                                         N > 0 ? p.point_labels.data() : nullptr, boxes.empty() ? nullptr : boxes.data());
    // Predict masks: prompts without mask input share the image's low-rank state; mask inputs
    // give every prompt its own image side, decoded as the reference does.
    DecoderOutput d;
    if (p.mask_input.defined()) {
        std::vector<TransformerImageState> own;
        own.reserve(static_cast<size_t>(B));
        for (int64_t b = 0; b < B; ++b) {
            Tensor dense = embed_mask_input(pe, p.mask_input.data() + b * S * S);
            own.push_back(prepare_decoder_image(m.mask_decoder, embedding_, dense, pe.dense_pe));
        }
        std::vector<const TransformerImageState*> states;
        for (const auto& s : own) states.push_back(&s);
        d = mask_decoder_forward(m.mask_decoder, states, pe.dense_pe, sparse, p.multimask_output);
    } else {
        d = low_rank_decoder_forward(m.mask_decoder, *state_, pe.dense_pe, sparse, p.multimask_output);
    }
    BatchPrediction r;
    r.batch = B;
    r.num_masks = static_cast<int>(d.iou.dim(1));
    r.height = geom_.orig_h;
    r.width = geom_.orig_w;
    r.iou_predictions = d.iou;
    r.low_res_logits = d.masks;
    if (!upsample) return r;

    // Upscale the masks to the original image resolution
    MaskPostprocessor post(static_cast<int>(S), img, geom_.input_h, geom_.input_w, geom_.orig_h, geom_.orig_w);
    const int64_t n = B * r.num_masks, HW = static_cast<int64_t>(r.height) * r.width;
    if (p.return_logits) {
        r.logits = Tensor::empty({B, r.num_masks, r.height, r.width});
        for (int64_t i = 0; i < n; ++i) post.logits(d.masks.data() + i * S * S, r.logits.data() + i * HW);
    } else {
        r.masks.resize(static_cast<size_t>(n * HW));
        for (int64_t i = 0; i < n; ++i)
            post.binary(d.masks.data() + i * S * S, r.masks.data() + i * HW, model_.config().mask_threshold);
    }
    return r;
}

Prediction SamPredictor::predict(const Prompt& prompt, bool upsample) const {
    require_image();
    if (prompt.point_labels.size() != prompt.point_coords.size())
        throw InputError("point_labels", std::to_string(prompt.point_labels.size()) + " labels for " +
                                             std::to_string(prompt.point_coords.size()) + " points");
    BatchPrompt b;
    b.batch = 1;
    b.points_per_prompt = static_cast<int64_t>(prompt.point_coords.size());
    for (const auto& xy : prompt.point_coords) b.point_coords.insert(b.point_coords.end(), xy.begin(), xy.end());
    b.point_labels = prompt.point_labels;
    if (prompt.box) b.boxes.push_back(*prompt.box);
    if (prompt.mask_input.defined()) {
        const int64_t S = SamAccess::model(model_).prompt_encoder.mask_side();
        const Shape& s = prompt.mask_input.shape();
        if (s != Shape{1, S, S} && s != Shape{S, S} && s != Shape{1, 1, S, S})
            throw InputError("mask_input", "shape " + shape_str(s) + ", expected " + shape_str({1, S, S}) +
                                               " low-res logits");
        b.mask_input = prompt.mask_input.reshape({1, 1, S, S});
    }
    b.multimask_output = prompt.multimask_output;
    b.return_logits = prompt.return_logits;
    BatchPrediction r = predict_batch(b, upsample);

    Prediction out;
    out.num_masks = r.num_masks;
    out.height = r.height;
    out.width = r.width;
    out.masks = std::move(r.masks);
    out.logits = r.logits.defined() ? r.logits.reshape({r.num_masks, r.height, r.width}) : Tensor();
    out.iou_predictions.assign(r.iou_predictions.data(), r.iou_predictions.data() + r.num_masks);
    out.low_res_logits = r.low_res_logits.reshape({r.num_masks, r.low_res_logits.dim(2), r.low_res_logits.dim(3)});
    return out;
}

}  // namespace sam
