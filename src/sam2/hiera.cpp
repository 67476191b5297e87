// Hiera trunk and FPN neck (sam2/modeling/backbones/hieradet.py, image_encoder.py).
//
// Attention runs in the fused kernel of ops/attention_kernels.h (the SAM encoder's) without
// relative-position tables: Hiera has no relative terms, and the kernel then computes none. Windows are never gathered: as in the SAM encoder, a padding token
// (zero after norm1) projects to the qkv bias, so padding keys point at the bias row and
// padding queries are not computed. Query pooling (the first block of stages 2-4) is a 2x2
// max-pool of q over the whole grid: a pooled query's four sources always lie in one window,
// and pooled positions past the cropped output are never needed.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/attention_kernels.h"
#include "ops/ops.h"
#include "sam/error.h"
#include "sam2/model.h"

namespace sam {

namespace {

constexpr float kEps = 1e-6f;

// (H*W, C) -> (H/2 * W/2, C), 2x2 max-pool (floor), as nn.MaxPool2d(2, 2).
Tensor max_pool2(const Tensor& x, int H, int W, int64_t ld, int64_t C) {
    const int Ho = H / 2, Wo = W / 2;
    Tensor y = Tensor::empty({static_cast<int64_t>(Ho) * Wo, C});
#pragma omp parallel for
    for (int oy = 0; oy < Ho; ++oy)
        for (int ox = 0; ox < Wo; ++ox) {
            float* dst = y.data() + (static_cast<int64_t>(oy) * Wo + ox) * C;
            const float* a = x.data() + (static_cast<int64_t>(2 * oy) * W + 2 * ox) * ld;
            const float* b = a + ld;
            const float* c = a + static_cast<int64_t>(W) * ld;
            const float* d = c + ld;
            for (int64_t k = 0; k < C; ++k) dst[k] = std::max(std::max(a[k], b[k]), std::max(c[k], d[k]));
        }
    return y;
}

// Windowed or global multi-head attention, with pooled queries in q-pool blocks.
// xn (H*W, dim) normalised -> (Hq*Wq, dim_out), before the output projection.
Tensor hiera_attention(const HieraBlockWeights& b, const Tensor& xn, int H, int W) {
    const int64_t N = static_cast<int64_t>(H) * W, Co = b.dim_out, C3 = 3 * Co, hd = Co / b.num_heads;
    Tensor qkv = Tensor::empty({N, C3});
    b.qkv.mm.forward(xn.data(), N, qkv.data());
    const int Hq = b.q_pool ? H / 2 : H, Wq = b.q_pool ? W / 2 : W;
    Tensor qp;  // pooled queries (Hq*Wq, Co)
    if (b.q_pool) qp = max_pool2(qkv, H, W, C3, Co);
    const float* q_base = b.q_pool ? qp.data() : qkv.data();
    const int64_t q_ld = b.q_pool ? Co : C3;

    // Key window (wh x ww) and query window (qh x qw) sides; one window when global.
    const bool global = b.window_size == 0;
    const int wh = global ? H : b.window_size, ww = global ? W : b.window_size;
    const int qh = global ? Hq : (b.q_pool ? wh / 2 : wh), qw = global ? Wq : (b.q_pool ? ww / 2 : ww);
    const int nwy = (H + wh - 1) / wh, nwx = (W + ww - 1) / ww;
    const int64_t T = static_cast<int64_t>(wh) * ww, Tq = static_cast<int64_t>(qh) * qw;
    const int64_t QT = 256, nqt = (Tq + QT - 1) / QT;
    const int64_t tasks = static_cast<int64_t>(nwy) * nwx * b.num_heads * nqt;

    Tensor out = Tensor::empty({static_cast<int64_t>(Hq) * Wq, Co});
    const float* qkv_d = qkv.data();
    const float* pad_row = b.qkv.b.data();
    // No relative-position tables: no relative terms, and the queries' positions are not read.
    const ops::RelPosAttentionParams params = ops::RelPosAttentionParams::plain(hd, wh, ww);
#pragma omp parallel
    {
        ops::RelPosAttention attention(params);
        std::vector<const float*> k_rows(static_cast<size_t>(T)), v_rows(static_cast<size_t>(T)), q_rows(QT);
        std::vector<float*> out_rows(QT);
        int64_t loaded = -1;
#pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t qt = task % nqt, h = (task / nqt) % b.num_heads, win = task / (nqt * b.num_heads);
            const int64_t wy = win / nwx, wx = win % nwx;
            int64_t nq = 0;
            for (int64_t u = qt * QT; u < std::min(Tq, (qt + 1) * QT); ++u) {
                const int64_t oy = wy * qh + u / qw, ox = wx * qw + u % qw;
                if (oy >= Hq || ox >= Wq) continue;
                const int64_t r = oy * Wq + ox;
                q_rows[static_cast<size_t>(nq)] = q_base + r * q_ld + h * hd;
                out_rows[static_cast<size_t>(nq)] = out.data() + r * Co + h * hd;
                ++nq;
            }
            if (nq == 0) continue;
            if (loaded != task / nqt) {
                for (int64_t t = 0; t < T; ++t) {
                    const int64_t gy = wy * wh + t / ww, gx = wx * ww + t % ww;
                    const float* src = (gy < H && gx < W) ? qkv_d + (gy * W + gx) * C3 : pad_row;
                    k_rows[static_cast<size_t>(t)] = src + Co + h * hd;
                    v_rows[static_cast<size_t>(t)] = src + 2 * Co + h * hd;
                }
                attention.set_keys_values(k_rows.data(), v_rows.data());
                loaded = task / nqt;
            }
            attention.attend(nq, q_rows.data(), nullptr, out_rows.data());
        }
    }
    return out;
}

// Patch embed: conv 7x7, stride 4, padding 3, as im2col + GEMM. (1, 3, S, S) -> (S/4 * S/4, C).
Tensor patch_embed(const HieraWeights& w, const Tensor& input) {
    const int64_t S = input.dim(2), G = S / 4, K = 3 * 49;
    Tensor cols({G * G, K});  // zeros: the padding
    const float* in = input.data();
#pragma omp parallel for
    for (int64_t oy = 0; oy < G; ++oy)
        for (int64_t ox = 0; ox < G; ++ox) {
            float* row = cols.data() + (oy * G + ox) * K;
            for (int64_t c = 0; c < 3; ++c)
                for (int64_t ky = 0; ky < 7; ++ky) {
                    const int64_t iy = oy * 4 - 3 + ky;
                    if (iy < 0 || iy >= S) continue;
                    for (int64_t kx = 0; kx < 7; ++kx) {
                        const int64_t ix = ox * 4 - 3 + kx;
                        if (ix >= 0 && ix < S) row[(c * 7 + ky) * 7 + kx] = in[(c * S + iy) * S + ix];
                    }
                }
        }
    return linear(cols, w.patch_embed);
}

// (H*W, C) channels-last -> (1, C, H, W).
Tensor to_nchw(const Tensor& x, int64_t H, int64_t W) {
    const int64_t C = x.dim(-1);
    Tensor y = Tensor::empty({1, C, H, W});
#pragma omp parallel for
    for (int64_t c = 0; c < C; ++c)
        for (int64_t p = 0; p < H * W; ++p) y[c * H * W + p] = x[p * C + c];
    return y;
}

}  // namespace

Tensor hiera_block(const HieraBlockWeights& b, Tensor x, int& H, int& W) {
    Tensor xn = x.clone();
    layer_norm_inplace(xn, b.norm1, kEps);
    Tensor shortcut = x;
    if (b.skip.w.defined()) {
        Tensor s = linear(xn, b.skip);
        shortcut = b.q_pool ? max_pool2(s, H, W, b.dim_out, b.dim_out) : s;
    }
    Tensor attn = hiera_attention(b, xn, H, W);
    if (b.q_pool) H /= 2, W /= 2;
    linear_add(attn, b.proj, shortcut);  // x = shortcut + proj(attn)
    // x = x + mlp(norm2(x))
    Tensor h = shortcut.clone();
    layer_norm_inplace(h, b.norm2, kEps);
    Tensor m = linear(h, b.mlp0, ops::Epilogue::Gelu);
    linear_add(m, b.mlp1, shortcut);
    return shortcut;
}

int HieraConfig::depth() const {
    int d = 0;
    for (int s : stages) d += s;
    return d;
}

void load_hiera(HieraWeights& h, const WeightLoader& w, const Sam2Config& cfg) {
    const HieraConfig& t = cfg.trunk;
    if (t.window_spec.size() != t.stages.size() || t.stages.empty())
        throw Error("Hiera config: window_spec and stages differ in length");
    int64_t C = t.embed_dim;
    h.patch_embed = make_linear(w["patch_embed.proj"].tensor("weight", {C, 3, 7, 7}).reshape({C, 147}),
                                w["patch_embed.proj"].tensor("bias", {C}));
    h.pos_embed = w.tensor("pos_embed", {1, C, t.pos_embed_bkg[0], t.pos_embed_bkg[1]});
    const int64_t w0 = t.window_spec[0];
    h.pos_embed_window = w.tensor("pos_embed_window", {1, C, w0, w0});
    h.stage_ends.clear();
    for (int i = 0, s = 0; i < t.num_stages(); ++i) h.stage_ends.push_back((s += t.stages[static_cast<size_t>(i)]) - 1);
    std::vector<int> q_pool_blocks;
    for (int i = 0; i + 1 < t.num_stages() && i < t.q_pool; ++i) q_pool_blocks.push_back(h.stage_ends[static_cast<size_t>(i)] + 1);
    auto contains = [](const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); };

    int heads = t.num_heads, stage = 1;
    for (int i = 0; i < t.depth(); ++i) {
        HieraBlockWeights b;
        b.dim = static_cast<int>(C);
        int64_t dim_out = C;
        b.window_size = contains(t.global_att_blocks, i) ? 0 : t.window_spec[static_cast<size_t>(stage - 1)];
        if (contains(h.stage_ends, i - 1)) {
            dim_out = 2 * C;
            heads *= 2;
            ++stage;
        }
        b.dim_out = static_cast<int>(dim_out);
        b.num_heads = heads;
        b.q_pool = contains(q_pool_blocks, i);
        if (dim_out % heads != 0) throw Error("Hiera config: width " + std::to_string(dim_out) + " not divisible by heads");
        WeightLoader l = w["blocks." + std::to_string(i)];
        b.norm1 = l["norm1"].layer_norm(C);
        b.qkv = l["attn.qkv"].linear(3 * dim_out, C);
        b.proj = l["attn.proj"].linear(dim_out, dim_out);
        b.norm2 = l["norm2"].layer_norm(dim_out);
        b.mlp0 = l["mlp.layers.0"].linear(4 * dim_out, dim_out);
        b.mlp1 = l["mlp.layers.1"].linear(dim_out, 4 * dim_out);
        if (dim_out != C) b.skip = l["proj"].linear(dim_out, C);
        h.blocks.push_back(std::move(b));
        C = dim_out;
    }

    // Positional embedding of the input grid: the background embedding interpolated bicubically
    // plus the window embedding tiled (Hiera._get_pos_embed), channels-last.
    const int G = cfg.image_size / 4;
    if (G % w0 != 0)
        throw Error("Hiera config: the " + std::to_string(G) + "-token grid is not a multiple of the window " +
                    std::to_string(w0));
    const int64_t C0 = t.embed_dim;
    Tensor bk = interpolate_bicubic(h.pos_embed.reshape({C0, t.pos_embed_bkg[0], t.pos_embed_bkg[1]}), G, G);
    h.pos = Tensor::empty({static_cast<int64_t>(G) * G, C0});
    for (int64_t c = 0; c < C0; ++c)
        for (int64_t y = 0; y < G; ++y)
            for (int64_t x = 0; x < G; ++x)
                h.pos[(y * G + x) * C0 + c] = bk[(c * G + y) * G + x] + h.pos_embed_window[(c * w0 + y % w0) * w0 + x % w0];
}

void load_neck(NeckWeights& n, const WeightLoader& w, const Sam2Config& cfg) {
    // convs[j] reads trunk stage (num_stages - 1 - j): backbone_channel_list is widest first.
    const int S = cfg.trunk.num_stages();
    for (int j = 0; j < S; ++j) {
        const int64_t Cin = static_cast<int64_t>(cfg.trunk.embed_dim) << (S - 1 - j);
        WeightLoader c = w["convs." + std::to_string(j) + ".conv"];
        n.convs.push_back(make_linear(c.tensor("weight", {cfg.d_model, Cin, 1, 1}).reshape({cfg.d_model, Cin}),
                                      c.tensor("bias", {cfg.d_model})));
    }
}

std::vector<Tensor> hiera_forward(const HieraWeights& w, const Sam2Config& cfg, const Tensor& input,
                                  const Sam2Observer& observe) {
    const int64_t S = cfg.image_size;
    if (input.shape() != Shape{1, 3, S, S})
        throw InputError("SAM 2 image encoder input", "shape " + shape_str(input.shape()) + ", expected " +
                                                          shape_str({1, 3, S, S}));
    Tensor x = patch_embed(w, input);
    ops::add_inplace(x.data(), w.pos.data(), x.numel());
    int H = static_cast<int>(S / 4), W = H;
    if (observe) observe("patch_embed", x.reshape({1, H, W, x.dim(1)}));
    std::vector<Tensor> stages;
    for (size_t i = 0; i < w.blocks.size(); ++i) {
        x = hiera_block(w.blocks[i], std::move(x), H, W);
        if (observe) observe("block" + std::to_string(i), x.reshape({1, H, W, x.dim(1)}));
        if (std::find(w.stage_ends.begin(), w.stage_ends.end(), static_cast<int>(i)) != w.stage_ends.end()) {
            stages.push_back(x.clone());
            if (observe) observe("stage" + std::to_string(stages.size() - 1), to_nchw(x, H, W));
        }
    }
    return stages;
}

std::vector<Tensor> fpn_forward(const NeckWeights& w, const Sam2Config& cfg, const std::vector<Tensor>& stages) {
    const int n = static_cast<int>(w.convs.size()) - 1;
    std::vector<Tensor> out(w.convs.size());
    Tensor prev;
    int prev_side = 0;
    for (int i = n; i >= 0; --i) {
        const int side = cfg.image_size / (4 << i);
        Tensor lateral = linear(stages[static_cast<size_t>(i)], w.convs[static_cast<size_t>(n - i)]);
        const bool top_down = std::find(cfg.fpn_top_down_levels.begin(), cfg.fpn_top_down_levels.end(), i) !=
                              cfg.fpn_top_down_levels.end();
        if (top_down && prev.defined()) {
            // lateral + nearest 2x upsampling of the coarser level
            const int64_t C = cfg.d_model;
#pragma omp parallel for
            for (int y = 0; y < side; ++y)
                for (int x = 0; x < side; ++x) {
                    float* d = lateral.data() + (static_cast<int64_t>(y) * side + x) * C;
                    const float* s = prev.data() + (static_cast<int64_t>(y / 2) * prev_side + x / 2) * C;
                    for (int64_t c = 0; c < C; ++c) d[c] += s[c];
                }
        }
        prev = lateral;
        prev_side = side;
        out[static_cast<size_t>(i)] = lateral;
    }
    return out;
}

Tensor sine_position_encoding(int d_model, int H, int W) {
    // PositionEmbeddingSine(num_pos_feats=d_model, normalize=True, scale=2 pi, temperature 1e4).
    const int F = d_model / 2;
    const float scale = 2.0f * static_cast<float>(M_PI), eps = 1e-6f;
    Tensor pos = Tensor::empty({1, d_model, H, W});
    std::vector<float> dim_t(static_cast<size_t>(F));
    for (int i = 0; i < F; ++i)
        dim_t[static_cast<size_t>(i)] =
            std::pow(10000.0f, 2.0f * static_cast<float>(i / 2) / static_cast<float>(F));
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
            const float ye = static_cast<float>(y + 1) / (static_cast<float>(H) + eps) * scale;
            const float xe = static_cast<float>(x + 1) / (static_cast<float>(W) + eps) * scale;
            for (int i = 0; i < F; ++i) {
                const float py = ye / dim_t[static_cast<size_t>(i)], px = xe / dim_t[static_cast<size_t>(i)];
                // channels: [pos_y (sin, cos interleaved) | pos_x]
                pos[(static_cast<int64_t>(i) * H + y) * W + x] = (i % 2 == 0) ? std::sin(py) : std::cos(py);
                pos[(static_cast<int64_t>(F + i) * H + y) * W + x] = (i % 2 == 0) ? std::sin(px) : std::cos(px);
            }
        }
    return pos;
}

Sam2Features sam2_image_features(const Sam2Model& m, const Tensor& input, const Sam2Observer& observe) {
    const Sam2Config& cfg = m.config;
    std::vector<Tensor> stages = hiera_forward(m.trunk, cfg, input, observe);
    std::vector<Tensor> levels = fpn_forward(m.neck, cfg, stages);
    const int64_t G = cfg.embedding_size(), C = cfg.d_model;
    if (observe)
        for (size_t i = 0; i < levels.size(); ++i) {
            const int64_t side = cfg.image_size / (4 << i);
            observe("level" + std::to_string(i), to_nchw(levels[i], side, side));
        }
    Sam2Features f;
    // The lowest-resolution level is dropped (scalp); the image embedding is the next one.
    Tensor emb = levels[static_cast<size_t>(levels.size() - 1 - static_cast<size_t>(cfg.scalp))];
    for (int64_t p = 0; p < G * G; ++p)
        for (int64_t c = 0; c < C; ++c) emb[p * C + c] += m.no_mem_embed[c];
    f.image_embed = to_nchw(emb, G, G);
    f.high_res[0] = to_nchw(linear(levels[0], m.decoder.conv_s0), 4 * G, 4 * G);
    f.high_res[1] = to_nchw(linear(levels[1], m.decoder.conv_s1), 2 * G, 2 * G);
    return f;
}

}  // namespace sam
