// Replays inputs through the fuzz targets without libFuzzer, so that any compiler and the
// sanitizer build can run the committed seeds (and crash files) as a test:
//   fuzz_replay <target> <file or directory>...     e.g. fuzz_replay fuzz_npy fuzz/corpus/fuzz_npy
// Each fuzz_<name>.cpp is compiled into this program with LLVMFuzzerTestOneInput renamed to
// sam_fuzz_<name> (see CMakeLists.txt). A target that crashes fails the run; one that returns
// normally for every input passes.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#define SAM_FUZZ_TARGET(name) extern "C" int sam_##name(const uint8_t* data, size_t size);
#include "fuzz_targets.inc"
#undef SAM_FUZZ_TARGET

namespace {

struct Target {
    const char* name;
    int (*run)(const uint8_t*, size_t);
};

#define SAM_FUZZ_TARGET(name) {#name, sam_##name},
const Target kTargets[] = {
#include "fuzz_targets.inc"
};
#undef SAM_FUZZ_TARGET

// Runs one file; returns false when it cannot be read.
bool replay_file(const Target& t, const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    t.run(bytes.data(), bytes.size());
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    const Target* target = nullptr;
    for (const Target& t : kTargets)
        if (argc > 1 && std::strcmp(argv[1], t.name) == 0) target = &t;
    if (argc < 3 || !target) {
        std::fprintf(stderr, "usage: fuzz_replay <target> <file or directory>...\ntargets:");
        for (const Target& t : kTargets) std::fprintf(stderr, " %s", t.name);
        std::fprintf(stderr, "\n");
        return 2;
    }
    size_t count = 0;
    for (int i = 2; i < argc; ++i) {
        std::vector<std::filesystem::path> files;
        if (std::filesystem::is_directory(argv[i])) {
            for (const auto& e : std::filesystem::directory_iterator(argv[i]))
                if (e.is_regular_file()) files.push_back(e.path());
        } else {
            files.emplace_back(argv[i]);
        }
        for (const auto& f : files) {
            if (!replay_file(*target, f)) {
                std::fprintf(stderr, "%s: cannot read\n", f.c_str());
                return 1;
            }
            ++count;
        }
    }
    if (count == 0) {
        std::fprintf(stderr, "%s: no inputs\n", target->name);
        return 1;
    }
    std::printf("%s: %zu input(s) replayed\n", target->name, count);
    return 0;
}
