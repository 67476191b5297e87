// src/io/file_pages: a mapped file's unmodified pages are dropped and read back intact; pages
// written since mapping and anonymous memory are never touched.
#include "io/file_pages.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <vector>

#include "test_util.h"

namespace sam {
namespace {

TEST(FilePages, DropsOnlyUnwrittenFilePagesAndKeepsEveryValue) {
    if (::access("/proc/self/pagemap", R_OK) != 0) GTEST_SKIP() << "/proc/self/pagemap is not readable here";
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE)), pages = 16, n = pages * page / 4;
    test::TempDir dir("file_pages");
    const std::string path = dir.path + "/weights.bin";
    std::vector<uint32_t> values(n);
    for (size_t i = 0; i < n; ++i) values[i] = static_cast<uint32_t>(i * 2654435761u);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(values.data()), n * 4);

    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    void* p = ::mmap(nullptr, n * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);  // as Checkpoint::open maps
    ::close(fd);
    ASSERT_NE(p, MAP_FAILED);
    auto* mapped = static_cast<uint32_t*>(p);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; ++i) sum += mapped[i];  // every page resident
    ASSERT_NE(sum, 0u);
    const size_t written = 5 * page / 4;  // the first value of page 5: a private copy from now on
    mapped[written] = 7;

    // The whole range less its first and last bytes: only whole pages inside it may go.
    const size_t dropped = drop_file_pages(reinterpret_cast<const char*>(p) + 1, n * 4 - 2);
    EXPECT_EQ(dropped, (pages - 3) * page);  // not the two partial pages, not the written one
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(mapped[i], i == written ? 7u : values[i]) << "value " << i;
    EXPECT_EQ(drop_file_pages(p, n * 4), (pages - 1) * page);  // faulted back in by the reads above
    ::munmap(p, n * 4);
}

TEST(FilePages, LeavesAnonymousMemoryAlone) {
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    std::vector<float> heap(16 * page / 4);
    for (size_t i = 0; i < heap.size(); ++i) heap[i] = static_cast<float>(i);
    EXPECT_EQ(drop_file_pages(heap.data(), heap.size() * 4), 0u);
    for (size_t i = 0; i < heap.size(); ++i) ASSERT_EQ(heap[i], static_cast<float>(i));
    EXPECT_EQ(drop_file_pages(heap.data(), 100), 0u);  // less than a page: nothing whole to drop
}

}  // namespace
}  // namespace sam
