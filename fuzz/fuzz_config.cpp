// libFuzzer target: arbitrary bytes as a JSON model config (--config). Every input must either
// give a config the model can be built from (positive sizes that divide as the layers need) or
// throw sam::Error naming the field.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sam/config.h"
#include "sam/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const sam::SamConfig c = sam::sam_config_from_json_text(std::string(reinterpret_cast<const char*>(data), size),
                                                                "fuzz.json");
        const sam::ImageEncoderConfig& e = c.encoder;
        if (e.patch_size <= 0 || e.img_size % e.patch_size != 0 || e.num_heads <= 0 || e.embed_dim % e.num_heads != 0 ||
            e.window_size <= 0 || c.decoder.num_heads <= 0 || c.decoder.transformer_dim % 8 != 0 ||
            c.prompt.mask_in_chans % 4 != 0)
            __builtin_trap();
        for (int i : e.global_attn_indexes)
            if (i < 0 || i >= e.depth) __builtin_trap();
        for (float s : c.pixel_std)
            if (!(s > 0.0f)) __builtin_trap();
    } catch (const sam::Error&) {
    }
    return 0;
}
