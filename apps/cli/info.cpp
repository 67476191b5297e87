// sam info: what a checkpoint holds.
#include <iostream>

#include "cli/model_loading.h"

namespace sam::cli {
namespace {

int run_info(const ModelOptions& o) {
    Sam sam = load_model(o);
    const SamConfig& c = sam.config();
    std::cout << "checkpoint:  " << sam.checkpoint_path() << "\n"
              << "model type:  " << c.model_type << "\n"
              << "dtype:       " << sam.checkpoint_dtype() << "\n"
              << "parameters:  " << sam.parameter_count() << "\n"
              << "encoder:     embed " << c.encoder.embed_dim << ", depth " << c.encoder.depth << ", heads "
              << c.encoder.num_heads << ", window " << c.encoder.window_size << ", global blocks";
    for (int g : c.encoder.global_attn_indexes) std::cout << " " << g;
    std::cout << "\n"
              << "prompt dim:  " << c.prompt.embed_dim << "\n"
              << "decoder:     depth " << c.decoder.depth << ", mlp " << c.decoder.mlp_dim << ", heads "
              << c.decoder.num_heads << "\n";
    return 0;
}

Registration reg("info", "Print a checkpoint's model type, dtype and parameter count", [](CLI::App& cmd) {
    auto o = std::make_shared<ModelOptions>();
    add_model_options(cmd, *o);
    return [o] { return run_info(*o); };
});

}  // namespace
}  // namespace sam::cli
