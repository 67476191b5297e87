// The fused attention kernel compiled for AVX2 + FMA (chosen at run time: ops/cpu.h).
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <type_traits>

#include <immintrin.h>

// Everything below is compiled for AVX2 and FMA; the intrinsics header comes
// first, as it declares each intrinsic with its own target.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#include "ops/attention_kernels_avx2.h"

namespace sam::ops::attention {

SAM_ATTENTION_ENTRY(avx2) { attend_blocks<Avx2Kernels>(p, nq, q_rows, q_tok, out_rows, work, positions); }

}  // namespace sam::ops::attention
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
