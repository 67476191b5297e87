// libFuzzer target: arbitrary bytes as a checkpoint. Every input must either parse or throw
// sam::Error; crashes, sanitizer reports, hangs and leaks are bugs.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "io/checkpoint.h"
#include "sam/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto bytes = std::make_shared<std::vector<uint8_t>>(data, data + size);
    try {
        sam::Checkpoint c = sam::Checkpoint::from_memory(bytes, "fuzz.pth");
        // Fetch every tensor (views, conversions, strided copies) and touch every element.
        volatile float sink = 0.0f;
        for (const sam::TensorRecord& r : c.records()) {
            sam::Tensor t = c.tensor(r.key, r.shape);
            for (int64_t i = 0; i < t.numel(); ++i) sink = sink + t[i];
        }
        (void)c.unused_keys();
        (void)c.dominant_dtype();
        (void)c.parameter_count();
    } catch (const sam::Error&) {
    }
    return 0;
}
