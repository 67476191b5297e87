// The fused attention kernel compiled for AVX-512 (F, BW, DQ, VL; chosen at run time:
// ops/cpu.h); its micro-kernels are in attention_kernels_avx512.h.
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <type_traits>

#include <immintrin.h>

// Everything below is compiled for AVX-512 F/BW/DQ/VL, AVX2 and FMA; the intrinsics header comes
// first, as it declares each intrinsic with its own target.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")
#endif
// GCC 12's avx512fintrin.h seeds masked intrinsics with an undefined vector and then warns
// about it (GCC bug 105593), as "maybe" or, once inlined into unrolled tiles, as certainly
// uninitialised; nothing here reads an uninitialised value.
#if !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include "ops/attention_kernels_avx512.h"

namespace sam::ops::attention {

SAM_ATTENTION_ENTRY(avx512) { attend_blocks<Avx512Kernels>(p, nq, q_rows, q_tok, out_rows, work, positions); }

}  // namespace sam::ops::attention
#if !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
