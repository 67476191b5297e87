// SAM 2 configs (sam2/configs/sam2.1/*.yaml), checkpoint loading (build_sam.py) and the image
// predictor (sam2_image_predictor.py).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ops/threads.h"
#include "postprocess.h"
#include "sam/sam2.h"
#include "sam2/model.h"

namespace sam {

void load_hiera(HieraWeights& h, const WeightLoader& w, const Sam2Config& cfg);
void load_neck(NeckWeights& n, const WeightLoader& w, const Sam2Config& cfg);

namespace {

// SAM's two-way transformer keys under SAM 2's names: the MLP is mlp.layers.{0,1}.
class Sam2TransformerKeys : public TensorSource {
  public:
    explicit Sam2TransformerKeys(const TensorSource& src) : src_(src) {}
    Tensor tensor(const std::string& key, const Shape& shape) const override {
        std::string k = key;
        for (const auto& [from, to] : {std::pair<std::string, std::string>{".mlp.lin1.", ".mlp.layers.0."},
                                       std::pair<std::string, std::string>{".mlp.lin2.", ".mlp.layers.1."}}) {
            const size_t p = k.find(from);
            if (p != std::string::npos) k.replace(p, from.size(), to);
        }
        return src_.tensor(k, shape);
    }

  private:
    const TensorSource& src_;
};

std::vector<Linear> load_mlp(const WeightLoader& w, const std::vector<int64_t>& dims) {
    std::vector<Linear> layers;
    for (size_t i = 0; i + 1 < dims.size(); ++i)
        layers.push_back(w["layers." + std::to_string(i)].linear(dims[i + 1], dims[i]));
    return layers;
}

// ConvTranspose2d (in, out, 2, 2) -> a Linear with rows (ky, kx, out) over `in`.
Linear conv_transpose_as_linear(const Tensor& k, int64_t in, int64_t out) {
    Tensor r = Tensor::empty({4 * out, in});
    for (int64_t i = 0; i < in; ++i)
        for (int64_t o = 0; o < out; ++o)
            for (int64_t t = 0; t < 4; ++t) r[(t * out + o) * in + i] = k[(i * out + o) * 4 + t];
    return make_linear(r, Tensor());
}

void load_decoder(Sam2DecoderWeights& d, const TensorSource& src, const Sam2Config& cfg) {
    const int64_t C = cfg.d_model, NM = cfg.num_multimask_outputs + 1;
    WeightLoader w(src, "sam_mask_decoder");
    Sam2TransformerKeys renamed(src);
    MaskDecoderConfig tc;
    tc.transformer_dim = cfg.d_model;
    tc.depth = cfg.decoder_depth;
    tc.mlp_dim = cfg.decoder_mlp_dim;
    tc.num_heads = cfg.decoder_heads;
    d.transformer = load_two_way_transformer(WeightLoader(renamed, "sam_mask_decoder.transformer"), tc);
    if (cfg.pred_obj_scores) d.obj_score_token = w["obj_score_token"].tensor("weight", {1, C});
    d.iou_token = w["iou_token"].tensor("weight", {1, C});
    d.mask_tokens = w["mask_tokens"].tensor("weight", {NM, C});
    d.upscale1 = conv_transpose_as_linear(w["output_upscaling.0"].tensor("weight", {C, C / 4, 2, 2}), C, C / 4);
    d.upscale1_b = w["output_upscaling.0"].tensor("bias", {C / 4});
    d.upscale_norm = w["output_upscaling.1"].layer_norm(C / 4);
    d.upscale2 = conv_transpose_as_linear(w["output_upscaling.3"].tensor("weight", {C / 4, C / 8, 2, 2}), C / 4, C / 8);
    d.upscale2_b = w["output_upscaling.3"].tensor("bias", {C / 8});
    d.conv_s0 = make_linear(w["conv_s0"].tensor("weight", {C / 8, C, 1, 1}).reshape({C / 8, C}), w["conv_s0"].tensor("bias", {C / 8}));
    d.conv_s1 = make_linear(w["conv_s1"].tensor("weight", {C / 4, C, 1, 1}).reshape({C / 4, C}), w["conv_s1"].tensor("bias", {C / 4}));
    for (int64_t i = 0; i < NM; ++i)
        d.hypernetworks.push_back(load_mlp(w["output_hypernetworks_mlps." + std::to_string(i)], {C, C, C, C / 8}));
    std::vector<int64_t> iou_dims = {C};
    for (int i = 1; i < cfg.iou_head_depth; ++i) iou_dims.push_back(cfg.iou_head_hidden_dim);
    iou_dims.push_back(NM);
    d.iou_head = load_mlp(w["iou_prediction_head"], iou_dims);
    if (cfg.pred_obj_scores) {
        if (cfg.pred_obj_scores_mlp)
            d.obj_score_head = load_mlp(w["pred_obj_score_head"], {C, C, C, 1});
        else
            d.obj_score_head = {w["pred_obj_score_head"].linear(1, C)};
    }
    d.low_rank = sam2_low_rank_weights(d);
}

struct KnownModel {
    const char* type;
    int embed_dim, depth;
};
constexpr KnownModel kKnown[] = {{"tiny", 96, 12}, {"small", 96, 16}, {"base_plus", 112, 24}, {"large", 144, 48}};

const nlohmann::json& field(const nlohmann::json& j, const char* name, const std::string& path) {
    if (!j.contains(name)) throw Error(path + ": missing field \"" + name + "\"");
    return j.at(name);
}

}  // namespace

Sam2Config sam2_config_for(const std::string& model_type) {
    Sam2Config c;
    c.model_type = model_type;
    HieraConfig& t = c.trunk;
    if (model_type == "tiny") {
        t.embed_dim = 96, t.num_heads = 1, t.stages = {1, 2, 7, 2}, t.global_att_blocks = {5, 7, 9};
    } else if (model_type == "small") {
        t.embed_dim = 96, t.num_heads = 1, t.stages = {1, 2, 11, 2}, t.global_att_blocks = {7, 10, 13};
    } else if (model_type == "base_plus") {  // Hiera's defaults: a 14x14 background embedding
        t.embed_dim = 112, t.num_heads = 2, t.stages = {2, 3, 16, 3}, t.global_att_blocks = {12, 16, 20};
        t.pos_embed_bkg = {14, 14};
    } else if (model_type == "large") {
        t.embed_dim = 144, t.num_heads = 2, t.stages = {2, 6, 36, 4}, t.global_att_blocks = {23, 33, 43};
        t.window_spec = {8, 4, 16, 8};
    } else {
        throw InputError("model_type", "\"" + model_type + "\" is not a SAM 2 model (tiny, small, base_plus, large)");
    }
    return c;
}

Sam2Config sam2_config_from_json(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw Error(path + ": cannot open");
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(ss.str());
    } catch (const std::exception& e) {
        throw Error(path + ": " + e.what());
    }
    Sam2Config c = sam2_config_for("tiny");
    c.model_type = "custom";
    try {
        HieraConfig& t = c.trunk;
        t.embed_dim = field(j, "embed_dim", path).get<int>();
        t.num_heads = field(j, "num_heads", path).get<int>();
        t.stages = field(j, "stages", path).get<std::vector<int>>();
        t.global_att_blocks = field(j, "global_att_blocks", path).get<std::vector<int>>();
        if (j.contains("window_spec")) t.window_spec = j["window_spec"].get<std::vector<int>>();
        if (j.contains("pos_embed_bkg")) {
            auto v = j["pos_embed_bkg"].get<std::vector<int>>();
            if (v.size() != 2) throw Error(path + ": pos_embed_bkg: expected 2 values");
            t.pos_embed_bkg = {v[0], v[1]};
        }
        c.d_model = field(j, "d_model", path).get<int>();
        c.image_size = field(j, "image_size", path).get<int>();
    } catch (const nlohmann::json::exception& e) {
        throw Error(path + ": " + e.what());
    }
    const HieraConfig& t = c.trunk;
    auto positive = [&](int v, const char* name) {
        if (v <= 0 || v > 1 << 16) throw Error(path + ": " + name + " " + std::to_string(v) + " out of range");
    };
    positive(t.embed_dim, "embed_dim");
    positive(t.num_heads, "num_heads");
    positive(c.d_model, "d_model");
    positive(c.image_size, "image_size");
    if (t.stages.size() != 4 || t.window_spec.size() != 4) throw Error(path + ": stages and window_spec need 4 entries");
    for (int s : t.stages) positive(s, "stages[]");
    if (c.image_size % 32 != 0) throw Error(path + ": image_size must be a multiple of 32");
    if (c.d_model % 16 != 0) throw Error(path + ": d_model must be a multiple of 16");
    return c;
}

Sam2Config sam2_detect_config(const std::function<const Shape*(const std::string&)>& shape_of, const std::string& path) {
    const std::string pe = "image_encoder.trunk.patch_embed.proj.weight";
    const Shape* pe_shape = shape_of(pe);
    if (!pe_shape || pe_shape->size() != 4) throw CheckpointError(path, pe, "missing key: not a SAM 2 checkpoint");
    const int64_t C = (*pe_shape)[0];
    int depth = 0;
    while (shape_of("image_encoder.trunk.blocks." + std::to_string(depth) + ".norm1.weight")) ++depth;
    for (const KnownModel& k : kKnown)
        if (k.embed_dim == C && k.depth == depth) {
            Sam2Config c = sam2_config_for(k.type);
            c.version = shape_of("no_obj_embed_spatial") ? "2.1" : "2.0";
            return c;
        }
    throw CheckpointError(path, pe,
                          "Hiera width " + std::to_string(C) + " and depth " + std::to_string(depth) +
                              " match no SAM 2 model (tiny 96/12, small 96/16, base_plus 112/24, large 144/48); "
                              "give a JSON config (--config)");
}

Sam2Config Sam2::detect_config(const std::string& checkpoint_path) {
    Checkpoint ckpt = Checkpoint::open(checkpoint_path);
    return sam2_detect_config(
        [&](const std::string& key) { return ckpt.contains(key) ? &ckpt.record(key).shape : nullptr; }, checkpoint_path);
}

void load_sam2_weights(Sam2Model& m, const TensorSource& src) {
    const Sam2Config& cfg = m.config;
    load_hiera(m.trunk, WeightLoader(src, "image_encoder.trunk"), cfg);
    load_neck(m.neck, WeightLoader(src, "image_encoder.neck"), cfg);
    m.no_mem_embed = src.tensor("no_mem_embed", {1, 1, cfg.d_model});
    SamConfig pc;
    pc.encoder.img_size = cfg.image_size;
    pc.encoder.patch_size = 16;
    pc.prompt.embed_dim = cfg.d_model;
    pc.prompt.mask_in_chans = cfg.mask_in_chans;
    m.prompt_encoder = load_prompt_encoder(WeightLoader(src, "sam_prompt_encoder"), pc);
    load_decoder(m.decoder, src, cfg);
}

Sam2 Sam2::load(const std::string& checkpoint_path, const Sam2LoadOptions& options) {
    auto m = std::make_shared<Sam2Model>();
    auto ckpt = std::make_shared<Checkpoint>(Checkpoint::open(checkpoint_path));
    if (!options.config_path.empty())
        m->config = sam2_config_from_json(options.config_path);
    else if (options.model_type == "auto" || options.model_type.empty())
        m->config = sam2_detect_config(
            [&](const std::string& key) { return ckpt->contains(key) ? &ckpt->record(key).shape : nullptr; },
            checkpoint_path);
    else
        m->config = sam2_config_for(options.model_type);
    m->path = checkpoint_path;
    m->checkpoint = ckpt;
    m->parameter_count = ckpt->parameter_count();
    load_sam2_weights(*m, CheckpointSource(*ckpt));
    // The video model's weights (memory attention and encoder, object pointers) are not used by
    // the image path; an unread weight of the image path means the config does not fit.
    for (const std::string& key : ckpt->unused_keys())
        for (const char* prefix : {"image_encoder.", "sam_prompt_encoder.", "sam_mask_decoder."})
            if (key.rfind(prefix, 0) == 0)
                throw CheckpointError(checkpoint_path, key, "unexpected key for the SAM 2 " + m->config.model_type +
                                                                " image model (wrong --model-type or --config?)");
    Sam2 s(std::move(m));
    return s;
}

Sam2 Sam2::random(const Sam2Config& config, uint64_t seed) {
    auto m = std::make_shared<Sam2Model>();
    m->config = config;
    m->path = "(random)";
    RandomSource src(seed);
    load_sam2_weights(*m, src);
    for (const auto& [key, t] : src.made()) m->parameter_count += t.numel();
    Sam2 s(std::move(m));
    return s;
}

double sam2_image_encoder_macs(const Sam2Config& c) {
    const HieraConfig& t = c.trunk;
    double macs = 0.0;
    int64_t side = c.image_size / 4, C = t.embed_dim;
    macs += static_cast<double>(side * side) * 147.0 * static_cast<double>(C);  // patch embed
    std::vector<int64_t> ends;
    for (int i = 0, s = 0; i < t.num_stages(); ++i) ends.push_back((s += t.stages[static_cast<size_t>(i)]) - 1);
    std::vector<int64_t> stage_width;
    int stage = 1;
    for (int i = 0; i < t.depth(); ++i) {
        const bool global = std::find(t.global_att_blocks.begin(), t.global_att_blocks.end(), i) != t.global_att_blocks.end();
        const int64_t ws = global ? 0 : t.window_spec[static_cast<size_t>(stage - 1)];
        int64_t Co = C;
        bool pool = false;
        if (std::find(ends.begin(), ends.end(), i - 1) != ends.end()) {
            Co = 2 * C;
            pool = stage <= t.q_pool;
            ++stage;
        }
        const double N = static_cast<double>(side * side);
        const int64_t out_side = pool ? side / 2 : side;
        const double Nq = static_cast<double>(out_side * out_side);
        macs += N * static_cast<double>(C) * static_cast<double>(3 * Co);  // qkv
        if (Co != C) macs += N * static_cast<double>(C) * static_cast<double>(Co);  // shortcut projection
        // Attention over padded windows: every (kept) query against its window's keys, q.k and p.v.
        const int64_t keys = global ? side * side : ws * ws;
        macs += 2.0 * Nq * static_cast<double>(keys) * static_cast<double>(Co);
        macs += Nq * static_cast<double>(Co * Co) + Nq * 8.0 * static_cast<double>(Co * Co);  // proj, MLP
        side = out_side;
        C = Co;
        if (std::find(ends.begin(), ends.end(), i) != ends.end()) stage_width.push_back(C);
    }
    // Neck: 1x1 convs of every stage to d_model; conv_s0 / conv_s1 on levels 0 and 1.
    int64_t s0 = c.image_size / 4;
    for (size_t i = 0; i < stage_width.size(); ++i, s0 /= 2)
        macs += static_cast<double>(s0 * s0) * static_cast<double>(stage_width[i] * c.d_model);
    const double L0 = static_cast<double>(c.image_size / 4) * (c.image_size / 4);
    macs += L0 * c.d_model * (c.d_model / 8.0) + L0 / 4.0 * c.d_model * (c.d_model / 4.0);
    return macs;
}

Sam2 Sam2::with_execution(const ExecutionOptions& options) const {
    Sam2 s = *this;
    s.execution_ = options;
    if (!precision_supported(options.precision)) s.execution_.precision = Precision::F32;
    return s;
}

const Sam2Config& Sam2::config() const { return model_->config; }
const std::string& Sam2::checkpoint_path() const { return model_->path; }
int64_t Sam2::parameter_count() const { return model_->parameter_count; }

Tensor Sam2::preprocess(const Image& image) const {
    if (image.width <= 0 || image.height <= 0 ||
        image.rgb.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3)
        throw InputError("image", "empty or inconsistent image");
    ops::ThreadScope threads(execution_.threads);
    const int h = image.height, w = image.width, S = model_->config.image_size;
    // ToTensor: uint8 HWC -> float CHW / 255.
    Tensor x = Tensor::empty({3, h, w});
    for (int c = 0; c < 3; ++c)
        for (int64_t p = 0; p < static_cast<int64_t>(h) * w; ++p)
            x[c * h * w + p] = static_cast<float>(image.rgb[static_cast<size_t>(p * 3 + c)]) / 255.0f;
    Tensor r = resize_bilinear_antialias(x, S, S);
    // Normalize(mean, std) with the ImageNet statistics.
    const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; ++c)
        for (int64_t p = 0; p < static_cast<int64_t>(S) * S; ++p) {
            float& v = r[c * S * S + p];
            v = (v - mean[c]) / stdv[c];
        }
    return r.reshape({1, 3, S, S});
}

Sam2Features Sam2::encode(const Tensor& input) const {
    ops::ThreadScope threads(execution_.threads);
    return sam2_image_features(*model_, input);
}

// ---------------------------------------------------------------------------------------------
// Predictor

void sam2_fill_small_components(float* m, int L, float thr, bool foreground, double max_area, float value_to) {
    std::vector<int> label(static_cast<size_t>(L) * static_cast<size_t>(L), 0), stack, members;
    auto in = [&](int i) { return foreground ? m[i] > thr : m[i] <= thr; };
    int next = 0;
    for (int start = 0; start < L * L; ++start) {
        if (label[static_cast<size_t>(start)] || !in(start)) continue;
        members.clear();
        stack.assign(1, start);
        label[static_cast<size_t>(start)] = ++next;
        while (!stack.empty()) {
            const int p = stack.back();
            stack.pop_back();
            members.push_back(p);
            const int y = p / L, x = p % L;
            for (int dy = -1; dy <= 1; ++dy)
                for (int dx = -1; dx <= 1; ++dx) {
                    const int yy = y + dy, xx = x + dx;
                    if (yy < 0 || yy >= L || xx < 0 || xx >= L) continue;
                    const int q = yy * L + xx;
                    if (label[static_cast<size_t>(q)] || !in(q)) continue;
                    label[static_cast<size_t>(q)] = next;
                    stack.push_back(q);
                }
        }
        if (static_cast<double>(members.size()) <= max_area)
            for (int p : members) m[p] = value_to;
    }
}

void sam2_fill_holes_and_sprinkles(float* m, int L, float thr, const Sam2PostprocessOptions& o) {
    if (o.max_hole_area > 0) sam2_fill_small_components(m, L, thr, false, o.max_hole_area, thr + 10.0f);
    if (o.max_sprinkle_area > 0) sam2_fill_small_components(m, L, thr, true, o.max_sprinkle_area, thr - 10.0f);
}

Sam2ImagePredictor::Sam2ImagePredictor(Sam2 model, Sam2PostprocessOptions postprocess)
    : model_(std::move(model)), postprocess_(postprocess) {}

void Sam2ImagePredictor::set_image(const Image& image) {
    Sam2Features f = model_.embed(image);
    set_features(std::move(f), image.height, image.width);
}

void Sam2ImagePredictor::set_features(Sam2Features features, int orig_h, int orig_w) {
    const Sam2Config& c = model_.config();
    const int64_t C = c.d_model, G = c.embedding_size();
    if (features.image_embed.shape() != Shape{1, C, G, G} || features.high_res[0].shape() != Shape{1, C / 8, 4 * G, 4 * G} ||
        features.high_res[1].shape() != Shape{1, C / 4, 2 * G, 2 * G})
        throw InputError("features", "shapes do not match the model");
    if (orig_h <= 0 || orig_w <= 0) throw InputError("image", "size must be positive");
    ops::ThreadScope threads(model_.execution().threads);
    decoder_image_ = sam2_decoder_image(Sam2Access::model(model_), features);
    features_ = std::move(features);
    orig_h_ = orig_h;
    orig_w_ = orig_w;
}

void Sam2ImagePredictor::reset_image() {
    features_ = Sam2Features();
    decoder_image_.reset();
    orig_h_ = orig_w_ = 0;
}

const Sam2Features& Sam2ImagePredictor::features() const {
    if (!is_image_set()) throw InputError("image", "no image set: call set_image first");
    return features_;
}

Prediction Sam2ImagePredictor::predict(const Prompt& prompt, bool upsample) const {
    if (!is_image_set()) throw InputError("image", "no image set: call set_image first");
    const Sam2Config& cfg = model_.config();
    const int64_t L = cfg.low_res_size();
    const size_t np = prompt.point_coords.size();
    if (prompt.point_labels.size() != np)
        throw InputError("point_labels", std::to_string(prompt.point_labels.size()) + " labels for " +
                                             std::to_string(np) + " points");
    for (size_t i = 0; i < np; ++i) {
        const int l = prompt.point_labels[i];
        if (l != -1 && l != 0 && l != 1) throw InputError("point_labels", "label " + std::to_string(l) + " not in {-1, 0, 1}");
        if (!std::isfinite(prompt.point_coords[i][0]) || !std::isfinite(prompt.point_coords[i][1]))
            throw InputError("point_coords", "non-finite coordinate");
    }
    if (prompt.box) {
        const auto& b = *prompt.box;
        for (float v : b)
            if (!std::isfinite(v)) throw InputError("box", "non-finite coordinate");
        if (b[2] < b[0] || b[3] < b[1]) throw InputError("box", "x1 < x0 or y1 < y0");
    }
    if (prompt.mask_input.defined() && prompt.mask_input.numel() != L * L)
        throw InputError("mask_input", "shape " + shape_str(prompt.mask_input.shape()) + ", expected " +
                                           shape_str({1, L, L}));
    ops::ThreadScope threads(model_.execution().threads);

    // Original pixels -> the model's input frame: x / w * S (transform_coords, normalize=True).
    const float S = static_cast<float>(cfg.image_size);
    auto to_input = [&](float x, float y, float* out) {
        out[0] = x / static_cast<float>(orig_w_) * S;
        out[1] = y / static_cast<float>(orig_h_) * S;
    };
    // Box corners first (labels 2, 3), then the points.
    std::vector<float> pts;
    std::vector<int> labels;
    if (prompt.box) {
        float xy[2];
        to_input((*prompt.box)[0], (*prompt.box)[1], xy);
        pts.insert(pts.end(), xy, xy + 2);
        to_input((*prompt.box)[2], (*prompt.box)[3], xy);
        pts.insert(pts.end(), xy, xy + 2);
        labels.insert(labels.end(), {2, 3});
    }
    for (size_t i = 0; i < np; ++i) {
        float xy[2];
        to_input(prompt.point_coords[i][0], prompt.point_coords[i][1], xy);
        pts.insert(pts.end(), xy, xy + 2);
        labels.push_back(prompt.point_labels[i]);
    }
    const Sam2Model& m = Sam2Access::model(model_);
    Tensor sparse = sam2_sparse_embeddings(m.prompt_encoder, 1, static_cast<int64_t>(labels.size()), pts.data(), labels.data());
    std::vector<Tensor> dense;
    if (prompt.mask_input.defined()) dense.push_back(embed_mask_input(m.prompt_encoder, prompt.mask_input.data()));
    Sam2DecoderOutput d = sam2_low_rank_decoder_forward(m, *decoder_image_, sparse, dense, prompt.multimask_output);

    // Masks at the original size: bilinear from the low-res logits (no crop, no padding).
    const int M = static_cast<int>(d.masks.dim(1));
    Prediction r;
    r.num_masks = M;
    r.height = orig_h_;
    r.width = orig_w_;
    const int l = static_cast<int>(L);
    MaskPostprocessor post(l, l, l, l, upsample ? orig_h_ : 1, upsample ? orig_w_ : 1);
    const int64_t HW = static_cast<int64_t>(orig_h_) * orig_w_;
    if (upsample && prompt.return_logits)
        r.logits = Tensor::empty({M, orig_h_, orig_w_});
    else if (upsample)
        r.masks.resize(static_cast<size_t>(M * HW));
    const bool filter = postprocess_.max_hole_area > 0 || postprocess_.max_sprinkle_area > 0;
    std::vector<float> filtered;
    for (int i = 0; i < (upsample ? M : 0); ++i) {
        const float* low = d.masks.data() + i * L * L;
        if (filter) {
            filtered.assign(low, low + L * L);
            sam2_fill_holes_and_sprinkles(filtered.data(), l, cfg.mask_threshold, postprocess_);
            low = filtered.data();
        }
        if (prompt.return_logits)
            post.logits(low, r.logits.data() + i * HW);
        else
            post.binary(low, r.masks.data() + i * HW, cfg.mask_threshold);
    }
    for (int i = 0; i < M; ++i) r.iou_predictions.push_back(d.iou[i]);
    r.low_res_logits = Tensor::empty({M, L, L});
    for (int64_t i = 0, n = r.low_res_logits.numel(); i < n; ++i)
        r.low_res_logits[i] = std::clamp(d.masks[i], -32.0f, 32.0f);
    return r;
}

Sam2ImagePredictor::Batch Sam2ImagePredictor::predict_points(const std::vector<std::array<float, 2>>& points,
                                                              bool multimask_output, const Tensor& mask_input) const {
    if (!is_image_set()) throw InputError("image", "no image set: call set_image first");
    ops::ThreadScope threads(model_.execution().threads);
    const Sam2Model& m = Sam2Access::model(model_);
    const int64_t B = static_cast<int64_t>(points.size()), L = m.config.low_res_size();
    std::vector<float> pts;
    for (const auto& p : points) pts.insert(pts.end(), p.begin(), p.end());
    std::vector<int> labels(static_cast<size_t>(B), 1);
    Tensor sparse = sam2_sparse_embeddings(m.prompt_encoder, B, 1, pts.data(), labels.data());
    std::vector<Tensor> dense;
    if (mask_input.defined()) {
        if (mask_input.numel() != B * L * L) throw InputError("mask_input", "expected (B, L, L)");
        for (int64_t b = 0; b < B; ++b) dense.push_back(embed_mask_input(m.prompt_encoder, mask_input.data() + b * L * L));
    }
    Sam2DecoderOutput d = sam2_low_rank_decoder_forward(m, *decoder_image_, sparse, dense, multimask_output);
    return {d.masks, d.iou};
}

}  // namespace sam
