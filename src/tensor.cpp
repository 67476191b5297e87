#include "sam/tensor.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "sam/error.h"

namespace sam {

std::string shape_str(const Shape& shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

int64_t shape_numel(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

namespace {
// 64-byte aligned so that vector kernels and the GEMM library see aligned rows.
std::shared_ptr<void> allocate_floats(int64_t n) {
    if (n < 0 || static_cast<uint64_t>(n) > (SIZE_MAX - 63) / sizeof(float))
        throw Error("tensor of " + std::to_string(n) + " elements cannot be allocated");
    size_t bytes = (static_cast<size_t>(n) * sizeof(float) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (!p) throw std::bad_alloc();
    return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}
}  // namespace

Tensor Tensor::empty(Shape shape) {
    Tensor t;
    t.owner_ = allocate_floats(shape_numel(shape));
    t.data_ = static_cast<float*>(t.owner_.get());
    t.shape_ = std::move(shape);
    return t;
}

Tensor::Tensor(Shape shape) {
    *this = empty(std::move(shape));
    std::memset(data_, 0, static_cast<size_t>(numel()) * sizeof(float));
}

Tensor Tensor::view(Shape shape, float* data, std::shared_ptr<void> owner) {
    Tensor t;
    t.shape_ = std::move(shape);
    t.data_ = data;
    t.owner_ = std::move(owner);
    return t;
}

Tensor Tensor::reshape(Shape shape) const {
    if (shape_numel(shape) != numel())
        throw Error("reshape: cannot view " + shape_str(shape_) + " as " + shape_str(shape));
    Tensor t = *this;
    t.shape_ = std::move(shape);
    return t;
}

Tensor Tensor::clone() const {
    Tensor t = empty(shape_);
    if (numel()) std::memcpy(t.data_, data_, static_cast<size_t>(numel()) * sizeof(float));
    return t;
}

}  // namespace sam
