#include "server/sha256.h"

#include <array>
#include <cmath>
#include <cstring>
#include <vector>

namespace sam::server {
namespace {

// The first 32 bits of the fractional part of x (x > 0).
uint32_t fraction_bits(long double x) {
    const long double f = x - std::floor(x);
    return static_cast<uint32_t>(std::ldexp(f, 32));
}

// Round constants and initial hash (FIPS 180-4, 4.2.2 and 5.3.3): fractional parts of the cube
// and square roots of the first 64 and 8 primes. Computed rather than tabled: long double
// carries 64 bits, enough for the 32 that are kept.
struct Constants {
    std::array<uint32_t, 64> k{};
    std::array<uint32_t, 8> h0{};
    Constants() {
        int found = 0;
        for (int n = 2; found < 64; ++n) {
            bool prime = true;
            for (int d = 2; d * d <= n; ++d) prime = prime && n % d != 0;
            if (!prime) continue;
            k[static_cast<size_t>(found)] = fraction_bits(std::cbrt(static_cast<long double>(n)));
            if (found < 8) h0[static_cast<size_t>(found)] = fraction_bits(std::sqrt(static_cast<long double>(n)));
            ++found;
        }
    }
};

uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

// One 64-byte block into the state.
void compress(std::array<uint32_t, 8>& h, const uint8_t* block, const Constants& c) {
    std::array<uint32_t, 64> w{};
    for (size_t t = 0; t < 16; ++t)
        w[t] = uint32_t{block[4 * t]} << 24 | uint32_t{block[4 * t + 1]} << 16 | uint32_t{block[4 * t + 2]} << 8 |
               uint32_t{block[4 * t + 3]};
    for (size_t t = 16; t < 64; ++t) {
        const uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        const uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], cc = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (size_t t = 0; t < 64; ++t) {
        const uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + c.k[t] + w[t];
        const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        hh = g, g = f, f = e, e = d + t1, d = cc, cc = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += cc, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

}  // namespace

std::string sha256_hex(const uint8_t* data, size_t size) {
    static const Constants c;
    std::array<uint32_t, 8> h = c.h0;
    size_t full = size / 64 * 64;
    for (size_t i = 0; i < full; i += 64) compress(h, data + i, c);
    // Padding: 0x80, zeros, then the length in bits as a 64-bit big-endian number.
    std::vector<uint8_t> tail(data + full, data + size);
    tail.push_back(0x80);
    while (tail.size() % 64 != 56) tail.push_back(0);
    const uint64_t bits = static_cast<uint64_t>(size) * 8;
    for (int s = 56; s >= 0; s -= 8) tail.push_back(static_cast<uint8_t>(bits >> s));
    for (size_t i = 0; i < tail.size(); i += 64) compress(h, tail.data() + i, c);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (uint32_t v : h)
        for (int s = 28; s >= 0; s -= 4) out += hex[(v >> s) & 15];
    return out;
}

}  // namespace sam::server
