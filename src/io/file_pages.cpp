#include "io/file_pages.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

namespace sam {

size_t drop_file_pages(const void* data, size_t bytes) {
    const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) / page * page;
    if (end <= begin) return 0;
    const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    // One 64-bit entry per page: bit 63 present, bit 62 swapped, bit 61 a file page or
    // shared anonymous page (the kernel's pagemap documentation). A private mapping's page
    // that was written is an anonymous copy: bit 61 clear, so it is kept.
    constexpr uint64_t kPresent = uint64_t{1} << 63, kFileOrShared = uint64_t{1} << 61;
    const size_t pages = (end - begin) / page;
    std::vector<uint64_t> entries(pages);
    const off_t offset = static_cast<off_t>(begin / page * sizeof(uint64_t));
    const ssize_t got = ::pread(fd, entries.data(), pages * sizeof(uint64_t), offset);
    ::close(fd);
    if (got != static_cast<ssize_t>(pages * sizeof(uint64_t))) return 0;
    size_t dropped = 0;
    for (size_t i = 0; i < pages;) {  // runs of droppable pages, one madvise each
        const auto droppable = [&](size_t k) { return (entries[k] & (kPresent | kFileOrShared)) == (kPresent | kFileOrShared); };
        if (!droppable(i)) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < pages && droppable(j)) ++j;
        if (::madvise(reinterpret_cast<void*>(begin + i * page), (j - i) * page, MADV_DONTNEED) == 0)
            dropped += (j - i) * page;
        i = j;
    }
    return dropped;
}

}  // namespace sam
