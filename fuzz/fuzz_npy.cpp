// libFuzzer target: arbitrary bytes as a .npy file (header dict, dimensions, data size) and their
// conversion to float32. Every input must either decode or throw sam::Error.
#include <cstddef>
#include <cstdint>

#include "sam/error.h"
#include "sam/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const sam::NpyArray a = sam::decode_npy(data, size, "fuzz.npy");
        // The reader's promise: the bytes are exactly shape x item size.
        uint64_t numel = 1;
        for (int64_t d : a.shape) {
            if (d < 0) __builtin_trap();
            numel *= static_cast<uint64_t>(d);
        }
        if (numel != 0 && a.bytes.size() % numel != 0) __builtin_trap();
        const sam::Tensor t = sam::decode_npy_float(data, size, "fuzz.npy");
        volatile float sink = 0.0f;
        for (int64_t i = 0; i < t.numel(); ++i) sink = sink + t[i];
    } catch (const sam::Error&) {
    }
    return 0;
}
