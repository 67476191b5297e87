#include "ops/matmul.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <new>
#include <dnnl.hpp>
#include <string>
#include <tuple>

#include "io/file_pages.h"
#include "ops/cpu.h"
#include "ops/vector_math.h"
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

// Whether oneDNN has a non-reference matmul for these data types here (a reference
// implementation exists for some types on every CPU but is far slower than fp32).
bool has_fast_matmul(dt src, dt wei) {
    try {
        memory::desc s({64, 64}, src, tag::ab), w({64, 64}, wei, tag::any), d({64, 64}, dt::f32, tag::ab);
        dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(s, w, d), cpu_engine());
        return std::string(pd.impl_info_str()).rfind("ref", 0) != 0;
    } catch (const dnnl::error&) {
        return false;
    }
}

constexpr int kParallelMin = 1 << 16;

// Dynamic quantisation of x (M, K; row stride lda) to u8: x ~ scale * (q - zero_point), with the
// range widened to include 0 so that zero is exact.
struct Quantised {
    float scale;
    int32_t zero_point;
};

// Built per instruction set (SAM_VECTOR_CLONES), with the range as an OpenMP simd reduction: a
// plain std::min / std::max loop stays scalar (float min is not associative for the compiler),
// and this pass ran at 7% of the int8 encoder's time.
SAM_VECTOR_CLONES
Quantised quantise_u8(const float* x, int64_t M, int64_t K, int64_t lda, uint8_t* q) {
    float lo = 0.0f, hi = 0.0f;
#pragma omp parallel for reduction(min : lo) reduction(max : hi) if (M * K >= kParallelMin)
    for (int64_t m = 0; m < M; ++m) {
        const float* r = x + m * lda;
#pragma omp simd reduction(min : lo) reduction(max : hi)
        for (int64_t k = 0; k < K; ++k) {
            lo = r[k] < lo ? r[k] : lo;
            hi = r[k] > hi ? r[k] : hi;
        }
    }
    if (!(hi > lo) || !std::isfinite(hi - lo)) {  // all zeros (or non-finite input): q = 0
        std::fill_n(q, M * K, uint8_t{0});
        return {1.0f, 0};
    }
    const float scale = (hi - lo) / 255.0f, inv = 1.0f / scale;
    const int32_t zp = std::clamp(static_cast<int32_t>(std::lround(-lo * inv)), 0, 255);
    const float zpf = static_cast<float>(zp);
#pragma omp parallel for if (M * K >= kParallelMin)
    for (int64_t m = 0; m < M; ++m) {
        const float* r = x + m * lda;
        uint8_t* o = q + m * K;
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) {
            const float v = std::clamp(r[k] * inv + zpf, 0.0f, 255.0f);
            o[k] = static_cast<uint8_t>(static_cast<int32_t>(v + 0.5f));  // v >= 0: rounds half up
        }
    }
    return {scale, zp};
}

// Per-output-channel symmetric quantisation of w (N, K) to [-levels, levels].
void quantise_weights(const float* w, int64_t N, int64_t K, int levels, std::vector<int8_t>& q,
                      std::vector<float>& scale, std::vector<float>& sum) {
    q.resize(static_cast<size_t>(N * K));
    scale.resize(static_cast<size_t>(N));
    sum.resize(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) {
        const float* r = w + n * K;
        float amax = 0.0f;
        for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(r[k]));
        const float s = amax > 0.0f ? amax / static_cast<float>(levels) : 1.0f;
        scale[n] = s;
        int64_t total = 0;
        for (int64_t k = 0; k < K; ++k) {
            q[n * K + k] = static_cast<int8_t>(std::clamp<long>(std::lround(r[k] / s), -levels, levels));
            total += q[n * K + k];
        }
        sum[n] = static_cast<float>(total);
    }
}

}  // namespace

std::string gemm_library_isa() {
    switch (dnnl::get_effective_cpu_isa()) {
        case dnnl::cpu_isa::sse41: return "sse41";
        case dnnl::cpu_isa::avx: return "avx";
        case dnnl::cpu_isa::avx2: return "avx2";
        case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
        case dnnl::cpu_isa::avx512_core: return "avx512_core";
        case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
        case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
        case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
        default: return "other";
    }
}

bool bf16_supported() {
    static const bool supported = has_fast_matmul(dt::bf16, dt::bf16);
    return supported;
}

bool int8_supported() {
    static const bool supported = has_fast_matmul(dt::u8, dt::s8);
    return supported;
}

int int8_weight_levels_for(const std::string& gemm_isa) {
    // oneDNN's sets with VNNI; "avx512_core" alone (Skylake-SP) and "avx2" have none.
    for (const char* vnni : {"avx2_vnni", "avx512_core_vnni", "avx512_core_bf16", "avx512_core_amx"})
        if (gemm_isa == vnni) return 127;
    return 63;
}

int int8_weight_levels() {
    static const int levels = int8_weight_levels_for(gemm_library_isa());
    return levels;
}

double matmul_peak_gflops(Precision p, int64_t M, int64_t N, int64_t K, int reps) {
    const dt sdt = p == Precision::BF16 ? dt::bf16 : p == Precision::INT8 ? dt::u8 : dt::f32;
    const dt wdt = p == Precision::BF16 ? dt::bf16 : p == Precision::INT8 ? dt::s8 : dt::f32;
    dnnl::engine& eng = cpu_engine();
    dnnl::stream s(eng);
    memory::desc src_md({M, K}, sdt, tag::ab), w_md({K, N}, wdt, tag::any), dst_md({M, N}, dt::f32, tag::ab);
    dnnl::primitive_attr attr;
    if (p == Precision::INT8) attr.set_output_scales(0, {0.01f});
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, w_md, dst_md), attr, eng);
    memory src(src_md, eng), w(pd.weights_desc(), eng), dst(dst_md, eng);
    // Normal numbers (denormals would slow some CPUs): 0.5 in f32 and bf16, 1 in int8.
    auto fill = [&](memory& m, size_t bytes) {
        if (p == Precision::F32) std::fill_n(static_cast<float*>(m.get_data_handle()), bytes / 4, 0.5f);
        else if (p == Precision::BF16) std::fill_n(static_cast<uint16_t*>(m.get_data_handle()), bytes / 2, uint16_t{0x3f00});
        else std::fill_n(static_cast<uint8_t*>(m.get_data_handle()), bytes, uint8_t{1});
    };
    fill(src, src_md.get_size());
    fill(w, pd.weights_desc().get_size());
    dnnl::matmul prim(pd);
    double best = 0.0, timed = 0.0;
    for (int r = 0; r <= reps || timed < kPeakMinSeconds; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        prim.execute(s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst}});
        s.wait();
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r == 0) continue;  // the first run warms up
        best = std::max(best, 2.0 * static_cast<double>(M * N * K) / sec / 1e9);
        timed += sec;
    }
    return best;
}

// The scratchpad of one primitive execution. Primitives are made with a user-managed
// scratchpad so that one primitive may run on several threads at once (the decoder's per-prompt
// loop, concurrent server requests): each executing thread passes its own buffer. With oneDNN's
// default (library-managed, one per primitive) concurrent executions share that buffer, which
// its AVX-512 kernels use, and overwrite each other's partial results.
static memory thread_scratchpad(const memory::desc& md) {
    struct Aligned {
        void operator()(void* p) const { std::free(p); }
    };
    thread_local std::unique_ptr<void, Aligned> buffer;
    thread_local size_t capacity = 0;
    const size_t need = md.get_size();
    if (need > capacity) {
        buffer.reset();
        const size_t bytes = (need + 63) / 64 * 64;
        buffer.reset(std::aligned_alloc(64, bytes));
        if (!buffer) throw std::bad_alloc();
        capacity = bytes;
    }
    return memory(md, cpu_engine(), buffer.get());
}

struct PackedLinear::Entry {
    dnnl::matmul prim;
    memory::desc src_md, dst_md, scratchpad_md;
    memory weights;  // in the primitive's layout: the caller's fp32 weights in place, or a Converted copy
    memory bias;
    Precision precision = Precision::F32;
};

struct PackedLinear::Converted {
    memory weights;
};

// fp32 calls with at least this many rows let the library choose its weights' layout (a
// converted copy, made once); smaller ones use the caller's (N, K) weights in place. On AVX-512
// the library's fp32 matmul otherwise copies weight panels into its own layout on every call:
// on vit_b's encoder (4096 rows, 2 threads, Zen 4) that copy was 4% of the time, and the
// converted layout ran the four linear layers 1-6% faster (docs/BENCHMARKS.md). The library's
// AVX2 GEMM ran the same with either layout, so there no copy is made. Below this many rows
// (the decoder's tokens) the copy is not worth its memory.
constexpr int64_t kConvertF32WeightsRows = 1024;

PackedLinear::PackedLinear(Tensor w, Tensor b) : w_(std::move(w)), b_(std::move(b)) {}

size_t PackedLinear::converted_weight_copies() const {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    return cache_->converted.size();
}

void PackedLinear::forward(const float* x, int64_t M, float* y, Epilogue e, int64_t lda, int64_t ldy,
                           Precision prec) const {
    const int64_t N = out_features(), K = in_features();
    if (lda < 0) lda = K;
    if (ldy < 0) ldy = N;
    if (M == 0) return;
    if ((prec == Precision::BF16 && !bf16_supported()) || (prec == Precision::INT8 && !int8_supported()))
        throw Error(std::string("matmul: ") + to_string(prec) + " asked for on a CPU without fast instructions for it");
    std::shared_ptr<Entry> entry;
    {
        std::lock_guard<std::mutex> lock(cache_->mutex);
        auto key = std::make_tuple(M, lda, ldy, static_cast<int>(e), static_cast<int>(prec));
        auto it = cache_->entries.find(key);
        if (it != cache_->entries.end()) {
            entry = it->second;
        } else {
            entry = std::make_shared<Entry>();
            entry->precision = prec;
            dnnl::engine& eng = cpu_engine();
            entry->dst_md = memory::desc({M, N}, dt::f32, memory::dims{ldy, 1});
            memory::desc src_md({M, K}, dt::f32, memory::dims{lda, 1});
            // fp32: the (N, K) row-major weight is (K, N) column-major, used in place below
            // kConvertF32WeightsRows rows. bf16 / int8: weights are converted once into the
            // primitive's layout.
            memory::desc w_md({K, N}, dt::f32, M >= kConvertF32WeightsRows ? tag::any : tag::ba);
            memory::desc b_md({1, N}, dt::f32, tag::ab);
            dnnl::primitive_attr attr;
            attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
            if (prec == Precision::BF16) {
                src_md = memory::desc({M, K}, dt::bf16, tag::ab);
                w_md = memory::desc({K, N}, dt::bf16, tag::any);
            } else if (prec == Precision::INT8) {
                src_md = memory::desc({M, K}, dt::u8, tag::ab);
                w_md = memory::desc({K, N}, dt::s8, tag::any);
                attr.set_output_scales(1 << 1, {DNNL_RUNTIME_F32_VAL});  // per output channel
            }
            dnnl::post_ops po;
            if (e == Epilogue::Gelu) po.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
            if (e == Epilogue::Relu) po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
            if (e == Epilogue::Residual) po.append_sum(1.0f);
            attr.set_post_ops(po);
            // int8 always takes a bias argument: the zero-point-free form of the bias is per call.
            const bool with_bias = b_.defined() || prec == Precision::INT8;
            auto make_pd = [&](const memory::desc& weights_md) {
                dnnl::matmul::desc d = with_bias ? dnnl::matmul::desc(src_md, weights_md, b_md, entry->dst_md)
                                                 : dnnl::matmul::desc(src_md, weights_md, entry->dst_md);
                return dnnl::matmul::primitive_desc(d, attr, eng);
            };
            dnnl::matmul::primitive_desc pd = make_pd(w_md);
            // Only the batch-reduce kernels ("brg:...") copy weight panels per call; the others
            // (the AVX2 GEMM) gained nothing from a converted copy, so they keep the weights in place.
            if (prec == Precision::F32 && std::string(pd.impl_info_str()).rfind("brg", 0) != 0)
                pd = make_pd(memory::desc({K, N}, dt::f32, tag::ba));
            entry->src_md = pd.src_desc();
            entry->scratchpad_md = pd.scratchpad_desc();
            entry->prim = dnnl::matmul(pd);
            dnnl::stream s(eng);
            memory user_w;
            if (prec == Precision::INT8) {
                if (cache_->w_int8.empty()) quantise_weights(w_.data(), N, K, int8_weight_levels(), cache_->w_int8, cache_->w_scale, cache_->w_sum);
                user_w = memory({{K, N}, dt::s8, tag::ba}, eng, cache_->w_int8.data());
            } else {
                user_w = memory({{K, N}, dt::f32, tag::ba}, eng, const_cast<float*>(w_.data()));
            }
            if (pd.weights_desc() == user_w.get_desc()) {
                entry->weights = user_w;
            } else {
                auto same_layout = [&](const std::shared_ptr<Converted>& c) {
                    return c->weights.get_desc() == pd.weights_desc();
                };
                auto found = std::find_if(cache_->converted.begin(), cache_->converted.end(), same_layout);
                if (found == cache_->converted.end()) {
                    auto c = std::make_shared<Converted>();
                    c->weights = memory(pd.weights_desc(), eng);
                    dnnl::reorder(user_w, c->weights).execute(s, user_w, c->weights);
                    s.wait();
                    // The fp32 weights now have a converted copy: the pages of theirs that are
                    // a mapped checkpoint's go back to the page cache, so that the layer is not
                    // resident twice (vit_b segment-everything peak RSS: 1.45 GiB with both).
                    if (prec == Precision::F32) drop_file_pages(w_.data(), static_cast<size_t>(w_.numel()) * sizeof(float));
                    found = cache_->converted.insert(cache_->converted.end(), std::move(c));
                }
                entry->weights = (*found)->weights;
            }
            if (b_.defined()) entry->bias = memory(b_md, eng, const_cast<float*>(b_.data()));
            s.wait();
            cache_->entries.emplace(key, entry);
        }
    }
    if (entry->precision == Precision::INT8) return forward_int8(*entry, x, M, y, lda);
    dnnl::engine& eng = cpu_engine();
    dnnl::stream s(eng);
    memory src_user({{M, K}, dt::f32, memory::dims{lda, 1}}, eng, const_cast<float*>(x));
    memory src = src_user;
    if (entry->src_md != src_user.get_desc()) {  // bf16: convert activations once per call
        // into this thread's buffer, kept between calls: a fresh one (up to 25 MB for vit_b's
        // MLP) would page-fault on every first touch, at every layer.
        thread_local std::vector<uint16_t> converted;
        converted.resize(std::max(converted.size(), entry->src_md.get_size() / sizeof(uint16_t) + 1));
        src = memory(entry->src_md, eng, converted.data());
        dnnl::reorder(src_user, src).execute(s, src_user, src);
    }
    memory dst(entry->dst_md, eng, y);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, entry->weights}, {DNNL_ARG_DST, dst}};
    if (b_.defined()) args[DNNL_ARG_BIAS] = entry->bias;
    args[DNNL_ARG_SCRATCHPAD] = thread_scratchpad(entry->scratchpad_md);
    entry->prim.execute(s, args);
    s.wait();
}

void PackedLinear::forward_int8(const Entry& entry, const float* x, int64_t M, float* y, int64_t lda) const {
    const int64_t N = out_features(), K = in_features();
    // Per-thread scratch, kept between calls: a fresh multi-megabyte buffer per call would
    // page-fault on every first touch.
    thread_local std::vector<uint8_t> q;
    thread_local std::vector<float> out_scale, bias;
    // Grown only: the layers alternate between K = C and 4C inputs, and growing back after a
    // shrink would zero-fill the difference (9 MB for vit_b's MLP) on every call.
    if (q.size() < static_cast<size_t>(M * K)) q.resize(static_cast<size_t>(M * K));
    out_scale.resize(static_cast<size_t>(N));
    bias.resize(static_cast<size_t>(N));
    Quantised qa = quantise_u8(x, M, K, lda, q.data());
    // y = sx * sw[n] * (sum_k (q - zp) qw[n, k] + b[n] / (sx * sw[n])): the primitive adds the
    // bias before scaling, so it gets the bias divided by the output scale, and the zero point's
    // share, zp * sum_k qw[n, k], is folded into that bias too. With the zero point given to the
    // primitive instead, oneDNN takes a slower path: the four linear layers ran 4-13% below
    // this form (bench_encoder_parts-like timing, 2 threads, Zen 4).
    // The folded term is an integer, exact in the float bias below 2^24 (the usual case: the
    // weight sums are sums of +-127 that mostly cancel); above, it rounds by at most 2^-24 of
    // itself, a few accumulator units, where rounding the activations to 8 bits moves the
    // accumulator by hundreds (about 0.3 * sqrt(K) * 127 / 2).
    const std::vector<float>& ws = cache_->w_scale;
    const float zp = static_cast<float>(qa.zero_point);
    for (int64_t n = 0; n < N; ++n) {
        out_scale[n] = qa.scale * ws[n];
        bias[n] = (b_.defined() ? b_.data()[n] / out_scale[n] : 0.0f) - zp * cache_->w_sum[n];
    }
    dnnl::engine& eng = cpu_engine();
    dnnl::stream s(eng);
    memory src(entry.src_md, eng, q.data());
    memory dst(entry.dst_md, eng, y);
    memory scale_mem({{N}, dt::f32, tag::a}, eng, out_scale.data());
    memory bias_mem({{1, N}, dt::f32, tag::ab}, eng, bias.data());
    entry.prim.execute(s, {{DNNL_ARG_SRC, src},
                           {DNNL_ARG_WEIGHTS, entry.weights},
                           {DNNL_ARG_BIAS, bias_mem},
                           {DNNL_ARG_DST, dst},
                           {DNNL_ARG_ATTR_OUTPUT_SCALES, scale_mem},
                           {DNNL_ARG_SCRATCHPAD, thread_scratchpad(entry.scratchpad_md)}});
    s.wait();
}

}  // namespace sam::ops
