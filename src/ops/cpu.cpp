#include "ops/cpu.h"

#include <cstdlib>
#include <fstream>

#include "sam/error.h"

namespace sam::ops {
namespace {

CpuFeatures detect() {
    CpuFeatures f;
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512dq = __builtin_cpu_supports("avx512dq");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
    f.avx512_vnni = __builtin_cpu_supports("avx512vnni");
    // Newer flags are not known to every compiler's __builtin_cpu_supports: read them off the
    // kernel's list, which also says what the operating system enabled.
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        if (f.model.empty() && line.rfind("model name", 0) == 0) {
            const size_t colon = line.find(':');
            if (colon != std::string::npos) f.model = line.substr(line.find_first_not_of(' ', colon + 1));
        } else if (line.rfind("flags", 0) == 0) {
            const std::string flags = line + " ";
            auto has = [&](const char* name) { return flags.find(std::string(" ") + name + " ") != std::string::npos; };
            f.avx512_bf16 = has("avx512_bf16");
            f.avx_vnni = has("avx_vnni");
            f.amx_tile = has("amx_tile");
            f.amx_bf16 = has("amx_bf16");
            f.amx_int8 = has("amx_int8");
            break;
        }
    }
    return f;
}

KernelIsa parse_isa(const std::string& s) {
    if (s == "portable") return KernelIsa::Portable;
    if (s == "avx2") return KernelIsa::Avx2;
    if (s == "avx512") return KernelIsa::Avx512;
    throw InputError("SAM_KERNEL_ISA", "'" + s + "' is not one of portable, avx2, avx512");
}

}  // namespace

const char* to_string(KernelIsa isa) {
    switch (isa) {
        case KernelIsa::Avx512: return "avx512";
        case KernelIsa::Avx2: return "avx2";
        default: return "portable";
    }
}

std::string CpuFeatures::summary() const {
    std::string s;
    auto add = [&](bool on, const char* name) {
        if (!on) return;
        if (!s.empty()) s += ' ';
        s += name;
    };
    add(avx2, "avx2");
    add(fma, "fma");
    add(avx512f, "avx512f");
    add(avx512bw, "avx512bw");
    add(avx512dq, "avx512dq");
    add(avx512vl, "avx512vl");
    add(avx512_vnni, "avx512_vnni");
    add(avx_vnni, "avx_vnni");
    add(avx512_bf16, "avx512_bf16");
    add(amx_tile, "amx_tile");
    add(amx_bf16, "amx_bf16");
    add(amx_int8, "amx_int8");
    return s.empty() ? "(none of avx2/avx512)" : s;
}

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = detect();
    return features;
}

bool cpu_runs(KernelIsa isa) {
    const CpuFeatures& f = cpu_features();
    switch (isa) {
        case KernelIsa::Avx512: return f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx2 && f.fma;
        case KernelIsa::Avx2: return f.avx2 && f.fma;
        default: return true;
    }
}

KernelIsa best_kernel_isa() {
    for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2})
        if (cpu_runs(isa)) return isa;
    return KernelIsa::Portable;
}

KernelIsa kernel_isa() {
    static const KernelIsa chosen = [] {
        const char* env = std::getenv("SAM_KERNEL_ISA");
        return env && *env ? parse_isa(env) : best_kernel_isa();
    }();
    if (!cpu_runs(chosen))
        throw InputError("SAM_KERNEL_ISA", std::string(to_string(chosen)) + " kernels asked for, but this CPU lacks " +
                                               "the instructions (it has: " + cpu_features().summary() + ")");
    return chosen;
}

}  // namespace sam::ops
