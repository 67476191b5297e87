#include "modeling/common.h"

#include <cmath>

#include "ops/ops.h"
#include "sam/error.h"

namespace sam {

Linear make_linear(Tensor w, Tensor b) {
    Linear l;
    l.w = std::move(w);
    l.b = std::move(b);
    l.mm = ops::PackedLinear(l.w, l.b);
    return l;
}

Linear WeightLoader::linear(int64_t out, int64_t in, bool bias) const {
    Tensor w = tensor("weight", {out, in});
    return make_linear(w, bias ? tensor("bias", {out}) : Tensor());
}

LayerNorm WeightLoader::layer_norm(int64_t C) const { return {tensor("weight", {C}), tensor("bias", {C})}; }

Tensor linear(const Tensor& x, const Linear& l, ops::Epilogue e) {
    const int64_t K = x.dim(-1), M = x.numel() / K;
    if (K != l.w.dim(1))
        throw Error("linear: input " + shape_str(x.shape()) + " vs weight " + shape_str(l.w.shape()));
    Shape out_shape = x.shape();
    out_shape.back() = l.out_features();
    Tensor y = Tensor::empty(out_shape);
    l.mm.forward(x.data(), M, y.data(), e);
    return y;
}

void linear_add(const Tensor& x, const Linear& l, Tensor& y, Precision p) {
    const int64_t K = x.dim(-1), M = x.numel() / K;
    if (K != l.w.dim(1) || y.numel() != M * l.out_features())
        throw Error("linear_add: input " + shape_str(x.shape()) + ", weight " + shape_str(l.w.shape()) +
                    ", output " + shape_str(y.shape()));
    l.mm.forward(x.data(), M, y.data(), ops::Epilogue::Residual, -1, -1, p);
}

void layer_norm_inplace(Tensor& x, const LayerNorm& n, float eps) {
    const int64_t C = x.dim(-1);
    ops::layer_norm(x.data(), x.numel() / C, C, n.w.data(), n.b.data(), eps);
}

void layer_norm(const Tensor& x, Tensor& y, const LayerNorm& n, float eps) {
    if (y.shape() != x.shape())
        throw Error("layer norm: output " + shape_str(y.shape()) + " for input " + shape_str(x.shape()));
    const int64_t C = x.dim(-1);
    ops::layer_norm(x.data(), y.data(), x.numel() / C, C, n.w.data(), n.b.data(), eps);
}

}  // namespace sam

namespace sam {

Tensor RandomSource::tensor(const std::string& key, const Shape& shape) const {
    Tensor t = Tensor::empty(shape);
    const bool is_bias = key.size() >= 5 && key.compare(key.size() - 5, 5, ".bias") == 0;
    if (shape.size() == 1) {
        for (int64_t i = 0; i < t.numel(); ++i) t[i] = is_bias ? 0.0f : 1.0f;
    } else {
        const int64_t fan_in = t.numel() / shape[0];
        const float a = 1.0f / std::sqrt(static_cast<float>(fan_in > 0 ? fan_in : 1));
        for (int64_t i = 0; i < t.numel(); ++i) {
            state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;  // LCG, top 24 bits
            const float u = static_cast<float>(state_ >> 40) / 16777216.0f;
            t[i] = (2.0f * u - 1.0f) * a;
        }
    }
    made_.emplace_back(key, t);
    return t;
}

}  // namespace sam
