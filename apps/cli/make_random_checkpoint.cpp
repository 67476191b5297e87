// sam make-random-checkpoint: a full-size model with random weights in the official format,
// for benchmarks on machines without the real weights (speed does not depend on values).
#include <iostream>

#include "cli/command.h"
#include "io/checkpoint.h"
#include "modeling/sam.h"
#include "sam/sam.h"

namespace sam::cli {
namespace {

struct RandomOptions {
    std::string model_type = "vit_b", config, output, dtype = "float32";
    uint64_t seed = 0;
};

int run_make_random(const RandomOptions& o) {
    SamConfig cfg = o.config.empty() ? sam_config_for(o.model_type) : sam_config_from_json(o.config);
    const std::vector<std::pair<std::string, Tensor>> tensors = random_weights(cfg, o.seed);
    DType dt = o.dtype == "float16" ? DType::F16 : o.dtype == "bfloat16" ? DType::BF16 : DType::F32;
    std::string stem = o.output.substr(o.output.find_last_of('/') + 1);
    stem = stem.substr(0, stem.find('.'));
    write_checkpoint(o.output, tensors, dt, stem.empty() ? "archive" : stem);
    int64_t params = 0;
    for (const auto& [k, t] : tensors) params += t.numel();
    std::cerr << "wrote " << o.output << ": " << cfg.model_type << ", " << tensors.size() << " tensors, " << params
              << " parameters, " << o.dtype << " (random weights: masks mean nothing)\n";
    return 0;
}

Registration reg("make-random-checkpoint", "Write a full-size checkpoint with random weights (for benchmarks)",
                 [](CLI::App& cmd) {
                     auto o = std::make_shared<RandomOptions>();
                     cmd.add_option("--model-type", o->model_type, "vit_b | vit_l | vit_h")
                         ->check(CLI::IsMember({"vit_b", "vit_l", "vit_h"}));
                     cmd.add_option("--config", o->config, "JSON model config instead of a model type");
                     cmd.add_option("--dtype", o->dtype, "float32 | float16 | bfloat16")
                         ->check(CLI::IsMember({"float32", "float16", "bfloat16"}));
                     cmd.add_option("--seed", o->seed, "Random seed");
                     cmd.add_option("--output,-o", o->output, "Output .pth")->required();
                     return [o] { return run_make_random(*o); };
                 });

}  // namespace
}  // namespace sam::cli
