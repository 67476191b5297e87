// sam info: what a checkpoint holds, and how this machine will run it.
#include <iostream>

#include "cli/model_loading.h"
#include "ops/attention_kernels.h"
#include "ops/cpu.h"
#include "ops/matmul.h"

namespace sam::cli {
namespace {

void print_runtime(const ModelOptions& o) {
    const ops::CpuFeatures& f = ops::cpu_features();
    const ExecutionOptions e = execution_options(o);
    std::cout << "cpu:         " << (f.model.empty() ? "(unknown)" : f.model) << "\n"
              << "cpu flags:   " << f.summary() << "\n"
              << "kernels:     attention " << ops::to_string(ops::kernel_isa()) << " (best for this CPU: "
              << ops::to_string(ops::best_kernel_isa()) << "), GEMM library " << ops::gemm_library_isa() << "\n"
              << "precision:   " << to_string(e.precision) << " (bf16 " << (precision_supported(Precision::BF16) ? "yes" : "no")
              << ", int8 " << (precision_supported(Precision::INT8) ? "yes" : "no") << ")\n"
              << "reduced:     bf16/int8 attention products in "
              << (ops::bf16_attention_preferred() ? "bf16" : "fp32");
    if (ops::bf16_attention_supported())
        std::cout << " (vdpbf16ps at " << ops::bf16_attention_speed_ratio() << "x the fp32 FMA rate)";
    if (precision_supported(Precision::INT8)) std::cout << ", int8 weights to +-" << ops::int8_weight_levels();
    std::cout << "\n"
              << "threads:     " << (e.threads > 0 ? e.threads : available_cores()) << " (cores available "
              << available_cores() << ")\n";
}

int run_info(const ModelOptions& o) {
    print_runtime(o);
    if (o.checkpoint.empty()) return 0;
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

Registration reg("info", "Print the CPU's features and kernels in use, and a checkpoint's model type, dtype and size",
                 [](CLI::App& cmd) {
    auto o = std::make_shared<ModelOptions>();
    add_model_options(cmd, *o, false);
    return [o] { return run_info(*o); };
});

}  // namespace
}  // namespace sam::cli
