// A minimal dense float32 tensor: row-major, contiguous, shared storage.
// Storage is either owned (heap) or a view kept alive by an owner (e.g. a memory-mapped
// checkpoint), so official fp32 weights are used in place without a copy.
//
// A Tensor is a handle, as torch.Tensor and cv::Mat are: copies and reshape() share the
// elements, and const is a promise about this handle only (a const Tensor gives read-only
// data(), but another handle on the same storage may write). clone() makes an independent copy;
// every Tensor the library returns owns its storage alone unless its documentation says
// otherwise.
//
// Thread safety: as for a shared buffer: any number of threads may read one storage at once;
// writing needs the writer to be the only user of that storage.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace sam {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "(1, 64, 64, 768)"
int64_t shape_numel(const Shape& shape);

class Tensor {
  public:
    Tensor() = default;
    // Zero-initialised tensor of the given shape.
    explicit Tensor(Shape shape);
    Tensor(std::initializer_list<int64_t> shape) : Tensor(Shape(shape)) {}
    // A view onto memory owned elsewhere; `owner` keeps it alive.
    static Tensor view(Shape shape, float* data, std::shared_ptr<void> owner);
    // Uninitialised tensor (for outputs that are fully overwritten).
    static Tensor empty(Shape shape);

    float* data() { return data_; }
    const float* data() const { return data_; }
    const Shape& shape() const { return shape_; }
    int64_t dim(int i) const { return shape_[static_cast<size_t>(i < 0 ? i + ndim() : i)]; }
    int ndim() const { return static_cast<int>(shape_.size()); }
    int64_t numel() const { return shape_numel(shape_); }
    bool defined() const { return data_ != nullptr; }

    // A handle on the same storage with a new shape (element count must match).
    Tensor reshape(Shape shape) const;
    // Deep copy.
    Tensor clone() const;

    float& operator[](int64_t i) { return data_[i]; }
    float operator[](int64_t i) const { return data_[i]; }

  private:
    Shape shape_;
    float* data_ = nullptr;
    std::shared_ptr<void> owner_;
};

}  // namespace sam
