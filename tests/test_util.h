// Shared helpers for the tests: fixture paths and tensor comparisons.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <system_error>

#include <unistd.h>

#include "sam/tensor.h"

namespace sam::test {

inline std::string data_path(const std::string& name) { return std::string(SAM_TEST_DATA) + "/" + name; }

// A new directory under the system's temporary directory (prefix, process id, a random number),
// removed with what it holds when the object goes.
struct TempDir {
    std::string path;
    explicit TempDir(const std::string& prefix) {
        path = (std::filesystem::temp_directory_path() /
                (prefix + std::to_string(::getpid()) + "_" + std::to_string(std::random_device{}())))
                   .string();
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

// A file's bytes (empty when it cannot be read).
inline std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline float max_abs(const Tensor& t) {
    float m = 0.0f;
    for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(t[i]));
    return m;
}

inline float max_abs_diff(const Tensor& a, const Tensor& b) {
    float m = 0.0f;
    for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

// The fixture's activation tolerance: max-abs difference <= 1e-4 x the reference's max magnitude.
inline ::testing::AssertionResult close_to_reference(const Tensor& got, const Tensor& want, float rel = 1e-4f) {
    if (got.shape() != want.shape())
        return ::testing::AssertionFailure() << "shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape());
    const float diff = max_abs_diff(got, want), tol = rel * max_abs(want);
    if (!(diff <= tol)) return ::testing::AssertionFailure() << "max abs diff " << diff << " > tolerance " << tol;
    return ::testing::AssertionSuccess() << "max abs diff " << diff << " <= " << tol;
}

}  // namespace sam::test
