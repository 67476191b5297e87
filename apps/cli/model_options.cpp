#include "cli/model_loading.h"

#include <iostream>

namespace sam::cli {

Sam load_model(const ModelOptions& o) {
    set_num_threads(o.threads);
    const Precision want = precision_from_string(o.precision);
    if (set_precision(want) != want)
        std::cerr << (want == Precision::BF16
                          ? "note: this CPU has no native bf16 matrix instructions (AVX512-BF16/AMX); using f32\n"
                          : "note: no optimised int8 matrix multiply on this CPU (needs AVX2); using f32\n");
    LoadOptions lo;
    lo.model_type = o.model_type;
    lo.config_path = o.config;
    return Sam::load(o.checkpoint, lo);
}

}  // namespace sam::cli
