#pragma once

#include "cli/command.h"
#include "sam/sam.h"
#include "sam/sam2.h"

namespace sam::cli {

// Threads and precision from the shared model options (an unsupported precision becomes f32,
// with a note on stderr).
ExecutionOptions execution_options(const ModelOptions& o);
// Loads the checkpoint named by the shared model options, computing with their threads and
// precision.
Sam load_model(const ModelOptions& o);

// Whether the options name a SAM 2 model: a SAM 2 --model-type (tiny, small, base_plus, large),
// a SAM 2 --config (one with "stages"), or a checkpoint holding a Hiera trunk.
bool is_sam2(const ModelOptions& o);
Sam2 load_sam2_model(const ModelOptions& o);

}  // namespace sam::cli
