// Subcommands register themselves here; main.cpp only dispatches.
//
//   // apps/cli/embed.cpp
//   static sam::cli::Registration reg("embed", "Compute an image embedding", [](CLI::App& cmd) {
//       auto opts = std::make_shared<Options>();
//       cmd.add_option(...);
//       return [opts] { return run(*opts); };   // exit code
//   });
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace sam::cli {

using Runner = std::function<int()>;
using Setup = std::function<Runner(CLI::App&)>;

struct Command {
    std::string name, description;
    Setup setup;
};

std::vector<Command>& commands();

struct Registration {
    Registration(std::string name, std::string description, Setup setup) {
        commands().push_back({std::move(name), std::move(description), std::move(setup)});
    }
};

// Options every model-using command shares: --checkpoint, --model-type, --config, --threads.
struct ModelOptions {
    std::string checkpoint;
    std::string model_type = "auto";
    std::string config;
    int threads = 0;
    std::string precision = "f32";
};
void add_model_options(CLI::App& cmd, ModelOptions& o, bool checkpoint_required = true);

}  // namespace sam::cli
