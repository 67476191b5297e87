// write_checkpoint: the torch.save layout, so that `torch.load` reads our files and we read theirs.
#include <algorithm>
#include <bit>
#include <cmath>
#include <set>

#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/pickle.h"
#include "io/zip_reader.h"
#include "sam/error.h"

namespace sam {

namespace {

// Hand-written for the same reason as the reader's widening (no fp16/bf16 type before C++23).
// Round to nearest even (as torch's .half() / .bfloat16()), overflow to infinity, NaN stays NaN.
uint16_t float_to_half(float f) {
    uint32_t x = std::bit_cast<uint32_t>(f);
    uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    uint32_t a = x & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return sign | 0x7E00u;                     // NaN
    if (a >= 0x477FF000u) return sign | 0x7C00u;                    // rounds to >= 65536: inf
    if (a < 0x38800000u) {                                          // below 2^-14: subnormal or zero
        float scaled = std::bit_cast<float>(a) * 16777216.0f;       // units of 2^-24, exact
        return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(scaled)));
    }
    uint32_t rebased = a - (112u << 23);                            // exponent bias 127 -> 15
    return static_cast<uint16_t>(sign | ((rebased + 0xFFFu + ((a >> 13) & 1u)) >> 13));
}

uint16_t float_to_bf16(float f) {
    uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
    return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

const char* storage_type(DType d) {
    switch (d) {
        case DType::F32: return "FloatStorage";
        case DType::F16: return "HalfStorage";
        case DType::BF16: return "BFloat16Storage";
    }
    return "?";
}

// Streams one tensor's elements, converted to `dtype`, in bounded chunks.
void write_payload(ZipWriter& zip, const Tensor& t, DType dtype) {
    const float* src = t.data();
    size_t n = static_cast<size_t>(t.numel());
    if (dtype == DType::F32) {
        constexpr size_t kChunk = size_t{1} << 24;  // bytes per write call
        const auto* bytes = reinterpret_cast<const uint8_t*>(src);
        for (size_t off = 0, total = n * sizeof(float); off < total; off += kChunk)
            zip.write(bytes + off, std::min(kChunk, total - off));
        return;
    }
    std::vector<uint16_t> buf(size_t{1} << 16);
    for (size_t i = 0; i < n; i += buf.size()) {
        size_t m = std::min(buf.size(), n - i);
        for (size_t k = 0; k < m; ++k) buf[k] = dtype == DType::F16 ? float_to_half(src[i + k]) : float_to_bf16(src[i + k]);
        zip.write(buf.data(), m * sizeof(uint16_t));
    }
}

}  // namespace

void write_checkpoint(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      DType dtype, const std::string& archive_name) {
    if (archive_name.empty() || archive_name.find('/') != std::string::npos)
        throw CheckpointError(path, "", "invalid archive name '" + archive_name + "'");
    std::set<std::string> keys;
    for (const auto& [key, t] : tensors) {
        if (!keys.insert(key).second) throw CheckpointError(path, key, "duplicate key");
        if (!t.defined() && t.numel() != 0) throw CheckpointError(path, key, "undefined tensor");
    }

    // data.pkl: the state dict, tensor i stored as data/<i>.
    StateDictPickler pickler;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const Tensor& t = tensors[i].second;
        pickler.add(tensors[i].first, storage_type(dtype), std::to_string(i), t.numel(), t.shape());
    }
    std::vector<uint8_t> pkl = pickler.finish();

    // torch.save writes the storages in the sorted order of their names ("0", "1", "10", ...).
    std::vector<size_t> order(tensors.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [](size_t a, size_t b) { return std::to_string(a) < std::to_string(b); });

    const std::string prefix = archive_name + "/";
    const uint64_t esize = dtype == DType::F32 ? 4 : 2;
    write_file_atomic(path, [&](std::ostream& out) {
        ZipWriter zip(out);
        zip.begin_entry(prefix + "data.pkl", pkl.size());
        zip.write(pkl.data(), pkl.size());
        zip.end_entry();
        for (size_t i : order) {
            const Tensor& t = tensors[i].second;
            zip.begin_entry(prefix + "data/" + std::to_string(i), static_cast<uint64_t>(t.numel()) * esize);
            write_payload(zip, t, dtype);
            zip.end_entry();
        }
        zip.begin_entry(prefix + "version", 2);
        zip.write("3\n", 2);
        zip.end_entry();
        zip.finish();
    });
}

}  // namespace sam
