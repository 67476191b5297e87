// The one place where thread counts are applied.
//
// OpenMP's thread count is a setting of each calling thread: a std::thread (an HTTP worker, a
// caller's thread pool) starts with the process default, whatever another thread set. So every
// public entry point that computes opens a ThreadScope with its model's thread count, on the
// thread that runs it; parallel regions and oneDNN primitives opened inside use that count.
#pragma once

#include <cstdint>
#include <exception>

namespace sam::ops {

// Runs the enclosed work on n threads (n <= 0: every available core), restoring the calling
// thread's previous count on exit. Nesting is allowed; inside a parallel region the enclosed
// work stays on the calling thread (nested parallelism is off).
class ThreadScope {
  public:
    explicit ThreadScope(int n);
    ~ThreadScope();
    ThreadScope(const ThreadScope&) = delete;
    ThreadScope& operator=(const ThreadScope&) = delete;

  private:
    int saved_;
};

int available_cores();
// Threads a parallel region opened now on this thread would use.
int current_threads();

// Runs fn(i) for i < n, one item per thread (dynamic schedule) when n > 1; a single item on the
// calling thread outside any parallel construct, so that the parallel regions it opens are
// top-level ones. (A region nested in another, even in one made inactive by `if (false)`,
// gets freshly started threads from libgomp every time: measured at ~0.8 ms per region on a
// 2-core VM against ~20 us for a top-level one, which reuses the pool.) The first exception
// thrown by fn is rethrown here.
template <class Fn>
void for_each_item(int64_t n, Fn&& fn) {
    if (n == 1) {
        fn(int64_t{0});
        return;
    }
    std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
        try {
            fn(i);
        } catch (...) {
#pragma omp critical(sam_for_each_item_error)
            if (!error) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace sam::ops
