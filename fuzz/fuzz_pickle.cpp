// libFuzzer target: arbitrary bytes as a checkpoint's data.pkl, interpreted alone (no zip). Every
// input must either give a list of tensors or throw sam::Error, in memory and time proportional
// to its size.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "io/pickle.h"
#include "sam/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = "fuzz.pth", entry = "archive/data.pkl";
    try {
        for (const sam::PickledTensor& t : sam::parse_state_dict_pickle(std::span(data, size), path, entry))
            if (t.shape.size() != t.stride.size() || t.shape.size() > 8) __builtin_trap();
    } catch (const sam::Error&) {
    }
    return 0;
}
