// NumPy .npy files (format 1.0-3.0): the format embeddings and logits are exchanged in.
#pragma once

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

NpyArray read_npy(const std::string& path);
// Reads a float32 array (float16/float64 are converted); throws naming the file otherwise.
Tensor load_npy(const std::string& path);
// Writes float32 C-order, atomically (temporary file + rename).
void save_npy(const std::string& path, const Tensor& t);
void save_npy(const std::string& path, const NpyArray& a);

}  // namespace sam
