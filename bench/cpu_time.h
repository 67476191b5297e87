// The benchmark programs' timer of one thread's work.
#pragma once

#include <ctime>

#include <algorithm>

namespace sam::bench {

// Best CPU time of the calling thread, in seconds, over `reps` runs of f after one warm-up run.
// (Thread CPU time: with the work on this thread, it leaves out the time other jobs take the
// core, which wall time on a shared machine does not.)
template <class F>
double best_cpu_seconds(int reps, F&& f) {
    f();
    double best = 1e30;
    for (int i = 0; i < reps; ++i) {
        timespec a{}, b{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        f();
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        best = std::min(best, double(b.tv_sec - a.tv_sec) + 1e-9 * double(b.tv_nsec - a.tv_nsec));
    }
    return best;
}

}  // namespace sam::bench
