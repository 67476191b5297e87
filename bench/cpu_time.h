// The benchmark programs' timers: one thread's work, and work over several threads.
#pragma once

#include <ctime>

#include <algorithm>
#include <chrono>

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

// Best wall time, in seconds, over `reps` runs of f after one warm-up run: for work spread over
// several threads, whose waits for each other are part of its cost.
template <class F>
double best_wall_seconds(int reps, F&& f) {
    f();
    double best = 1e30;
    for (int i = 0; i < reps; ++i) {
        const auto a = std::chrono::steady_clock::now();
        f();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    }
    return best;
}

}  // namespace sam::bench
