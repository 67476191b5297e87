// sam predict: prompts (points, boxes, a mask input) on one image -> masks, scores, low-res
// logits and an overlay, as SamPredictor.predict / predict_torch compute them.
//
// Output directory: mask_<i>.png (0/255, original size), scores.json {"iou_predictions": [...]},
// low_res.npy (N x 256 x 256 float32), overlay.png. With several --box, the boxes are decoded
// in one batch (the points, if any, go with every box); masks are numbered box by box.
#include <array>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/model_loading.h"
#include "io/atomic_file.h"
#include "mask_overlay.h"
#include "sam/image.h"
#include "sam/npy.h"
#include "sam/predictor.h"
#include "sam/sam2.h"

namespace sam::cli {
namespace {

struct PredictOptions {
    ModelOptions model;
    std::string image, embedding, mask_input, output;
    std::vector<std::string> points, boxes;
    int mask_input_index = -1;
    bool multimask = false;
};

// "a,b,c" -> numbers; throws InputError naming the option.
std::vector<float> parse_numbers(const std::string& option, const std::string& text) {
    std::vector<float> v;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        try {
            size_t used = 0;
            v.push_back(std::stof(item, &used));
            if (used != item.size()) throw std::invalid_argument(item);
        } catch (const std::exception&) {
            throw InputError(option, "'" + text + "' is not a comma-separated list of numbers");
        }
    }
    return v;
}

// The mask input file: one (1, 256, 256) mask, or mask `index` of an (N, 256, 256) file.
// The shape is checked before any use: a scalar, an empty or a non-square array is refused.
Tensor read_mask_input(const std::string& path, int index) {
    Tensor t = load_npy(path);
    if (t.ndim() < 2 || t.dim(-1) <= 0 || t.dim(-2) != t.dim(-1))
        throw InputError("--mask-input", path + ": shape " + shape_str(t.shape()) + ", expected (N, S, S)");
    const int64_t S = t.dim(-1), n = t.numel() / (S * S);
    if (n == 0) throw InputError("--mask-input", path + ": shape " + shape_str(t.shape()) + " holds no mask");
    if (index < 0 && n != 1)
        throw InputError("--mask-input", path + " holds " + std::to_string(n) +
                                             " masks; choose one with --mask-input-index");
    const int64_t k = index < 0 ? 0 : index;
    if (k >= n) throw InputError("--mask-input-index", std::to_string(k) + " >= " + std::to_string(n) + " masks");
    Tensor m({1, S, S});
    std::copy(t.data() + k * S * S, t.data() + (k + 1) * S * S, m.data());
    return m;
}

// The embedding file, checked against the exact (1, C, G, G) this model's decoder takes.
Tensor read_embedding(const std::string& path, const SamConfig& c) {
    Tensor t = load_npy(path);
    const int64_t C = c.prompt.embed_dim, G = c.embedding_size();
    if (t.shape() != Shape{1, C, G, G})
        throw InputError("--embedding", path + ": shape " + shape_str(t.shape()) + ", expected " +
                                            shape_str({1, C, G, G}) + " for this model");
    return t;
}

// The image with every mask tinted in its own colour (alpha 0.5; src/mask_overlay.h).
void write_overlay(const std::string& path, const Image& img, const std::vector<uint8_t>& masks, int64_t n) {
    Image out = img;
    const int64_t hw = int64_t{img.width} * img.height;
    for (int64_t k = 0; k < n; ++k) draw_mask(out, masks.data() + k * hw, overlay_colour(static_cast<int>(k)), false);
    write_png(path, out.rgb.data(), img.width, img.height, 3);
}

// SAM 2: one prompt per box (the points, if any, go with every box), each decoded as
// SAM2ImagePredictor.predict decodes it; the same outputs as SAM's.
int run_predict_sam2(const PredictOptions& o) {
    using clock = std::chrono::steady_clock;
    Sam2 sam = load_sam2_model(o.model);
    Image img = read_image(o.image);
    Sam2ImagePredictor predictor(sam);
    auto t0 = clock::now();
    if (o.embedding.empty()) {
        predictor.set_image(img);
    } else {
        Sam2Features f;
        f.image_embed = load_npy(o.embedding);
        f.high_res[0] = load_npy(o.embedding + ".high_res_0.npy");
        f.high_res[1] = load_npy(o.embedding + ".high_res_1.npy");
        predictor.set_features(std::move(f), img.height, img.width);
    }
    auto t1 = clock::now();
    Prompt base;
    for (const std::string& s : o.points) {
        std::vector<float> v = parse_numbers("--point", s);
        if (v.size() != 2 && v.size() != 3) throw InputError("--point", "'" + s + "': expected X,Y or X,Y,LABEL");
        const float label = v.size() == 3 ? v[2] : 1.0f;
        if (label != -1.0f && label != 0.0f && label != 1.0f)
            throw InputError("--point", "'" + s + "': label must be 1, 0 or -1");
        base.point_coords.push_back({v[0], v[1]});
        base.point_labels.push_back(static_cast<int>(label));
    }
    if (!o.mask_input.empty()) base.mask_input = read_mask_input(o.mask_input, o.mask_input_index);
    base.multimask_output = o.multimask;
    std::vector<Prompt> prompts;
    for (const std::string& s : o.boxes) {
        std::vector<float> v = parse_numbers("--box", s);
        if (v.size() != 4) throw InputError("--box", "'" + s + "': expected X0,Y0,X1,Y1");
        prompts.push_back(base);
        prompts.back().box = std::array<float, 4>{v[0], v[1], v[2], v[3]};
    }
    if (prompts.empty()) prompts.push_back(base);
    std::vector<Prediction> results;
    for (const Prompt& p : prompts) results.push_back(predictor.predict(p));
    auto t2 = clock::now();

    std::filesystem::create_directories(o.output);
    const int64_t hw = int64_t{img.height} * img.width;
    std::vector<uint8_t> all_masks;
    std::vector<float> ious;
    std::vector<float> low;
    int64_t n = 0, S = 0;
    for (const Prediction& r : results) {
        all_masks.insert(all_masks.end(), r.masks.begin(), r.masks.end());
        ious.insert(ious.end(), r.iou_predictions.begin(), r.iou_predictions.end());
        low.insert(low.end(), r.low_res_logits.data(), r.low_res_logits.data() + r.low_res_logits.numel());
        n += r.num_masks;
        S = r.low_res_logits.dim(-1);
    }
    std::vector<uint8_t> png(static_cast<size_t>(hw));
    for (int64_t k = 0; k < n; ++k) {
        for (int64_t i = 0; i < hw; ++i) png[static_cast<size_t>(i)] = all_masks[static_cast<size_t>(k * hw + i)] ? 255 : 0;
        write_png(o.output + "/mask_" + std::to_string(k) + ".png", png.data(), img.width, img.height, 1);
    }
    nlohmann::json scores = {{"iou_predictions", ious}};
    write_file_atomic(o.output + "/scores.json", [&](std::ostream& os) { os << scores.dump(1) << "\n"; });
    Tensor lt({n, S, S});
    std::copy(low.begin(), low.end(), lt.data());
    save_npy(o.output + "/low_res.npy", lt);
    write_overlay(o.output + "/overlay.png", img, all_masks, n);
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    std::cerr << n << " mask(s) -> " << o.output << " (SAM 2 " << sam.config().model_type << ", "
              << (o.embedding.empty() ? "encode " : "features loaded ") << ms(t0, t1) << " ms, decode + upsample "
              << ms(t1, t2) << " ms)\n";
    return 0;
}

int run_predict(const PredictOptions& o) {
    using clock = std::chrono::steady_clock;
    if (is_sam2(o.model)) return run_predict_sam2(o);
    Sam sam = load_model(o.model);
    Image img = read_image(o.image);
    SamPredictor predictor(sam);
    auto t0 = clock::now();
    if (o.embedding.empty())
        predictor.set_image(img);
    else
        predictor.set_embedding(read_embedding(o.embedding, sam.config()), img.height, img.width);
    auto t1 = clock::now();

    // Build the (batched) prompt: one prompt per box, or a single prompt.
    BatchPrompt p;
    std::vector<float> coords;
    std::vector<int> labels;
    for (const std::string& s : o.points) {
        std::vector<float> v = parse_numbers("--point", s);
        if (v.size() != 2 && v.size() != 3) throw InputError("--point", "'" + s + "': expected X,Y or X,Y,LABEL");
        const float label = v.size() == 3 ? v[2] : 1.0f;
        if (label != -1.0f && label != 0.0f && label != 1.0f)
            throw InputError("--point", "'" + s + "': label must be 1, 0 or -1");
        coords.insert(coords.end(), {v[0], v[1]});
        labels.push_back(static_cast<int>(label));
    }
    for (const std::string& s : o.boxes) {
        std::vector<float> v = parse_numbers("--box", s);
        if (v.size() != 4) throw InputError("--box", "'" + s + "': expected X0,Y0,X1,Y1");
        p.boxes.push_back({v[0], v[1], v[2], v[3]});
    }
    p.batch = p.boxes.empty() ? 1 : static_cast<int64_t>(p.boxes.size());
    p.points_per_prompt = static_cast<int64_t>(labels.size());
    for (int64_t b = 0; b < p.batch; ++b) {
        p.point_coords.insert(p.point_coords.end(), coords.begin(), coords.end());
        p.point_labels.insert(p.point_labels.end(), labels.begin(), labels.end());
    }
    if (!o.mask_input.empty()) {
        Tensor m = read_mask_input(o.mask_input, o.mask_input_index);
        const int64_t S = m.dim(-1);
        p.mask_input = Tensor({p.batch, 1, S, S});
        for (int64_t b = 0; b < p.batch; ++b) std::copy(m.data(), m.data() + S * S, p.mask_input.data() + b * S * S);
    }
    p.multimask_output = o.multimask;
    BatchPrediction r = predictor.predict_batch(p);
    auto t2 = clock::now();

    // Write the outputs.
    std::filesystem::create_directories(o.output);
    const int64_t n = r.batch * r.num_masks, hw = int64_t{r.height} * r.width;
    std::vector<uint8_t> png(static_cast<size_t>(hw));
    for (int64_t k = 0; k < n; ++k) {
        for (int64_t i = 0; i < hw; ++i) png[static_cast<size_t>(i)] = r.masks[static_cast<size_t>(k * hw + i)] ? 255 : 0;
        write_png(o.output + "/mask_" + std::to_string(k) + ".png", png.data(), r.width, r.height, 1);
    }
    nlohmann::json scores = {{"iou_predictions", std::vector<float>(r.iou_predictions.data(),
                                                                    r.iou_predictions.data() + n)}};
    write_file_atomic(o.output + "/scores.json", [&](std::ostream& os) { os << scores.dump(1) << "\n"; });
    const int64_t S = r.low_res_logits.dim(-1);
    save_npy(o.output + "/low_res.npy", r.low_res_logits.reshape({n, S, S}));
    write_overlay(o.output + "/overlay.png", img, r.masks, n);

    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    std::cerr << n << " mask(s) -> " << o.output << " (" << (o.embedding.empty() ? "encode " : "embedding loaded ")
              << ms(t0, t1) << " ms, decode + upsample " << ms(t1, t2) << " ms)\n";
    return 0;
}

Registration reg("predict", "Segment an image from point / box / mask prompts", [](CLI::App& cmd) {
    auto o = std::make_shared<PredictOptions>();
    add_model_options(cmd, o->model);
    cmd.add_option("--image,-i", o->image, "Input image (JPEG, PNG)")->required()->check(CLI::ExistingFile);
    cmd.add_option("--embedding", o->embedding, "Precomputed embedding (.npy from `sam embed`); skips the encoder")
        ->check(CLI::ExistingFile);
    cmd.add_option("--point", o->points, "Point X,Y[,LABEL] in original pixels; LABEL 1 (default), 0 or -1. Repeatable");
    cmd.add_option("--box", o->boxes, "Box X0,Y0,X1,Y1 in original pixels. Repeatable: boxes are decoded in one batch");
    cmd.add_option("--mask-input", o->mask_input, "Low-res logits (.npy, 1x256x256) from a previous prediction")
        ->check(CLI::ExistingFile);
    cmd.add_option("--mask-input-index", o->mask_input_index, "Which mask of an N x 256 x 256 --mask-input to use");
    cmd.add_flag("--multimask", o->multimask, "Return 3 masks per prompt instead of 1");
    cmd.add_option("--output,-o", o->output, "Output directory")->required();
    return [o] { return run_predict(*o); };
});

}  // namespace
}  // namespace sam::cli
