// What this CPU can run, and which of SAM's hand-written kernels are in use.
//
// One binary runs right on every x86-64 CPU: the hand-written kernels are compiled for each
// instruction set they have a version for (portable C++, AVX2+FMA, AVX-512) and chosen here at
// run time from CPUID. oneDNN, which does the GEMMs, dispatches the same way by itself.
#pragma once

#include <string>

namespace sam::ops {

enum class KernelIsa { Portable = 0, Avx2 = 1, Avx512 = 2 };
const char* to_string(KernelIsa isa);  // "portable" | "avx2" | "avx512"

struct CpuFeatures {
    std::string model;  // as /proc/cpuinfo names it (empty where unknown)
    bool avx2 = false, fma = false;
    bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
    bool avx512_bf16 = false, avx512_vnni = false, avx_vnni = false;
    bool amx_tile = false, amx_bf16 = false, amx_int8 = false;
    std::string summary() const;  // "avx2 fma avx512f ..." : the flags that matter here
};
const CpuFeatures& cpu_features();

// The best kernel set this CPU runs (AVX-512 needs F, BW, DQ and VL; AVX2 needs FMA too).
KernelIsa best_kernel_isa();
// The kernel set in use: the best one, or a lower one asked for with the environment variable
// SAM_KERNEL_ISA=portable|avx2|avx512 (read once; tests and comparisons use it). Asking for one
// the CPU cannot run is an error, reported when a kernel is first needed.
KernelIsa kernel_isa();
// Whether this CPU can run `isa`'s kernels.
bool cpu_runs(KernelIsa isa);
// The instruction set oneDNN's own dispatch settled on ("avx512_core_bf16", "avx2", ...; capped
// by the environment variable ONEDNN_MAX_CPU_ISA).
std::string gemm_library_isa();

}  // namespace sam::ops
