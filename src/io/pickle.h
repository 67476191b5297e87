// The part of Python's pickle format that torch.save uses for a state dict (`data.pkl`).
//
// Hand-written rather than taken from a library: a general unpickler executes arbitrary
// callables, and the C++ ones that exist either embed a Python interpreter or come with the
// whole of libtorch. We need a small, closed interpreter that only knows an (Ordered)dict of
// `_rebuild_tensor_v2` calls over persistent storages, rejects everything else by name, and is
// safe on hostile bytes (bounded, no recursion).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/checkpoint.h"

namespace sam {

// A tensor as the pickle describes it; the storage bytes live elsewhere in the archive.
struct PickledTensor {
    std::string key;                   // state dict key
    std::string storage_type;          // e.g. "torch.FloatStorage"
    std::optional<DType> dtype;        // empty when `storage_type` is not one we read
    std::string storage;               // storage name (file under <archive>/data/)
    int64_t storage_numel = 0;         // elements, as the persistent id declares
    int64_t storage_offset = 0;        // elements
    Shape shape;
    std::vector<int64_t> stride;       // elements
};

// Interprets `bytes` (the contents of `entry` in the archive at `path`) and returns the state
// dict's tensors in file order. Throws CheckpointError("<path>: <entry>: ...") for an unknown
// opcode (naming the byte and its offset), an unknown global, a malformed or truncated stream,
// or a top-level object that is not a dict of tensors (or {"model": dict of tensors}, as SAM 2
// checkpoints are saved). Unsupported storage types are not an error
// here: the checkpoint reports them naming the key.
std::vector<PickledTensor> parse_state_dict_pickle(std::span<const uint8_t> bytes, const std::string& path,
                                                   const std::string& entry);

// Writes protocol-2 pickles in the shape torch.save gives a state dict.
class StateDictPickler {
  public:
    StateDictPickler();
    // One `key -> _rebuild_tensor_v2(storage, 0, shape, contiguous stride, False, OrderedDict())`
    // entry; `storage_type` is e.g. "FloatStorage" (module torch).
    void add(const std::string& key, const std::string& storage_type, const std::string& storage,
             int64_t storage_numel, const Shape& shape);
    // Closes the dict and returns the pickle.
    std::vector<uint8_t> finish();

  private:
    void op(uint8_t code) { out_.push_back(code); }
    void put_memo();
    void get_memo(uint32_t index);
    void str(const std::string& s);         // a fresh string (memoised, never reused)
    void shared_str(const std::string& s);  // 'storage', 'cpu': sent once, then fetched from the memo
    void global(const std::string& module, const std::string& name);  // memoised
    void integer(int64_t v);
    void int_tuple(const std::vector<int64_t>& v);
    void new_ordered_dict();

    std::vector<uint8_t> out_;
    uint32_t next_memo_ = 0;
    std::map<std::string, uint32_t> shared_;  // memo index of shared strings and globals
    size_t pending_items_ = 0;
};

}  // namespace sam
