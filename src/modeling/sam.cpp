#include "modeling/sam.h"

#include <algorithm>

#include "ops/matmul.h"
#include "ops/ops.h"
#include "ops/threads.h"
#include "sam/sam.h"
#include "transforms.h"

namespace sam {

SamConfig detect_config(const Checkpoint& ckpt) {
    const std::string pos = "image_encoder.pos_embed";
    if (!ckpt.contains(pos))
        throw CheckpointError(ckpt.path(), pos, "missing key: this does not look like a SAM checkpoint");
    const Shape& s = ckpt.record(pos).shape;
    if (s.size() != 4) throw CheckpointError(ckpt.path(), pos, "shape " + shape_str(s) + ", expected (1, 64, 64, C)");
    int depth = 0;
    while (ckpt.contains("image_encoder.blocks." + std::to_string(depth) + ".norm1.weight")) ++depth;
    for (SamConfig c : {sam_config_vit_b(), sam_config_vit_l(), sam_config_vit_h()})
        if (c.encoder.embed_dim == s[3] && c.encoder.depth == depth) return c;
    throw CheckpointError(ckpt.path(), "", "embed dim " + std::to_string(s[3]) + " and depth " + std::to_string(depth) +
                                               " match no official model type; pass a JSON config (--config)");
}

void load_weights(SamModel& m, const TensorSource& src) {
    WeightLoader root(src, "");
    m.image_encoder = load_image_encoder(root["image_encoder"], m.config.encoder);
    m.prompt_encoder = load_prompt_encoder(root["prompt_encoder"], m.config);
    m.mask_decoder = load_mask_decoder(root["mask_decoder"], m.config.decoder);
}

namespace {
std::shared_ptr<SamModel> random_model(const SamConfig& config, RandomSource& src) {
    auto m = std::make_shared<SamModel>();
    m->config = config;
    m->path = "(random weights)";
    m->dtype = "float32";
    load_weights(*m, src);
    for (const auto& [key, t] : src.made()) m->parameter_count += t.numel();
    return m;
}
}  // namespace

Sam Sam::random(const SamConfig& config, uint64_t seed) {
    RandomSource src(seed);
    return Sam(random_model(config, src));
}

std::vector<std::pair<std::string, Tensor>> random_weights(const SamConfig& config, uint64_t seed) {
    RandomSource src(seed);
    random_model(config, src);
    return src.made();
}

Sam Sam::load(const std::string& checkpoint_path, const LoadOptions& options) {
    auto m = std::make_shared<SamModel>();
    auto ckpt = std::make_shared<Checkpoint>(Checkpoint::open(checkpoint_path));
    if (!options.config_path.empty())
        m->config = sam_config_from_json(options.config_path);
    else if (options.model_type == "auto")
        m->config = detect_config(*ckpt);
    else
        m->config = sam_config_for(options.model_type);
    m->path = checkpoint_path;
    m->dtype = dtype_name(ckpt->dominant_dtype());
    m->parameter_count = ckpt->parameter_count();
    m->checkpoint = ckpt;
    load_weights(*m, CheckpointSource(*ckpt));
    std::vector<std::string> unused = ckpt->unused_keys();
    if (!unused.empty())
        throw CheckpointError(checkpoint_path, unused.front(),
                              "unexpected key (" + std::to_string(unused.size()) +
                                  " unexpected in all): wrong model type or not a SAM checkpoint?");
    return Sam(std::move(m));
}

const SamConfig& Sam::config() const { return model_->config; }
const std::string& Sam::checkpoint_path() const { return model_->path; }
std::string Sam::checkpoint_dtype() const { return model_->dtype; }
int64_t Sam::parameter_count() const { return model_->parameter_count; }

Sam Sam::with_execution(const ExecutionOptions& options) const {
    Sam s = *this;
    s.execution_ = options;
    if (!precision_supported(options.precision)) s.execution_.precision = Precision::F32;
    return s;
}

Tensor Sam::encode(const Tensor& input) const {
    ops::ThreadScope threads(execution_.threads);
    EncoderBufferPool& pool = *model_->encoder_buffers;
    std::unique_ptr<EncoderBuffers> buffers = pool.take();
    Tensor embedding =
        image_encoder_forward(model_->image_encoder, model_->config.encoder, input, execution_.precision, nullptr, buffers.get());
    pool.give_back(std::move(buffers));
    return embedding;
}

Tensor Sam::embed(const Image& image) const {
    const SamConfig& c = model_->config;
    return encode(preprocess(image, c.encoder.img_size, c.pixel_mean, c.pixel_std).input);
}

ImageGeometry Sam::geometry(int orig_h, int orig_w) const {
    auto [h, w] = preprocess_shape(orig_h, orig_w, model_->config.encoder.img_size);
    return {orig_h, orig_w, h, w};
}

bool precision_supported(Precision p) {
    if (p == Precision::BF16) return ops::bf16_supported();
    if (p == Precision::INT8) return ops::int8_supported();
    return true;
}

Precision precision_from_string(const std::string& s) {
    if (s == "f32" || s == "fp32") return Precision::F32;
    if (s == "bf16") return Precision::BF16;
    if (s == "int8") return Precision::INT8;
    throw InputError("precision", "'" + s + "' is not one of f32, bf16, int8");
}

const char* to_string(Precision p) {
    switch (p) {
        case Precision::BF16: return "bf16";
        case Precision::INT8: return "int8";
        default: return "f32";
    }
}

int available_cores() { return ops::available_cores(); }

}  // namespace sam
