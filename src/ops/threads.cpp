#include "ops/threads.h"

#include <omp.h>

namespace sam::ops {

int available_cores() { return omp_get_num_procs(); }  // honours the process's CPU affinity

int current_threads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

ThreadScope::ThreadScope(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n > 0 ? n : available_cores()); }

ThreadScope::~ThreadScope() { omp_set_num_threads(saved_); }

}  // namespace sam::ops
