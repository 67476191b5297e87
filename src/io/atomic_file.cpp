#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <streambuf>

#include "sam/error.h"

namespace fs = std::filesystem;

namespace sam {
namespace {

constexpr const char* kTempInfix = ".sam-tmp-";
constexpr size_t kTempSuffixLength = 6;
constexpr const char kTempAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

[[noreturn]] void fail(const std::string& path, const std::string& what, int err = errno) {
    throw Error(path + ": " + what + ": " + std::strerror(err));
}

std::string parent_of(const std::string& path) {
    const fs::path p = fs::path(path).parent_path();
    return p.empty() ? "." : p.string();
}

std::string random_temporary_name(const std::string& path) {
    thread_local std::mt19937_64 rng(std::random_device{}() ^ (static_cast<uint64_t>(::getpid()) << 32));
    std::string name = temporary_prefix(path);
    for (size_t i = 0; i < kTempSuffixLength; ++i) name += kTempAlphabet[rng() % (sizeof(kTempAlphabet) - 1)];
    return name;
}

// Creates a new temporary beside `path` and opens it for writing; returns {fd, name}.
std::pair<int, std::string> create_temporary(const std::string& path) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        std::string tmp = random_temporary_name(path);
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0) return {fd, tmp};
        if (errno != EEXIST) fail(path, "cannot create a temporary file beside it");
    }
    fail(path, "cannot create a temporary file beside it", EEXIST);
}

void write_all(int fd, const char* data, size_t size, const std::string& path) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(path, "write failed");
        data += n;
        size -= static_cast<size_t>(n);
    }
}

// fsyncs and closes `fd`; throws naming `path` if either fails (e.g. a full disk seen late).
void sync_and_close(int fd, const std::string& path) {
    if (::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        fail(path, "fsync failed", err);
    }
    if (::close(fd) != 0) fail(path, "close failed");
}

// A std::streambuf over a file descriptor, so callers keep writing to a std::ostream.
class FdStreamBuf : public std::streambuf {
  public:
    FdStreamBuf(int fd, std::string path) : fd_(fd), path_(std::move(path)) { setp(buf_, buf_ + sizeof(buf_)); }

  protected:
    int_type overflow(int_type c) override {
        flush_buffer();
        if (!traits_type::eq_int_type(c, traits_type::eof())) {
            *pptr() = traits_type::to_char_type(c);
            pbump(1);
        }
        return traits_type::not_eof(c);
    }
    std::streamsize xsputn(const char* s, std::streamsize n) override {
        if (n >= static_cast<std::streamsize>(sizeof(buf_))) {
            flush_buffer();
            write_all(fd_, s, static_cast<size_t>(n), path_);
            return n;
        }
        return std::streambuf::xsputn(s, n);
    }
    int sync() override {
        flush_buffer();
        return 0;
    }

  private:
    void flush_buffer() {
        write_all(fd_, pbase(), static_cast<size_t>(pptr() - pbase()), path_);
        setp(buf_, buf_ + sizeof(buf_));
    }
    int fd_;
    std::string path_;
    char buf_[1 << 16];
};

bool is_temporary_suffix(const std::string& s) {
    if (s.size() != kTempSuffixLength) return false;
    for (char c : s)
        if (std::strchr(kTempAlphabet, c) == nullptr || c == '\0') return false;
    return true;
}

// Renames the temporary `tmp` to `path` and makes the rename durable; removes `tmp` on failure.
void commit(const std::string& tmp, const std::string& path) {
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        std::remove(tmp.c_str());
        fail(path, "cannot write (rename failed)", err);
    }
    sync_directory(parent_of(path));
}

}  // namespace

std::string temporary_prefix(const std::string& path) {
    const fs::path p(path);
    std::string name(1, '.');  // built by appending: GCC 12 warns (-Wrestrict) on "." + string
    name.append(p.filename().string()).append(kTempInfix);
    return (p.parent_path() / name).string();
}

void sync_directory(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail(dir, "cannot open the folder to sync it");
    // Some file systems cannot fsync a directory (EINVAL); their renames are as durable as they get.
    if (::fsync(fd) != 0 && errno != EINVAL) {
        const int err = errno;
        ::close(fd);
        fail(dir, "fsync failed", err);
    }
    ::close(fd);
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
    auto [fd, tmp] = create_temporary(path);
    try {
        FdStreamBuf buf(fd, path);
        std::ostream out(&buf);
        out.exceptions(std::ios::badbit);
        write(out);
        out.flush();
        if (!out) throw Error(path + ": write failed");
    } catch (const std::ios_base::failure&) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw Error(path + ": write failed");
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    try {
        sync_and_close(fd, path);
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
    commit(tmp, path);
}

void write_new_file_durable(const std::string& path, const std::vector<uint8_t>& bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) fail(path, "cannot create");
    try {
        write_all(fd, reinterpret_cast<const char*>(bytes.data()), bytes.size(), path);
    } catch (...) {
        ::close(fd);
        throw;
    }
    sync_and_close(fd, path);
}

std::string make_temporary_dir(const std::string& path) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        std::string tmp = random_temporary_name(path);
        if (::mkdir(tmp.c_str(), 0777) == 0) return tmp;
        if (errno != EEXIST) fail(path, "cannot create a temporary folder beside it");
    }
    fail(path, "cannot create a temporary folder beside it", EEXIST);
}

std::string make_temporary_file(const std::string& path) {
    auto [fd, tmp] = create_temporary(path);
    ::close(fd);
    return tmp;
}

void sync_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path, "cannot open to sync it");
    sync_and_close(fd, path);
}

void rename_durable(const std::string& from, const std::string& to) {
    struct stat from_st {}, to_st {};
    if (::lstat(from.c_str(), &from_st) != 0) fail(from, "cannot rename");
    const bool to_exists = ::lstat(to.c_str(), &to_st) == 0;
    if (to_exists && (S_ISDIR(from_st.st_mode) || S_ISDIR(to_st.st_mode))) {
        // rename() cannot replace a non-empty folder: swap the two names atomically, then remove
        // the old content (now under the temporary name `from`).
        if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE) == 0) {
            sync_directory(parent_of(to));
            fs::remove_all(from);
            return;
        }
        if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) fail(to, "cannot replace");
        // No atomic exchange on this file system: move the old one aside first. A crash between
        // the two renames leaves `to` missing, never mixed.
        const std::string aside = random_temporary_name(to);
        if (std::rename(to.c_str(), aside.c_str()) != 0) fail(to, "cannot move aside to replace it");
        if (std::rename(from.c_str(), to.c_str()) != 0) fail(to, "cannot replace");
        sync_directory(parent_of(to));
        fs::remove_all(aside);
        return;
    }
    if (std::rename(from.c_str(), to.c_str()) != 0) fail(to, "cannot replace");
    sync_directory(parent_of(to));
}

int remove_stale_temporaries(const std::string& path) {
    const std::string prefix = fs::path(temporary_prefix(path)).filename().string();
    std::error_code ec;
    int removed = 0;
    for (const auto& e : fs::directory_iterator(parent_of(path), ec)) {
        const std::string name = e.path().filename().string();
        if (name.size() != prefix.size() + kTempSuffixLength || name.compare(0, prefix.size(), prefix) != 0 ||
            !is_temporary_suffix(name.substr(prefix.size())))
            continue;
        std::error_code rm;
        fs::remove_all(e.path(), rm);  // another process may have removed it first
        if (!rm) ++removed;
    }
    return removed;
}

}  // namespace sam
