// How a model computes: its thread count and the precision of the image encoder's blocks.
//
// These are per model handle (sam::Sam::with_execution), not process-wide settings: they apply
// to every computation that handle runs, on whichever thread calls it, so one process can serve
// requests on HTTP worker threads, or run a 1-thread and an 8-thread model side by side.
#pragma once

#include <string>

namespace sam {

// Arithmetic of the image encoder's transformer blocks (their linear layers: about 70-75% of
// the encoder's work); everything else stays fp32.
//   F32:  the reference's arithmetic (attention's exponentials use a polynomial within 5e-9).
//   BF16: bf16 inputs, fp32 accumulation; CPUs with native bf16 instructions (AVX512-BF16, AMX).
//   INT8: dynamic int8 quantisation (u8 activations per tensor, 7-bit weights per channel),
//         int32 accumulation; CPUs with AVX2 or later.
enum class Precision { F32, BF16, INT8 };
Precision precision_from_string(const std::string& s);  // "f32" | "bf16" | "int8"
const char* to_string(Precision p);
// Whether this CPU has fast instructions for p (F32: always).
bool precision_supported(Precision p);

struct ExecutionOptions {
    int threads = 0;  // threads per computation; <= 0: every core this process may run on
    Precision precision = Precision::F32;
};

// The cores this process may run on (its CPU affinity), the default thread count.
int available_cores();

}  // namespace sam
