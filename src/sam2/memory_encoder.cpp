// SAM 2's memory encoder (sam2/modeling/memory_encoder.py: mask downsampler, pixel-feature
// projection, ConvNeXt-style fuser, output projection) and the loading of every weight of the
// video model that the image path does not read.
#include <bit>
#include <cmath>
#include <cstring>

#include "ops/ops.h"
#include "sam/error.h"
#include "sam2/video_model.h"

namespace sam {

namespace {

constexpr float kLayerNorm2dEps = 1e-6f;

Linear conv1x1(const WeightLoader& w, int64_t out, int64_t in) {
    return make_linear(w.tensor("weight", {out, in, 1, 1}).reshape({out, in}), w.tensor("bias", {out}));
}

// Conv2d on a channels-last (H*W, Cin) map -> (Ho*Wo, Cout), through patches (Cin, ky, kx).
Tensor conv2d(const Conv2dWeights& c, const float* x, int64_t H, int64_t W, int64_t& Ho, int64_t& Wo) {
    Ho = (H + 2 * c.pad - c.k) / c.stride + 1;
    Wo = (W + 2 * c.pad - c.k) / c.stride + 1;
    const int64_t K = static_cast<int64_t>(c.in) * c.k * c.k;
    Tensor patches = Tensor::empty({Ho * Wo, K});
    const int64_t oh = Ho, ow = Wo;
#pragma omp parallel for
    for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
            float* p = patches.data() + (oy * ow + ox) * K;
            for (int ci = 0; ci < c.in; ++ci)
                for (int ky = 0; ky < c.k; ++ky)
                    for (int kx = 0; kx < c.k; ++kx) {
                        const int64_t iy = oy * c.stride - c.pad + ky, ix = ox * c.stride - c.pad + kx;
                        *p++ = (iy < 0 || iy >= H || ix < 0 || ix >= W) ? 0.0f : x[(iy * W + ix) * c.in + ci];
                    }
        }
    return linear(patches, c.l);
}

// Depthwise k x k conv (padding k/2) on channels-last (side*side, C).
Tensor depthwise_conv(const CXBlockWeights& b, const Tensor& x, int64_t side) {
    const int64_t C = x.dim(1), k = b.k, pad = k / 2;
    Tensor y = Tensor::empty({side * side, C});
#pragma omp parallel for
    for (int64_t oy = 0; oy < side; ++oy)
        for (int64_t ox = 0; ox < side; ++ox) {
            float* d = y.data() + (oy * side + ox) * C;
            for (int64_t c = 0; c < C; ++c) d[c] = b.dw_b[c];
            for (int64_t ky = 0; ky < k; ++ky) {
                const int64_t iy = oy - pad + ky;
                if (iy < 0 || iy >= side) continue;
                for (int64_t kx = 0; kx < k; ++kx) {
                    const int64_t ix = ox - pad + kx;
                    if (ix < 0 || ix >= side) continue;
                    const float* s = x.data() + (iy * side + ix) * C;
                    for (int64_t c = 0; c < C; ++c) d[c] += s[c] * b.dw_w[c * k * k + ky * k + kx];
                }
            }
        }
    return y;
}

template <class F>
int count_while(F exists) {
    int n = 0;
    while (exists(n)) ++n;
    return n;
}

}  // namespace

float round_to_bf16(float x) {
    uint32_t u = std::bit_cast<uint32_t>(x);
    if (std::isnan(x)) return std::bit_cast<float>((u | 0x00400000u) & 0xffff0000u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return std::bit_cast<float>(u & 0xffff0000u);
}

Tensor chw_from_rows(const Tensor& rows, int64_t H, int64_t W) {
    const int64_t C = rows.dim(1), P = H * W;
    Tensor y = Tensor::empty({C, H, W});
    for (int64_t p = 0; p < P; ++p)
        for (int64_t c = 0; c < C; ++c) y[c * P + p] = rows[p * C + c];
    return y;
}

Tensor rows_from_chw(const Tensor& chw) {
    const int64_t C = chw.dim(chw.ndim() - 3), P = chw.dim(-2) * chw.dim(-1);
    Tensor y = Tensor::empty({P, C});
    for (int64_t p = 0; p < P; ++p)
        for (int64_t c = 0; c < C; ++c) y[p * C + c] = chw[c * P + p];
    return y;
}

Sam2VideoConfig sam2_video_detect_config(const std::function<const Shape*(const std::string&)>& shape_of,
                                         const Sam2Config& image, const std::string& path) {
    Sam2VideoConfig v;
    const std::string tpos = "maskmem_tpos_enc";
    const Shape* t = shape_of(tpos);
    if (!t || t->size() != 4 || (*t)[0] < 1 || (*t)[3] < 1)
        throw CheckpointError(path, tpos, "missing or ill-shaped: not a SAM 2 video model");
    v.num_maskmem = static_cast<int>((*t)[0]);
    v.mem_dim = static_cast<int>((*t)[3]);
    auto has = [&](const std::string& k) { return shape_of(k) != nullptr; };
    const std::string md = "memory_encoder.mask_downsampler.encoder.";
    v.mask_down_layers = count_while([&](int i) { return has(md + std::to_string(3 * i + 1) + ".weight"); });
    if (v.mask_down_layers != 1 && v.mask_down_layers != 2 && v.mask_down_layers != 4)
        throw CheckpointError(path, md + "1.weight", "mask downsampler layers: expected 1, 2 or 4");
    v.fuser_layers = count_while([&](int i) { return has("memory_encoder.fuser.layers." + std::to_string(i) + ".dwconv.weight"); });
    v.attn_layers = count_while([&](int i) { return has("memory_attention.layers." + std::to_string(i) + ".norm1.weight"); });
    if (v.attn_layers < 1) throw CheckpointError(path, "memory_attention.layers.0.norm1.weight", "missing key");
    const std::string l1 = "memory_attention.layers.0.linear1.weight";
    const Shape* ff = shape_of(l1);
    if (!ff || ff->size() != 2 || (*ff)[1] != image.d_model)
        throw CheckpointError(path, l1, "missing or not (dim_feedforward, " + std::to_string(image.d_model) + ")");
    v.dim_feedforward = static_cast<int>((*ff)[0]);
    if (image.d_model % v.mem_dim != 0)
        throw CheckpointError(path, tpos, "memory width " + std::to_string(v.mem_dim) + " does not divide " +
                                              std::to_string(image.d_model));
    return v;
}

void load_sam2_video_weights(Sam2VideoWeights& v, const TensorSource& src, const Sam2Config& image) {
    const Sam2VideoConfig& vc = v.config;
    const int64_t C = image.d_model, M = vc.mem_dim;
    // Memory encoder.
    MemoryEncoderWeights& e = v.memory_encoder;
    WeightLoader me(src, "memory_encoder");
    const int n = vc.mask_down_layers;
    const int stride = n == 1 ? 16 : n == 2 ? 4 : 2;
    int64_t in = 1;
    for (int i = 0; i < n; ++i) {
        const int64_t out = in * stride * stride;
        WeightLoader conv = me["mask_downsampler.encoder." + std::to_string(3 * i)];
        Conv2dWeights c;
        c.in = static_cast<int>(in), c.out = static_cast<int>(out), c.k = 3, c.stride = stride, c.pad = 1;
        c.l = make_linear(conv.tensor("weight", {out, in, 3, 3}).reshape({out, in * 9}), conv.tensor("bias", {out}));
        e.down.push_back(std::move(c));
        e.down_norm.push_back(me["mask_downsampler.encoder." + std::to_string(3 * i + 1)].layer_norm(out));
        in = out;
    }
    e.down_out = conv1x1(me["mask_downsampler.encoder." + std::to_string(3 * n)], C, in);
    e.pix_feat_proj = conv1x1(me["pix_feat_proj"], C, C);
    for (int i = 0; i < vc.fuser_layers; ++i) {
        WeightLoader f = me["fuser.layers." + std::to_string(i)];
        CXBlockWeights b;
        b.k = 7;
        b.dw_w = f["dwconv"].tensor("weight", {C, 1, 7, 7}).reshape({C, 49});
        b.dw_b = f["dwconv"].tensor("bias", {C});
        b.norm = f["norm"].layer_norm(C);
        b.pw1 = f["pwconv1"].linear(4 * C, C);
        b.pw2 = f["pwconv2"].linear(C, 4 * C);
        b.gamma = f.tensor("gamma", {C});
        e.fuser.push_back(std::move(b));
    }
    if (M != C) e.out_proj = conv1x1(me["out_proj"], M, C);
    // Memory attention.
    WeightLoader ma(src, "memory_attention");
    for (int i = 0; i < vc.attn_layers; ++i) {
        WeightLoader l = ma["layers." + std::to_string(i)];
        MemoryAttentionLayerWeights w;
        auto attn = [&](const WeightLoader& a, int64_t kv_in) {
            RoPEAttentionWeights r;
            r.q = a["q_proj"].linear(C, C);
            r.k = a["k_proj"].linear(C, kv_in);
            r.v = a["v_proj"].linear(C, kv_in);
            r.out = a["out_proj"].linear(C, C);
            r.num_heads = vc.attn_heads;
            return r;
        };
        w.self_attn = attn(l["self_attn"], C);
        w.cross_attn = attn(l["cross_attn_image"], M);
        w.linear1 = l["linear1"].linear(vc.dim_feedforward, C);
        w.linear2 = l["linear2"].linear(C, vc.dim_feedforward);
        w.norm1 = l["norm1"].layer_norm(C);
        w.norm2 = l["norm2"].layer_norm(C);
        w.norm3 = l["norm3"].layer_norm(C);
        v.memory_attention.layers.push_back(std::move(w));
    }
    v.memory_attention.norm = ma["norm"].layer_norm(C);
    // Temporal encodings, pointers, no-object embeddings.
    v.maskmem_tpos_enc = src.tensor("maskmem_tpos_enc", {vc.num_maskmem, 1, 1, M}).reshape({vc.num_maskmem, M});
    v.no_mem_pos_enc = src.tensor("no_mem_pos_enc", {1, 1, C});
    v.no_obj_ptr = src.tensor("no_obj_ptr", {1, C});
    WeightLoader op(src, "obj_ptr_proj");
    for (int i = 0; i < 3; ++i) v.obj_ptr_proj.push_back(op["layers." + std::to_string(i)].linear(C, C));
    v.obj_ptr_tpos_proj = WeightLoader(src, "obj_ptr_tpos_proj").linear(M, C);
    v.no_obj_embed_spatial = src.tensor("no_obj_embed_spatial", {1, M});
    v.mask_downsample_w = src.tensor("mask_downsample.weight", {1, 1, 4, 4}).reshape({16});
    v.mask_downsample_b = src.tensor("mask_downsample.bias", {1})[0];
}

Tensor memory_encoder_forward(const MemoryEncoderWeights& w, const Sam2VideoConfig& vc, const Sam2Config& cfg,
                              const Tensor& pix_feat, const float* mask) {
    (void)vc;
    // Mask downsampler: (conv, LayerNorm2d, GELU) per layer, then a 1x1 conv.
    int64_t H = cfg.image_size, W = cfg.image_size;
    Tensor x;
    const float* cur = mask;
    for (size_t i = 0; i < w.down.size(); ++i) {
        int64_t Ho = 0, Wo = 0;
        x = conv2d(w.down[i], cur, H, W, Ho, Wo);
        ops::layer_norm(x.data(), x.dim(0), x.dim(1), w.down_norm[i].w.data(), w.down_norm[i].b.data(), kLayerNorm2dEps);
        ops::gelu_inplace(x.data(), x.numel());
        cur = x.data();
        H = Ho, W = Wo;
    }
    const int64_t G = cfg.embedding_size();
    if (H != G || W != G) throw Error("SAM 2 memory encoder: the mask downsampler gives " + std::to_string(H) + "x" +
                                      std::to_string(W) + ", expected " + std::to_string(G) + "x" + std::to_string(G));
    Tensor masks = linear(x, w.down_out);
    // x = pix_feat_proj(pix_feat) + masks
    Tensor h = linear(pix_feat, w.pix_feat_proj);
    ops::add_inplace(h.data(), masks.data(), h.numel());
    // Fuser: CXBlocks.
    for (const CXBlockWeights& b : w.fuser) {
        Tensor d = depthwise_conv(b, h, G);
        ops::layer_norm(d.data(), d.dim(0), d.dim(1), b.norm.w.data(), b.norm.b.data(), kLayerNorm2dEps);
        Tensor u = linear(d, b.pw1);
        ops::gelu_inplace(u.data(), u.numel());
        Tensor o = linear(u, b.pw2);
        const int64_t C = h.dim(1);
        for (int64_t p = 0; p < G * G; ++p)
            for (int64_t c = 0; c < C; ++c) h[p * C + c] += b.gamma[c] * o[p * C + c];
    }
    return w.out_proj.w.defined() ? linear(h, w.out_proj) : h;
}

}  // namespace sam
