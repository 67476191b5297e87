#include "cli/model_loading.h"

#include <iostream>

namespace sam::cli {

Sam load_model(const ModelOptions& o) {
    set_num_threads(o.threads);
    LoadOptions lo;
    lo.model_type = o.model_type;
    lo.config_path = o.config;
    return Sam::load(o.checkpoint, lo);
}

}  // namespace sam::cli
