#include "ops/matmul.h"

#include <dnnl.hpp>
#include <tuple>

#include "sam/error.h"

namespace sam::ops {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

Precision g_precision = Precision::F32;

}  // namespace

void set_precision(Precision p) { g_precision = p; }

bool bf16_supported() {
    static const bool supported = [] {
        try {
            memory::desc s({64, 64}, dt::bf16, tag::ab), w({64, 64}, dt::bf16, tag::any), d({64, 64}, dt::f32, tag::ab);
            dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(s, w, d), cpu_engine());
            return true;
        } catch (const dnnl::error&) {
            return false;
        }
    }();
    return supported;
}
Precision precision() { return g_precision; }

struct PackedLinear::Entry {
    dnnl::matmul prim;
    memory::desc src_md, dst_md;
    memory weights;  // packed
    memory bias;
};

PackedLinear::PackedLinear(Tensor w, Tensor b) : w_(std::move(w)), b_(std::move(b)) {}

void PackedLinear::forward(const float* x, int64_t M, float* y, Epilogue e, int64_t lda, int64_t ldy) const {
    const int64_t N = out_features(), K = in_features();
    if (lda < 0) lda = K;
    if (ldy < 0) ldy = N;
    if (M == 0) return;
    const int prec = static_cast<int>(g_precision);
    std::shared_ptr<Entry> entry;
    {
        std::lock_guard<std::mutex> lock(cache_->mutex);
        auto key = std::make_tuple(M, lda, ldy, static_cast<int>(e), prec);
        auto it = cache_->entries.find(key);
        if (it != cache_->entries.end()) {
            entry = it->second;
        } else {
            entry = std::make_shared<Entry>();
            dnnl::engine& eng = cpu_engine();
            entry->src_md = memory::desc({M, K}, dt::f32, memory::dims{lda, 1});
            entry->dst_md = memory::desc({M, N}, dt::f32, memory::dims{ldy, 1});
            const dt wdt = g_precision == Precision::BF16 ? dt::bf16 : dt::f32;
            memory::desc src_any = g_precision == Precision::BF16 ? memory::desc({M, K}, dt::bf16, tag::ab)
                                                                  : entry->src_md;
            memory::desc w_any({K, N}, wdt, tag::any);
            memory::desc b_md({1, N}, dt::f32, tag::ab);
            dnnl::post_ops po;
            if (e == Epilogue::Gelu) po.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
            if (e == Epilogue::Relu) po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
            if (e == Epilogue::Residual) po.append_sum(1.0f);
            dnnl::primitive_attr attr;
            attr.set_post_ops(po);
            dnnl::matmul::desc d(src_any, w_any, entry->dst_md);
            // fp32: the (N, K) row-major weight is used in place as (K, N) column-major; the GEMM
            // packs panels itself, and a packed copy would double the weights' memory for no
            // measured gain. bf16: weights are converted once into the layout the primitive wants.
            memory::desc user_w_md({K, N}, dt::f32, tag::ba);
            if (g_precision == Precision::F32) w_any = user_w_md;
            d = b_.defined() ? dnnl::matmul::desc(src_any, w_any, b_md, entry->dst_md)
                             : dnnl::matmul::desc(src_any, w_any, entry->dst_md);
            dnnl::matmul::primitive_desc pd(d, attr, eng);
            entry->src_md = pd.src_desc();
            entry->prim = dnnl::matmul(pd);
            memory user_w(user_w_md, eng, const_cast<float*>(w_.data()));
            dnnl::stream s(eng);
            if (pd.weights_desc() == user_w_md) {
                entry->weights = user_w;
            } else {
                entry->weights = memory(pd.weights_desc(), eng);
                dnnl::reorder(user_w, entry->weights).execute(s, user_w, entry->weights);
            }
            if (b_.defined()) entry->bias = memory(b_md, eng, const_cast<float*>(b_.data()));
            s.wait();
            cache_->entries.emplace(key, entry);
        }
    }
    dnnl::engine& eng = cpu_engine();
    dnnl::stream s(eng);
    memory src_user({{M, K}, dt::f32, memory::dims{lda, 1}}, eng, const_cast<float*>(x));
    memory src = src_user;
    if (entry->src_md != src_user.get_desc()) {  // bf16: convert activations once per call
        src = memory(entry->src_md, eng);
        dnnl::reorder(src_user, src).execute(s, src_user, src);
    }
    memory dst(entry->dst_md, eng, y);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, entry->weights}, {DNNL_ARG_DST, dst}};
    if (b_.defined()) args[DNNL_ARG_BIAS] = entry->bias;
    entry->prim.execute(s, args);
    s.wait();
}

}  // namespace sam::ops
