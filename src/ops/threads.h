// The one place where thread counts are applied.
//
// OpenMP's thread count is a setting of each calling thread: a std::thread (an HTTP worker, a
// caller's thread pool) starts with the process default, whatever another thread set. So every
// public entry point that computes opens a ThreadScope with its model's thread count, on the
// thread that runs it; parallel regions and oneDNN primitives opened inside use that count.
#pragma once

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

}  // namespace sam::ops
