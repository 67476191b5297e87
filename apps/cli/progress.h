// A progress bar on stderr when it is a terminal; silent when piped or redirected.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace sam::cli {

class ProgressBar {
  public:
    explicit ProgressBar(std::string label) : label_(std::move(label)), enabled_(isatty(STDERR_FILENO) != 0) {}
    ~ProgressBar() { finish(); }

    void update(int64_t done, int64_t total) {
        if (!enabled_ || total <= 0) return;
        const int width = 30, filled = static_cast<int>(width * done / total);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        std::fprintf(stderr, "\r%s [%s%s] %lld/%lld %.1fs", label_.c_str(), std::string(static_cast<size_t>(filled), '#').c_str(),
                     std::string(static_cast<size_t>(width - filled), '.').c_str(), static_cast<long long>(done),
                     static_cast<long long>(total), s);
        std::fflush(stderr);
        drawn_ = true;
    }
    void finish() {
        if (drawn_) std::fputc('\n', stderr);
        drawn_ = false;
    }

  private:
    std::string label_;
    bool enabled_;
    bool drawn_ = false;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace sam::cli
