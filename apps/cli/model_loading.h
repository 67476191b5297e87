#pragma once

#include "cli/command.h"
#include "sam/sam.h"

namespace sam::cli {

// Sets the thread count and loads the checkpoint named by the shared model options.
Sam load_model(const ModelOptions& o);

}  // namespace sam::cli
