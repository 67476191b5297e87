#pragma once

#include "cli/command.h"
#include "sam/sam.h"

namespace sam::cli {

// Threads and precision from the shared model options (an unsupported precision becomes f32,
// with a note on stderr).
ExecutionOptions execution_options(const ModelOptions& o);
// Loads the checkpoint named by the shared model options, computing with their threads and
// precision.
Sam load_model(const ModelOptions& o);

}  // namespace sam::cli
