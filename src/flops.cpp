#include "flops.h"

#include <algorithm>
#include <cmath>

namespace sam {

double image_encoder_flops(const ImageEncoderConfig& c) {
    const double G = c.img_size / c.patch_size, N = G * G, C = c.embed_dim, P = c.patch_size;
    double f = 2.0 * N * (3.0 * P * P) * C;  // patch embed
    for (int i = 0; i < c.depth; ++i) {
        bool global = std::find(c.global_attn_indexes.begin(), c.global_attn_indexes.end(), i) !=
                      c.global_attn_indexes.end();
        const double wins = global ? 1.0 : std::ceil(G / c.window_size) * std::ceil(G / c.window_size);
        const double T = global ? N : double(c.window_size) * c.window_size, tokens = wins * T;
        f += 2.0 * tokens * C * 3.0 * C;              // qkv
        f += wins * 2.0 * 2.0 * T * T * C;            // q k^T and attn v
        f += 2.0 * N * C * C;                         // proj
        f += 2.0 * 2.0 * N * C * C * c.mlp_ratio;     // mlp
    }
    const double out = c.out_chans;
    f += 2.0 * N * C * out + 2.0 * N * 9.0 * out * out;  // neck
    return f;
}

double mask_decoder_flops(const SamConfig& c, int prompts, int sparse_tokens) {
    const double D = c.decoder.transformer_dim, N = 64.0 * 64.0, Ti = 1 + c.decoder.num_multimask_outputs + 1;
    const double T = Ti + sparse_tokens, Dc = D / c.decoder.attention_downsample, M = c.decoder.mlp_dim;
    double layer = 2.0 * T * D * D * 4                    // self attention projections
                   + 2.0 * T * D * Dc * 2 + 2.0 * N * D * Dc * 2 + 2.0 * 2.0 * T * N * Dc  // token->image
                   + 2.0 * 2.0 * T * D * M                // mlp
                   + 2.0 * N * D * Dc * 2 + 2.0 * T * D * Dc * 2 + 2.0 * 2.0 * T * N * Dc;  // image->token
    double f = c.decoder.depth * layer + 2.0 * T * D * Dc * 2 + 2.0 * N * D * Dc * 2 + 2.0 * 2.0 * T * N * Dc;
    f += 2.0 * N * D * (D / 4) * 4 + 2.0 * 4 * N * (D / 4) * (D / 8) * 4;  // upscaling (two transposed convs)
    f += 2.0 * (Ti - 1) * 256 * 256 * (D / 8);                             // hypernetwork dot products
    return f * prompts;
}

}  // namespace sam
