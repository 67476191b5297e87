// sam embed: image -> image embedding (.npy), as SamPredictor.set_image computes it.
#include <chrono>
#include <iostream>

#include "cli/model_loading.h"
#include "sam/image.h"
#include "sam/npy.h"

namespace sam::cli {
namespace {

struct EmbedOptions {
    ModelOptions model;
    std::string image, output;
};

// SAM 2: the image embedding to `output`, the decoder's two high-resolution feature maps to
// `<output>.high_res_0.npy` and `<output>.high_res_1.npy` (what `sam predict --embedding` reads).
int run_embed_sam2(const EmbedOptions& o) {
    using clock = std::chrono::steady_clock;
    Sam2 sam = load_sam2_model(o.model);
    Image img = read_image(o.image);
    auto t1 = clock::now();
    Sam2Features f = sam.embed(img);
    auto t2 = clock::now();
    save_npy(o.output, f.image_embed);
    save_npy(o.output + ".high_res_0.npy", f.high_res[0]);
    save_npy(o.output + ".high_res_1.npy", f.high_res[1]);
    std::cerr << "SAM 2 " << sam.config().model_type << " embedding " << shape_str(f.image_embed.shape()) << " -> "
              << o.output << " (+ .high_res_0.npy, .high_res_1.npy; encode "
              << std::chrono::duration<double, std::milli>(t2 - t1).count() << " ms)\n";
    return 0;
}

int run_embed(const EmbedOptions& o) {
    using clock = std::chrono::steady_clock;
    if (is_sam2(o.model)) return run_embed_sam2(o);
    auto t0 = clock::now();
    Sam sam = load_model(o.model);
    auto t1 = clock::now();
    Image img = read_image(o.image);
    auto t2 = clock::now();
    Tensor emb = sam.embed(img);
    auto t3 = clock::now();
    save_npy(o.output, emb);
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    std::cerr << "embedding " << shape_str(emb.shape()) << " -> " << o.output << " (load " << ms(t0, t1)
              << " ms, decode " << ms(t1, t2) << " ms, encode " << ms(t2, t3) << " ms, "
              << (sam.execution().threads > 0 ? sam.execution().threads : available_cores())
              << " threads)\n";
    return 0;
}

Registration reg("embed", "Compute the image embedding of an image and write it as .npy", [](CLI::App& cmd) {
    auto o = std::make_shared<EmbedOptions>();
    add_model_options(cmd, o->model);
    cmd.add_option("--image,-i", o->image, "Input image (JPEG, PNG)")->required()->check(CLI::ExistingFile);
    cmd.add_option("--output,-o", o->output, "Output .npy (1 x C x 64 x 64 float32)")->required();
    return [o] { return run_embed(*o); };
});

}  // namespace
}  // namespace sam::cli
