// ViT image encoder (segment_anything/modeling/image_encoder.py): patch embed, absolute
// position embedding, windowed / global attention blocks with decomposed relative positions,
// and the conv neck.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "modeling/common.h"
#include "sam/config.h"

namespace sam {

struct EncoderBlockWeights {      // image_encoder.blocks.N
    LayerNorm norm1, norm2;       // .norm1, .norm2 (C)
    Linear qkv, proj;             // .attn.qkv (3C, C), .attn.proj (C, C)
    Tensor rel_pos_h, rel_pos_w;  // .attn.rel_pos_{h,w} (2 * size - 1, head_dim)
    Linear lin1, lin2;            // .mlp.lin1 (4C, C), .mlp.lin2 (C, 4C)
    int window_size = 0;          // 0: global attention over the whole 64x64 grid
};

struct ImageEncoderWeights {      // image_encoder
    Linear patch_embed;           // .patch_embed.proj: weight (C, 3, 16, 16) viewed as (C, 768)
    Tensor pos_embed;             // .pos_embed (1, 64, 64, C)
    std::vector<EncoderBlockWeights> blocks;
    Linear neck_conv1;            // .neck.0.weight (256, C, 1, 1) viewed as (256, C), no bias
    LayerNorm neck_norm1;         // .neck.1 (256)
    Linear neck_conv2;            // .neck.2.weight (256, 256, 3, 3), reordered to (256, 3 * 3 * 256)
    LayerNorm neck_norm2;         // .neck.3 (256)
};

ImageEncoderWeights load_image_encoder(const WeightLoader& w, const ImageEncoderConfig& cfg);

// Called with ("patch_embed" | "block<i>" | "neck", activation) as the forward pass goes;
// activations are (1, 64, 64, C) channels-last, the neck (1, 256, 64, 64).
using ActivationObserver = std::function<void(const std::string&, const Tensor&)>;

// Buffers reused from block to block: fresh multi-megabyte allocations cost a page fault per
// 4 KiB on first touch (about a second per vit_b image).
struct EncoderWorkspace {
    Tensor qkv;  // (H*W, 3C)
    Tensor out;  // (H*W, C)
};

// The blocks' activations, reusable from image to image (113 MB for vit_b): made fresh for each
// image they cost ~24k page faults (measured on a 2-core Zen 4: 0.06 s of system time per int8
// image, about 1.5% of its wall time).
struct EncoderBuffers {
    EncoderWorkspace attention;
    Tensor h;  // (H*W, C): the normalised input of attention and MLP
    Tensor m;  // (H*W, mlp_ratio * C): the MLP's hidden layer
};

// input (1, 3, S, S) normalised and padded -> image embedding (1, out_chans, S/16, S/16).
// The blocks' linear layers run in `precision` (supported by this CPU); the rest in fp32.
// `buffers`, when given, are used (and resized) instead of fresh ones.
Tensor image_encoder_forward(const ImageEncoderWeights& w, const ImageEncoderConfig& cfg, const Tensor& input,
                             Precision precision = Precision::F32, const ActivationObserver& observe = nullptr,
                             EncoderBuffers* buffers = nullptr);

// One spare set of encoder buffers, kept between images. Thread-safe: each encode takes the
// spare (or, while another encode holds it, starts an empty set of its own) and gives a set
// back, which becomes the spare if there is none.
class EncoderBufferPool {
  public:
    std::unique_ptr<EncoderBuffers> take();
    void give_back(std::unique_ptr<EncoderBuffers> buffers);

  private:
    std::mutex mutex_;
    std::unique_ptr<EncoderBuffers> spare_;
};

// Multi-head attention with decomposed relative positions over a (H, W) token grid, windowed
// when window_size > 0. x (H*W, C) -> (H*W, C), before the output projection.
Tensor encoder_attention(const EncoderBlockWeights& w, const Tensor& x, int H, int W, int num_heads);
// Same, writing into ws.out (and using ws.qkv); returns ws.out. The qkv projection runs in p.
const Tensor& encoder_attention(const EncoderBlockWeights& w, const Tensor& x, int H, int W, int num_heads,
                                EncoderWorkspace& ws, Precision p = Precision::F32);

}  // namespace sam
