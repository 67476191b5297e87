// The fused attention kernel compiled for AVX2 + FMA (chosen at run time: ops/cpu.h).
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <type_traits>

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include "ops/attention_kernels_avx2.h"

namespace sam::ops::attention {

SAM_ATTENTION_ENTRY(avx2) { attend_blocks<Avx2Kernels>(p, nq, q_rows, q_tok, out_rows, work, positions); }

}  // namespace sam::ops::attention
#pragma GCC pop_options
