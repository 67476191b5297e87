#include "cli/model_loading.h"

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "io/checkpoint.h"

namespace sam::cli {

ExecutionOptions execution_options(const ModelOptions& o) {
    ExecutionOptions e;
    e.threads = o.threads;
    e.precision = precision_from_string(o.precision);
    if (!precision_supported(e.precision)) {
        std::cerr << (e.precision == Precision::BF16
                          ? "note: this CPU has no native bf16 matrix instructions (AVX512-BF16/AMX); using f32\n"
                          : "note: no optimised int8 matrix multiply on this CPU (needs AVX2); using f32\n");
        e.precision = Precision::F32;
    }
    return e;
}

Sam load_model(const ModelOptions& o) {
    const ExecutionOptions e = execution_options(o);  // option errors before the load
    LoadOptions lo;
    lo.model_type = o.model_type;
    lo.config_path = o.config;
    return Sam::load(o.checkpoint, lo).with_execution(e);
}

bool is_sam2(const ModelOptions& o) {
    for (const char* t : {"tiny", "small", "base_plus", "large"})
        if (o.model_type == t) return true;
    if (!o.config.empty()) {
        std::ifstream in(o.config);
        const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
        return j.is_object() && j.contains("stages");
    }
    if (o.model_type != "auto" && !o.model_type.empty()) return false;
    return Checkpoint::open(o.checkpoint).contains("image_encoder.trunk.patch_embed.proj.weight");
}

Sam2 load_sam2_model(const ModelOptions& o) {
    const ExecutionOptions e = execution_options(o);
    Sam2LoadOptions lo;
    lo.model_type = o.model_type;
    lo.config_path = o.config;
    return Sam2::load(o.checkpoint, lo).with_execution(e);
}

}  // namespace sam::cli
