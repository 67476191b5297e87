// fp16 / bf16 storage to fp32: the checkpoint and .npy readers share these.
#pragma once

#include <bit>
#include <cstdint>

namespace sam {

// Hand-written: C++20 has no half or bfloat16 type (std::float16_t arrives with C++23 and
// <stdfloat>), and pulling in a half-float library for two bit manipulations is not worth it.
inline float half_to_float(uint16_t h) {
    uint32_t sign = uint32_t{h & 0x8000u} << 16, exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in fp32
        float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    uint32_t bits = exp == 31 ? sign | 0x7F800000u | (mant << 13) : sign | ((exp + 112) << 23) | (mant << 13);
    return std::bit_cast<float>(bits);
}

inline float bf16_to_float(uint16_t b) { return std::bit_cast<float>(uint32_t{b} << 16); }

}  // namespace sam
