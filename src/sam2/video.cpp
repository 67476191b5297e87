// SAM2VideoPredictor (sam2/sam2_video_predictor.py) over SAM2Base's tracking step
// (sam2/modeling/sam2_base.py): per-object prompts and outputs, the memory bank selection
// (conditioning frames + the num_maskmem - 1 previous tracked frames + object pointers), the SAM
// heads on memory-conditioned features, the memory encoder on each new mask, consolidation of
// the objects' masks at video resolution.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>

#include "io/half.h"
#include "io/video_file.h"
#include "ops/ops.h"
#include "ops/threads.h"
#include "postprocess.h"
#include "sam/error.h"
#include "sam/sam2_video.h"
#include "sam/sam2_video_stream.h"
#include "sam2/video_model.h"

namespace sam {

namespace {

constexpr float kNoObjScore = -1024.0f;
constexpr float kLayerNorm2dEps = 1e-6f;

Tensor mlp(const std::vector<Linear>& layers, const Tensor& x) {
    Tensor h = x;
    for (size_t i = 0; i < layers.size(); ++i)
        h = linear(h, layers[i], i + 1 < layers.size() ? ops::Epilogue::Relu : ops::Epilogue::None);
    return h;
}

struct Points {
    std::vector<float> coords;  // (n, 2) in the model's input frame
    std::vector<int> labels;
    int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

// What SAM2Base._forward_sam_heads returns that the predictor keeps.
struct HeadsOutput {
    Tensor low_res;   // (L*L) the chosen mask's logits (-1024 when the object is absent)
    Tensor obj_ptr;   // (C)
    float score = 0;  // object score logit
};

// The image features of one frame as the video path reads them.
struct FrameFeatures {
    Tensor vision;      // (G*G, C): FPN level 2, without no_mem_embed
    Tensor vision_pos;  // (G*G, C): its sine position encoding
    Tensor s0, s1;      // conv_s0 / conv_s1 of levels 0 and 1, channels-last
};

HeadsOutput forward_sam_heads(const Sam2Model& m, const Sam2VideoWeights& v, const FrameFeatures& f,
                              const Tensor& pix, const Points* points, const float* mask_input, bool multimask) {
    const Sam2Config& cfg = m.config;
    const Sam2DecoderWeights& w = m.decoder;
    const PromptEncoderWeights& pe = m.prompt_encoder;
    const int64_t C = cfg.d_model, G = cfg.embedding_size(), L = cfg.low_res_size();
    const int64_t NM = cfg.num_multimask_outputs + 1;
    // Sparse prompts: the points (or one padding point), then the prompt encoder's padding point.
    Points none;
    none.coords = {0.0f, 0.0f};
    none.labels = {-1};
    const Points& p = points ? *points : none;
    Tensor sparse = sam2_sparse_embeddings(pe, 1, p.size(), p.coords.data(), p.labels.data());
    const int64_t Ns = sparse.dim(1), T = 1 + 1 + NM + Ns;
    // src = pix + dense prompt (mask input or no_mask_embed).
    Tensor src = pix.clone();
    if (mask_input) {
        Tensor d = embed_mask_input(pe, mask_input);
        ops::add_inplace(src.data(), d.data(), src.numel());
    } else {
        for (int64_t q = 0; q < G * G; ++q)
            for (int64_t c = 0; c < C; ++c) src[q * C + c] += pe.no_mask_embed[c];
    }
    TransformerImageState state = prepare_transformer_image(w.transformer, std::move(src), pe.dense_pe);
    Tensor tokens = Tensor::empty({1, T, C});
    float* t = tokens.data();
    std::memcpy(t, w.obj_score_token.data(), static_cast<size_t>(C) * sizeof(float));
    std::memcpy(t + C, w.iou_token.data(), static_cast<size_t>(C) * sizeof(float));
    std::memcpy(t + 2 * C, w.mask_tokens.data(), static_cast<size_t>(NM * C) * sizeof(float));
    std::memcpy(t + (2 + NM) * C, sparse.data(), static_cast<size_t>(Ns * C) * sizeof(float));
    Tensor queries, keys;
    two_way_transformer_forward(w.transformer, {&state}, pe.dense_pe, tokens, queries, keys);

    // Upscaling with the high-resolution features, hypernetworks, masks = hyper @ upscaled.
    Tensor u1 = sam2_conv_transpose2(w.upscale1, w.upscale1_b, keys.reshape({G * G, C}), G, f.s1.data());
    layer_norm_inplace(u1, w.upscale_norm, kLayerNorm2dEps);
    ops::gelu_inplace(u1.data(), u1.numel());
    Tensor u2 = sam2_conv_transpose2(w.upscale2, w.upscale2_b, u1, 2 * G, f.s0.data());
    ops::gelu_inplace(u2.data(), u2.numel());
    const int64_t C8 = C / 8;
    const float* q = queries.data();
    Tensor hyper = Tensor::empty({NM, C8});
    for (int64_t i = 0; i < NM; ++i) {
        Tensor tok = Tensor::view({1, C}, const_cast<float*>(q) + (2 + i) * C, nullptr);
        Tensor h = mlp(w.hypernetworks[static_cast<size_t>(i)], tok);
        std::memcpy(hyper.data() + i * C8, h.data(), static_cast<size_t>(C8) * sizeof(float));
    }
    Tensor masks = Tensor::empty({NM, L * L});
    ops::gemm(NM, L * L, C8, hyper.data(), C8, u2.data(), C8, true, masks.data(), L * L);
    Tensor iou = mlp(w.iou_head, Tensor::view({1, C}, const_cast<float*>(q) + C, nullptr));
    if (cfg.iou_prediction_use_sigmoid)
        for (int64_t i = 0; i < NM; ++i) iou[i] = 1.0f / (1.0f + std::exp(-iou[i]));
    HeadsOutput out;
    out.score = mlp(w.obj_score_head, Tensor::view({1, C}, const_cast<float*>(q), nullptr))[0];

    // MaskDecoder.forward's selection, then _forward_sam_heads' best-IoU pick among the outputs.
    int64_t pick = 0, token = 0;
    if (multimask) {
        pick = 1;  // argmax over the multimask IoUs, first on ties
        for (int64_t i = 2; i < NM; ++i)
            if (iou[i] > iou[pick]) pick = i;
        token = pick;  // use_multimask_token_for_obj_ptr
    } else if (cfg.dynamic_multimask_via_stability &&
               sam2_stability(masks.data(), L * L, cfg.dynamic_multimask_stability_delta) <
                   cfg.dynamic_multimask_stability_thresh) {
        pick = 1;
        for (int64_t i = 2; i < NM; ++i)
            if (iou[i] > iou[pick]) pick = i;
        token = 0;  // the pointer still comes from the single-mask token
    }
    const bool appearing = out.score > 0.0f;
    out.low_res = Tensor::empty({L * L});
    if (appearing)
        std::memcpy(out.low_res.data(), masks.data() + pick * L * L, static_cast<size_t>(L * L) * sizeof(float));
    else
        std::fill(out.low_res.data(), out.low_res.data() + L * L, kNoObjScore);
    Tensor tok = Tensor::view({1, C}, const_cast<float*>(q) + (2 + token) * C, nullptr);
    out.obj_ptr = mlp(v.obj_ptr_proj, tok).reshape({C});
    if (!appearing)  // fixed_no_obj_ptr: 0 * ptr + no_obj_ptr
        std::memcpy(out.obj_ptr.data(), v.no_obj_ptr.data(), static_cast<size_t>(C) * sizeof(float));
    return out;
}

// Bilinear (align_corners=False, no antialias) of an (L, L) mask to (H, W).
Tensor upsample(const float* low, int L, int H, int W) {
    MaskPostprocessor post(L, L, L, L, H, W);
    Tensor out = Tensor::empty({static_cast<int64_t>(H) * W});
    post.logits(low, out.data());
    return out;
}

// fill_holes_in_mask_scores: background (<= 0) 8-connected components of area <= max_area -> 0.1.
void fill_holes(float* m, int L, int max_area) { sam2_fill_small_components(m, L, 0.0f, false, max_area, 0.1f); }

// The checks of add_new_points_or_box's arguments, shared by the predictor and the stream.
void check_prompt(const std::vector<std::array<float, 2>>& points, const std::vector<int>& labels,
                  const std::optional<std::array<float, 4>>& box, bool clear_old_points) {
    if (points.size() != labels.size())
        throw InputError("labels", std::to_string(labels.size()) + " labels for " + std::to_string(points.size()) + " points");
    if (points.empty() && !box) throw InputError("points", "at least one of points or box must be given");
    for (int l : labels)
        if (l != 0 && l != 1) throw InputError("labels", "label " + std::to_string(l) + " not in {0, 1}");
    for (const auto& p : points)
        if (!std::isfinite(p[0]) || !std::isfinite(p[1])) throw InputError("points", "non-finite coordinate");
    if (box) {
        for (float x : *box)
            if (!std::isfinite(x)) throw InputError("box", "non-finite coordinate");
        if (!clear_old_points)
            throw InputError("box", "a box needs clear_old_points (it must come before any point of the frame)");
    }
}

}  // namespace

// One frame's output for one object (the official per-frame dict).
struct FrameOutput {
    std::vector<uint16_t> maskmem;  // (G*G, mem_dim) bfloat16 bits, as the reference stores them; empty until encoded
    Tensor pred_masks;     // (L*L) low-res logits
    Tensor obj_ptr;        // (C)
    float score = 0.0f;    // object score logit
};

struct Sam2VideoPredictor::ObjectState {
    std::map<int, Points> point_inputs;
    std::map<int, bool> mask_inputs;                      // frames with a mask prompt
    std::map<int, FrameOutput> cond, non_cond;            // output_dict
    std::map<int, FrameOutput> temp_cond, temp_non_cond;  // temp_output_dict
    std::map<int, bool> frames_tracked;                   // frame -> reverse
};

struct Sam2VideoPredictor::FrameCache {
    int frame = -1;
    FrameFeatures f;
};

Sam2Video Sam2Video::load(const std::string& checkpoint_path, const Sam2LoadOptions& options) {
    Sam2 image = Sam2::load(checkpoint_path, options);
    const Sam2Model& m = Sam2Access::model(image);
    auto v = std::make_shared<Sam2VideoWeights>();
    const Checkpoint& ckpt = *m.checkpoint;
    v->config = sam2_video_detect_config(
        [&](const std::string& key) { return ckpt.contains(key) ? &ckpt.record(key).shape : nullptr; }, m.config,
        checkpoint_path);
    load_sam2_video_weights(*v, CheckpointSource(ckpt), m.config);
    return Sam2Video(std::move(image), std::move(v));
}

Sam2Video Sam2Video::with_execution(const ExecutionOptions& options) const {
    return Sam2Video(image_.with_execution(options), video_);
}

int Sam2Video::num_maskmem() const { return video_->config.num_maskmem; }
int Sam2Video::mem_dim() const { return video_->config.mem_dim; }

Sam2Video Sam2Video::random(const Sam2Config& config, uint64_t seed) {
    Sam2 image = Sam2::random(config, seed);
    auto v = std::make_shared<Sam2VideoWeights>();
    RandomSource src(seed + 1);
    load_sam2_video_weights(*v, src, config);
    return Sam2Video(std::move(image), std::move(v));
}

Sam2VideoPredictor::Sam2VideoPredictor(Sam2Video model, Sam2VideoOptions options)
    : model_(std::move(model)), options_(options), cache_(std::make_unique<FrameCache>()) {
    const Sam2Config& cfg = model_.image_.config();
    const int64_t G = cfg.embedding_size();
    maskmem_pos_ = rows_from_chw(sine_position_encoding(model_.video_->config.mem_dim, static_cast<int>(G), static_cast<int>(G)));
}

Sam2VideoPredictor::~Sam2VideoPredictor() = default;
Sam2VideoPredictor::Sam2VideoPredictor(Sam2VideoPredictor&&) noexcept = default;
Sam2VideoPredictor& Sam2VideoPredictor::operator=(Sam2VideoPredictor&&) noexcept = default;

void Sam2VideoPredictor::init_state(const std::string& jpeg_folder) {
    std::error_code ec;
    if (std::filesystem::exists(jpeg_folder, ec) && !std::filesystem::is_directory(jpeg_folder, ec)) {
        // A video file: decoded and resized to image_size x image_size by libswscale's bicubic,
        // as the official decord loader does (src/io/video_file.h).
        const int S = model_.image_.config().image_size;
        VideoFileFrames v = read_video_file(jpeg_folder, S, S, model_.image_.execution().threads);
        init_state_resized(std::move(v.frames), v.width, v.height);
        return;
    }
    std::vector<Image> frames;
    for (const std::string& path : list_jpeg_frames(jpeg_folder)) frames.push_back(read_image(path));
    init_state(frames);
}

void Sam2VideoPredictor::init_state_resized(std::vector<Image> frames, int video_width, int video_height) {
    if (frames.empty()) throw InputError("video", "no frames");
    const int S = model_.image_.config().image_size;
    for (size_t i = 0; i < frames.size(); ++i)
        if (frames[i].width != S || frames[i].height != S)
            throw InputError("video", "frame " + std::to_string(i) + " is " + std::to_string(frames[i].width) + "x" +
                                          std::to_string(frames[i].height) + ", not the model's " + std::to_string(S) +
                                          "x" + std::to_string(S));
    if (video_width <= 0 || video_height <= 0 || int64_t{video_width} * video_height > kMaxImagePixels)
        throw InputError("video", "video size " + std::to_string(video_width) + "x" + std::to_string(video_height) +
                                      " out of range");
    frames_ = std::move(frames);
    video_w_ = video_width;
    video_h_ = video_height;
    *cache_ = FrameCache();
    reset_state();
}

void Sam2VideoPredictor::init_state(const std::vector<Image>& frames) {
    if (frames.empty()) throw InputError("video", "no frames");
    const int S = model_.image_.config().image_size;
    ops::ThreadScope threads(model_.image_.execution().threads);
    std::vector<Image> resized;
    for (size_t i = 0; i < frames.size(); ++i) {
        if (frames[i].width != frames[0].width || frames[i].height != frames[0].height)
            throw InputError("video", "frame " + std::to_string(i) + " is " + std::to_string(frames[i].width) + "x" +
                                          std::to_string(frames[i].height) + ", frame 0 " +
                                          std::to_string(frames[0].width) + "x" + std::to_string(frames[0].height));
        resized.push_back(resize_bicubic_pillow(frames[i], S, S));
    }
    frames_ = std::move(resized);
    video_w_ = frames[0].width;
    video_h_ = frames[0].height;
    *cache_ = FrameCache();
    reset_state();
}

void Sam2VideoPredictor::reset_state() {
    obj_ids_.clear();
    objects_.clear();
}

void Sam2VideoPredictor::check_frame(int frame_idx) const {
    if (frames_.empty()) throw InputError("video", "no video: call init_state first");
    if (frame_idx < 0 || frame_idx >= num_frames())
        throw InputError("frame_idx", std::to_string(frame_idx) + " out of range [0, " + std::to_string(num_frames()) + ")");
}

int Sam2VideoPredictor::obj_idx(int obj_id, bool create) {
    for (size_t i = 0; i < obj_ids_.size(); ++i)
        if (obj_ids_[i] == obj_id) return static_cast<int>(i);
    if (!create) return -1;
    obj_ids_.push_back(obj_id);
    objects_.push_back(std::make_unique<ObjectState>());
    return static_cast<int>(obj_ids_.size()) - 1;
}

namespace {

// The image features of a frame already resized to image_size x image_size, as the video path
// reads them.
FrameFeatures frame_features(const Sam2Model& m, const Image& img) {
    const Sam2Config& cfg = m.config;
    const int S = cfg.image_size;
    // uint8 / 255 (in double, stored as float32), then (x - mean) / std in float32.
    Tensor input = Tensor::empty({1, 3, S, S});
    const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    const int64_t P = static_cast<int64_t>(S) * S;
    for (int c = 0; c < 3; ++c)
        for (int64_t p = 0; p < P; ++p) {
            const float x = static_cast<float>(static_cast<double>(img.rgb[static_cast<size_t>(p * 3 + c)]) / 255.0);
            input[c * P + p] = (x - mean[c]) / stdv[c];
        }
    std::vector<Tensor> stages = hiera_forward(m.trunk, cfg, input);
    std::vector<Tensor> levels = fpn_forward(m.neck, cfg, stages);
    const int64_t G = cfg.embedding_size();
    FrameFeatures f;
    f.vision = levels[static_cast<size_t>(levels.size() - 1 - static_cast<size_t>(cfg.scalp))];
    f.vision_pos = rows_from_chw(sine_position_encoding(cfg.d_model, static_cast<int>(G), static_cast<int>(G)));
    f.s0 = linear(levels[0], m.decoder.conv_s0);
    f.s1 = linear(levels[1], m.decoder.conv_s1);
    return f;
}

}  // namespace

const Sam2VideoPredictor::FrameCache& Sam2VideoPredictor::features(int frame_idx) {
    if (cache_->frame == frame_idx) return *cache_;
    cache_->frame = -1;
    cache_->f = frame_features(Sam2Access::model(model_.image_), frames_[static_cast<size_t>(frame_idx)]);
    cache_->frame = frame_idx;
    return *cache_;
}

namespace {

struct TrackContext {
    const Sam2Model& m;
    const Sam2VideoWeights& v;
    const Tensor& maskmem_pos;
    int num_frames;
};

// SAM2Base._prepare_memory_conditioned_features for one object.
Tensor memory_conditioned(const TrackContext& ctx, const FrameFeatures& f, int frame_idx, bool is_init_cond,
                          const Sam2VideoPredictor::ObjectState& o, bool reverse) {
    const Sam2Config& cfg = ctx.m.config;
    const Sam2VideoConfig& vc = ctx.v.config;
    const int64_t C = cfg.d_model, G = cfg.embedding_size(), HW = G * G, M = vc.mem_dim;
    if (is_init_cond) {  // directly_add_no_mem_embed
        Tensor pix = f.vision.clone();
        for (int64_t p = 0; p < HW; ++p)
            for (int64_t c = 0; c < C; ++c) pix[p * C + c] += ctx.m.no_mem_embed[c];
        return pix;
    }
    if (o.cond.empty()) throw Error("SAM 2 video: tracking an object without a conditioning frame");
    // Memories: every conditioning frame (t_pos 0), then the previous num_maskmem - 1 frames.
    std::vector<std::pair<int, const FrameOutput*>> mems;
    for (const auto& [t, out] : o.cond) mems.emplace_back(0, &out);
    for (int t_pos = 1; t_pos < vc.num_maskmem; ++t_pos) {
        const int t_rel = vc.num_maskmem - t_pos;
        const int prev = reverse ? frame_idx + t_rel : frame_idx - t_rel;
        auto it = o.non_cond.find(prev);
        if (it != o.non_cond.end()) mems.emplace_back(t_pos, &it->second);
    }
    // Object pointers: conditioning frames not in the future, then up to max_ptrs - 1 previous frames.
    const int max_ptrs = std::min(ctx.num_frames, vc.max_obj_ptrs_in_encoder);
    std::vector<std::pair<int, const FrameOutput*>> ptrs;
    for (const auto& [t, out] : o.cond)
        if (reverse ? t >= frame_idx : t <= frame_idx) ptrs.emplace_back((frame_idx - t) * (reverse ? -1 : 1), &out);
    for (int t_diff = 1; t_diff < max_ptrs; ++t_diff) {
        const int t = reverse ? frame_idx + t_diff : frame_idx - t_diff;
        if (t < 0 || t >= ctx.num_frames) break;
        auto it = o.non_cond.find(t);
        if (it != o.non_cond.end()) ptrs.emplace_back(t_diff, &it->second);
    }
    const int64_t split = C / M;  // tokens per pointer
    const int64_t n_mem = static_cast<int64_t>(mems.size()) * HW, n_ptr = static_cast<int64_t>(ptrs.size()) * split;
    Tensor memory = Tensor::empty({n_mem + n_ptr, M}), memory_pos = Tensor::empty({n_mem + n_ptr, M});
    for (size_t i = 0; i < mems.size(); ++i) {
        const FrameOutput& out = *mems[i].second;
        if (out.maskmem.size() != static_cast<size_t>(HW * M)) throw Error("SAM 2 video: a memory frame was never encoded");
        const float* tpos = ctx.v.maskmem_tpos_enc.data() + (vc.num_maskmem - mems[i].first - 1) * M;
        float* dm = memory.data() + static_cast<int64_t>(i) * HW * M;
        float* dp = memory_pos.data() + static_cast<int64_t>(i) * HW * M;
        for (int64_t j = 0; j < HW * M; ++j) dm[j] = bf16_to_float(out.maskmem[static_cast<size_t>(j)]);
        for (int64_t p = 0; p < HW; ++p)
            for (int64_t c = 0; c < M; ++c) dp[p * M + c] = ctx.maskmem_pos[p * M + c] + tpos[c];
    }
    if (!ptrs.empty()) {
        std::vector<float> pos;
        const float t_diff_max = static_cast<float>(max_ptrs - 1);
        for (const auto& pr : ptrs) pos.push_back(static_cast<float>(pr.first) / t_diff_max);
        Tensor obj_pos = linear(sine_pe_1d(pos, C), ctx.v.obj_ptr_tpos_proj);  // (n, M)
        for (size_t i = 0; i < ptrs.size(); ++i)
            for (int64_t s = 0; s < split; ++s) {
                const int64_t row = n_mem + static_cast<int64_t>(i) * split + s;
                std::memcpy(memory.data() + row * M, ptrs[i].second->obj_ptr.data() + s * M, static_cast<size_t>(M) * sizeof(float));
                std::memcpy(memory_pos.data() + row * M, obj_pos.data() + static_cast<int64_t>(i) * M, static_cast<size_t>(M) * sizeof(float));
            }
    }
    return memory_attention_forward(ctx.v.memory_attention, vc, f.vision, f.vision_pos, memory, memory_pos, n_ptr);
}

// SAM2Base._encode_new_memory: the memory of one frame and object, rounded to bf16 as stored.
std::vector<uint16_t> encode_memory(const TrackContext& ctx, const FrameFeatures& f, const float* low_res, float score,
                     bool is_mask_from_pts) {
    const Sam2Config& cfg = ctx.m.config;
    const Sam2VideoConfig& vc = ctx.v.config;
    const int S = cfg.image_size, L = static_cast<int>(cfg.low_res_size());
    Tensor high = upsample(low_res, L, S, S);
    const bool binarize = vc.binarize_mask_from_pts_for_mem_enc && is_mask_from_pts;
    for (int64_t i = 0; i < high.numel(); ++i) {
        const float x = high[i];
        const float m = binarize ? (x > 0.0f ? 1.0f : 0.0f) : 1.0f / (1.0f + std::exp(-x));
        high[i] = m * vc.sigmoid_scale_for_mem_enc + vc.sigmoid_bias_for_mem_enc;
    }
    Tensor feats = memory_encoder_forward(ctx.v.memory_encoder, vc, cfg, f.vision, high.data());
    const int64_t M = vc.mem_dim;
    if (!(score > 0.0f))
        for (int64_t p = 0; p < feats.dim(0); ++p)
            for (int64_t c = 0; c < M; ++c) feats[p * M + c] += ctx.v.no_obj_embed_spatial[c];
    std::vector<uint16_t> bits(static_cast<size_t>(feats.numel()));
    for (int64_t i = 0; i < feats.numel(); ++i)
        bits[static_cast<size_t>(i)] = static_cast<uint16_t>(std::bit_cast<uint32_t>(round_to_bf16(feats[i])) >> 16);
    return bits;
}

// track_step for one object: the SAM heads on the memory-conditioned features, then (when
// asked) the memory encoder on the result.
FrameOutput track_step(const TrackContext& ctx, const FrameFeatures& f, int frame_idx, bool is_init_cond,
                       const Points* points, const float* prev_mask_logits, const Sam2VideoPredictor::ObjectState& o,
                       bool reverse, bool run_mem_encoder, int fill_hole_area) {
    Tensor pix = memory_conditioned(ctx, f, frame_idx, is_init_cond, o, reverse);
    // _use_multimask: multimask_output_in_sam, 0 <= points <= 1 (multimask_output_for_tracking).
    const int64_t npts = points ? points->size() : 0;
    const bool multimask = npts <= 1;
    HeadsOutput h = forward_sam_heads(ctx.m, ctx.v, f, pix, points, prev_mask_logits, multimask);
    FrameOutput out;
    out.obj_ptr = h.obj_ptr;
    out.score = h.score;
    if (run_mem_encoder) out.maskmem = encode_memory(ctx, f, h.low_res.data(), h.score, points != nullptr);
    if (fill_hole_area > 0) fill_holes(h.low_res.data(), static_cast<int>(ctx.m.config.low_res_size()), fill_hole_area);
    out.pred_masks = h.low_res;
    return out;
}

// SAM2Base._use_mask_as_output: a binary mask (S*S, 0/1) becomes the output (logits +-10),
// the object pointer comes from the SAM heads on the frame's features with the mask, downsampled
// by mask_downsample, as mask input.
FrameOutput mask_as_output(const TrackContext& ctx, const FrameFeatures& f, const Tensor& mask, int fill_hole_area) {
    const Sam2Config& cfg = ctx.m.config;
    const int S = cfg.image_size, L = static_cast<int>(cfg.low_res_size());
    Tensor high = Tensor::empty({1, S, S});
    bool appearing = false;
    for (int64_t i = 0; i < high.numel(); ++i) {
        high[i] = mask[i] * 20.0f + -10.0f;
        appearing = appearing || mask[i] > 0.0f;
    }
    FrameOutput out;
    out.pred_masks = resize_bilinear_antialias(high, L, L).reshape({static_cast<int64_t>(L) * L});
    // mask_downsample: Conv2d(1, 1, 4, stride 4) on the 0/1 mask.
    Tensor small = Tensor::empty({static_cast<int64_t>(L) * L});
    const float* w = ctx.v.mask_downsample_w.data();
    for (int y = 0; y < L; ++y)
        for (int x = 0; x < L; ++x) {
            float acc = 0.0f;
            for (int ky = 0; ky < 4; ++ky)
                for (int kx = 0; kx < 4; ++kx)
                    acc += mask[static_cast<int64_t>(4 * y + ky) * S + 4 * x + kx] * w[ky * 4 + kx];
            small[static_cast<int64_t>(y) * L + x] = acc + ctx.v.mask_downsample_b;
        }
    HeadsOutput h = forward_sam_heads(ctx.m, ctx.v, f, f.vision, nullptr, small.data(), false);
    out.obj_ptr = h.obj_ptr;
    if (!appearing) std::memcpy(out.obj_ptr.data(), ctx.v.no_obj_ptr.data(), static_cast<size_t>(cfg.d_model) * sizeof(float));
    out.score = appearing ? 10.0f : -10.0f;
    if (fill_hole_area > 0) fill_holes(out.pred_masks.data(), L, fill_hole_area);
    return out;
}

}  // namespace

Sam2VideoFrame Sam2VideoPredictor::add_new_mask(int frame_idx, int obj_id, const std::vector<uint8_t>& mask, int mask_h,
                                                int mask_w) {
    check_frame(frame_idx);
    if (mask_h <= 0 || mask_w <= 0 || mask.size() != static_cast<size_t>(mask_h) * static_cast<size_t>(mask_w))
        throw InputError("mask", std::to_string(mask.size()) + " values for a " + std::to_string(mask_h) + "x" +
                                     std::to_string(mask_w) + " mask");
    ops::ThreadScope threads(model_.image_.execution().threads);
    const int S = model_.image_.config().image_size;
    Tensor m = Tensor::empty({1, mask_h, mask_w});
    for (size_t i = 0; i < mask.size(); ++i) m[static_cast<int64_t>(i)] = mask[i] ? 1.0f : 0.0f;
    if (mask_h != S || mask_w != S) {
        m = resize_bilinear_antialias(m, S, S);
        for (int64_t i = 0; i < m.numel(); ++i) m[i] = m[i] >= 0.5f ? 1.0f : 0.0f;
    }
    const int k = obj_idx(obj_id, true);
    ObjectState& o = *objects_[static_cast<size_t>(k)];
    o.mask_inputs[frame_idx] = true;
    o.point_inputs.erase(frame_idx);
    const bool is_cond = o.frames_tracked.count(frame_idx) == 0;
    auto& temp = is_cond ? o.temp_cond : o.temp_non_cond;
    const TrackContext ctx{Sam2Access::model(model_.image_), *model_.video_, maskmem_pos_, num_frames()};
    temp[frame_idx] = mask_as_output(ctx, features(frame_idx).f, m, options_.fill_hole_area);
    return consolidate(frame_idx, is_cond);
}

Sam2VideoFrame Sam2VideoPredictor::consolidate(int frame_idx, bool is_cond) const {
    const int L = static_cast<int>(model_.image_.config().low_res_size());
    const int64_t n = static_cast<int64_t>(obj_ids_.size()), LL = static_cast<int64_t>(L) * L;
    const int64_t HW = static_cast<int64_t>(video_h_) * video_w_;
    Sam2VideoFrame r;
    r.frame = frame_idx;
    r.obj_ids = obj_ids_;
    r.low_res = Tensor::empty({n, L, L});
    r.logits = Tensor::empty({n, video_h_, video_w_});
    for (int64_t k = 0; k < n; ++k) {
        const ObjectState& o = *objects_[static_cast<size_t>(k)];
        const FrameOutput* out = nullptr;
        const auto& temp = is_cond ? o.temp_cond : o.temp_non_cond;
        for (const auto* dict : {&temp, &o.cond, &o.non_cond}) {
            auto it = dict->find(frame_idx);
            if (it != dict->end()) {
                out = &it->second;
                break;
            }
        }
        if (out) {
            std::memcpy(r.low_res.data() + k * LL, out->pred_masks.data(), static_cast<size_t>(LL) * sizeof(float));
            Tensor up = upsample(out->pred_masks.data(), L, video_h_, video_w_);
            std::memcpy(r.logits.data() + k * HW, up.data(), static_cast<size_t>(HW) * sizeof(float));
            r.object_scores.push_back(out->score);
        } else {
            std::fill(r.low_res.data() + k * LL, r.low_res.data() + (k + 1) * LL, kNoObjScore);
            std::fill(r.logits.data() + k * HW, r.logits.data() + (k + 1) * HW, kNoObjScore);
            r.object_scores.push_back(std::numeric_limits<float>::quiet_NaN());
        }
    }
    return r;
}

Sam2VideoFrame Sam2VideoPredictor::add_new_points_or_box(int frame_idx, int obj_id,
                                                         const std::vector<std::array<float, 2>>& points,
                                                         const std::vector<int>& labels,
                                                         const std::optional<std::array<float, 4>>& box,
                                                         bool clear_old_points) {
    check_frame(frame_idx);
    check_prompt(points, labels, box, clear_old_points);
    ops::ThreadScope threads(model_.image_.execution().threads);
    const int k = obj_idx(obj_id, true);
    ObjectState& o = *objects_[static_cast<size_t>(k)];
    // Video pixels -> the model's input frame: x / W * S, in float32 as the reference.
    const float S = static_cast<float>(model_.image_.config().image_size);
    Points add;
    auto push = [&](float x, float y, int label) {
        add.coords.push_back(x / static_cast<float>(video_w_) * S);
        add.coords.push_back(y / static_cast<float>(video_h_) * S);
        add.labels.push_back(label);
    };
    if (box) {
        push((*box)[0], (*box)[1], 2);
        push((*box)[2], (*box)[3], 3);
    }
    for (size_t i = 0; i < points.size(); ++i) push(points[i][0], points[i][1], labels[i]);
    Points pts;
    if (!clear_old_points) {
        auto it = o.point_inputs.find(frame_idx);
        if (it != o.point_inputs.end()) pts = it->second;
    }
    pts.coords.insert(pts.coords.end(), add.coords.begin(), add.coords.end());
    pts.labels.insert(pts.labels.end(), add.labels.begin(), add.labels.end());
    o.point_inputs[frame_idx] = pts;
    o.mask_inputs.erase(frame_idx);

    const auto tracked = o.frames_tracked.find(frame_idx);
    const bool is_init_cond = tracked == o.frames_tracked.end();
    const bool reverse = is_init_cond ? false : tracked->second;
    const bool is_cond = is_init_cond;
    auto& temp = is_cond ? o.temp_cond : o.temp_non_cond;
    // The previous mask logits of this frame, clamped, become the mask input.
    const FrameOutput* prev = nullptr;
    for (const auto* dict : {&temp, &o.cond, &o.non_cond}) {
        auto it = dict->find(frame_idx);
        if (it != dict->end()) {
            prev = &it->second;
            break;
        }
    }
    Tensor prev_logits;
    if (prev && prev->pred_masks.defined()) {
        prev_logits = prev->pred_masks.clone();
        for (int64_t i = 0; i < prev_logits.numel(); ++i) prev_logits[i] = std::clamp(prev_logits[i], -32.0f, 32.0f);
    }
    const TrackContext ctx{Sam2Access::model(model_.image_), *model_.video_, maskmem_pos_, num_frames()};
    FrameOutput out = track_step(ctx, features(frame_idx).f, frame_idx, is_init_cond, &pts,
                                 prev_logits.defined() ? prev_logits.data() : nullptr, o, reverse, false,
                                 options_.fill_hole_area);
    temp[frame_idx] = std::move(out);
    return consolidate(frame_idx, is_cond);
}

void Sam2VideoPredictor::preflight() {
    if (obj_ids_.empty()) throw InputError("points", "no object has prompts: add points or a box first");
    const TrackContext ctx{Sam2Access::model(model_.image_), *model_.video_, maskmem_pos_, num_frames()};
    for (size_t k = 0; k < objects_.size(); ++k) {
        ObjectState& o = *objects_[k];
        for (bool is_cond : {false, true}) {
            auto& temp = is_cond ? o.temp_cond : o.temp_non_cond;
            auto& dest = is_cond ? o.cond : o.non_cond;
            for (auto& [frame, out] : temp) {
                if (out.maskmem.empty())
                    out.maskmem = encode_memory(ctx, features(frame).f, out.pred_masks.data(), out.score, true);
                dest[frame] = std::move(out);
            }
            temp.clear();
        }
        if (o.cond.empty())
            throw InputError("points", "object " + std::to_string(obj_ids_[k]) + " has no prompts: add points or a box first");
        for (const auto& [frame, out] : o.cond) o.non_cond.erase(frame);
    }
}

void Sam2VideoPredictor::propagate_in_video(const std::function<bool(const Sam2VideoFrame&)>& on_frame,
                                            std::optional<int> start_frame_idx,
                                            std::optional<int> max_frame_num_to_track, bool reverse) {
    if (frames_.empty()) throw InputError("video", "no video: call init_state first");
    ops::ThreadScope threads(model_.image_.execution().threads);
    preflight();
    const int n = num_frames();
    int start = 0;
    if (start_frame_idx) {
        check_frame(*start_frame_idx);
        start = *start_frame_idx;
    } else {
        start = std::numeric_limits<int>::max();
        for (const auto& o : objects_) start = std::min(start, o->cond.begin()->first);
    }
    const int max_track = max_frame_num_to_track ? *max_frame_num_to_track : n;
    if (max_track < 0) throw InputError("max_frame_num_to_track", "must not be negative");
    std::vector<int> order;
    if (reverse) {
        const int end = std::max(start - max_track, 0);
        if (start > 0)
            for (int t = start; t >= end; --t) order.push_back(t);
    } else {
        const int end = std::min(start + max_track, n - 1);
        for (int t = start; t <= end; ++t) order.push_back(t);
    }
    const TrackContext ctx{Sam2Access::model(model_.image_), *model_.video_, maskmem_pos_, n};
    for (int frame : order) {
        for (auto& op : objects_) {
            ObjectState& o = *op;
            if (o.cond.count(frame) == 0) {
                FrameOutput out = track_step(ctx, features(frame).f, frame, false, nullptr, nullptr, o, reverse, true,
                                             options_.fill_hole_area);
                o.non_cond[frame] = std::move(out);
            }
            o.frames_tracked[frame] = reverse;
        }
        if (!on_frame(consolidate(frame, false))) break;
    }
}

std::vector<Sam2VideoFrame> Sam2VideoPredictor::remove_object(int obj_id, bool strict) {
    const int k = obj_idx(obj_id, false);
    std::vector<Sam2VideoFrame> updated;
    if (k < 0) {
        if (strict) throw InputError("obj_id", "no object " + std::to_string(obj_id));
        return updated;
    }
    if (obj_ids_.size() == 1) {
        reset_state();
        return updated;
    }
    std::vector<int> input_frames;
    for (const auto& [frame, p] : objects_[static_cast<size_t>(k)]->point_inputs) input_frames.push_back(frame);
    for (const auto& [frame, m] : objects_[static_cast<size_t>(k)]->mask_inputs)
        if (std::find(input_frames.begin(), input_frames.end(), frame) == input_frames.end()) input_frames.push_back(frame);
    std::sort(input_frames.begin(), input_frames.end());
    obj_ids_.erase(obj_ids_.begin() + k);
    objects_.erase(objects_.begin() + k);
    ops::ThreadScope threads(model_.image_.execution().threads);
    for (int frame : input_frames) {
        bool is_cond = false;
        for (const auto& o : objects_) is_cond = is_cond || o->temp_cond.count(frame) > 0;
        updated.push_back(consolidate(frame, is_cond));
    }
    return updated;
}

namespace {

const FrameOutput* find_output(const Sam2VideoPredictor::ObjectState& o, int frame) {
    for (const auto* dict : {&o.cond, &o.non_cond}) {
        auto it = dict->find(frame);
        if (it != dict->end()) return &it->second;
    }
    return nullptr;
}

}  // namespace

Tensor Sam2VideoPredictorAccess::obj_ptr(const Sam2VideoPredictor& p, int obj_id, int frame) {
    for (size_t k = 0; k < p.obj_ids_.size(); ++k)
        if (p.obj_ids_[k] == obj_id)
            if (const FrameOutput* out = find_output(*p.objects_[k], frame)) return out->obj_ptr.clone();
    return Tensor();
}

Tensor Sam2VideoPredictorAccess::maskmem(const Sam2VideoPredictor& p, int obj_id, int frame) {
    for (size_t k = 0; k < p.obj_ids_.size(); ++k)
        if (p.obj_ids_[k] == obj_id)
            if (const FrameOutput* out = find_output(*p.objects_[k], frame); out && !out->maskmem.empty()) {
                const int64_t M = Sam2VideoAccess::weights(p.model_).config.mem_dim;
                Tensor t = Tensor::empty({static_cast<int64_t>(out->maskmem.size()) / M, M});
                for (int64_t i = 0; i < t.numel(); ++i) t[i] = bf16_to_float(out->maskmem[static_cast<size_t>(i)]);
                return t;
            }
    return Tensor();
}

// Sam2VideoStream: the predictor's computation over frames pushed one at a time, keeping only
// what the memory bank selection can still read.

struct Sam2VideoStream::State {
    struct Prompt {
        int obj_id = 0;
        std::vector<std::array<float, 2>> points;
        std::vector<int> labels;
        std::optional<std::array<float, 4>> box;
        bool clear_old_points = true;
        bool is_mask = false;
        std::vector<uint8_t> mask;
        int mask_h = 0, mask_w = 0;
    };
    std::vector<Prompt> pending;  // for the next frame, in the order given
    std::vector<std::unique_ptr<Sam2VideoPredictor::ObjectState>> objects;
    Tensor maskmem_pos;
};

Sam2VideoStream::Sam2VideoStream(Sam2Video model, Sam2VideoStreamOptions options)
    : model_(std::move(model)), options_(options), state_(std::make_unique<State>()) {
    if (options_.num_frames && *options_.num_frames <= 0)
        throw InputError("num_frames", std::to_string(*options_.num_frames) + " must be positive");
    if (options_.fill_hole_area < 0) throw InputError("fill_hole_area", "must not be negative");
    const int64_t G = model_.image_model().config().embedding_size();
    state_->maskmem_pos = rows_from_chw(
        sine_position_encoding(Sam2VideoAccess::weights(model_).config.mem_dim, static_cast<int>(G), static_cast<int>(G)));
}

Sam2VideoStream::~Sam2VideoStream() = default;
Sam2VideoStream::Sam2VideoStream(Sam2VideoStream&&) noexcept = default;
Sam2VideoStream& Sam2VideoStream::operator=(Sam2VideoStream&&) noexcept = default;

void Sam2VideoStream::add_new_points_or_box(int obj_id, const std::vector<std::array<float, 2>>& points,
                                            const std::vector<int>& labels,
                                            const std::optional<std::array<float, 4>>& box, bool clear_old_points) {
    check_prompt(points, labels, box, clear_old_points);
    State::Prompt p;
    p.obj_id = obj_id;
    p.points = points;
    p.labels = labels;
    p.box = box;
    p.clear_old_points = clear_old_points;
    state_->pending.push_back(std::move(p));
}

void Sam2VideoStream::add_new_mask(int obj_id, const std::vector<uint8_t>& mask, int mask_h, int mask_w) {
    if (mask_h <= 0 || mask_w <= 0 || mask.size() != static_cast<size_t>(mask_h) * static_cast<size_t>(mask_w))
        throw InputError("mask", std::to_string(mask.size()) + " values for a " + std::to_string(mask_h) + "x" +
                                     std::to_string(mask_w) + " mask");
    State::Prompt p;
    p.obj_id = obj_id;
    p.is_mask = true;
    p.mask = mask;
    p.mask_h = mask_h;
    p.mask_w = mask_w;
    state_->pending.push_back(std::move(p));
}

Sam2VideoFrame Sam2VideoStream::track(const Image& frame) {
    if (frame.width <= 0 || frame.height <= 0) throw InputError("frame", "empty image");
    if (next_frame_ == 0) {
        video_w_ = frame.width;
        video_h_ = frame.height;
    } else if (frame.width != video_w_ || frame.height != video_h_) {
        throw InputError("frame", "frame " + std::to_string(next_frame_) + " is " + std::to_string(frame.width) + "x" +
                                      std::to_string(frame.height) + ", frame 0 " + std::to_string(video_w_) + "x" +
                                      std::to_string(video_h_));
    }
    if (options_.num_frames && next_frame_ >= *options_.num_frames)
        throw InputError("frame", "frame " + std::to_string(next_frame_) + " beyond num_frames " +
                                      std::to_string(*options_.num_frames));
    State& st = *state_;
    if (st.objects.empty() && st.pending.empty())
        throw InputError("points", "no object has prompts: add points, a box or a mask before the first frame");
    ops::ThreadScope threads(model_.image_model().execution().threads);
    const Sam2Model& m = Sam2Access::model(model_.image_model());
    const Sam2VideoWeights& v = Sam2VideoAccess::weights(model_);
    const Sam2Config& cfg = m.config;
    const int S = cfg.image_size, L = static_cast<int>(cfg.low_res_size());
    const int t = next_frame_;
    const int num_frames = options_.num_frames.value_or(std::numeric_limits<int>::max());
    const TrackContext ctx{m, v, st.maskmem_pos, num_frames};
    const FrameFeatures f = frame_features(m, resize_bicubic_pillow(frame, S, S));

    auto object = [&](int obj_id) -> Sam2VideoPredictor::ObjectState& {
        for (size_t i = 0; i < obj_ids_.size(); ++i)
            if (obj_ids_[i] == obj_id) return *st.objects[i];
        obj_ids_.push_back(obj_id);
        st.objects.push_back(std::make_unique<Sam2VideoPredictor::ObjectState>());
        return *st.objects.back();
    };
    // The prompts, in order, as add_new_points_or_box / add_new_mask on a frame not yet tracked.
    std::vector<State::Prompt> pending = std::move(st.pending);
    st.pending.clear();
    for (const State::Prompt& pr : pending) {
        Sam2VideoPredictor::ObjectState& o = object(pr.obj_id);
        if (pr.is_mask) {
            Tensor mk = Tensor::empty({1, pr.mask_h, pr.mask_w});
            for (size_t i = 0; i < pr.mask.size(); ++i) mk[static_cast<int64_t>(i)] = pr.mask[i] ? 1.0f : 0.0f;
            if (pr.mask_h != S || pr.mask_w != S) {
                mk = resize_bilinear_antialias(mk, S, S);
                for (int64_t i = 0; i < mk.numel(); ++i) mk[i] = mk[i] >= 0.5f ? 1.0f : 0.0f;
            }
            o.point_inputs.erase(t);
            o.temp_cond[t] = mask_as_output(ctx, f, mk, options_.fill_hole_area);
            continue;
        }
        const float Sf = static_cast<float>(S);
        Points add;
        auto push = [&](float x, float y, int label) {
            add.coords.push_back(x / static_cast<float>(video_w_) * Sf);
            add.coords.push_back(y / static_cast<float>(video_h_) * Sf);
            add.labels.push_back(label);
        };
        if (pr.box) {
            push((*pr.box)[0], (*pr.box)[1], 2);
            push((*pr.box)[2], (*pr.box)[3], 3);
        }
        for (size_t i = 0; i < pr.points.size(); ++i) push(pr.points[i][0], pr.points[i][1], pr.labels[i]);
        Points pts;
        if (!pr.clear_old_points) {
            auto it = o.point_inputs.find(t);
            if (it != o.point_inputs.end()) pts = it->second;
        }
        pts.coords.insert(pts.coords.end(), add.coords.begin(), add.coords.end());
        pts.labels.insert(pts.labels.end(), add.labels.begin(), add.labels.end());
        o.point_inputs[t] = pts;
        Tensor prev_logits;
        auto prev = o.temp_cond.find(t);
        if (prev != o.temp_cond.end() && prev->second.pred_masks.defined()) {
            prev_logits = prev->second.pred_masks.clone();
            for (int64_t i = 0; i < prev_logits.numel(); ++i) prev_logits[i] = std::clamp(prev_logits[i], -32.0f, 32.0f);
        }
        o.temp_cond[t] = track_step(ctx, f, t, true, &pts, prev_logits.defined() ? prev_logits.data() : nullptr, o,
                                    false, false, options_.fill_hole_area);
    }
    // propagate_in_video_preflight for this frame, then the tracking step of every other object.
    for (auto& op : st.objects) {
        Sam2VideoPredictor::ObjectState& o = *op;
        auto it = o.temp_cond.find(t);
        if (it != o.temp_cond.end()) {
            FrameOutput& out = it->second;
            if (out.maskmem.empty()) out.maskmem = encode_memory(ctx, f, out.pred_masks.data(), out.score, true);
            o.cond[t] = std::move(out);
        } else {
            o.non_cond[t] = track_step(ctx, f, t, false, nullptr, nullptr, o, false, true, options_.fill_hole_area);
        }
        o.temp_cond.clear();
        o.point_inputs.clear();
    }
    // The frame's masks (the predictor's consolidation of tracked outputs).
    const int64_t n = static_cast<int64_t>(obj_ids_.size()), LL = static_cast<int64_t>(L) * L;
    const int64_t HW = static_cast<int64_t>(video_h_) * video_w_;
    Sam2VideoFrame r;
    r.frame = t;
    r.obj_ids = obj_ids_;
    r.low_res = Tensor::empty({n, L, L});
    r.logits = Tensor::empty({n, video_h_, video_w_});
    for (int64_t k = 0; k < n; ++k) {
        const Sam2VideoPredictor::ObjectState& o = *st.objects[static_cast<size_t>(k)];
        const FrameOutput* out = nullptr;
        for (const auto* dict : {&o.cond, &o.non_cond})
            if (auto it = dict->find(t); it != dict->end()) out = &it->second;
        if (out) {
            std::memcpy(r.low_res.data() + k * LL, out->pred_masks.data(), static_cast<size_t>(LL) * sizeof(float));
            Tensor up = upsample(out->pred_masks.data(), L, video_h_, video_w_);
            std::memcpy(r.logits.data() + k * HW, up.data(), static_cast<size_t>(HW) * sizeof(float));
            r.object_scores.push_back(out->score);
        } else {  // an object whose first prompt came on a later frame than this one cannot exist
            std::fill(r.low_res.data() + k * LL, r.low_res.data() + (k + 1) * LL, kNoObjScore);
            std::fill(r.logits.data() + k * HW, r.logits.data() + (k + 1) * HW, kNoObjScore);
            r.object_scores.push_back(std::numeric_limits<float>::quiet_NaN());
        }
    }
    // Drop what frame t + 1 and later cannot read: memories of tracked frames before
    // t + 1 - (num_maskmem - 1), pointers before t + 1 - (max_ptrs - 1), every mask.
    const int max_ptrs = std::min(num_frames, v.config.max_obj_ptrs_in_encoder);
    const int64_t keep_mem_from = static_cast<int64_t>(t) + 2 - v.config.num_maskmem;
    const int64_t keep_ptr_from = static_cast<int64_t>(t) + 2 - max_ptrs;
    for (auto& op : st.objects) {
        Sam2VideoPredictor::ObjectState& o = *op;
        for (auto& entry : o.cond) entry.second.pred_masks = Tensor();
        for (auto it = o.non_cond.begin(); it != o.non_cond.end();) {
            if (it->first < keep_ptr_from) {
                it = o.non_cond.erase(it);
                continue;
            }
            if (it->first < keep_mem_from) std::vector<uint16_t>().swap(it->second.maskmem);
            it->second.pred_masks = Tensor();
            ++it;
        }
    }
    ++next_frame_;
    return r;
}

Sam2VideoStreamMemory Sam2VideoStream::memory_stats() const {
    Sam2VideoStreamMemory s;
    for (const auto& op : state_->objects)
        for (const auto* dict : {&op->cond, &op->non_cond})
            for (const auto& [frame, out] : *dict) {
                if (!out.maskmem.empty()) {
                    ++s.memories;
                    s.bytes += static_cast<int64_t>(out.maskmem.size() * sizeof(uint16_t));
                }
                if (out.obj_ptr.defined()) {
                    ++s.obj_ptrs;
                    s.bytes += out.obj_ptr.numel() * static_cast<int64_t>(sizeof(float));
                }
            }
    return s;
}

}  // namespace sam
