// sam: Segment Anything from the command line. Each subcommand lives in its own file.
#include <iostream>
#include <map>

#include "cli/command.h"
#include "sam/error.h"

namespace sam::cli {

std::vector<Command>& commands() {
    static std::vector<Command> all;
    return all;
}

void add_model_options(CLI::App& cmd, ModelOptions& o, bool checkpoint_required) {
    auto* c = cmd.add_option("--checkpoint,-c", o.checkpoint, "Official SAM (.pth) or SAM 2 / 2.1 (.pt) checkpoint");
    if (checkpoint_required) c->required();
    cmd.add_option("--model-type", o.model_type,
                   "vit_b | vit_l | vit_h | SAM 2: tiny | small | base_plus | large | auto (read from the checkpoint)")
        ->check(CLI::IsMember({"auto", "vit_b", "vit_l", "vit_h", "tiny", "small", "base_plus", "large"}));
    cmd.add_option("--config", o.config, "JSON model config for non-standard sizes (overrides --model-type)");
    cmd.add_option("--threads,-t", o.threads, "Threads (default: all cores)");
    cmd.add_option("--precision", o.precision,
                   "Encoder blocks: f32 (exact) | bf16 (CPUs with AVX512-BF16/AMX) | int8 (dynamic quantisation, "
                   "AVX2+); falls back to f32 with a note")
        ->check(CLI::IsMember({"f32", "bf16", "int8"}));
}

}  // namespace sam::cli

int main(int argc, char** argv) {
    CLI::App app{"sam: Meta's Segment Anything in C++"};
    app.require_subcommand(1);
    std::map<CLI::App*, sam::cli::Runner> runners;
    for (auto& c : sam::cli::commands()) {
        CLI::App* sub = app.add_subcommand(c.name, c.description);
        runners[sub] = c.setup(*sub);
    }
    CLI11_PARSE(app, argc, argv);
    try {
        for (auto& [sub, run] : runners)
            if (sub->parsed()) return run();
    } catch (const sam::Error& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
