// Official PyTorch checkpoints (`torch.save(state_dict)`): a zip archive holding a pickle that
// describes every tensor and one raw storage file per tensor.
//
// The archive is memory-mapped; fp32 tensors whose storage is contiguous are handed out as
// views into the mapping (no copy), fp16/bf16 tensors are converted to fp32 copies.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sam/tensor.h"

namespace sam {

enum class DType { F32, F16, BF16 };
const char* dtype_name(DType d);  // "float32", "float16", "bfloat16"

// One entry of the state dict as the pickle describes it.
struct TensorRecord {
    std::string key;                 // e.g. "image_encoder.blocks.0.attn.qkv.weight"
    DType dtype = DType::F32;
    Shape shape;
    std::vector<int64_t> stride;     // in elements
    std::string storage;             // storage file name inside <archive>/data/
    int64_t storage_offset = 0;      // in elements
    const uint8_t* storage_data = nullptr;  // start of the storage in the mapping
    int64_t storage_numel = 0;       // elements in the storage
};

class Checkpoint {
  public:
    // Opens and validates the archive and pickle. Throws CheckpointError naming `path` (and the
    // key, where one is at fault) for: not a zip, the legacy pre-zip torch format, truncated
    // file, compressed entries, unknown pickle opcode or global, unsupported dtype, a tensor
    // whose storage is too small for its shape/stride.
    static Checkpoint open(const std::string& path);
    // The same from bytes already in memory (fuzzing); `name` stands for the path in
    // messages. fp32 views alias `bytes`, which the checkpoint keeps alive.
    static Checkpoint from_memory(std::shared_ptr<std::vector<uint8_t>> bytes, std::string name);

    const std::string& path() const { return path_; }
    const std::vector<TensorRecord>& records() const { return records_; }  // file order
    bool contains(const std::string& key) const;
    const TensorRecord& record(const std::string& key) const;  // throws "missing key"

    // The tensor as fp32, checked against `expected` shape (throws naming key, got, expected).
    // Marks the key as used.
    Tensor tensor(const std::string& key, const Shape& expected) const;
    // The tensor as fp32 in whatever shape it has. Marks the key as used.
    Tensor tensor(const std::string& key) const;
    // Keys never fetched with tensor(), in file order: the loader reports them as unexpected.
    // (The used-key set is shared by copies of a Checkpoint and is not thread-safe.)
    std::vector<std::string> unused_keys() const;
    // The dtype most tensors have (for `sam info`).
    DType dominant_dtype() const;
    int64_t parameter_count() const;

  private:
    static Checkpoint parse(std::string path, const uint8_t* data, size_t size, std::shared_ptr<void> owner);

    std::string path_;
    std::shared_ptr<void> mapping_;  // keeps the mmap alive for views
    std::vector<TensorRecord> records_;
    std::unordered_map<std::string, size_t> index_;  // key -> position in records_
    std::shared_ptr<std::set<std::string>> used_ = std::make_shared<std::set<std::string>>();
};

// Writes `tensors` in the official format (zip of `<archive_name>/data.pkl`, `data/<i>`,
// `version`; stored entries, 64-byte aligned payloads, protocol-2 pickle of an OrderedDict of
// `torch._utils._rebuild_tensor_v2` calls), as torch.save does. fp32 tensors are written as
// FloatStorage, or converted to HalfStorage/BFloat16Storage when `dtype` asks. Atomic.
void write_checkpoint(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      DType dtype = DType::F32, const std::string& archive_name = "archive");

}  // namespace sam
