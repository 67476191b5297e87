// Weights shared by every module, and the loader that fetches them by checkpoint key.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "ops/matmul.h"
#include "sam/tensor.h"

namespace sam {

struct Linear {     // <prefix>.weight (out, in), <prefix>.bias (out)
    Tensor w, b;
    ops::PackedLinear mm;  // the same weights, packed for the GEMM library on first use
    int64_t out_features() const { return w.dim(0); }
};
Linear make_linear(Tensor w, Tensor b);

struct LayerNorm {  // <prefix>.weight (C), <prefix>.bias (C)
    Tensor w, b;
};

// Where weights come from: a checkpoint, or random values for benchmarks.
class TensorSource {
  public:
    virtual ~TensorSource() = default;
    // The tensor under `key`, which must have shape `shape` (throws naming key and shapes).
    virtual Tensor tensor(const std::string& key, const Shape& shape) const = 0;
};

class CheckpointSource : public TensorSource {
  public:
    explicit CheckpointSource(const Checkpoint& ckpt) : ckpt_(ckpt) {}
    Tensor tensor(const std::string& key, const Shape& shape) const override { return ckpt_.tensor(key, shape); }

  private:
    const Checkpoint& ckpt_;
};

// Random weights of any requested shape, recorded in request order (so that a random model
// can be written out as a checkpoint). Matrices ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
// 1-D weights 1, 1-D biases 0.
class RandomSource : public TensorSource {
  public:
    explicit RandomSource(uint64_t seed) : state_(seed * 2654435761u + 1) {}
    Tensor tensor(const std::string& key, const Shape& shape) const override;
    const std::vector<std::pair<std::string, Tensor>>& made() const { return made_; }

  private:
    mutable uint64_t state_;
    mutable std::vector<std::pair<std::string, Tensor>> made_;
};

// Fetches tensors under a key prefix, checking each shape; errors name the full key.
class WeightLoader {
  public:
    WeightLoader(const TensorSource& src, std::string prefix) : src_(src), prefix_(std::move(prefix)) {}
    WeightLoader operator[](const std::string& name) const { return WeightLoader(src_, key(name)); }

    Tensor tensor(const std::string& name, const Shape& shape) const { return src_.tensor(key(name), shape); }
    Linear linear(int64_t out, int64_t in, bool bias = true) const;
    LayerNorm layer_norm(int64_t C) const;

  private:
    std::string key(const std::string& name) const { return prefix_.empty() ? name : prefix_ + "." + name; }
    const TensorSource& src_;
    std::string prefix_;
};

// y = epilogue(x W^T + b) over the last dimension.
Tensor linear(const Tensor& x, const Linear& l, ops::Epilogue e = ops::Epilogue::None);
// y += x W^T + b (residual fused into the GEMM); y has x's rows and l's out features; p is
// the GEMM's precision.
void linear_add(const Tensor& x, const Linear& l, Tensor& y, Precision p = Precision::F32);
// Layer norm over the last dimension, in place, or of x into y (y has x's shape).
void layer_norm_inplace(Tensor& x, const LayerNorm& n, float eps);
void layer_norm(const Tensor& x, Tensor& y, const LayerNorm& n, float eps);

}  // namespace sam
