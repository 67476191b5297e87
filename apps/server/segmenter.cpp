#include "server/segmenter.h"

#include "sam/sam2_automatic_mask_generator.h"
#include "server/click.h"

namespace sam::server {
namespace {

// ---- SAM --------------------------------------------------------------------------------------

class SamImage final : public ImagePredictor {
  public:
    SamImage(const Sam& model, const Image& image) : predictor_(model) { predictor_.set_image(image); }

    Prediction predict_low_res(const Prompt& prompt) const override {
        return predictor_.predict(prompt, /*upsample=*/false);
    }

    MaskGeometry geometry() const override { return mask_geometry(predictor_); }

    EverythingJob everything(const Image& image, const nlohmann::json& body, const AmgLimits& limits) const override {
        const AmgOptions o = parse_amg_options(body, limits);
        auto generator = std::make_shared<SamAutomaticMaskGenerator>(predictor_.model(), o);
        // The whole-image crop reuses this image's embedding; only crop layers encode.
        return {amg_prompt_count(o), [this, generator, &image](const std::function<void(int64_t, int64_t)>& progress) {
                    return generator->generate(image, progress, predictor_.embedding());
                }};
    }

  private:
    SamPredictor predictor_;
};

class SamSegmenter final : public Segmenter {
  public:
    explicit SamSegmenter(Sam model) : model_(std::move(model)) {}
    std::string family() const override { return "sam"; }
    std::string model_type() const override { return model_.config().model_type; }
    int threads() const override { return model_.execution().threads; }
    std::unique_ptr<const ImagePredictor> encode(const Image& image) const override {
        return std::make_unique<SamImage>(model_, image);
    }

  private:
    Sam model_;
};

// ---- SAM 2 ------------------------------------------------------------------------------------

class Sam2Image final : public ImagePredictor {
  public:
    // The post-processing defaults: no hole filling, as the official package computes on CPU
    // (and as the page, which thresholds the raw low-res logits, shows).
    Sam2Image(const Sam2& model, const Image& image) : predictor_(model) { predictor_.set_image(image); }

    Prediction predict_low_res(const Prompt& prompt) const override {
        return predictor_.predict(prompt, /*upsample=*/false);
    }

    MaskGeometry geometry() const override {
        const Sam2Config& c = predictor_.model().config();
        const int L = c.low_res_size();
        return {L, L, L, L, predictor_.orig_h(), predictor_.orig_w(), c.mask_threshold};
    }

    EverythingJob everything(const Image& image, const nlohmann::json& body, const AmgLimits& limits) const override {
        const Sam2AmgOptions o = parse_sam2_amg_options(body, limits);
        auto generator = std::make_shared<Sam2AutomaticMaskGenerator>(predictor_.model(), o);
        // The whole-image crop reuses this image's features; only crop layers encode.
        return {amg_prompt_count(o), [this, generator, &image](const std::function<void(int64_t, int64_t)>& progress) {
                    return generator->generate(image, progress, &predictor_.features());
                }};
    }

  private:
    Sam2ImagePredictor predictor_;
};

class Sam2Segmenter final : public Segmenter {
  public:
    explicit Sam2Segmenter(Sam2 model) : model_(std::move(model)) {}
    std::string family() const override { return "sam2"; }
    std::string model_type() const override { return model_.config().model_type; }
    int threads() const override { return model_.execution().threads; }
    std::unique_ptr<const ImagePredictor> encode(const Image& image) const override {
        return std::make_unique<Sam2Image>(model_, image);
    }

  private:
    Sam2 model_;
};

}  // namespace

std::shared_ptr<const Segmenter> make_segmenter(Sam model) { return std::make_shared<SamSegmenter>(std::move(model)); }
std::shared_ptr<const Segmenter> make_segmenter(Sam2 model) { return std::make_shared<Sam2Segmenter>(std::move(model)); }

}  // namespace sam::server
