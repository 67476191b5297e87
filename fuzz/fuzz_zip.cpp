// libFuzzer target: arbitrary bytes as a zip archive (end records, ZIP64 records and extra
// fields, central and local headers). Every input must either list entries whose payloads lie
// inside the bytes or throw sam::Error. Use with -dict=fuzz/zip.dict.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/zip_reader.h"
#include "sam/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const sam::ZipReader zip(std::span(data, size), "fuzz.zip");
        volatile uint32_t sink = 0;
        for (const sam::ZipEntry& e : zip.entries()) {
            if (zip.find(e.name) == nullptr) __builtin_trap();
            if (e.data_offset > size || e.size > size - e.data_offset) __builtin_trap();
            const std::span<const uint8_t> p = zip.payload(e);
            if (!p.empty()) sink = sink + p.front() + p.back();  // ASan checks both ends
        }
    } catch (const sam::Error&) {
    }
    return 0;
}
