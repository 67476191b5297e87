#include "io/checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstring>

#include "io/pickle.h"
#include "io/zip_reader.h"
#include "io/half.h"
#include "sam/error.h"

namespace sam {

static_assert(std::endian::native == std::endian::little, "checkpoint payloads are little-endian");

const char* dtype_name(DType d) {
    switch (d) {
        case DType::F32: return "float32";
        case DType::F16: return "float16";
        case DType::BF16: return "bfloat16";
    }
    return "?";
}

namespace {

size_t element_size(DType d) { return d == DType::F32 ? 4 : 2; }

// Keys may share a storage (tied weights, views), but all tensors together may describe at most
// this many times the file's bytes: fetching every tensor stays proportional to the file.
constexpr uint64_t kMaxTensorBytesPerFileByte = 8;

// What torch.load rejects as legacy: protocol-2 pickle of the magic number 0x1950a86a20f9469cfc6c.
constexpr std::array<uint8_t, 14> kLegacyMagic = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                                  0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};


float load_element(const uint8_t* p, DType d) {
    if (d == DType::F32) {
        float v;
        std::memcpy(&v, p, 4);
        return v;
    }
    uint16_t h;
    std::memcpy(&h, p, 2);
    return d == DType::F16 ? half_to_float(h) : bf16_to_float(h);
}

bool is_contiguous(const TensorRecord& r) {
    int64_t expected = 1;
    for (size_t d = r.shape.size(); d-- > 0;) {
        if (r.shape[d] != 1 && r.stride[d] != expected) return false;
        expected *= r.shape[d];
    }
    return true;
}

std::string ints_str(const std::vector<int64_t>& v) { return shape_str(v); }

// Checks shape, stride and offset against the storage; fills `r` from the pickled description.
TensorRecord make_record(const std::string& path, const PickledTensor& t, const ZipEntry& storage,
                         const uint8_t* base) {
    const std::string& key = t.key;
    TensorRecord r;
    r.key = key;
    r.dtype = *t.dtype;
    r.shape = t.shape;
    r.stride = t.stride;
    r.storage = t.storage;
    r.storage_offset = t.storage_offset;
    r.storage_numel = t.storage_numel;
    r.storage_data = base + storage.data_offset;

    size_t esize = element_size(r.dtype);
    if (r.storage_numel < 0 || static_cast<uint64_t>(r.storage_numel) > storage.size / esize)
        throw CheckpointError(path, key, "storage data/" + r.storage + " holds " + std::to_string(storage.size) +
                                             " bytes, but the pickle declares " + std::to_string(r.storage_numel) +
                                             " " + dtype_name(r.dtype) + " elements");
    // numel and the last element addressed, without overflow; negative values are malformed.
    int64_t numel = 1, last = r.storage_offset;
    bool bad = r.storage_offset < 0;
    for (size_t d = 0; d < r.shape.size(); ++d) {
        bad = bad || r.shape[d] < 0 || r.stride[d] < 0 || __builtin_mul_overflow(numel, r.shape[d], &numel);
        int64_t span = 0;
        if (!bad && r.shape[d] > 0)
            bad = __builtin_mul_overflow(r.shape[d] - 1, r.stride[d], &span) || __builtin_add_overflow(last, span, &last);
    }
    if (bad)
        throw CheckpointError(path, key, "malformed tensor: shape " + shape_str(r.shape) + ", stride " +
                                             ints_str(r.stride) + ", storage offset " +
                                             std::to_string(r.storage_offset));
    // Parameters never overlap themselves; this also bounds what tensor() allocates by the file size.
    if (numel > r.storage_numel)
        throw CheckpointError(path, key, "shape " + shape_str(r.shape) + " has " + std::to_string(numel) +
                                             " elements, more than its storage data/" + r.storage + " (" +
                                             std::to_string(r.storage_numel) + "): overlapping strides " +
                                             ints_str(r.stride) + " are not supported");
    if (numel > 0 && last >= r.storage_numel)
        throw CheckpointError(path, key, "storage data/" + r.storage + " too small: " +
                                             std::to_string(r.storage_numel) + " elements, but shape " +
                                             shape_str(r.shape) + " with stride " + ints_str(r.stride) +
                                             " at offset " + std::to_string(r.storage_offset) +
                                             " reaches element " + std::to_string(last));
    return r;
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw CheckpointError(path, "", std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw CheckpointError(path, "", "not a regular file");
    }
    size_t size = static_cast<size_t>(st.st_size);
    if (size == 0) {
        ::close(fd);
        throw CheckpointError(path, "", "empty file, not a zip archive");
    }
    // Private writable mapping (copy-on-write): pages are shared with the page cache until written, and a caller
    // writing into a view changes only its own copy, never the file.
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    int err = errno;
    ::close(fd);
    if (p == MAP_FAILED) throw CheckpointError(path, "", std::string("cannot map: ") + std::strerror(err));
    std::shared_ptr<void> mapping(p, [size](void* q) { ::munmap(q, size); });
    return parse(path, static_cast<const uint8_t*>(p), size, std::move(mapping));
}

Checkpoint Checkpoint::from_memory(std::shared_ptr<std::vector<uint8_t>> bytes, std::string name) {
    const uint8_t* data = bytes->data();
    size_t size = bytes->size();
    return parse(std::move(name), data, size, std::move(bytes));
}

Checkpoint Checkpoint::parse(std::string path, const uint8_t* data, size_t size, std::shared_ptr<void> owner) {
    if (size >= kLegacyMagic.size() && std::memcmp(data, kLegacyMagic.data(), kLegacyMagic.size()) == 0)
        throw CheckpointError(path, "", "legacy (pre-1.6) torch format: re-save with "
                                        "torch.save(..., _use_new_zipfile_serialization=True)");
    ZipReader zip({data, size}, path);

    // <archive>/data.pkl names the archive directory that holds everything else.
    std::string prefix;
    const ZipEntry* pkl = nullptr;
    for (const ZipEntry& e : zip.entries()) {
        size_t slash = e.name.find('/');
        if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
            pkl = &e;
            prefix = e.name.substr(0, slash + 1);
            break;
        }
    }
    if (!pkl) throw CheckpointError(path, "", "no <archive>/data.pkl entry: not a torch.save checkpoint");
    if (const ZipEntry* order = zip.find(prefix + "byteorder")) {
        auto b = zip.payload(*order);
        std::string value(reinterpret_cast<const char*>(b.data()), b.size());
        if (value != "little") throw CheckpointError(path, order->name, "unsupported byte order '" + value + "'");
    }

    Checkpoint c;
    c.path_ = std::move(path);
    c.mapping_ = std::move(owner);
    uint64_t tensor_bytes = 0;
    for (const PickledTensor& t : parse_state_dict_pickle(zip.payload(*pkl), c.path_, pkl->name)) {
        if (!t.dtype)
            throw CheckpointError(c.path_, t.key, "unsupported dtype " + t.storage_type +
                                                      " (supported: torch.FloatStorage, torch.HalfStorage, "
                                                      "torch.BFloat16Storage)");
        const ZipEntry* storage = zip.find(prefix + "data/" + t.storage);
        if (!storage)
            throw CheckpointError(c.path_, t.key, "storage " + prefix + "data/" + t.storage + " missing from the archive");
        c.index_.emplace(t.key, c.records_.size());
        c.records_.push_back(make_record(c.path_, t, *storage, data));
        const TensorRecord& r = c.records_.back();
        tensor_bytes += static_cast<uint64_t>(shape_numel(r.shape)) * element_size(r.dtype);  // each <= file size
        if (tensor_bytes > kMaxTensorBytesPerFileByte * size)
            throw CheckpointError(c.path_, t.key, "the tensors up to this key describe " + std::to_string(tensor_bytes) +
                                                      " bytes, more than " + std::to_string(kMaxTensorBytesPerFileByte) +
                                                      " times the file's " + std::to_string(size) +
                                                      " (too many keys share one storage)");
    }
    return c;
}

bool Checkpoint::contains(const std::string& key) const { return index_.count(key) != 0; }

const TensorRecord& Checkpoint::record(const std::string& key) const {
    auto it = index_.find(key);
    if (it == index_.end()) throw CheckpointError(path_, key, "missing key");
    return records_[it->second];
}

Tensor Checkpoint::tensor(const std::string& key, const Shape& expected) const {
    const TensorRecord& r = record(key);
    if (r.shape != expected)
        throw CheckpointError(path_, key, "shape " + shape_str(r.shape) + ", expected " + shape_str(expected));
    return tensor(key);
}

Tensor Checkpoint::tensor(const std::string& key) const {
    const TensorRecord& r = record(key);
    used_->insert(key);
    size_t esize = element_size(r.dtype);
    const uint8_t* base = r.storage_data + static_cast<size_t>(r.storage_offset) * esize;
    bool contiguous = is_contiguous(r);

    // fp32, contiguous and aligned: a view into the mapping.
    if (r.dtype == DType::F32 && contiguous && reinterpret_cast<uintptr_t>(base) % alignof(float) == 0)
        return Tensor::view(r.shape, reinterpret_cast<float*>(const_cast<uint8_t*>(base)), mapping_);

    Tensor t = Tensor::empty(r.shape);
    float* out = t.data();
    int64_t n = t.numel();
    if (contiguous) {
        for (int64_t i = 0; i < n; ++i) out[i] = load_element(base + static_cast<size_t>(i) * esize, r.dtype);
        return t;
    }
    // Strided: walk the index odometer, last dimension fastest.
    // Unsigned arithmetic: the step past the last element may leave the valid range harmlessly.
    std::vector<int64_t> idx(r.shape.size(), 0);
    uint64_t offset = 0;
    for (int64_t i = 0; i < n; ++i) {
        out[i] = load_element(base + offset * esize, r.dtype);
        for (size_t d = r.shape.size(); d-- > 0;) {
            uint64_t stride = static_cast<uint64_t>(r.stride[d]);
            offset += stride;
            if (++idx[d] < r.shape[d]) break;
            offset -= stride * static_cast<uint64_t>(r.shape[d]);
            idx[d] = 0;
        }
    }
    return t;
}

std::vector<std::string> Checkpoint::unused_keys() const {
    std::vector<std::string> out;
    for (const TensorRecord& r : records_)
        if (!used_->count(r.key)) out.push_back(r.key);
    return out;
}

DType Checkpoint::dominant_dtype() const {
    std::array<size_t, 3> count{};
    for (const TensorRecord& r : records_) ++count[static_cast<size_t>(r.dtype)];
    size_t best = 0;
    for (size_t d = 1; d < count.size(); ++d)
        if (count[d] > count[best]) best = d;
    return static_cast<DType>(best);
}

int64_t Checkpoint::parameter_count() const {
    int64_t n = 0;
    for (const TensorRecord& r : records_) n += shape_numel(r.shape);
    return n;
}

}  // namespace sam
