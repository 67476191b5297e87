// NumPy .npy files (format 1.0-3.0): the format embeddings and logits are exchanged in.
// Thread safety: the functions here keep no state between calls; any number of threads may
// call them at once on different arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sam/tensor.h"

namespace sam {

// A raw array as stored: dtype descr ("<f4", "|u1", ...), shape, little-endian bytes, C order.
struct NpyArray {
    std::string descr;
    Shape shape;
    std::vector<uint8_t> bytes;
};

// Reads an array. Throws sam::Error "<path>: <what>" for a malformed header (each dimension must
// be a non-negative integer, at most kNpyMaxDims of them), a big-endian or Fortran-order array,
// or data whose size is not exactly shape x item size (checked without overflow).
NpyArray read_npy(const std::string& path);
// The same from bytes in memory; `name` stands for the path in messages.
NpyArray decode_npy(const uint8_t* data, size_t size, const std::string& name);
// Reads a float32 array (float16/float64 are converted); throws naming the file otherwise.
Tensor load_npy(const std::string& path);
Tensor decode_npy_float(const uint8_t* data, size_t size, const std::string& name);
// Writes float32 C-order, atomically (temporary file + rename).
void save_npy(const std::string& path, const Tensor& t);
void save_npy(const std::string& path, const NpyArray& a);

// NumPy's own limit on dimensions (NPY_MAXDIMS in NumPy 2).
inline constexpr size_t kNpyMaxDims = 64;

}  // namespace sam
